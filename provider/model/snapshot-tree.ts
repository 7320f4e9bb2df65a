/**
 * Joins libvirt's snapshot metadata with the live backing chains of a domain: the snapshot tree, and for every
 * snapshot and disk the overlay it created and its point-in-time image (the layer below that overlay in the
 * live chain), plus a consistency check that says in words where metadata and the real chains disagree.
 * Pure: no I/O.
 *
 * Branches: libvirt's current snapshot and its ancestors form the live branch, the snapshots the domain's disks
 * descend from. After a revert (or during a preview) the other snapshots sit on branches the domain no longer
 * writes to: their overlays are expected outside the live chain, and that is not a problem. A reverted-to
 * snapshot that kept its children keeps its own overlay on the old branch as well, while the disk writes to a
 * new overlay (revert-plan.ts) on top of the snapshot's point-in-time image.
 */
import { type DiskModel, type DomainModel, describeImage, type ImageSource } from "./domain";
import { findSnapshotRecord, type ProjectMetadata, type SnapshotFiles } from "./metadata";
import type { SnapshotDisk, SnapshotModel } from "./snapshot";

/** One disk of one snapshot, located in the live chain. */
export interface SnapshotDiskView {
  readonly target: string;
  /** The overlay the snapshot created (the disk wrote there after the snapshot). */
  readonly overlay: ImageSource;
  /**
   * The image holding the disk's data as of the snapshot: the layer right below the overlay in the live
   * chain. Undefined when the overlay is not in the live chain: on another branch, after a revert to the
   * snapshot, or drift (then a problem says so).
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
   * Whether guest file systems were frozen for the snapshot: from the engine's record; undefined when no record
   * matches the snapshot's name and files (not created by this project), so nobody can tell.
   */
  readonly quiesced?: boolean;
  /** Why it is not quiesced, when the engine recorded a reason. */
  readonly quiesceNote?: string;
  /**
   * Present (true) when the snapshot is on another branch than the live one (neither the current snapshot nor
   * one of its ancestors), as after a revert: its overlays are not in the live chain, as expected. Absent on
   * the live branch and whenever the current snapshot is not known.
   */
  readonly otherBranch?: true;
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
 * The files `snapshot` created, as its XML names them (the overlay of each external disk, the memory file of an
 * external memory snapshot): what the engine's record of it is keyed by (metadata.ts). Pure.
 */
export function snapshotFilesOf(snapshot: SnapshotModel): SnapshotFiles {
  const overlays = snapshot.disks.flatMap((d) =>
    d.mode === "external" && d.overlay !== undefined
      ? [{ disk: d.target, path: d.overlay.path ?? describeImage(d.overlay) }]
      : [],
  );
  const memoryFile = snapshot.memory.mode === "external" ? snapshot.memory.file : undefined;
  return { overlays, ...(memoryFile === undefined ? {} : { memoryFile }) };
}

/**
 * Builds the tree and joins it with the live chains of `domain`. `snapshots` may come in any order.
 * `current` is libvirt's current snapshot (`virDomainSnapshotCurrent`); undefined when there is none or it is
 * not known, and then every snapshot is taken to be on the live branch (only a reverted-to leaf's overlay may
 * then be outside the live chain). Never throws for inconsistent input: everything odd is reported in `problems`.
 */
export function joinSnapshots(
  domain: DomainModel,
  snapshots: readonly SnapshotModel[],
  metadata: ProjectMetadata = { snapshots: [] },
  current?: string,
): SnapshotForest {
  const problems: ConsistencyProblem[] = [];
  const ordered = topologicalOrder(snapshots, problems);
  const byName = new Map(ordered.map((s) => [s.name, s]));
  const lineageNames = current === undefined || !byName.has(current) ? undefined : lineage(current, byName);
  const liveBranch = lineageNames === undefined ? undefined : new Set(lineageNames);
  const liveOrder = (lineageNames ?? []).toReversed().flatMap((name) => byName.get(name) ?? []);
  const chains = new Map(domain.disks.map((d) => [d.target, effectiveChain(d, snapshots, liveOrder)]));
  const overlays = snapshots.flatMap((s) => s.disks.flatMap((d) => (d.overlay === undefined ? [] : [d])));
  const liveDisks = snapshots.filter((s) => liveBranch?.has(s.name) ?? true).flatMap((s) => s.disks);
  const views = ordered.map((snap): SnapshotView => {
    const record = findSnapshotRecord(metadata, snap.name, snapshotFilesOf(snap));
    const otherBranch = liveBranch !== undefined && !liveBranch.has(snap.name);
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
        const chain = chains.get(d.target);
        const located = locateDisk(domain, chain, snap, d.target, d.overlay, problems);
        if (located.chainPosition !== undefined || chain === undefined) return [located];
        if (!otherBranch && !supersededByRevert(chain, d, overlays, liveDisks)) {
          problems.push(notInChain(snap.name, d.target, d.overlay, chain));
        }
        return [located];
      }),
      ...(record === undefined ? {} : { quiesced: record.quiesced }),
      ...(record?.quiesceNote === undefined ? {} : { quiesceNote: record.quiesceNote }),
      ...(otherBranch ? { otherBranch: true as const } : {}),
    };
  });
  checkOverlaysUnique(views, problems);
  checkChainOrder(views, byName, problems);
  return { snapshots: views, problems };
}

/**
 * The disk's chain as libvirt lists it, completed from snapshot metadata when libvirt did not mark its end
 * (shut-off domains, see DiskModel.chainTerminated): while the last listed layer is the overlay of a snapshot,
 * the image that snapshot recorded as the disk's image before it is the next layer down. A last layer that is
 * no snapshot's overlay but was made by a revert to live-branch snapshot S (`liveOrder`, root first) lies on
 * S's point-in-time image; S is the snapshot before the first live-branch one taken on that layer, or the
 * current snapshot when none was.
 */
function effectiveChain(
  disk: DiskModel,
  snapshots: readonly SnapshotModel[],
  liveOrder: readonly SnapshotModel[],
): ImageSource[] {
  const chain = [...disk.chain];
  if (disk.chainTerminated) return chain;
  const onDisk = (s: SnapshotModel) =>
    s.disks.find((d) => d.target === disk.target && d.overlay !== undefined);
  const live = liveOrder.flatMap((s) => onDisk(s) ?? []);
  for (;;) {
    const last = chain.at(-1);
    if (last === undefined) return chain;
    const below =
      snapshots
        .flatMap((s) => onDisk(s) ?? [])
        .find((d) => d.overlay !== undefined && sameImage(d.overlay, last))?.imageBefore ??
      revertedBelow(live, last, chain.length === 1);
    if (below === undefined || chain.some((layer) => sameImage(layer, below))) return chain;
    chain.push(below);
  }
}

/** The point-in-time image under `layer` when a revert made it (see effectiveChain); undefined otherwise. */
function revertedBelow(
  live: readonly SnapshotDisk[],
  layer: ImageSource,
  isTop: boolean,
): ImageSource | undefined {
  const takenOn = live.findIndex((d) => d.imageBefore !== undefined && sameImage(d.imageBefore, layer));
  if (takenOn < 0) return isTop ? live.at(-1)?.imageBefore : undefined;
  return live[takenOn - 1]?.imageBefore;
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
  if (position < 0) return { target, overlay };
  const below = chain[position + 1];
  return {
    target,
    overlay: chain[position] ?? overlay,
    ...(below === undefined ? {} : { pointInTime: below }),
    chainPosition: position,
  };
}

function notInChain(
  snapshot: string,
  target: string,
  overlay: ImageSource,
  chain: readonly ImageSource[],
): ConsistencyProblem {
  return {
    kind: "overlay-not-in-chain",
    snapshot,
    disk: target,
    message:
      `snapshot ${snapshot}, disk ${target}: its overlay ${describeImage(overlay)} is not in the live chain ` +
      `(${chain.map(describeImage).join(" -> ") || "no image"})`,
  };
}

/**
 * Whether a live-branch snapshot's disk, whose overlay is not in the live chain, was reverted to: the chain
 * passes through the snapshot's point-in-time image (as its saved definition records it), the layer right above
 * it is not any snapshot's overlay (a revert made it), and no live-branch snapshot was taken while the disk
 * wrote to the snapshot's own overlay (that overlay would then belong in the live chain). Anything else lost a
 * live-branch overlay, for example by a merge outside this project: real drift.
 */
function supersededByRevert(
  chain: readonly ImageSource[],
  disk: SnapshotDisk,
  overlays: readonly SnapshotDisk[],
  liveDisks: readonly SnapshotDisk[],
): boolean {
  const before = disk.imageBefore;
  const overlay = disk.overlay;
  if (before === undefined || overlay === undefined) return false;
  const taken = (d: SnapshotDisk) => d.imageBefore !== undefined && sameImage(d.imageBefore, overlay);
  if (liveDisks.some((d) => d.target === disk.target && taken(d))) return false;
  const position = chain.findIndex((layer) => sameImage(layer, before));
  const above = chain[position - 1];
  if (position < 1 || above === undefined) return false;
  return !overlays.some(
    (d) => d.target === disk.target && d.overlay !== undefined && sameImage(d.overlay, above),
  );
}

/** `name` and its ancestors, nearest first (stops at a missing parent or a cycle). */
function lineage(name: string, byName: ReadonlyMap<string, SnapshotModel>): string[] {
  const names: string[] = [];
  for (
    let at: string | undefined = name;
    at !== undefined && !names.includes(at);
    at = byName.get(at)?.parent
  ) {
    names.push(at);
  }
  return names;
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
