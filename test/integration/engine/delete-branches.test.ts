import { afterAll, beforeAll, expect, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { deleteSnapshot } from "../../../provider/engine/delete";
import { revertSnapshot } from "../../../provider/engine/revert";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { lab } from "../../support/lab";
import { openLabConnection } from "./delete-support";
import { diskOnlyLayers, layerPattern, persistentSources, REGION, visibleLayer } from "./revert-support";

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
