import { readFileSync } from "node:fs";
import { join } from "node:path";

/** A recorded XML document from test/fixtures/xml (see its README for how each was made). */
export function fixture(name: string): string {
  return readFileSync(join(__dirname, "..", "..", "fixtures", "xml", name), "utf8");
}

/** Image directory of the recorded domain. */
export const FIXTURE_DIR = "/var/lib/libvirt/images/lvsnap-fixture";

/** A qcow2 file image in the fixture directory, as the parsers report it. */
export function qcow2(file: string, index?: number) {
  return {
    kind: "file",
    path: `${FIXTURE_DIR}/${file}`,
    format: "qcow2",
    ...(index === undefined ? {} : { index }),
  };
}
