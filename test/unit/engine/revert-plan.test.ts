import { describe, expect, test } from "vitest";
import { isEngineError } from "../../../provider/engine/errors";
import {
  automaticSnapshotName,
  chooseStrategy,
  descendantsLeavesFirst,
  hostRevertsExternalSnapshots,
  isRevertOverlayName,
  planRevert,
  type RevertOptions,
  type RevertPlanInput,
  resolveTargetState,
  validateRevertOptions,
} from "../../../provider/engine/revert-plan";
import type { DomainModel, ImageSource } from "../../../provider/model/domain";
import type { SnapshotModel } from "../../../provider/model/snapshot";
import { joinSnapshots, type SnapshotView } from "../../../provider/model/snapshot-tree";

const file = (name: string): ImageSource => ({ kind: "file", path: `/i/${name}`, format: "qcow2" });

function domainWith(chain: string[], extra: Partial<DomainModel["disks"][number]> = {}): DomainModel {
  return {
    name: "d",
    uuid: "00000000-0000-0000-0000-000000000001",
    disks: [
      {
        target: "vda",
        bus: "virtio",
        device: "disk",
        readOnly: false,
        shareable: false,
        transient: false,
        chain: chain.map(file),
        ...extra,
      },
    ],
  };
}

function snap(name: string, parent: string | undefined, state: string, memory?: string): SnapshotModel {
  return {
    name,
    state,
    creationTime: Number(name.replace(/\D/g, "")) || 1,
    ...(parent === undefined ? {} : { parent }),
    memory: memory === undefined ? { mode: "no" } : { mode: "external", file: `/i/${memory}` },
    disks: [{ target: "vda", mode: "external", overlay: file(`vda.${name}.qcow2`) }],
  };
}

/** s1 <- s2 <- s3, all on vda, live chain vda.s3 -> vda.s2 -> vda.s1 -> vda (running). */
function threeSnapshots(
  options: RevertOptions = {},
  states = ["disk-snapshot", "running", "paused"],
): RevertPlanInput {
  const domain = domainWith(["vda.s3.qcow2", "vda.s2.qcow2", "vda.s1.qcow2", "vda.qcow2"]);
  const snapshots = [
    snap("s1", undefined, states[0] ?? ""),
    snap("s2", "s1", states[1] ?? "", "s2.mem"),
    snap("s3", "s2", states[2] ?? "", "s3.mem"),
  ];
  const saved = new Map([
    ["s1", domainWith(["vda.qcow2"])],
    ["s2", domainWith(["vda.s1.qcow2", "vda.qcow2"])],
    ["s3", domainWith(["vda.s2.qcow2", "vda.s1.qcow2", "vda.qcow2"])],
  ]);
  return {
    domain,
    forest: joinSnapshots(domain, snapshots),
    savedDomains: saved,
    snapshot: "s2",
    options,
    knownPaths: new Set(domain.disks[0]?.chain.map((i) => i.path ?? "")),
  };
}

function thrown(fn: () => unknown) {
  try {
    fn();
  } catch (e) {
    if (isEngineError(e)) return { kind: e.kind, disk: e.disk, message: e.message };
    throw e;
  }
  throw new Error("expected an EngineError");
}

describe("strategy", () => {
  test.each([
    ["auto", true, "native"],
    ["auto", false, "recipe"],
    [undefined, true, "native"],
    [undefined, false, "recipe"],
    ["recipe", true, "recipe"],
    ["native", true, "native"],
  ] as const)("%s with native available %s: %s", (requested, available, expected) => {
    expect(chooseStrategy(requested, available, "d", "s1")).toBe(expected);
  });

  test("native asked for on a host without it is refused", () => {
    expect(thrown(() => chooseStrategy("native", false, "d", "s1")).kind).toBe("invalid-request");
  });

  test("native revert is detected by <externalSnapshot/> in the capabilities", () => {
    const caps = (features: string) =>
      `<capabilities><host/><guest><os_type>hvm</os_type><features>${features}</features></guest></capabilities>`;
    expect(hostRevertsExternalSnapshots(caps("<disksnapshot default='on' toggle='no'/>"))).toBe(false);
    expect(
      hostRevertsExternalSnapshots(caps("<disksnapshot default='on' toggle='no'/><externalSnapshot/>")),
    ).toBe(true);
  });
});

describe("target state", () => {
  const view = (state: string) => ({ state }) as SnapshotView;
  test.each([
    ["running", undefined, "running"],
    ["paused", undefined, "paused"],
    ["shutoff", undefined, "shutoff"],
    ["disk-snapshot", "snapshot", "running"],
    ["crashed", undefined, "shutoff"],
    ["running", "shutoff", "shutoff"],
    ["shutoff", "paused", "paused"],
  ] as const)("snapshot state %s, asked %s: %s", (state, asked, expected) => {
    expect(resolveTargetState(asked, view(state))).toBe(expected);
  });
});

describe("planRevert", () => {
  test("middle snapshot: new overlay on its point-in-time image, memory restored, previous active noted", () => {
    expect(planRevert(threeSnapshots())).toEqual({
      domain: "d",
      snapshot: "s2",
      state: "running",
      memoryFile: "/i/s2.mem",
      disks: [
        {
          target: "vda",
          bus: "virtio",
          pointInTime: file("vda.s1.qcow2"),
          previousActive: file("vda.s3.qcow2"),
          overlayPath: "/i/vda.s2.revert-1.qcow2",
        },
      ],
    });
  });

  test("into shutoff a memory snapshot restores no memory; overlayDir places the overlay", () => {
    const plan = planRevert(threeSnapshots({ targetState: "shutoff", overlayDir: "/o" }));
    expect([plan.state, plan.memoryFile, plan.disks[0]?.overlayPath]).toEqual([
      "shutoff",
      undefined,
      "/o/vda.s2.revert-1.qcow2",
    ]);
  });

  test("overlay names: one more than the highest known, skipping files found taken", () => {
    const input = threeSnapshots();
    const known = new Set([
      ...input.knownPaths,
      "/i/vda.s2.revert-1.qcow2",
      "/i/vda.s2.revert-4.qcow2",
      "/x/vda.s2.revert-9.qcow2",
    ]);
    expect(planRevert({ ...input, knownPaths: known }).disks[0]?.overlayPath).toBe(
      "/i/vda.s2.revert-5.qcow2",
    );
    expect(
      planRevert({ ...input, knownPaths: known, takenPaths: new Set(["/i/vda.s2.revert-5.qcow2"]) }).disks[0]
        ?.overlayPath,
    ).toBe("/i/vda.s2.revert-6.qcow2");
    expect([
      isRevertOverlayName("vda.s2.revert-12.qcow2", "vda.s2"),
      isRevertOverlayName("vda.s2.revert-x.qcow2", "vda.s2"),
    ]).toEqual([true, false]);
  });

  test("the point-in-time image comes from the snapshot's saved definition when its overlay left the live chain", () => {
    const input = threeSnapshots();
    const domain = domainWith(["vda.s1.revert-1.qcow2", "vda.qcow2"]);
    const forest = joinSnapshots(domain, [
      snap("s1", undefined, "shutoff"),
      snap("s2", "s1", "running"),
      snap("s3", "s2", "paused"),
    ]);
    const plan = planRevert({ ...input, domain, forest, snapshot: "s3" });
    expect([plan.state, plan.disks[0]?.pointInTime, plan.disks[0]?.previousActive]).toEqual([
      "paused",
      file("vda.s2.qcow2"),
      file("vda.s1.revert-1.qcow2"),
    ]);
  });

  test("refusals name the domain, snapshot and disk", () => {
    const input = threeSnapshots();
    expect(thrown(() => planRevert({ ...input, snapshot: "nope" })).kind).toBe("snapshot-not-found");
    const busy = domainWith(["vda.s3.qcow2"], { mirror: { job: "active-commit", ready: true } });
    expect(thrown(() => planRevert({ ...input, domain: busy }))).toEqual({
      kind: "block-job-active",
      disk: "vda",
      message: expect.stringContaining(
        "cannot revert domain d to snapshot s2: a block job (active-commit) runs on disk vda",
      ),
    });
    const network = new Map(input.savedDomains);
    network.set("s2", {
      ...domainWith([]),
      disks: [
        {
          ...(domainWith([]).disks[0] as DomainModel["disks"][number]),
          chain: [{ kind: "network", protocol: "nbd", name: "x" }],
        },
      ],
    });
    expect(thrown(() => planRevert({ ...input, savedDomains: network }))).toEqual({
      kind: "invalid-request",
      disk: "vda",
      message:
        "cannot revert domain d to snapshot s2: disk vda: its point-in-time image nbd:x is not a file or block device",
    });
  });
});

describe("options and names", () => {
  test.each([
    [{ targetState: "sideways" }, "unknown target state"],
    [{ strategy: "magic" }, "unknown strategy"],
    [{ keepCurrent: true, discardNewer: true }, "keepCurrent and discardNewer together"],
    [{ overlayDir: "relative/dir" }, "is not an absolute path"],
    [{ overlayDir: "/a/../b" }, "is not normalised"],
  ])("%j is refused before the host is contacted", (options, words) => {
    expect(thrown(() => validateRevertOptions("d", "s1", options as RevertOptions))).toEqual({
      kind: "invalid-request",
      disk: undefined,
      message: expect.stringContaining(words),
    });
  });

  test("descendants come leaves first; automatic names are valid snapshot names", () => {
    const forest = threeSnapshots().forest;
    expect([descendantsLeavesFirst(forest, "s1"), descendantsLeavesFirst(forest, "s3")]).toEqual([
      ["s3", "s2"],
      [],
    ]);
    expect(automaticSnapshotName("auto-before-revert", new Date("2026-11-22T02:40:01.042Z"))).toBe(
      "auto-before-revert-20261122T024001042Z",
    );
  });
});
