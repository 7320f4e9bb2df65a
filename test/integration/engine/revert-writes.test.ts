import { describe, expect, test } from "vitest";
import { revertSnapshot } from "../../../provider/engine/revert";
import { parseRevertRecord } from "../../../provider/engine/revert-state";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { parseProjectMetadata } from "../../../provider/model/metadata";
import { lab } from "../../support/lab";
import { labConnectionPerFile } from "./lab-connection";
import { diskOnlyLayers } from "./revert-support";

const conn = labConnectionPerFile();

/** What one project metadata write holds: the revert record's phase and files to remove, the snapshot records. */
interface Written {
  readonly phase?: string;
  readonly remove?: readonly string[];
  /** Per snapshot record, sorted: its name and the overlays it is matched by. */
  readonly records: readonly string[];
}

/** The connection with every project metadata write (`domainSetMetadata` call) recorded, in order. */
function recordingWrites(connection: LibvirtConnection) {
  const writes: Written[] = [];
  const port = new Proxy(connection, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== "domainSetMetadata" || typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const xml = (args[2] as string | null) ?? undefined;
        const record = parseRevertRecord(xml);
        const records = parseProjectMetadata(xml)
          .snapshots.map((r) => `${r.name}: ${r.files.overlays.map((o) => o.path).join(", ")}`)
          .sort();
        writes.push(
          record === null ? { records } : { phase: record.phase, remove: record.remove ?? [], records },
        );
        return Reflect.apply(value, target, args);
      };
    },
  });
  return { port, writes };
}

describe("the metadata writes of a recipe revert", () => {
  test("each phase is written once: the finishing record is not written again before its files are", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2"]);
    const { port, writes } = recordingWrites(conn());
    const result = await revertSnapshot(port, dom.name, "s1", { discardNewer: true, strategy: "recipe" });
    const before = [`s1: ${dom.path("vda.s1.qcow2")}`, `s2: ${dom.path("vda.s2.qcow2")}`];
    const remove = [dom.path("vda.s2.qcow2"), dom.path("vda.s1.qcow2")];
    const adopted = [`s1: ${dom.path("vda.s1.revert-1.qcow2")}`, `s2: ${dom.path("vda.s2.qcow2")}`];
    // The domain is shut off: one domainSetMetadata call (CONFIG) per write.
    expect(writes).toEqual([
      { phase: "stopping", remove: [], records: before },
      { phase: "overlays", remove: [], records: before },
      { phase: "defining", remove: [], records: before },
      { phase: "starting", remove: [], records: before },
      { phase: "finishing", remove: [], records: before },
      // Files to remove, recorded before s2's metadata goes.
      { phase: "finishing", remove, records: before },
      // s1 has no child left and adopts its revert overlay: its record follows the new file.
      { phase: "finishing", remove, records: adopted },
      // The record cleared, and s2's record forgotten, in one write.
      { records: [`s1: ${dom.path("vda.s1.revert-1.qcow2")}`] },
    ]);
    expect([result.discarded, [...result.removedFiles].sort()]).toEqual([
      ["s2"],
      [dom.path("vda.s1.qcow2"), dom.path("vda.s2.qcow2")],
    ]);
  });
});
