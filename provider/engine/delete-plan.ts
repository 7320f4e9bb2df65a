/**
 * Planning of a snapshot delete by merging (blockcommit), as pure functions: the live domain model, the
 * snapshot forest joined with the live chains, and the request go in; the ordered steps come out, or a refusal
 * that says why and what to do. No I/O: every branch is tested as a table.
 *
 * What is merged where: snapshot S of disk d has an overlay O (the layer d wrote to after S) and a
 * point-in-time image B (the layer right below O). Deleting S commits O into B, so B then holds what O held and
 * O leaves the chain; O is the file removed afterwards. When O is the active layer the commit is an active
 * commit (READY, then pivot onto B).
 */
import { DomainState } from "../libvirt/api";
import { type DomainModel, describeChain, describeImage, type ImageSource } from "../model/domain";
import type { SnapshotForest, SnapshotView } from "../model/snapshot-tree";
import { EngineError, EngineErrorKind } from "./errors";

/** The domain's state as the delete sees it. `started-paused`: it was shut off and the delete started it. */
export type PlanDomainState = "running" | "paused" | "started-paused";

/**
 * How a delete sees libvirt's domain state (DomainState): `shutoff` when no QEMU process runs (the delete must
 * start it paused), `paused`, else `running` (every other state has a QEMU process that runs block jobs). Pure.
 * Throws DOMAIN_STATE for CRASHED: with QEMU that state means on_crash=preserve kept the crashed process for
 * inspection, so it is neither a process that runs block jobs nor a shut-off domain the delete may start.
 */
export function planStateOf(state: number, domain: string): PlanDomainState | "shutoff" {
  if (state === DomainState.CRASHED) {
    throw new EngineError({
      kind: EngineErrorKind.DOMAIN_STATE,
      domain,
      message: `domain ${domain} crashed and is kept for inspection: destroy it or reset it first`,
    });
  }
  if (state === DomainState.SHUTOFF) return "shutoff";
  return state === DomainState.PAUSED ? "paused" : "running";
}

export type DeleteStep =
  /** Commit `top` into `base` on `disk`; `active`: top is the active layer (READY, pivot). */
  | {
      readonly kind: "commit";
      readonly disk: string;
      readonly top: string;
      readonly base: string;
      readonly active: boolean;
    }
  /** Destroy the domain the delete started paused, so it is shut off again as the user left it. */
  | { readonly kind: "stop-domain" }
  /** Forget the snapshot with METADATA_ONLY: libvirt re-parents its children and rewrites their disk paths. */
  | { readonly kind: "delete-metadata"; readonly snapshot: string }
  /** Remove a file no chain references any more, through libvirt's storage API. */
  | { readonly kind: "remove-file"; readonly path: string; readonly role: "overlay" | "memory" };

export const RefusalReason = {
  /** The snapshot's overlay is not in the live chain: another branch is current. */
  NOT_ON_LIVE_BRANCH: "not-on-live-branch",
  /** Another branch still reads the overlay or the point-in-time image. */
  BRANCH_DEPENDS: "branch-depends",
  /** A memory snapshot taken while paused cannot be merged while the domain is paused. */
  PAUSED_MEMORY: "paused-memory",
  /** Metadata and chains disagree about this snapshot. */
  INCONSISTENT: "inconsistent",
  /** The overlay or the layer below it is not a local file (network, volume, block). */
  NOT_A_FILE: "not-a-file",
} as const;
export type RefusalReason = (typeof RefusalReason)[keyof typeof RefusalReason];

export type DeletePlan =
  | { readonly kind: "steps"; readonly snapshot: string; readonly steps: readonly DeleteStep[] }
  | {
      readonly kind: "refused";
      readonly snapshot: string;
      readonly reason: RefusalReason;
      readonly message: string;
    }
  /** The snapshot does not exist: deleting it is already done. */
  | { readonly kind: "nothing-to-do"; readonly snapshot: string };

export interface DeletePlanInput {
  /** The live domain model (of the running, paused or started-paused domain): chains are complete. */
  readonly domain: DomainModel;
  readonly state: PlanDomainState;
  readonly forest: SnapshotForest;
  readonly snapshot: string;
  /**
   * Which image each known image is backed by, read from the chains libvirt shows and the snapshots' saved
   * definitions (revert-branch.ts `backingLinks`): how the planner tells what an off-chain snapshot's overlay
   * reads. After a revert that is not its parent's overlay: a snapshot taken on a revert overlay reads that.
   */
  readonly backing: ReadonlyMap<string, string>;
}

/**
 * Plans the delete of one snapshot: per disk a commit of its overlay into the layer below (explicit paths),
 * then stopping a domain the delete started, deleting the metadata, removing the merged overlays and the
 * memory file. Refuses (never merges) when another branch depends on the images, when the snapshot is not on
 * the live branch, or when a paused-domain memory snapshot must wait for the domain to run.
 */
export function planDelete(input: DeletePlanInput): DeletePlan {
  const { forest, snapshot: name } = input;
  const snap = forest.snapshots.find((s) => s.name === name);
  if (snap === undefined) return { kind: "nothing-to-do", snapshot: name };
  const refuse = (reason: RefusalReason, message: string): DeletePlan => ({
    kind: "refused",
    snapshot: name,
    reason,
    message: `cannot delete snapshot ${name} of domain ${input.domain.name}: ${message}`,
  });

  if (input.state === "paused" && snap.memory.mode === "external" && snap.state === "paused") {
    return refuse(
      RefusalReason.PAUSED_MEMORY,
      "it holds memory saved while the domain was paused, and QEMU keeps the disks read-only until the " +
        "domain runs again; resume the domain (virsh resume) and delete again",
    );
  }
  const problems = forest.problems.filter((p) => p.snapshot === name && p.kind !== "overlay-not-in-chain");
  if (problems.length > 0) {
    return refuse(RefusalReason.INCONSISTENT, problems.map((p) => p.message).join("; "));
  }

  const commits: DeleteStep[] = [];
  const files: DeleteStep[] = [];
  for (const disk of snap.disks) {
    const chain = input.domain.disks.find((d) => d.target === disk.target)?.chain ?? [];
    if (disk.chainPosition === undefined || disk.pointInTime === undefined) {
      const current = forest.snapshots
        .filter((s) => s.disks.some((d) => d.chainPosition === 0))
        .map((s) => s.name);
      return refuse(
        RefusalReason.NOT_ON_LIVE_BRANCH,
        `its overlay ${describeImage(disk.overlay)} of disk ${disk.target} is not in the live chain ` +
          `(${describeChain(chain)}); another branch is current` +
          (current.length > 0 ? ` (the one of snapshot ${current.join(", ")})` : ""),
      );
    }
    const dependents = branchDependents(
      forest,
      snap,
      disk.target,
      disk.overlay,
      disk.pointInTime,
      input.backing,
    );
    if (dependents.length > 0) {
      return refuse(
        RefusalReason.BRANCH_DEPENDS,
        `disk ${disk.target}: the branch of snapshot ${dependents.join(", ")} still depends on ` +
          `${describeImage(disk.overlay)} or ${describeImage(disk.pointInTime)}; merging would change or ` +
          "remove data that branch reads. Delete that branch first",
      );
    }
    const top = disk.overlay.path;
    const base = disk.pointInTime.path;
    if (
      top === undefined ||
      base === undefined ||
      disk.overlay.kind !== "file" ||
      disk.pointInTime.kind !== "file"
    ) {
      return refuse(
        RefusalReason.NOT_A_FILE,
        `disk ${disk.target}: only file images can be merged (${describeImage(disk.overlay)} on ` +
          `${describeImage(disk.pointInTime)})`,
      );
    }
    commits.push({ kind: "commit", disk: disk.target, top, base, active: disk.chainPosition === 0 });
    files.push({ kind: "remove-file", path: top, role: "overlay" });
  }
  if (snap.memory.mode === "external" && snap.memory.file !== undefined) {
    files.push({ kind: "remove-file", path: snap.memory.file, role: "memory" });
  }
  const stop: DeleteStep[] = input.state === "started-paused" ? [{ kind: "stop-domain" }] : [];
  return {
    kind: "steps",
    snapshot: name,
    steps: [...commits, ...stop, { kind: "delete-metadata", snapshot: name }, ...files],
  };
}

/**
 * Snapshots off the live chain whose overlay on `target` reads `overlay` (it would disappear) or `pointInTime`
 * (its content would change), anywhere below it: the images below an off-chain overlay are followed through
 * `backing`. An off-chain overlay whose backing is unknown (a snapshot without a saved definition) counts as
 * depending: a merge is refused rather than risk changing data a branch reads.
 */
function branchDependents(
  forest: SnapshotForest,
  snap: SnapshotView,
  target: string,
  overlay: ImageSource,
  pointInTime: ImageSource,
  backing: ReadonlyMap<string, string>,
): string[] {
  const touched = new Set([overlay.path, pointInTime.path].flatMap((p) => (p === undefined ? [] : [p])));
  const reads = (top: string): boolean => {
    const seen = new Set<string>();
    let below = backing.get(top);
    if (below === undefined) return true;
    for (; below !== undefined && !seen.has(below); below = backing.get(below)) {
      if (touched.has(below)) return true;
      seen.add(below);
    }
    return false;
  };
  return forest.snapshots
    .filter((other) => other.name !== snap.name)
    .filter((other) => {
      const disk = other.disks.find((d) => d.target === target);
      if (disk === undefined || disk.chainPosition !== undefined) return false;
      return disk.overlay.path === undefined || reads(disk.overlay.path);
    })
    .map((other) => other.name);
}
