import { describe, expect, test } from "vitest";
import {
  type DeleteStep,
  type PlanDomainState,
  planDelete,
  planStateOf,
} from "../../../provider/engine/delete-plan";
import { EngineErrorKind } from "../../../provider/engine/errors";
import { DomainState } from "../../../provider/libvirt/api";
import type { DomainModel, ImageSource } from "../../../provider/model/domain";
import type { SnapshotModel } from "../../../provider/model/snapshot";
import { joinSnapshots } from "../../../provider/model/snapshot-tree";

/** No off-chain snapshot in these tables needs the backing relation. */
const NO_LINKS: ReadonlyMap<string, string> = new Map();

const file = (name: string): ImageSource => ({ kind: "file", path: `/i/${name}`, format: "qcow2" });

function domainWith(chains: Record<string, string[]>): DomainModel {
  return {
    name: "d",
    uuid: "00000000-0000-0000-0000-000000000001",
    disks: Object.entries(chains).map(([target, chain]) => ({
      target,
      device: "disk",
      readOnly: false,
      shareable: false,
      transient: false,
      chain: chain.map(file),
    })),
  };
}

function snap(
  name: string,
  parent: string | undefined,
  overlays: Record<string, string>,
  extra: Partial<SnapshotModel> = {},
): SnapshotModel {
  return {
    name,
    state: "disk-snapshot",
    creationTime: Number(name.replace(/\D/g, "")),
    ...(parent === undefined ? {} : { parent }),
    memory: { mode: "no" },
    disks: Object.entries(overlays).map(([target, overlay]) => ({
      target,
      mode: "external" as const,
      overlay: file(overlay),
    })),
    ...extra,
  };
}

/** base <- s1 <- s2 <- s3 (active) on vda, optionally also on vdb. */
function linear(twoDisks: boolean) {
  const disks = (n: number): Record<string, string> =>
    twoDisks ? { vda: `vda.s${n}.qcow2`, vdb: `vdb.s${n}.qcow2` } : { vda: `vda.s${n}.qcow2` };
  const chain = (d: string) => [`${d}.s3.qcow2`, `${d}.s2.qcow2`, `${d}.s1.qcow2`, `${d}.qcow2`];
  const domain = domainWith(twoDisks ? { vda: chain("vda"), vdb: chain("vdb") } : { vda: chain("vda") });
  const snapshots = [snap("s1", undefined, disks(1)), snap("s2", "s1", disks(2)), snap("s3", "s2", disks(3))];
  return { domain, snapshots };
}

const commit = (disk: string, top: string, base: string, active: boolean): DeleteStep => ({
  kind: "commit",
  disk,
  top: `/i/${top}`,
  base: `/i/${base}`,
  active,
});
const overlayFile = (name: string): DeleteStep => ({
  kind: "remove-file",
  path: `/i/${name}`,
  role: "overlay",
});

describe("planDelete: chain position x domain state", () => {
  const positions = [
    { snapshot: "s1", position: "first", top: "s1", base: "", active: false },
    { snapshot: "s2", position: "middle", top: "s2", base: "s1", active: false },
    { snapshot: "s3", position: "current", top: "s3", base: "s2", active: true },
  ];
  const states: PlanDomainState[] = ["running", "paused", "started-paused"];
  const layer = (disk: string, n: string) => (n === "" ? `${disk}.qcow2` : `${disk}.${n}.qcow2`);
  const cases = positions.flatMap((p) =>
    states.flatMap((state) => [false, true].map((twoDisks) => ({ ...p, state, twoDisks }))),
  );

  test.each(cases)(
    "$position snapshot, $state, two disks: $twoDisks",
    ({ snapshot, top, base, active, state, twoDisks }) => {
      const { domain, snapshots } = linear(twoDisks);
      const plan = planDelete({
        backing: NO_LINKS,
        domain,
        state,
        forest: joinSnapshots(domain, snapshots),
        snapshot,
      });
      const disks = twoDisks ? ["vda", "vdb"] : ["vda"];
      expect(plan).toEqual({
        kind: "steps",
        snapshot,
        steps: [
          ...disks.map((d) => commit(d, layer(d, top), layer(d, base), active)),
          ...(state === "started-paused" ? [{ kind: "stop-domain" }] : []),
          { kind: "delete-metadata", snapshot },
          ...disks.map((d) => overlayFile(layer(d, top))),
        ],
      });
    },
  );
});

describe("planDelete: memory, absence and refusals", () => {
  test("a memory snapshot also removes its memory file", () => {
    const domain = domainWith({ vda: ["vda.s1.qcow2", "vda.qcow2"] });
    const s1 = snap(
      "s1",
      undefined,
      { vda: "vda.s1.qcow2" },
      { state: "running", memory: { mode: "external", file: "/i/s1.mem" } },
    );
    const plan = planDelete({
      backing: NO_LINKS,
      domain,
      state: "running",
      forest: joinSnapshots(domain, [s1]),
      snapshot: "s1",
    });
    expect(plan.kind === "steps" && plan.steps.at(-1)).toEqual({
      kind: "remove-file",
      path: "/i/s1.mem",
      role: "memory",
    });
  });

  test("a snapshot that does not exist is nothing to do", () => {
    const { domain, snapshots } = linear(false);
    const plan = planDelete({
      backing: NO_LINKS,
      domain,
      state: "running",
      forest: joinSnapshots(domain, snapshots),
      snapshot: "gone",
    });
    expect(plan).toEqual({ kind: "nothing-to-do", snapshot: "gone" });
  });

  test("a memory snapshot taken while paused, on a paused domain, asks to resume first", () => {
    const domain = domainWith({ vda: ["vda.s1.qcow2", "vda.qcow2"] });
    const s1 = snap(
      "s1",
      undefined,
      { vda: "vda.s1.qcow2" },
      { state: "paused", memory: { mode: "external", file: "/i/m" } },
    );
    const forest = joinSnapshots(domain, [s1]);
    const paused = planDelete({ backing: NO_LINKS, domain, state: "paused", forest, snapshot: "s1" });
    expect(paused.kind === "refused" && [paused.reason, /resume the domain/.test(paused.message)]).toEqual([
      "paused-memory",
      true,
    ]);
    expect(planDelete({ backing: NO_LINKS, domain, state: "running", forest, snapshot: "s1" }).kind).toBe(
      "steps",
    );
    expect(
      planDelete({ backing: NO_LINKS, domain, state: "started-paused", forest, snapshot: "s1" }).kind,
    ).toBe("steps");
  });

  // After a revert to s1: s1's old children s2 (off the live chain) and the new s4 (live) both sit on
  // vda.s1.qcow2, the overlay of s1.
  function revertedToS1() {
    const domain = domainWith({ vda: ["vda.s4.qcow2", "vda.s1.qcow2", "vda.qcow2"] });
    const snapshots = [
      snap("s1", undefined, { vda: "vda.s1.qcow2" }),
      snap("s2", "s1", { vda: "vda.s2.qcow2" }),
      snap("s4", "s1", { vda: "vda.s4.qcow2" }),
    ];
    // As backingLinks reads them from the chains and the snapshots' saved definitions.
    const backing = new Map([
      ["/i/vda.s1.qcow2", "/i/vda.qcow2"],
      ["/i/vda.s2.qcow2", "/i/vda.s1.qcow2"],
      ["/i/vda.s4.qcow2", "/i/vda.s1.qcow2"],
    ]);
    return { domain, forest: joinSnapshots(domain, snapshots), backing };
  }

  test("an overlay another branch still reads is never merged; the error names the branch", () => {
    const { domain, forest, backing } = revertedToS1();
    const plan = planDelete({ backing, domain, state: "running", forest, snapshot: "s1" });
    expect(plan.kind === "refused" && plan.reason).toBe("branch-depends");
    expect(plan.kind === "refused" && plan.message).toMatch(/the branch of snapshot s2 still depends on/);
  });

  test("a point-in-time image another branch reads is never merged into", () => {
    const { domain, forest, backing } = revertedToS1();
    const plan = planDelete({ backing, domain, state: "running", forest, snapshot: "s4" });
    expect(plan.kind === "refused" && [plan.reason, plan.message.includes("snapshot s2")]).toEqual([
      "branch-depends",
      true,
    ]);
  });

  test("a snapshot off the live branch is refused, naming the current one", () => {
    const { domain, forest, backing } = revertedToS1();
    const plan = planDelete({ backing, domain, state: "running", forest, snapshot: "s2" });
    expect(
      plan.kind === "refused" && [
        plan.reason,
        /another branch is current \(the one of snapshot s4\)/.test(plan.message),
      ],
    ).toEqual(["not-on-live-branch", true]);
  });

  test("metadata that disagrees with the chain is refused with the model's words", () => {
    const domain = domainWith({ vda: ["vda.s1.qcow2", "vda.s2.qcow2", "vda.qcow2"] });
    const snapshots = [
      snap("s1", undefined, { vda: "vda.s1.qcow2" }),
      snap("s2", "s1", { vda: "vda.s2.qcow2" }),
    ];
    const plan = planDelete({
      backing: NO_LINKS,
      domain,
      state: "running",
      forest: joinSnapshots(domain, snapshots),
      snapshot: "s2",
    });
    expect(plan.kind === "refused" && plan.reason).toBe("inconsistent");
  });

  test("only file images are merged", () => {
    const domain: DomainModel = {
      ...domainWith({}),
      disks: [
        {
          target: "vda",
          device: "disk",
          readOnly: false,
          shareable: false,
          transient: false,
          chain: [file("vda.s1.qcow2"), { kind: "network", protocol: "nbd", name: "base" }],
        },
      ],
    };
    const forest = joinSnapshots(domain, [snap("s1", undefined, { vda: "vda.s1.qcow2" })]);
    const plan = planDelete({ backing: NO_LINKS, domain, state: "running", forest, snapshot: "s1" });
    expect(plan.kind === "refused" && plan.reason).toBe("not-a-file");
  });
});

describe("planStateOf", () => {
  test.each([
    [DomainState.NOSTATE, "running"],
    [DomainState.RUNNING, "running"],
    [DomainState.BLOCKED, "running"],
    [DomainState.PAUSED, "paused"],
    [DomainState.SHUTDOWN, "running"],
    [DomainState.SHUTOFF, "shutoff"],
    [DomainState.PMSUSPENDED, "running"],
  ])("libvirt state %i is %s", (state, expected) => {
    expect(planStateOf(state, "vm")).toBe(expected);
  });

  test("a crashed domain kept for inspection (on_crash=preserve) is refused, not started", () => {
    expect(() => planStateOf(DomainState.CRASHED, "vm")).toThrow(
      expect.objectContaining({
        kind: EngineErrorKind.DOMAIN_STATE,
        domain: "vm",
        message: "domain vm crashed and is kept for inspection: destroy it or reset it first",
      }),
    );
  });
});
