import { expect, test } from "vitest";
import { listSnapshots } from "../../../provider/engine/inspect";
import { revertSnapshot } from "../../../provider/engine/revert";
import { lab } from "../../support/lab";
import { labConnectionPerFile } from "../engine/lab-connection";
import { diskOnlyLayers } from "../engine/revert-support";
import { runCliJson } from "./cli-process";

const conn = labConnectionPerFile();

test("after a revert to a snapshot with children, the other branch is no problem for list and verify", async () => {
  const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
  await diskOnlyLayers(conn(), dom, ["s1", "s2", "s3"]);
  await revertSnapshot(conn(), dom.name, "s2", { keepCurrent: true });

  const forest = await listSnapshots(conn(), dom.name);
  expect(forest.problems).toEqual([]);
  expect(forest.snapshots.map((s) => [s.name, s.otherBranch ?? false, s.disks[0]?.chainPosition])).toEqual([
    ["s1", false, 1],
    ["s2", false, undefined],
    ["s3", true, undefined],
    [expect.stringMatching(/^auto-before-revert-/), true, undefined],
  ]);
  expect(await dom.fileChain(dom.path("vda.s2.revert-1.qcow2"))).toEqual([
    dom.path("vda.s2.revert-1.qcow2"),
    dom.path("vda.s1.qcow2"),
    dom.base("vda"),
  ]);

  const verified = await runCliJson("verify", dom.name);
  expect(verified).toEqual({
    code: 0,
    stderr: "",
    document: {
      domain: { name: dom.name, uuid: dom.uuid },
      ok: true,
      repairs: null,
      findings: [],
      preview: null,
    },
  });
});
