import { expect, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { isEngineError } from "../../../provider/engine/errors";
import { getSnapshot, listSnapshots } from "../../../provider/engine/inspect";
import { lab } from "../../support/lab";
import { virsh } from "../../support/virsh";
import { labConnectionPerFile } from "./lab-connection";

const conn = labConnectionPerFile();

test("snapshots made by virsh and by the engine: tree, overlays, point-in-time images, memory, quiesce; running, shut off, and after an outside merge", async () => {
  const dom = await lab.domain({ disks: [{ sizeMiB: 16 }, { sizeMiB: 16 }] });
  const [vda, vdb] = [dom.base("vda"), dom.base("vdb")];
  const p = (file: string) => dom.path(file);
  await virsh(
    "snapshot-create-as",
    dom.name,
    "s1",
    "first",
    "--disk-only",
    "--atomic",
    "--diskspec",
    `vda,file=${p("a1.qcow2")}`,
    "--diskspec",
    `vdb,file=${p("b1.qcow2")}`,
  );
  await virsh(
    "snapshot-create-as",
    dom.name,
    "s2",
    "--atomic",
    "--memspec",
    `file=${p("s2.mem")},snapshot=external`,
    "--diskspec",
    `vda,file=${p("a2.qcow2")}`,
    "--diskspec",
    "vdb,snapshot=no",
  );
  await createSnapshot(conn(), { domain: dom.name, name: "s3", quiesce: "off", disks: { include: ["vdb"] } });

  const expected = [
    {
      name: "s1",
      description: "first",
      parent: undefined,
      children: ["s2"],
      memory: { mode: "no" },
      quiesced: undefined,
      disks: [
        ["vda", p("a1.qcow2"), vda],
        ["vdb", p("b1.qcow2"), vdb],
      ],
    },
    {
      name: "s2",
      description: undefined,
      parent: "s1",
      children: ["s3"],
      memory: { mode: "external", file: p("s2.mem") },
      quiesced: undefined,
      disks: [["vda", p("a2.qcow2"), p("a1.qcow2")]],
    },
    {
      name: "s3",
      description: undefined,
      parent: "s2",
      children: [],
      memory: { mode: "no" },
      quiesced: false,
      disks: [["vdb", p("b1.s3.qcow2"), p("b1.qcow2")]],
    },
  ];
  const summary = (forest: Awaited<ReturnType<typeof listSnapshots>>) =>
    forest.snapshots.map((s) => ({
      name: s.name,
      description: s.description,
      parent: s.parent,
      children: s.children,
      memory: s.memory,
      quiesced: s.quiesced,
      disks: s.disks.map((d) => [d.target, d.overlay.path, d.pointInTime?.path]),
    }));

  const running = await listSnapshots(conn(), dom.name);
  expect(running.domain).toEqual({ name: dom.name, uuid: dom.uuid });
  expect(running.problems).toEqual([]);
  expect(summary(running)).toEqual(expected);
  // Oracles: virsh's tree and qemu-img's chains agree with what the engine reports.
  expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1", s3: "s2" });
  expect(await dom.fileChain("vda")).toEqual([p("a2.qcow2"), p("a1.qcow2"), vda]);
  expect(await dom.fileChain("vdb")).toEqual([p("b1.s3.qcow2"), p("b1.qcow2"), vdb]);

  const byUuid = await getSnapshot(conn(), dom.uuid, "s3");
  expect([byUuid.snapshot.quiesceNote, byUuid.problems]).toEqual([
    "not quiesced: quiescing was turned off",
    [],
  ]);

  await dom.destroy();
  const off = await listSnapshots(conn(), dom.name);
  expect([summary(off), off.problems]).toEqual([expected, []]);

  // A merge done behind libvirt's back: metadata still names a1.qcow2, the chain no longer has it.
  await dom.start();
  await virsh("blockcommit", dom.name, "vda", "--top", p("a1.qcow2"), "--base", vda, "--wait");
  const drifted = await listSnapshots(conn(), dom.name);
  expect(drifted.problems).toEqual([
    {
      kind: "overlay-not-in-chain",
      snapshot: "s1",
      disk: "vda",
      message: `snapshot s1, disk vda: its overlay ${p("a1.qcow2")} is not in the live chain (${p("a2.qcow2")} -> ${vda})`,
    },
  ]);
  expect(drifted.snapshots.find((s) => s.name === "s2")?.disks[0]?.pointInTime?.path).toBe(vda);

  const missing = await getSnapshot(conn(), dom.name, "nope").catch((e: unknown) => e);
  expect(isEngineError(missing) && [missing.kind, missing.message]).toEqual([
    "snapshot-not-found",
    `domain ${dom.name} has no snapshot nope`,
  ]);
});
