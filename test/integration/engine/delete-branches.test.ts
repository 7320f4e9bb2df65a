import { afterAll, beforeAll, expect, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { deleteSnapshot } from "../../../provider/engine/delete";
import { isEngineError } from "../../../provider/engine/errors";
import { revertSnapshot } from "../../../provider/engine/revert";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { lab } from "../../support/lab";
import { openLabConnection } from "./delete-support";
import {
  diskOnlyLayers,
  files,
  layerPattern,
  persistentSources,
  REGION,
  visibleLayer,
} from "./revert-support";

let conn: LibvirtConnection;
beforeAll(async () => {
  conn = await openLabConnection();
});
afterAll(() => conn?.close());

test("deleting a snapshot while another branch holds a snapshot: merged, verified, every branch's data kept", async () => {
  const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
  const p = (name: string) => dom.path(name);
  // Layers 1-3: s1-s3's overlays; then a branch from s2 with layers 4 (revert overlay), 5 (b1), 6 (b2).
  await diskOnlyLayers(conn, dom, ["s1", "s2", "s3"]);
  await revertSnapshot(conn, dom.name, "s2");
  const branchBase = p("vda.s2.revert-1.qcow2");
  await dom.writePattern(branchBase, { ...REGION, pattern: layerPattern(4) });
  for (const [i, name] of ["b1", "b2"].entries()) {
    await createSnapshot(conn, { domain: dom.name, name });
    await dom.writePattern(p(`vda.${name}.qcow2`), { ...REGION, pattern: layerPattern(5 + i) });
  }
  await dom.start();

  const result = await deleteSnapshot(conn, dom.name, "b1");

  expect([result.outcome, result.notes]).toEqual([
    "deleted",
    [`disk vda: merged ${p("vda.b1.qcow2")} into ${branchBase}`],
  ]);
  expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1", s3: "s2", b2: "s2" });
  expect(await dom.liveChain("vda")).toEqual([
    p("vda.b2.qcow2"),
    branchBase,
    p("vda.s1.qcow2"),
    dom.base("vda"),
  ]);
  expect(await persistentSources(dom)).toEqual([p("vda.b2.qcow2")]);
  await dom.destroy();
  // What the guest sees now, b2's point in time, and on the other branch s3's and s2's points in time.
  expect(await visibleLayer(dom, p("vda.b2.qcow2"), 8)).toBe(6);
  expect(await visibleLayer(dom, branchBase, 8)).toBe(5);
  expect(await visibleLayer(dom, p("vda.s2.qcow2"), 8)).toBe(2);
  expect(await visibleLayer(dom, p("vda.s1.qcow2"), 8)).toBe(1);
});

test("after a revert, a snapshot taken on the revert overlay reads that overlay: a merge that does not touch it runs, one that does is refused", async () => {
  const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
  const p = (name: string) => dom.path(name);
  // base (layer 0) <- s1 (layer 1) <- s2; back to s1 (s2 kept), whose revert overlay holds layer 3 when s3 is
  // taken on it; back to s2, whose new overlay (recorded as s2's own: it has no child) holds layer 5.
  await diskOnlyLayers(conn, dom, ["s1", "s2"]);
  await revertSnapshot(conn, dom.name, "s1");
  const s1Branch = p("vda.s1.revert-1.qcow2");
  await dom.writePattern(s1Branch, { ...REGION, pattern: layerPattern(3) });
  await createSnapshot(conn, { domain: dom.name, name: "s3" });
  await revertSnapshot(conn, dom.name, "s2");
  const s2Overlay = p("vda.s2.revert-1.qcow2");
  await dom.writePattern(s2Overlay, { ...REGION, pattern: layerPattern(5) });
  await dom.start();
  expect(await dom.liveChain("vda")).toEqual([s2Overlay, p("vda.s1.qcow2"), dom.base("vda")]);

  // s3 reads vda.s1.revert-1.qcow2 and the base, not s1's old overlay (s2's point in time): s2 merges.
  const result = await deleteSnapshot(conn, dom.name, "s2");

  expect([result.outcome, result.notes, result.warnings]).toEqual([
    "deleted",
    [`disk vda: merged ${s2Overlay} into ${p("vda.s1.qcow2")} (active commit, pivoted)`],
    [],
  ]);
  expect(await dom.snapshotParents()).toEqual({ s1: null, s3: "s1" });
  expect(await dom.liveChain("vda")).toEqual([p("vda.s1.qcow2"), dom.base("vda")]);
  // s2's merged overlay is gone; s3's own overlay held only what was written after s3 and went with the
  // revert to s2, which abandoned it; s3's point in time (the revert overlay) stays.
  expect((await files(dom)).filter((f) => f.endsWith(".qcow2"))).toEqual([
    "vda.qcow2",
    "vda.s1.qcow2",
    "vda.s1.revert-1.qcow2",
  ]);
  // s1's overlay would be merged into the base, which s3 reads through the revert overlay: refused.
  const refused = await deleteSnapshot(conn, dom.name, "s1").catch((e: unknown) => e);
  expect(
    isEngineError(refused) ? [refused.kind, refused.message.includes("the branch of snapshot s3")] : refused,
  ).toEqual(["invalid-request", true]);
  await dom.destroy();
  // The guest's data, s3's point in time and s1's point in time are as they were.
  expect(await visibleLayer(dom, p("vda.s1.qcow2"), 8)).toBe(5);
  expect(await visibleLayer(dom, s1Branch, 8)).toBe(3);
  expect(await visibleLayer(dom, dom.base("vda"), 8)).toBe(0);
});
