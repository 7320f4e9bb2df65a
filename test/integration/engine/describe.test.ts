import { expect, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { updateSnapshotDescription } from "../../../provider/engine/describe";
import { getSnapshot } from "../../../provider/engine/inspect";
import { lab } from "../../support/lab";
import { currentSnapshot, virsh } from "../../support/virsh";
import { labConnectionPerFile } from "./lab-connection";

const conn = labConnectionPerFile();

test("the description changes in place: current snapshot, tree, chains and the rest of the XML stay", async () => {
  const dom = await lab.domain({ state: "shutoff" });
  await createSnapshot(conn(), { domain: dom.name, name: "s1", description: "first" });
  await createSnapshot(conn(), { domain: dom.name, name: "s2" });
  const before = await getSnapshot(conn(), dom.name, "s2");
  const chain = await dom.liveChain("vda");
  const hostile = "new <&> 'text' ]]> \u00fc";

  const updated = await updateSnapshotDescription(conn(), dom.name, "s2", hostile);
  expect(updated).toEqual({ ...before, snapshot: { ...before.snapshot, description: hostile } });
  expect(await currentSnapshot(dom.name)).toBe("s2");

  const older = await updateSnapshotDescription(conn(), dom.uuid, "s1", null);
  expect(older.snapshot.description).toBeUndefined();
  expect(await currentSnapshot(dom.name)).toBe("s2");
  expect(await virsh("snapshot-dumpxml", dom.name, "s1")).not.toContain("<description>");

  // Idempotent, and nothing but the description moved.
  expect(await updateSnapshotDescription(conn(), dom.name, "s2", hostile)).toEqual(updated);
  expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1" });
  expect(await dom.liveChain("vda")).toEqual(chain);
});

test("a missing snapshot and a description libvirt cannot keep are refused, nothing changed", async () => {
  const dom = await lab.domain({ state: "shutoff" });
  await createSnapshot(conn(), { domain: dom.name, name: "s1", description: "kept" });
  await expect(updateSnapshotDescription(conn(), dom.name, "nope", "x")).rejects.toMatchObject({
    kind: "snapshot-not-found",
    snapshot: "nope",
  });
  await expect(updateSnapshotDescription(conn(), dom.name, "s1", "a\r\nb")).rejects.toMatchObject({
    kind: "invalid-request",
  });
  expect((await getSnapshot(conn(), dom.name, "s1")).snapshot.description).toBe("kept");
});
