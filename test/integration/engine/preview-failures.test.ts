import { describe, expect, test } from "vitest";
import { isEngineError } from "../../../provider/engine/errors";
import { commitPreview, getPreview, previewSnapshot, undoPreview } from "../../../provider/engine/preview";
import {
  parsePreviewRecord,
  parseRevertRecord,
  readRevertRecord,
} from "../../../provider/engine/revert-state";
import { DomainXMLFlags } from "../../../provider/libvirt/flags";
import { type LabDomain, lab } from "../../support/lab";
import { definesDomain, type InterceptRule, interceptInOrder, refuse } from "./failing-port";
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
    const marking = interceptInOrder(conn(), [
      refuse(
        (name, args) => name === "domainSetMetadata" && String(args[2]).includes('returned="yes"'),
        "the metadata could not be written",
      ),
    ]);
    const failure = await undoPreview(marking.port, dom.name).then(
      () => "resolved",
      (e: unknown) => e,
    );
    // The guest runs the saved state now and writes to the layer its definition names.
    const [active = ""] = await persistentSources(dom);
    await dom.writePattern(active, GUEST_WRITE);

    const second = interceptInOrder(conn());
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

/**
 * s1 <- s2 on a shut-off domain, previewing s1 through a connection on which the daemon refuses the define of
 * the user's domain (the recipe's switch to the new overlays), and `then` refuses what comes after it.
 */
async function previewWithRefusedDefine(then: readonly InterceptRule[] = []) {
  const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
  await diskOnlyLayers(conn(), dom, ["s1", "s2"]);
  const refusing = interceptInOrder(conn(), [
    refuse((name, args) => name === "domainDefineXMLFlags" && definesDomain(dom.name, args), "no define"),
    ...then,
  ]);
  const failure = await previewSnapshot(refusing.port, dom.name, "s1").then(
    () => "resolved",
    (e: unknown) => e,
  );
  const saved = Object.keys(await dom.snapshotParents()).find((n) => n.startsWith("auto-before-preview-"));
  return { dom, failure, saved: saved ?? "", intercepted: refusing.intercepted() };
}

/** The domain as the failed preview left it. */
async function stateOf(dom: LabDomain) {
  return {
    preview: await getPreview(conn(), dom.name),
    record: await readRevertRecord(conn(), await conn().domainLookupByName(dom.name)),
    snapshots: await dom.snapshotParents(),
    files: await files(dom),
    sources: await persistentSources(dom),
    layer: await visibleLayer(dom),
  };
}

/** Before the preview, plus the automatic snapshot `saved` that now holds that state as an ordinary snapshot. */
const unchanged = (dom: LabDomain, saved: string) => ({
  preview: null,
  record: null,
  snapshots: { s1: null, s2: "s1", [saved]: "s2" },
  files: ["domain.xml", "vda.qcow2", `vda.${saved}.qcow2`, "vda.s1.qcow2", "vda.s2.qcow2"].sort(),
  sources: [dom.path(`vda.${saved}.qcow2`)],
  layer: 2,
});

describe("a preview whose revert fails", () => {
  test("rolled back on the spot: no preview is open, the disks and data are as before, and neither undo nor commit has anything to end", async () => {
    const { dom, failure, saved, intercepted } = await previewWithRefusedDefine();
    const state = await stateOf(dom);
    const undo = await undoPreview(conn(), dom.name).then(() => "resolved", described);
    const commit = await commitPreview(conn(), dom.name).then(() => "resolved", described);
    expect({ intercepted, failure: described(failure), state, undo, commit }).toEqual({
      intercepted: 1,
      failure: [
        "libvirt",
        expect.stringMatching(
          new RegExp(
            `failed while switching the definition to the new overlays: the domain is shut off with its previous disks and definition; the partial work was cleaned up \\[libvirt .*\\]; the state from before the revert is kept as snapshot ${saved}; the preview did not start and no preview is open; snapshot ${saved} stays as an ordinary snapshot`,
          ),
        ),
      ],
      state: unchanged(dom, saved),
      undo: ["invalid-request", `domain ${dom.name} has no preview to undo`],
      commit: ["invalid-request", `domain ${dom.name} has no preview to commit`],
    });
  });

  test("left for recovery: the next operation rolls the revert back and closes the preview in the same write", async () => {
    // The rollback's read of the definition fails too: the revert stays recorded, and so does the preview.
    const { dom, failure, saved, intercepted } = await previewWithRefusedDefine([
      refuse(
        (name, args) => name === "domainGetXMLDesc" && args[1] === DomainXMLFlags.INACTIVE,
        "no definition",
      ),
    ]);
    const left = {
      preview: (await getPreview(conn(), dom.name))?.snapshot,
      record: (await readRevertRecord(conn(), await conn().domainLookupByName(dom.name)))?.phase,
    };
    const next = interceptInOrder(conn());
    const undo = await undoPreview(next.port, dom.name).then(() => "resolved", described);
    expect({
      intercepted,
      failure: described(failure),
      left,
      undo,
      // What each metadata write of the undo's recovery left: [revert phase, previewed snapshot].
      writes: next.writes.map((w) => [
        parseRevertRecord(w)?.phase ?? null,
        parsePreviewRecord(w)?.snapshot ?? null,
      ]),
      state: await stateOf(dom),
    }).toEqual({
      intercepted: 2,
      failure: [
        "libvirt",
        expect.stringMatching(
          /failed while switching the definition to the new overlays: .*; the revert stays recorded on the domain and the next engine operation on it cleans it up/,
        ),
      ],
      left: { preview: "s1", record: "defining" },
      undo: ["invalid-request", `domain ${dom.name} has no preview to undo`],
      writes: [[null, null]],
      state: unchanged(dom, saved),
    });
  });
});
