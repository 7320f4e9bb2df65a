import { describe, expect, test } from "vitest";
import { parseDomainXml } from "../../../provider/model/domain";
import { parseProjectMetadata, withSnapshotRecord } from "../../../provider/model/metadata";
import { parseSnapshotXml, type SnapshotModel } from "../../../provider/model/snapshot";
import { joinSnapshots, snapshotFilesOf } from "../../../provider/model/snapshot-tree";
import { FIXTURE_DIR, fixture, qcow2 } from "./fixtures";

const shutoffDomain = parseDomainXml(fixture("domain-shutoff-four-snapshots.xml"));
const allFour = [
  "snapshot-disk-only-shutoff.xml",
  "snapshot-memory.xml",
  "snapshot-disk-only.xml",
  "snapshot-disk-only-paused.xml",
].map((f) => parseSnapshotXml(fixture(f)));

describe("joinSnapshots", () => {
  test("four recorded snapshots on the recorded chains: tree, overlays and point-in-time images", () => {
    const metadata = parseProjectMetadata(
      withSnapshotRecord(undefined, {
        name: "s4",
        files: {
          overlays: [
            { disk: "vdb", path: `${FIXTURE_DIR}/vdb.s4.qcow2` },
            { disk: "vda", path: `${FIXTURE_DIR}/vda.s4.qcow2` },
          ],
        },
        quiesced: false,
        quiesceNote: "domain shut off",
      }),
    );
    const forest = joinSnapshots(shutoffDomain, allFour, metadata);
    expect(forest.problems).toEqual([]);
    expect(
      forest.snapshots.map((s) => ({
        name: s.name,
        parent: s.parent,
        children: s.children,
        memory: s.memory,
        quiesced: s.quiesced,
        quiesceNote: s.quiesceNote,
        disks: s.disks,
      })),
    ).toEqual([
      {
        name: "s1",
        parent: undefined,
        children: ["s2"],
        memory: { mode: "no" },
        quiesced: undefined,
        quiesceNote: undefined,
        disks: [
          {
            target: "vda",
            overlay: qcow2("vda.s1.qcow2"),
            pointInTime: qcow2("vda.qcow2"),
            chainPosition: 3,
          },
          {
            target: "vdb",
            overlay: qcow2("vdb.s1.qcow2"),
            pointInTime: qcow2("vdb.qcow2"),
            chainPosition: 1,
          },
        ],
      },
      {
        name: "s2",
        parent: "s1",
        children: ["s3"],
        memory: { mode: "external", file: `${FIXTURE_DIR}/lvsnap-fixture.s2.mem` },
        quiesced: undefined,
        quiesceNote: undefined,
        disks: [
          {
            target: "vda",
            overlay: qcow2("vda.s2.qcow2"),
            pointInTime: qcow2("vda.s1.qcow2"),
            chainPosition: 2,
          },
        ],
      },
      {
        name: "s3",
        parent: "s2",
        children: ["s4"],
        memory: { mode: "no" },
        quiesced: undefined,
        quiesceNote: undefined,
        disks: [
          {
            target: "vda",
            overlay: qcow2("vda.s3.qcow2"),
            pointInTime: qcow2("vda.s2.qcow2"),
            chainPosition: 1,
          },
        ],
      },
      {
        name: "s4",
        parent: "s3",
        children: [],
        memory: { mode: "no" },
        quiesced: false,
        quiesceNote: "domain shut off",
        disks: [
          {
            target: "vda",
            overlay: qcow2("vda.s4.qcow2"),
            pointInTime: qcow2("vda.s3.qcow2"),
            chainPosition: 0,
          },
          {
            target: "vdb",
            overlay: qcow2("vdb.s4.qcow2"),
            pointInTime: qcow2("vdb.s1.qcow2"),
            chainPosition: 0,
          },
        ],
      },
    ]);
  });

  test("a record joins only the snapshot with its name and files; one of the same name with other files has none", () => {
    const record = (vdaOverlay: string) =>
      parseProjectMetadata(
        withSnapshotRecord(undefined, {
          name: "s3",
          files: { overlays: [{ disk: "vda", path: vdaOverlay }] },
          quiesced: true,
        }),
      );
    const quiescedOfS3 = (metadata: ReturnType<typeof parseProjectMetadata>) =>
      joinSnapshots(shutoffDomain, allFour, metadata).snapshots.find((s) => s.name === "s3")?.quiesced;
    expect(quiescedOfS3(record(`${FIXTURE_DIR}/vda.s3.qcow2`))).toBe(true);
    expect(quiescedOfS3(record(`${FIXTURE_DIR}/vda.s3-other.qcow2`))).toBeUndefined();
  });

  test("snapshotFilesOf: the overlays of external disks and the memory file of an external memory snapshot", () => {
    expect(allFour.map(snapshotFilesOf)).toEqual([
      // The fixtures in the order of allFour: s4 (shut off), s2 (memory), s1, s3 (paused).
      {
        overlays: [
          { disk: "vda", path: `${FIXTURE_DIR}/vda.s4.qcow2` },
          { disk: "vdb", path: `${FIXTURE_DIR}/vdb.s4.qcow2` },
        ],
      },
      {
        overlays: [{ disk: "vda", path: `${FIXTURE_DIR}/vda.s2.qcow2` }],
        memoryFile: `${FIXTURE_DIR}/lvsnap-fixture.s2.mem`,
      },
      {
        overlays: [
          { disk: "vda", path: `${FIXTURE_DIR}/vda.s1.qcow2` },
          { disk: "vdb", path: `${FIXTURE_DIR}/vdb.s1.qcow2` },
        ],
      },
      { overlays: [{ disk: "vda", path: `${FIXTURE_DIR}/vda.s3.qcow2` }] },
    ]);
  });

  test("Quirk: a shut-off domain's XML listing only the active image; the chain is completed from snapshot metadata", () => {
    // As libvirt shows a never-started domain after offline snapshots: the active overlay and no backingStore.
    const xml = fixture("domain-shutoff-four-snapshots.xml").replace(
      /(<source file='[^']*vda\.s4\.qcow2'\/>)\s*<backingStore[\s\S]*?<target dev='vda'/,
      "$1<target dev='vda'",
    );
    const partial = parseDomainXml(xml);
    expect(partial.disks[0]?.chain).toEqual([qcow2("vda.s4.qcow2")]);
    const forest = joinSnapshots(partial, allFour);
    expect(forest.problems).toEqual([]);
    expect(
      forest.snapshots.map((s) => s.disks.map((d) => [d.target, d.pointInTime?.path, d.chainPosition])),
    ).toEqual([
      [
        ["vda", `${FIXTURE_DIR}/vda.qcow2`, 3],
        ["vdb", `${FIXTURE_DIR}/vdb.qcow2`, 1],
      ],
      [["vda", `${FIXTURE_DIR}/vda.s1.qcow2`, 2]],
      [["vda", `${FIXTURE_DIR}/vda.s2.qcow2`, 1]],
      [
        ["vda", `${FIXTURE_DIR}/vda.s3.qcow2`, 0],
        ["vdb", `${FIXTURE_DIR}/vdb.s1.qcow2`, 0],
      ],
    ]);
  });

  test("live chain with node indexes: the joined overlay carries libvirt's index", () => {
    const domain = parseDomainXml(fixture("domain-running-two-snapshots.xml"));
    const forest = joinSnapshots(domain, allFour.slice(1, 3));
    expect(
      forest.snapshots.map((s) => s.disks.map((d) => [d.target, d.overlay.index, d.pointInTime?.index])),
    ).toEqual([
      [
        ["vda", 6, 5],
        ["vdb", 7, 4],
      ],
      [["vda", 8, 6]],
    ]);
    expect(forest.problems).toEqual([]);
  });

  test("metadata that disagrees with the chains is reported in words", () => {
    // The chains of the running fixture know only s1 and s2: s3 and s4's overlays are not in them.
    const domain = parseDomainXml(fixture("domain-running-two-snapshots.xml"));
    const forest = joinSnapshots(domain, allFour);
    expect(forest.problems).toEqual([
      {
        kind: "overlay-not-in-chain",
        snapshot: "s3",
        disk: "vda",
        message:
          `snapshot s3, disk vda: its overlay ${FIXTURE_DIR}/vda.s3.qcow2 is not in the live chain ` +
          `(${FIXTURE_DIR}/vda.s2.qcow2 -> ${FIXTURE_DIR}/vda.s1.qcow2 -> ${FIXTURE_DIR}/vda.qcow2)`,
      },
      {
        kind: "overlay-not-in-chain",
        snapshot: "s4",
        disk: "vda",
        message: expect.stringContaining("vda.s4.qcow2 is not in the live chain"),
      },
      {
        kind: "overlay-not-in-chain",
        snapshot: "s4",
        disk: "vdb",
        message: expect.stringContaining("vdb.s4.qcow2 is not in the live chain"),
      },
    ]);
  });

  test("chain order that contradicts the tree, a shared overlay, an unknown disk and a dangling parent", () => {
    const [s4, s2, s1, s3] = allFour as [SnapshotModel, SnapshotModel, SnapshotModel, SnapshotModel];
    // s3 claims s1 as parent although s2 (on vda) sits between them in the chain.
    const reparented = { ...s3, parent: "s1" };
    const stray: SnapshotModel = {
      ...s4,
      name: "stray",
      parent: "gone",
      disks: [
        { target: "vdz", mode: "external", overlay: qcow2("vdz.qcow2") },
        { target: "vda", mode: "external", overlay: qcow2("vda.s2.qcow2") },
      ],
    };
    const forest = joinSnapshots(shutoffDomain, [s1, s2, reparented, stray]);
    expect(forest.problems.map((p) => [p.kind, p.snapshot, p.disk])).toEqual([
      ["unknown-parent", "stray", undefined],
      ["unknown-disk", "stray", "vdz"],
      ["overlay-shared", "stray", "vda"],
      ["chain-order", "s3", "vda"],
    ]);
    expect(forest.problems[3]?.message).toBe(
      `snapshot s3, disk vda: the tree says the layer below its overlay is ${FIXTURE_DIR}/vda.s1.qcow2 ` +
        `(snapshot s1), but the live chain has ${FIXTURE_DIR}/vda.s2.qcow2 there`,
    );
    expect(forest.snapshots.map((s) => s.name)).toEqual(["s1", "s2", "s3", "stray"]);
  });
});

/** A running domain whose vda writes to the first file, each backed by the next (the last has no backing). */
function domainOnChain(...files: string[]) {
  const layer = (rest: string[]): string => {
    const [file, ...below] = rest;
    if (file === undefined) return "<backingStore/>";
    return `<backingStore type='file'><format type='qcow2'/><source file='${FIXTURE_DIR}/${file}'/>${layer(below)}</backingStore>`;
  };
  const [top, ...below] = files;
  return parseDomainXml(
    `<domain type='qemu' id='1'><name>d</name><uuid>00000000-0000-0000-0000-00000000000d</uuid><devices>` +
      `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${FIXTURE_DIR}/${top}'/>` +
      `${layer(below)}<target dev='vda' bus='virtio'/></disk></devices></domain>`,
  );
}

/** Snapshot `name` of vda: overlay `vda.<name>.qcow2`, taken while vda wrote to `before`. */
function snap(name: string, before: string, parent?: string): SnapshotModel {
  return {
    name,
    state: "running",
    creationTime: 1_800_000_000 + Number(name.slice(1)),
    ...(parent === undefined ? {} : { parent }),
    memory: { mode: "no" },
    disks: [
      { target: "vda", mode: "external", overlay: qcow2(`vda.${name}.qcow2`), imageBefore: qcow2(before) },
    ],
  };
}

describe("branches after a revert", () => {
  const s1 = snap("s1", "vda.qcow2");
  const s2 = snap("s2", "vda.s1.qcow2", "s1");
  const s3 = snap("s3", "vda.s2.qcow2", "s2");
  // Reverted to s2, which kept its child s3: vda writes to a new overlay on s2's point-in-time image.
  const reverted = domainOnChain("vda.s2.revert-1.qcow2", "vda.s1.qcow2", "vda.qcow2");

  test("the reverted-to snapshot and the other branch are not problems; the other branch is marked", () => {
    const forest = joinSnapshots(reverted, [s1, s2, s3], undefined, "s2");
    expect(forest.problems).toEqual([]);
    expect(forest.snapshots.map((s) => [s.name, s.otherBranch, s.disks[0]?.chainPosition])).toEqual([
      ["s1", undefined, 1],
      ["s2", undefined, undefined],
      ["s3", true, undefined],
    ]);
  });

  test("a snapshot taken after the revert extends the live branch", () => {
    const s4 = snap("s4", "vda.s2.revert-1.qcow2", "s2");
    const domain = domainOnChain("vda.s4.qcow2", "vda.s2.revert-1.qcow2", "vda.s1.qcow2", "vda.qcow2");
    const forest = joinSnapshots(domain, [s1, s2, s3, s4], undefined, "s4");
    expect(forest.problems).toEqual([]);
    expect(forest.snapshots.filter((s) => s.otherBranch).map((s) => s.name)).toEqual(["s3"]);
  });

  test("without the current snapshot every overlay outside the live chain is reported", () => {
    const forest = joinSnapshots(reverted, [s1, s2, s3]);
    expect(forest.problems.map((p) => [p.kind, p.snapshot])).toEqual([
      ["overlay-not-in-chain", "s2"],
      ["overlay-not-in-chain", "s3"],
    ]);
  });

  test("a live-branch overlay merged away outside this project is drift", () => {
    // s1's overlay was committed into the base by hand: s2's overlay now sits right on the base.
    const forest = joinSnapshots(domainOnChain("vda.s2.qcow2", "vda.qcow2"), [s1, s2], undefined, "s2");
    expect(forest.problems).toEqual([
      {
        kind: "overlay-not-in-chain",
        snapshot: "s1",
        disk: "vda",
        message:
          `snapshot s1, disk vda: its overlay ${FIXTURE_DIR}/vda.s1.qcow2 is not in the live chain ` +
          `(${FIXTURE_DIR}/vda.s2.qcow2 -> ${FIXTURE_DIR}/vda.qcow2)`,
      },
    ]);
  });

  test("a live-branch overlay missing while another branch is fine is still drift", () => {
    // Reverted to s2, then s1's overlay merged away by hand: the live chain skips s1 and s2's point in time.
    const forest = joinSnapshots(
      domainOnChain("vda.s2.revert-1.qcow2", "vda.qcow2"),
      [s1, s2, s3],
      undefined,
      "s2",
    );
    expect(forest.problems.map((p) => [p.kind, p.snapshot])).toEqual([
      ["overlay-not-in-chain", "s1"],
      ["overlay-not-in-chain", "s2"],
    ]);
  });
});
