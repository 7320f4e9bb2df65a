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
  const activeNow = async () => (await dom.fileChain("vda"))[0] ?? "";

  const previewed = await runCliJson("preview", dom.name, "s1");
  expect(previewed.code).toBe(0);
  const preview = (previewed.document as { preview: { snapshot: string; saved: string; started: string } })
    .preview;
  expect(preview).toEqual({
    snapshot: "s1",
    saved: expect.stringMatching(/^auto-before-preview-/),
    started: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
  });
  expect(await dom.checkPattern(await activeNow(), { pattern: 0x11, ...RANGE })).toBe(true);
  const verified = await runCliJson("verify", dom.name);
  expect((verified.document as { preview: unknown }).preview).toEqual(preview);

  const undone = await runCliJson("undo", dom.name);
  expect(undone.code).toBe(0);
  expect(undone.document).toEqual(
    expect.objectContaining({
      ok: true,
      preview,
      dropped: [preview.saved],
      revert: expect.objectContaining({ snapshot: preview.saved }),
    }),
  );
  expect(await dom.checkPattern(await activeNow(), { pattern: 0x22, ...RANGE })).toBe(true);
  expect(Object.keys(await dom.snapshotParents())).toEqual(["s1"]);

  expect((await runCli("preview", dom.name, "s1")).code).toBe(0);
  const committed = await runCliJson("commit", dom.name);
  expect(committed.code).toBe(0);
  expect(committed.document).toEqual(expect.objectContaining({ ok: true, revert: null }));
  expect(await dom.checkPattern(await activeNow(), { pattern: 0x11, ...RANGE })).toBe(true);
  expect(Object.keys(await dom.snapshotParents())).toEqual(["s1"]);

  const nothing = await runCli("commit", dom.name);
  expect(nothing.code).toBe(1);
  expect(nothing.stderr).toContain(`domain ${dom.name} has no preview to commit`);
});
