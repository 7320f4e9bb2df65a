import { describe, expect, test } from "vitest";
import {
  type PreviewRecord,
  parsePreviewRecord,
  parseRevertRecord,
  previewOnceFinishing,
  previewOnceRolledBack,
  type RevertRecord,
  withPreviewRecord,
  withRevertRecord,
} from "../../../provider/engine/revert-state";

describe("the finishing phase on the domain", () => {
  test("a finishing record keeps the snapshots to discard and the files to remove, in order", () => {
    const record: RevertRecord = {
      id: "i",
      snapshot: "s1",
      started: "2026-11-22T02:00:00.000Z",
      phase: "finishing",
      helper: "lvsnap-revert-1",
      overlays: [{ target: "vda", path: "/i/vda.s1.revert-1.qcow2" }],
      previous: [{ target: "vda", path: "/i/vda.s3.qcow2" }],
      discard: ["s3", "s2"],
      remove: ["/i/vda.s3.qcow2", "/i/vda.s2.qcow2", "/i/s2 <&'\">.mem"],
    };
    expect(parseRevertRecord(withRevertRecord(undefined, record) ?? undefined)).toEqual(record);
  });

  test("the end of a preview records no helper and may leave the current snapshot alone", () => {
    const record: RevertRecord = {
      id: "i",
      snapshot: "auto-before-preview-1",
      started: "2026-11-22T02:00:00.000Z",
      phase: "finishing",
      overlays: [],
      previous: [],
      discard: ["auto-before-preview-1"],
      settle: false,
    };
    const xml = withRevertRecord(undefined, record) ?? "";
    expect([parseRevertRecord(xml), xml.includes("helper=")]).toEqual([record, false]);
  });

  test("a record written before the finishing phase existed reads as one that settles and discards nothing", () => {
    const old =
      '<state><revert id="i" snapshot="s1" started="t" phase="starting" helper="h"><previous target="vda" path="/i/a"/></revert></state>';
    expect(parseRevertRecord(old)).toEqual({
      id: "i",
      snapshot: "s1",
      started: "t",
      phase: "starting",
      helper: "h",
      overlays: [],
      previous: [{ target: "vda", path: "/i/a" }],
    });
  });

  test("an undo that returned to the saved state says so in the preview record", () => {
    const preview: PreviewRecord = {
      snapshot: "s1",
      saved: "auto-before-preview-1",
      started: "2026-11-22T02:00:00.000Z",
      returned: true,
    };
    const xml = withPreviewRecord(undefined, preview) ?? undefined;
    expect(parsePreviewRecord(xml)).toEqual(preview);
    const { returned: _, ...open } = preview;
    expect(parsePreviewRecord(withPreviewRecord(xml, open) ?? undefined)).toEqual(open);
  });
});

describe("the preview record as a revert ends", () => {
  const open: PreviewRecord = { snapshot: "s1", saved: "auto-1", started: "2026-11-22T02:00:00.000Z" };
  const undoing: PreviewRecord = { ...open, undoing: true };
  const returned: PreviewRecord = { ...open, returned: true };

  test("a revert reaching its finishing phase marks returned only the undo that returns to its snapshot", () => {
    expect([
      previewOnceFinishing(undoing, { snapshot: "auto-1" }),
      previewOnceFinishing(undoing, { snapshot: "s1" }),
      previewOnceFinishing(open, { snapshot: "auto-1" }),
      previewOnceFinishing(returned, { snapshot: "auto-1" }),
      previewOnceFinishing(null, { snapshot: "auto-1" }),
    ]).toEqual([returned, undefined, undefined, undefined, undefined]);
  });

  test("a revert rolled back removes only the preview it was starting", () => {
    expect([
      previewOnceRolledBack(open, { snapshot: "s1" }),
      previewOnceRolledBack(open, { snapshot: "s2" }),
      previewOnceRolledBack(undoing, { snapshot: "s1" }),
      previewOnceRolledBack(undoing, { snapshot: "auto-1" }),
      previewOnceRolledBack(returned, { snapshot: "s1" }),
      previewOnceRolledBack(null, { snapshot: "s1" }),
    ]).toEqual([null, undefined, undefined, undefined, undefined, undefined]);
  });
});
