/**
 * Joins libvirt's snapshot metadata with the live backing chains of a domain: the snapshot tree, and for every
 * snapshot and disk the overlay it created and its point-in-time image (the layer below that overlay in the
 * live chain), plus a consistency check that says in words where metadata and the real chains disagree.
 * Pure: no I/O.
 */
import { type DiskModel, type DomainModel, describeImage, type ImageSource } from "./domain";
import { findSnapshotRecord, type ProjectMetadata } from "./metadata";
import type { SnapshotModel } from "./snapshot";

/** One disk of one snapshot, located in the live chain. */
export interface SnapshotDiskView {
  readonly target: string;
  /** The overlay the snapshot created (the disk wrote there after the snapshot). */
  readonly overlay: ImageSource;
  /**
   * The image holding the disk's data as of the snapshot: the layer right below the overlay in the live
   * chain. Undefined when the overlay is not in the live chain (see the problems).
   */
  readonly pointInTime?: ImageSource;
  /** Position of the overlay in the live chain (0 = active image); undefined when it is not in the chain. */
  readonly chainPosition?: number;
}

export interface SnapshotView {
  readonly name: string;
  readonly description?: string;
  readonly state: string;
  /** Seconds since the epoch. */
  readonly creationTime: number;
  readonly parent?: string;
  /** Names of the child snapshots, oldest first. */
  readonly children: readonly string[];
  readonly memory: { readonly mode: string; readonly file?: string };
  readonly disks: readonly SnapshotDiskView[];
  /**
   * Whether guest file systems were frozen for the snapshot: from the engine's record; undefined when the
   * snapshot was not created by this project (no record), so nobody can tell.
   */
  readonly quiesced?: boolean;
  /** Why it is not quiesced, when the engine recorded a reason. */
  readonly quiesceNote?: string;
}

export type ConsistencyProblemKind =
  | "unknown-disk"
  | "overlay-not-in-chain"
  | "overlay-shared"
  | "chain-order"
  | "unknown-parent";

/** A disagreement between snapshot metadata and the live chains, in words (`message`) and as data. */
export interface ConsistencyProblem {
  readonly kind: ConsistencyProblemKind;
  readonly snapshot: string;
  readonly disk?: string;
  readonly message: string;
}

export interface SnapshotForest {
  /** Every snapshot, parents before children, siblings oldest first. */
  readonly snapshots: readonly SnapshotView[];
  readonly problems: readonly ConsistencyProblem[];
}

/**
 * Builds the tree and joins it with the live chains of `domain`. `snapshots` may come in any order.
 * Never throws for inconsistent input: everything odd is reported in `problems`.
 */
export function joinSnapshots(
  domain: DomainModel,
  snapshots: readonly SnapshotModel[],
  metadata: ProjectMetadata = { snapshots: [] },
): SnapshotForest {
  const problems: ConsistencyProblem[] = [];
  const ordered = topologicalOrder(snapshots, problems);
  const byName = new Map(ordered.map((s) => [s.name, s]));
  const chains = new Map(domain.disks.map((d) => [d.target, effectiveChain(d, snapshots)]));
  const views = ordered.map((snap): SnapshotView => {
    const record = findSnapshotRecord(metadata, snap.name, snap.creationTime);
    return {
      name: snap.name,
      ...(snap.description === undefined ? {} : { description: snap.description }),
      state: snap.state,
      creationTime: snap.creationTime,
      ...(snap.parent === undefined ? {} : { parent: snap.parent }),
      children: ordered.filter((c) => c.parent === snap.name).map((c) => c.name),
      memory: snap.memory,
      disks: snap.disks.flatMap((d) => {
        if (d.mode !== "external" || d.overlay === undefined) return [];
        return [locateDisk(domain, chains.get(d.target), snap, d.target, d.overlay, problems)];
      }),
      ...(record === undefined ? {} : { quiesced: record.quiesced }),
      ...(record?.quiesceNote === undefined ? {} : { quiesceNote: record.quiesceNote }),
    };
  });
  checkOverlaysUnique(views, problems);
  checkChainOrder(views, byName, problems);
  return { snapshots: views, problems };
}

/**
 * The disk's chain as libvirt lists it, completed from snapshot metadata when libvirt did not mark its end
 * (shut-off domains, see DiskModel.chainTerminated): while the last listed layer is the overlay of a snapshot,
 * the image that snapshot recorded as the disk's image before it is the next layer down.
 */
function effectiveChain(disk: DiskModel, snapshots: readonly SnapshotModel[]): ImageSource[] {
  const chain = [...disk.chain];
  if (disk.chainTerminated) return chain;
  for (;;) {
    const last = chain.at(-1);
    if (last === undefined) return chain;
    const below = snapshots
      .flatMap((s) => s.disks)
      .find(
        (d) => d.target === disk.target && d.overlay !== undefined && sameImage(d.overlay, last),
      )?.imageBefore;
    if (below === undefined || chain.some((layer) => sameImage(layer, below))) return chain;
    chain.push(below);
  }
}

function locateDisk(
  domain: DomainModel,
  chain: readonly ImageSource[] | undefined,
  snap: SnapshotModel,
  target: string,
  overlay: ImageSource,
  problems: ConsistencyProblem[],
): SnapshotDiskView {
  if (chain === undefined) {
    problems.push({
      kind: "unknown-disk",
      snapshot: snap.name,
      disk: target,
      message: `snapshot ${snap.name} has an overlay for disk ${target}, but domain ${domain.name} has no such disk`,
    });
    return { target, overlay };
  }
  const position = chain.findIndex((layer) => sameImage(layer, overlay));
  if (position < 0) {
    problems.push({
      kind: "overlay-not-in-chain",
      snapshot: snap.name,
      disk: target,
      message:
        `snapshot ${snap.name}, disk ${target}: its overlay ${describeImage(overlay)} is not in the live chain ` +
        `(${chain.map(describeImage).join(" -> ") || "no image"})`,
    });
    return { target, overlay };
  }
  const below = chain[position + 1];
  return {
    target,
    overlay: chain[position] ?? overlay,
    ...(below === undefined ? {} : { pointInTime: below }),
    chainPosition: position,
  };
}

/** Two sources name the same image when their locations agree (format and node index are not identity). */
export function sameImage(a: ImageSource, b: ImageSource): boolean {
  return describeImage(a) === describeImage(b);
}

/** Parents before children; roots and siblings by creation time, then name. Reports dangling parents. */
function topologicalOrder(
  snapshots: readonly SnapshotModel[],
  problems: ConsistencyProblem[],
): SnapshotModel[] {
  const names = new Set(snapshots.map((s) => s.name));
  const byAge = [...snapshots].sort((a, b) => a.creationTime - b.creationTime || (a.name < b.name ? -1 : 1));
  const out: SnapshotModel[] = [];
  const placed = new Set<string>();
  const place = (parent: string | undefined): void => {
    for (const s of byAge) {
      const effectiveParent = s.parent !== undefined && names.has(s.parent) ? s.parent : undefined;
      if (effectiveParent !== parent || placed.has(s.name)) continue;
      placed.add(s.name);
      out.push(s);
      place(s.name);
    }
  };
  for (const s of byAge) {
    if (s.parent !== undefined && !names.has(s.parent)) {
      problems.push({
        kind: "unknown-parent",
        snapshot: s.name,
        message: `snapshot ${s.name} names parent ${s.parent}, which does not exist`,
      });
    }
  }
  place(undefined);
  // A parent cycle (only possible in corrupt metadata) leaves snapshots unplaced: keep them, last.
  for (const s of byAge) if (!placed.has(s.name)) out.push(s);
  return out;
}

function checkOverlaysUnique(views: readonly SnapshotView[], problems: ConsistencyProblem[]): void {
  const owners = new Map<string, string>();
  for (const view of views) {
    for (const disk of view.disks) {
      const key = `${disk.target}\u0000${describeImage(disk.overlay)}`;
      const owner = owners.get(key);
      if (owner === undefined) {
        owners.set(key, view.name);
        continue;
      }
      problems.push({
        kind: "overlay-shared",
        snapshot: view.name,
        disk: disk.target,
        message: `snapshots ${owner} and ${view.name} both claim overlay ${describeImage(disk.overlay)} of disk ${disk.target}`,
      });
    }
  }
}

/**
 * For every snapshot S and disk d in the live chain: the nearest ancestor of S with an overlay on d must be
 * the image right below S's overlay (that ancestor's overlay is where d wrote until S was taken).
 */
function checkChainOrder(
  views: readonly SnapshotView[],
  byName: ReadonlyMap<string, SnapshotModel>,
  problems: ConsistencyProblem[],
): void {
  const viewByName = new Map(views.map((v) => [v.name, v]));
  for (const view of views) {
    for (const disk of view.disks) {
      if (disk.chainPosition === undefined) continue;
      const ancestor = nearestAncestorWithDisk(view, disk.target, byName, viewByName);
      if (ancestor === undefined) continue;
      const ancestorDisk = ancestor.disks.find((d) => d.target === disk.target);
      if (ancestorDisk?.chainPosition === undefined) continue;
      if (ancestorDisk.chainPosition === disk.chainPosition + 1) continue;
      problems.push({
        kind: "chain-order",
        snapshot: view.name,
        disk: disk.target,
        message:
          `snapshot ${view.name}, disk ${disk.target}: the tree says the layer below its overlay is ` +
          `${describeImage(ancestorDisk.overlay)} (snapshot ${ancestor.name}), but the live chain has ` +
          `${disk.pointInTime === undefined ? "nothing" : describeImage(disk.pointInTime)} there`,
      });
    }
  }
}

function nearestAncestorWithDisk(
  view: SnapshotView,
  target: string,
  byName: ReadonlyMap<string, SnapshotModel>,
  viewByName: ReadonlyMap<string, SnapshotView>,
): SnapshotView | undefined {
  const seen = new Set<string>([view.name]);
  let parent = view.parent;
  while (parent !== undefined && !seen.has(parent) && byName.has(parent)) {
    seen.add(parent);
    const candidate = viewByName.get(parent);
    if (candidate?.disks.some((d) => d.target === target)) return candidate;
    parent = candidate?.parent;
  }
  return undefined;
}
