import { expect, test } from "vitest";
import { lab } from "../../support/lab";
import { runCli, runCliJson } from "./cli-process";

const RANGE = { offset: 0, length: 1024 * 1024 };

test("preview then undo returns to the state before; preview then commit keeps the previewed one", async () => {
  const dom = await lab.domain({ state: "shutoff" });
  const base = dom.base("vda");
  await dom.writePattern(base, { pattern: 0x11, ...RANGE });
  expect((await runCli("create", dom.name, "s1")).code).toBe(0);
  const s1 = dom.path("vda.s1.qcow2");
  await dom.writePattern(s1, { pattern: 0x22, ...RANGE });

  const previewed = await runCliJson("preview", dom.name, "s1");
  expect(previewed.code).toBe(0);
  const preview = (previewed.document as { preview: { snapshot: string; saved: string; started: string } })
    .preview;
  expect(preview).toEqual({
    snapshot: "s1",
    saved: expect.stringMatching(/^auto-before-preview-/),
    started: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
  });
  expect(await dom.checkActive("vda", { pattern: 0x11, ...RANGE })).toBe(true);
  const verified = await runCliJson("verify", dom.name);
  // The saved state is on another branch during the preview: expected, not a problem.
  expect([verified.code, (verified.document as { findings: unknown }).findings]).toEqual([0, []]);
  expect((verified.document as { preview: unknown }).preview).toEqual(preview);

  const undone = await runCliJson("undo", dom.name);
  const undoOverlay = dom.path(`vda.${preview.saved}.revert-1.qcow2`);
  const identity = { name: dom.name, uuid: dom.uuid };
  expect(undone).toEqual({
    code: 0,
    stderr: "",
    document: {
      ok: true,
      domain: identity,
      preview,
      revert: {
        domain: identity,
        snapshot: preview.saved,
        strategy: "recipe",
        state: "shutoff",
        memoryRestored: false,
        overlays: [{ target: "vda", path: undoOverlay, backing: s1 }],
        savedAs: null,
        discarded: [],
        removedFiles: [dom.path("vda.s1.revert-1.qcow2")],
        notes: [],
      },
      dropped: [preview.saved],
      removedFiles: [],
      // Dropping the automatic snapshot merges the overlay the undo made into the layer below.
      notes: [`disk vda: merged ${undoOverlay} into ${s1} (active commit, pivoted)`],
    },
  });
  expect(await dom.fileChain("vda")).toEqual([s1, base]);
  expect(await dom.checkActive("vda", { pattern: 0x22, ...RANGE })).toBe(true);
  expect(Object.keys(await dom.snapshotParents())).toEqual(["s1"]);

  const second = await runCliJson("preview", dom.name, "s1");
  expect(second.code).toBe(0);
  const secondPreview = (second.document as { preview: typeof preview }).preview;
  const committed = await runCliJson("commit", dom.name);
  expect(committed).toEqual({
    code: 0,
    stderr: "",
    document: {
      ok: true,
      domain: identity,
      preview: secondPreview,
      revert: null,
      dropped: [secondPreview.saved],
      // The saved state lived in s1's overlay, which only the dropped snapshot needed.
      removedFiles: [s1],
      notes: [],
    },
  });
  expect(await dom.fileChain("vda")).toEqual([dom.path("vda.s1.revert-1.qcow2"), base]);
  expect(await dom.checkActive("vda", { pattern: 0x11, ...RANGE })).toBe(true);
  expect(Object.keys(await dom.snapshotParents())).toEqual(["s1"]);

  const nothing = await runCli("commit", dom.name);
  expect(nothing.code).toBe(1);
  expect(nothing.stderr).toContain(`domain ${dom.name} has no preview to commit`);
});
