import { describe, expect, test } from "vitest";
import { isEngineError } from "../../../provider/engine/errors";
import { getPreview, previewSnapshot, undoPreview } from "../../../provider/engine/preview";
import { parseRevertRecord } from "../../../provider/engine/revert-state";
import { lab } from "../../support/lab";
import { daemonRefusal, interceptOnce } from "./failing-port";
import { labConnectionPerFile } from "./lab-connection";
import { diskOnlyLayers, files, persistentSources, visibleLayer } from "./revert-support";

const conn = labConnectionPerFile();

/** What the guest writes after the first undo, away from the region the layers' own patterns use. */
const GUEST_WRITE = { offset: 1024 * 1024, length: 64 * 1024, pattern: 0xee };

/** The kind and message of an EngineError, or what else was thrown. */
const described = (e: unknown) => (isEngineError(e) ? [e.kind, e.message] : e);

describe("an undo that fails once the domain is back in the saved state", () => {
  test("the write marking the preview returned fails: the next undo does not revert again, and what the guest wrote since stays", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2"]);
    const { preview } = await previewSnapshot(conn(), dom.name, "s1");
    const marking = interceptOnce(
      conn(),
      (name, args) => name === "domainSetMetadata" && String(args[2]).includes('returned="yes"'),
      async () => {
        throw daemonRefusal("the metadata could not be written");
      },
    );
    const failure = await undoPreview(marking.port, dom.name).then(
      () => "resolved",
      (e: unknown) => e,
    );
    // The guest runs the saved state now and writes to the layer its definition names.
    const [active = ""] = await persistentSources(dom);
    await dom.writePattern(active, GUEST_WRITE);

    const second = interceptOnce(conn());
    const undone = await undoPreview(second.port, dom.name);
    const end = {
      intercepted: marking.intercepted(),
      failure: described(failure),
      // A revert defines a helper domain and the user's domain, and records its phases from `stopping` on.
      reverted: {
        defines: second.calls.filter((c) => c === "domainDefineXMLFlags").length,
        phases: second.writes.flatMap((w) => parseRevertRecord(w)?.phase ?? []),
      },
      dropped: undone.dropped,
      preview: await getPreview(conn(), dom.name),
      snapshots: await dom.snapshotParents(),
      files: await files(dom),
      sources: await persistentSources(dom),
      guestWrite: await dom.checkPattern(dom.path("vda.s2.qcow2"), GUEST_WRITE),
      layer: await visibleLayer(dom),
    };
    expect(end).toEqual({
      intercepted: 1,
      failure: [
        "libvirt",
        expect.stringMatching(
          new RegExp(
            `^reverting domain ${dom.name} to snapshot ${preview.saved} failed while recording that the revert is finishing: `,
          ),
        ),
      ],
      // Recovery completed the revert the first undo had made (its finishing phase only): nothing reverted again.
      reverted: { defines: 0, phases: ["finishing", "finishing", "finishing"] },
      dropped: [preview.saved],
      preview: null,
      snapshots: { s1: null, s2: "s1" },
      files: ["domain.xml", "vda.qcow2", "vda.s1.qcow2", "vda.s2.qcow2"],
      sources: [dom.path("vda.s2.qcow2")],
      // Merged with the saved snapshot's overlay into the layer the domain wrote to before the preview.
      guestWrite: true,
      layer: 2,
    });
  });
});
