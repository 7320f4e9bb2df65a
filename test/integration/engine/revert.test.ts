import { describe, expect, onTestFinished, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { deleteSnapshot } from "../../../provider/engine/delete";
import { isEngineError } from "../../../provider/engine/errors";
import { revertSnapshot } from "../../../provider/engine/revert";
import { readRevertRecord } from "../../../provider/engine/revert-state";
import { lab } from "../../support/lab";
import { engineRejection } from "../../support/rejections";
import { currentSnapshot, domainExists, virsh } from "../../support/virsh";
import { labConnectionPerFile } from "./lab-connection";
import {
  diskOnlyLayers,
  files,
  memoryLayers,
  persistentSources,
  runKilledChild,
  stateWithReason,
  visibleLayer,
} from "./revert-support";

const conn = labConnectionPerFile();

describe("disk-only snapshots", () => {
  test("middle (stays off), first (into running), last (into paused): data, chains, definition, current snapshot, files", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2", "s3"]);
    const base = dom.base("vda");
    const p = (name: string) => dom.path(name);

    const middle = await revertSnapshot(conn(), dom.name, "s2");
    expect(middle).toEqual({
      domain: { name: dom.name, uuid: dom.uuid },
      snapshot: "s2",
      strategy: "recipe",
      state: "shutoff",
      memoryRestored: false,
      overlays: [{ target: "vda", path: p("vda.s2.revert-1.qcow2"), backing: p("vda.s1.qcow2") }],
      discarded: [],
      removedFiles: [p("vda.s3.qcow2")],
      notes: [],
    });
    expect(await dom.state()).toBe("shutoff");
    expect(await dom.fileChain(p("vda.s2.revert-1.qcow2"))).toEqual([
      p("vda.s2.revert-1.qcow2"),
      p("vda.s1.qcow2"),
      base,
    ]);
    expect(await visibleLayer(dom, p("vda.s2.revert-1.qcow2"))).toBe(1);
    expect(await persistentSources(dom)).toEqual([p("vda.s2.revert-1.qcow2")]);
    expect(await currentSnapshot(dom.name)).toBe("s2");
    expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1", s3: "s2" });
    // The newer snapshot stays usable as a branch: its point in time is still there.
    expect(await visibleLayer(dom, p("vda.s2.qcow2"))).toBe(2);

    const first = await revertSnapshot(conn(), dom.name, "s1", { targetState: "running" });
    expect([first.state, first.overlays, first.removedFiles]).toEqual([
      "running",
      [{ target: "vda", path: p("vda.s1.revert-1.qcow2"), backing: base }],
      [p("vda.s2.revert-1.qcow2")],
    ]);
    expect(await stateWithReason(dom)).toBe("running (booted)");
    expect(await dom.liveChain("vda")).toEqual([p("vda.s1.revert-1.qcow2"), base]);
    expect(await visibleLayer(dom)).toBe(0);

    const last = await revertSnapshot(conn(), dom.name, "s3", { targetState: "paused" });
    expect([last.state, last.overlays, last.removedFiles]).toEqual([
      "paused",
      [{ target: "vda", path: p("vda.s3.revert-1.qcow2"), backing: p("vda.s2.qcow2") }],
      [p("vda.s1.revert-1.qcow2")],
    ]);
    expect(await dom.state()).toBe("paused");
    expect(await dom.liveChain("vda")).toEqual([
      p("vda.s3.revert-1.qcow2"),
      p("vda.s2.qcow2"),
      p("vda.s1.qcow2"),
      base,
    ]);
    expect(await visibleLayer(dom)).toBe(2);
    expect(await persistentSources(dom)).toEqual([p("vda.s3.revert-1.qcow2")]);
    expect(await files(dom)).toEqual(
      ["domain.xml", "vda.qcow2", "vda.s1.qcow2", "vda.s2.qcow2", "vda.s3.revert-1.qcow2"].sort(),
    );
    // With no child, the reverted-to snapshot owns its new overlay, so it merges away like a fresh one.
    expect((await deleteSnapshot(conn(), dom.name, "s3")).outcome).toBe("deleted");
    expect(await dom.liveChain("vda")).toEqual([p("vda.s2.qcow2"), p("vda.s1.qcow2"), base]);
    expect(await visibleLayer(dom)).toBe(2);
  });

  test("refused for an unknown snapshot and with a block job running, changing nothing", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "running" });
    await createSnapshot(conn(), { domain: dom.name, name: "s1" });
    const missing = await engineRejection(revertSnapshot(conn(), dom.name, "nope"));
    expect([missing.kind, missing.domain, missing.snapshot]).toEqual([
      "snapshot-not-found",
      dom.name,
      "nope",
    ]);
    // An active commit without pivot parks in READY: a block job that stays.
    await conn().domainBlockCommit(await conn().domainLookupByName(dom.name), "vda", null, null, 0n, 4);
    const before = [await dom.liveChain("vda"), await files(dom)];
    const busy = await engineRejection(revertSnapshot(conn(), dom.name, "s1"));
    expect([busy.kind, busy.disk]).toEqual(["block-job-active", "vda"]);
    expect([await dom.liveChain("vda"), await files(dom)]).toEqual(before);
  });
});

describe("memory snapshots", () => {
  // Two memory snapshots and three reverts of a running guest: 113 s under TCG on a loaded 2-core host.
  test("Quirk: memory revert drops the save image's <backingStore/>: restored from the saved state onto the new overlay with its backing", {
    timeout: 400_000,
  }, async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await memoryLayers(conn(), dom, [
      { name: "m1", state: "running" },
      { name: "m2", state: "paused" },
    ]);
    const base = dom.base("vda");
    const p = (name: string) => dom.path(name);

    const first = await revertSnapshot(conn(), dom.name, "m1");
    expect([first.state, first.memoryRestored, first.overlays]).toEqual([
      "running",
      true,
      [{ target: "vda", path: p("vda.m1.revert-1.qcow2"), backing: base }],
    ]);
    expect(await stateWithReason(dom)).toBe("running (restored)");
    // With the element kept, QEMU would open the overlay alone: a chain of one image, an empty disk.
    expect(await dom.liveChain("vda")).toEqual([p("vda.m1.revert-1.qcow2"), base]);
    expect(await visibleLayer(dom)).toBe(0);
    expect(await persistentSources(dom)).toEqual([p("vda.m1.revert-1.qcow2")]);

    const last = await revertSnapshot(conn(), dom.name, "m2");
    expect([last.state, last.memoryRestored]).toEqual(["paused", true]);
    expect(await stateWithReason(dom)).toMatch(/^paused \(/);
    expect(await dom.liveChain("vda")).toEqual([p("vda.m2.revert-1.qcow2"), p("vda.m1.qcow2"), base]);
    expect(await visibleLayer(dom)).toBe(1);

    const off = await revertSnapshot(conn(), dom.name, "m1", { targetState: "shutoff" });
    expect([off.state, off.memoryRestored]).toEqual(["shutoff", false]);
    expect(await dom.state()).toBe("shutoff");
    // revert-1 of m1 was abandoned and removed by the revert to m2, so the name is free again.
    expect(off.overlays).toEqual([{ target: "vda", path: p("vda.m1.revert-1.qcow2"), backing: base }]);
    expect(await visibleLayer(dom)).toBe(0);
    expect(await currentSnapshot(dom.name)).toBe("m1");
  });
});

describe("what happens to the current state and to newer snapshots", () => {
  test("keepCurrent, then revert back to the kept state: the data of 'now' is intact", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2"]);
    const kept = await revertSnapshot(conn(), dom.name, "s1", { keepCurrent: true });
    const saved = kept.savedAs ?? "";
    expect(saved).toMatch(/^auto-before-revert-\d{8}T\d{9}Z$/);
    expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1", [saved]: "s2" });
    expect(await visibleLayer(dom)).toBe(0);
    // The kept snapshot's overlay was the active layer for a moment only: abandoned and removed.
    expect(kept.removedFiles).toEqual([dom.path(`vda.${saved}.qcow2`)]);

    const back = await revertSnapshot(conn(), dom.name, saved);
    expect(back.overlays).toEqual([
      { target: "vda", path: dom.path(`vda.${saved}.revert-1.qcow2`), backing: dom.path("vda.s2.qcow2") },
    ]);
    expect(await visibleLayer(dom)).toBe(2);
    expect(await dom.fileChain(dom.path(`vda.${saved}.revert-1.qcow2`))).toEqual([
      dom.path(`vda.${saved}.revert-1.qcow2`),
      dom.path("vda.s2.qcow2"),
      dom.path("vda.s1.qcow2"),
      dom.base("vda"),
    ]);
  });

  test("discardNewer: the newer snapshots and their files are gone, nothing else", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2", "s3", "s4"]);
    const result = await revertSnapshot(conn(), dom.name, "s2", { discardNewer: true });
    expect([result.discarded, [...result.removedFiles].sort()]).toEqual([
      ["s4", "s3"],
      [dom.path("vda.s2.qcow2"), dom.path("vda.s3.qcow2"), dom.path("vda.s4.qcow2")],
    ]);
    expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1" });
    expect(await files(dom)).toEqual(["domain.xml", "vda.qcow2", "vda.s1.qcow2", "vda.s2.revert-1.qcow2"]);
    expect(await visibleLayer(dom)).toBe(1);
    // s2 has no child left: it owns the new overlay and merges away; s1 still reverts.
    expect((await deleteSnapshot(conn(), dom.name, "s2", { strategy: "native" })).outcome).toBe("deleted");
    expect(await dom.fileChain(dom.path("vda.s1.qcow2"))).toEqual([
      dom.path("vda.s1.qcow2"),
      dom.base("vda"),
    ]);
    expect(await visibleLayer(dom)).toBe(1);
    await revertSnapshot(conn(), dom.name, "s1", { targetState: "running" });
    expect(await visibleLayer(dom)).toBe(0);
  });

  test("a branch: deleting a snapshot the other branch depends on is refused, deleting along the live branch works", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2", "s3"]);
    await revertSnapshot(conn(), dom.name, "s2", { targetState: "running" });
    await createSnapshot(conn(), { domain: dom.name, name: "b1" });
    await createSnapshot(conn(), { domain: dom.name, name: "b2" });
    expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1", s3: "s2", b1: "s2", b2: "b1" });

    const refused = await engineRejection(deleteSnapshot(conn(), dom.name, "s1"));
    expect([refused.kind, refused.message]).toEqual([
      "invalid-request",
      // s3 reads s1's overlay too, through s2's.
      expect.stringContaining("the branch of snapshot s2, s3 still depends on"),
    ]);
    const before = await dom.liveChain("vda");
    // Known issue of the delete engine (reported): its verification compares consistency messages, and the
    // message of an off-branch snapshot quotes the live chain, which a merge changes; so a correct delete is
    // reported as VERIFY_FAILED naming only the off-branch snapshots. The host state is checked below.
    const outcome = await deleteSnapshot(conn(), dom.name, "b1").then(
      (r) => r.outcome,
      (e: unknown) => {
        if (!isEngineError(e) || e.kind !== "verify-failed") throw e;
        const problems = e.message.split(": ").slice(1).join(": ").split("; ");
        expect(
          problems.every((p) => /^snapshot s[23], disk vda: its overlay .* is not in the live chain/.test(p)),
        ).toBe(true);
        return "deleted";
      },
    );
    expect(outcome).toBe("deleted");
    expect(await dom.liveChain("vda")).toEqual(before.filter((path) => path !== dom.path("vda.b1.qcow2")));
    expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1", s3: "s2", b2: "s2" });
    expect(await visibleLayer(dom)).toBe(1);
    // The other branch is intact: reverting to s3 shows its point in time.
    await revertSnapshot(conn(), dom.name, "s3", { targetState: "shutoff" });
    expect(await visibleLayer(dom)).toBe(2);
  });
});

describe("a revert killed half-way", () => {
  test.each([
    ["helper-overlays", "rolled-back"],
    ["user-define", "finished"],
  ] as const)("killed after %s: the next operation cleans up (%s), then reverts", async (point, action) => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2"]);
    await runKilledChild(["revert-child.ts", dom.name, "s1", point]);
    const record = await readRevertRecord(conn(), await conn().domainLookupByName(dom.name));
    onTestFinished(() => virsh("undefine", record?.helper ?? "").then(noop, noop));
    expect(record?.snapshot).toBe("s1");

    const again = await revertSnapshot(conn(), dom.name, "s1");
    expect(again.notes[0]).toMatch(
      action === "rolled-back"
        ? /^an interrupted revert of domain .* to snapshot s1 .* was rolled back/
        : /^an interrupted revert of domain .* to snapshot s1 .* had already switched the disks/,
    );
    expect(await domainExists(record?.helper ?? "")).toBe(false);
    expect(await readRevertRecord(conn(), await conn().domainLookupByName(dom.name))).toBeNull();
    expect(await visibleLayer(dom)).toBe(0);
    // Rolled back: the killed run's overlay was never recorded, so it stays, unused; the second revert then
    // abandons the active layer (s2's overlay). Finished: recovery completed the killed run (s2's overlay, the
    // layer written before it, removed), and the second revert abandoned the killed run's overlay.
    const left =
      action === "rolled-back"
        ? ["vda.s1.revert-1.qcow2", "vda.s1.revert-2.qcow2"]
        : ["vda.s1.revert-2.qcow2"];
    expect(await files(dom)).toEqual(["domain.xml", "vda.qcow2", "vda.s1.qcow2", ...left].sort());
  });
});

describe("a revert killed half-way, then a create", () => {
  test("the create completes the revert first, then snapshots the reverted disks", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2"]);
    await runKilledChild(["revert-child.ts", dom.name, "s1", "user-define"]);
    const record = await readRevertRecord(conn(), await conn().domainLookupByName(dom.name));
    onTestFinished(() => virsh("undefine", record?.helper ?? "").then(noop, noop));
    expect(record?.snapshot).toBe("s1");

    const created = await createSnapshot(conn(), { domain: dom.name, name: "s3" });
    expect([created.adopted, created.recovered?.revert?.action, created.recovered?.delete]).toEqual([
      false,
      "finished",
      undefined,
    ]);
    expect(await domainExists(record?.helper ?? "")).toBe(false);
    expect(await readRevertRecord(conn(), await conn().domainLookupByName(dom.name))).toBeNull();
    // The new snapshot is a child of the reverted-to one and was taken on the killed run's overlay.
    expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1", s3: "s1" });
    expect(await dom.fileChain(dom.path("vda.s3.qcow2"))).toEqual([
      dom.path("vda.s3.qcow2"),
      dom.path("vda.s1.revert-1.qcow2"),
      dom.base("vda"),
    ]);
    expect(await visibleLayer(dom)).toBe(0);
  });
});

describe("a revert killed half-way, then a delete", () => {
  test("the delete rolls the revert back first, then merges", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2"]);
    await runKilledChild(["revert-child.ts", dom.name, "s1", "helper-overlays"]);
    const record = await readRevertRecord(conn(), await conn().domainLookupByName(dom.name));
    onTestFinished(() => virsh("undefine", record?.helper ?? "").then(noop, noop));
    expect(record?.snapshot).toBe("s1");

    const deleted = await deleteSnapshot(conn(), dom.name, "s2");
    expect([deleted.outcome, deleted.recovered?.revert?.action, deleted.recovered?.delete]).toEqual([
      "deleted",
      "rolled-back",
      undefined,
    ]);
    expect(deleted.notes[0]).toMatch(/^an interrupted revert of domain .* to snapshot s1 .* was rolled back/);
    expect(await domainExists(record?.helper ?? "")).toBe(false);
    expect(await readRevertRecord(conn(), await conn().domainLookupByName(dom.name))).toBeNull();
    expect(await dom.snapshotParents()).toEqual({ s1: null });
    expect(await persistentSources(dom)).toEqual([dom.path("vda.s1.qcow2")]);
    // s2's overlay (layer 2) was merged into s1's: the guest still sees the newest data.
    expect(await visibleLayer(dom)).toBe(2);
  });
});

describe("a revert killed while finishing", () => {
  test("killed after dropping the first discarded snapshot: the record still lists what is left, and the next operation finishes it", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2", "s3"]);
    await runKilledChild(["revert-child.ts", dom.name, "s1", "snapshot-delete", "revert-discard"]);
    const record = await readRevertRecord(conn(), await conn().domainLookupByName(dom.name));
    // The files were recorded before the first metadata went: s3's overlay is named nowhere else any more.
    expect([record?.phase, record?.discard, [...(record?.remove ?? [])].sort()]).toEqual([
      "finishing",
      ["s3", "s2"],
      [dom.path("vda.s1.qcow2"), dom.path("vda.s2.qcow2"), dom.path("vda.s3.qcow2")],
    ]);
    expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1" });

    const next = await deleteSnapshot(conn(), dom.name, "none");
    expect([next.outcome, next.recovered?.revert?.action]).toEqual(["absent", "finished"]);
    expect(await readRevertRecord(conn(), await conn().domainLookupByName(dom.name))).toBeNull();
    expect(await dom.snapshotParents()).toEqual({ s1: null });
    expect(await currentSnapshot(dom.name)).toBe("s1");
    expect(await files(dom)).toEqual(["domain.xml", "vda.qcow2", "vda.s1.revert-1.qcow2"]);
    expect(await visibleLayer(dom)).toBe(0);
  });
});

function noop(): void {}
