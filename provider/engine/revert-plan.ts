/**
 * Planning of a revert, as pure functions: which strategy the host allows, the state the domain ends in, and
 * per disk the point-in-time image the new branch starts from and the path of its new overlay. No I/O: every
 * decision is tested as a table.
 *
 * Vocabulary: snapshot S of disk d has an overlay (where d wrote after S) and a point-in-time image (the layer
 * below that overlay, holding d's data as of S). Reverting to S puts a new, empty qcow2 overlay on top of the
 * point-in-time image and makes d write there: the point-in-time image stays read-only and untouched, so S can
 * be reverted to again, and the snapshots after S stay usable as a branch.
 */
import { posix } from "node:path";
import { type DomainModel, describeImage, type ImageSource } from "../model/domain";
import type { SnapshotForest, SnapshotView } from "../model/snapshot-tree";
import { EngineError, EngineErrorKind } from "./errors";
import { defaultOverlayName, hostJoin, hostPathProblem } from "./placement";

/** The state the domain is left in: `snapshot` (default) is the state the snapshot recorded. */
export type RevertTargetState = "snapshot" | "running" | "paused" | "shutoff";

/** `auto` (default): libvirt's own revert where the host offers it, the engine's recipe otherwise. */
export type RevertStrategy = "auto" | "native" | "recipe";

export interface RevertOptions {
  readonly targetState?: RevertTargetState;
  /**
   * Keep the current state as an automatic snapshot (`auto-before-revert-<UTC time>`, with memory when the
   * domain runs) before reverting, so the revert can be undone by reverting to it. Default false: the state
   * since the last snapshot is discarded.
   */
  readonly keepCurrent?: boolean;
  /** Delete the snapshots after the target (its descendants) and their files; never merged. Default false. */
  readonly discardNewer?: boolean;
  /** Absolute directory for the new overlays; default: the directory of each disk's snapshot overlay. */
  readonly overlayDir?: string;
  readonly strategy?: RevertStrategy;
}

/** The domain state the revert leaves. */
export type RevertedState = "running" | "paused" | "shutoff";

export interface RevertDiskPlan {
  readonly target: string;
  readonly bus?: string;
  /** The image holding the disk's data as of the snapshot; it becomes the new overlay's backing file. */
  readonly pointInTime: ImageSource;
  /** The image the disk writes to before the revert (abandoned unless kept or needed). */
  readonly previousActive?: ImageSource;
  readonly overlayPath: string;
}

export interface RevertPlan {
  readonly domain: string;
  readonly snapshot: string;
  readonly state: RevertedState;
  /** The memory state to restore; undefined for a disk-only snapshot or when the target state is shutoff. */
  readonly memoryFile?: string;
  readonly disks: readonly RevertDiskPlan[];
}

/** Whether libvirt can revert external snapshots itself: `<externalSnapshot/>` in the capabilities (>= 9.9). */
export function hostRevertsExternalSnapshots(capabilitiesXml: string): boolean {
  return /<externalSnapshot\s*\/?>/.test(capabilitiesXml);
}

/** The strategy to use; asking for `native` on a host without it is an INVALID_REQUEST error. */
export function chooseStrategy(
  requested: RevertStrategy | undefined,
  nativeAvailable: boolean,
  domain: string,
  snapshot: string,
): "native" | "recipe" {
  const want = requested ?? "auto";
  if (want === "recipe") return "recipe";
  if (nativeAvailable) return "native";
  if (want === "auto") return "recipe";
  throw new EngineError({
    kind: EngineErrorKind.INVALID_REQUEST,
    domain,
    snapshot,
    message:
      `reverting domain ${domain} to snapshot ${snapshot}: the native strategy needs libvirt 9.9 or newer ` +
      "(no <externalSnapshot/> in the host capabilities); use strategy auto or recipe",
  });
}

/**
 * The state to leave the domain in. `snapshot`: running or paused as the snapshot recorded it, shut off for a
 * snapshot of a shut-off domain; a disk-only snapshot of a running or paused domain (`disk-snapshot`, libvirt
 * does not say which) comes back running, freshly booted from its disks.
 */
export function resolveTargetState(
  requested: RevertTargetState | undefined,
  snapshot: SnapshotView,
): RevertedState {
  const want = requested ?? "snapshot";
  if (want !== "snapshot") return want;
  if (snapshot.state === "paused") return "paused";
  if (snapshot.state === "running" || snapshot.state === "disk-snapshot") return "running";
  return "shutoff";
}

/** Checks the options alone; throws INVALID_REQUEST before anything is sent to the host. */
export function validateRevertOptions(domain: string, snapshot: string, options: RevertOptions): void {
  const invalid = (message: string) =>
    new EngineError({
      kind: EngineErrorKind.INVALID_REQUEST,
      domain,
      snapshot,
      message: `reverting domain ${domain} to snapshot ${snapshot}: ${message}`,
    });
  const states = ["snapshot", "running", "paused", "shutoff"];
  if (options.targetState !== undefined && !states.includes(options.targetState)) {
    throw invalid(
      `unknown target state ${JSON.stringify(options.targetState)} (one of ${states.join(", ")})`,
    );
  }
  if (options.strategy !== undefined && !["auto", "native", "recipe"].includes(options.strategy)) {
    throw invalid(`unknown strategy ${JSON.stringify(options.strategy)}`);
  }
  if (options.keepCurrent === true && options.discardNewer === true) {
    throw invalid(
      "keepCurrent and discardNewer together would keep the current state and may delete it at once; revert with keepCurrent, then delete what you do not need",
    );
  }
  if (options.overlayDir !== undefined) {
    const problem = hostPathProblem(options.overlayDir, "overlay directory");
    if (problem !== undefined) throw invalid(problem);
  }
}

export interface RevertPlanInput {
  /** The domain model read before the revert (live when it runs): the images the disks write to now. */
  readonly domain: DomainModel;
  readonly forest: SnapshotForest;
  /** The definition saved in each snapshot's XML (see `snapshotDomain`), by snapshot name. */
  readonly savedDomains: ReadonlyMap<string, DomainModel | undefined>;
  readonly snapshot: string;
  readonly options: RevertOptions;
  /** Every image path known on the host (chains, snapshot overlays, saved definitions): names avoid them. */
  readonly knownPaths: ReadonlySet<string>;
  /** Overlay paths found taken on the host by an earlier attempt (libvirt refused them as existing). */
  readonly takenPaths?: ReadonlySet<string>;
}

/**
 * Plans the recipe revert to `input.snapshot`. Throws EngineError SNAPSHOT_NOT_FOUND, BLOCK_JOB_ACTIVE, or
 * INVALID_REQUEST for snapshots this engine cannot revert to (internal ones, disks no longer in the domain,
 * point-in-time images that are neither files nor block devices).
 */
export function planRevert(input: RevertPlanInput): RevertPlan {
  const { domain, forest, snapshot: name } = input;
  const refuse = (kind: EngineErrorKind, message: string, disk?: string) =>
    new EngineError({
      kind,
      domain: domain.name,
      snapshot: name,
      ...(disk === undefined ? {} : { disk }),
      message: `cannot revert domain ${domain.name} to snapshot ${name}: ${message}`,
    });
  const view = forest.snapshots.find((s) => s.name === name);
  if (view === undefined) throw refuse(EngineErrorKind.SNAPSHOT_NOT_FOUND, "there is no such snapshot");
  const busy = domain.disks.find((d) => d.mirror !== undefined);
  if (busy?.mirror !== undefined) {
    throw refuse(
      EngineErrorKind.BLOCK_JOB_ACTIVE,
      `a block job (${busy.mirror.job}) runs on disk ${busy.target}; wait for it to end or cancel it (virsh blockjob)`,
      busy.target,
    );
  }
  if (view.memory.mode === "internal")
    throw refuse(EngineErrorKind.INVALID_REQUEST, "it is an internal snapshot");
  if (view.disks.length === 0) {
    throw refuse(
      EngineErrorKind.INVALID_REQUEST,
      "it has no external disk overlay (an internal or memory-only snapshot)",
    );
  }
  const state = resolveTargetState(input.options.targetState, view);
  const saved = input.savedDomains.get(name);
  const claimed = new Set<string>();
  const disks = view.disks.map((disk): RevertDiskPlan => {
    const live = domain.disks.find((d) => d.target === disk.target);
    if (live === undefined) {
      throw refuse(
        EngineErrorKind.INVALID_REQUEST,
        `its disk ${disk.target} is no longer in the domain`,
        disk.target,
      );
    }
    const pointInTime = saved?.disks.find((d) => d.target === disk.target)?.chain[0] ?? disk.pointInTime;
    if (pointInTime === undefined || (pointInTime.kind !== "file" && pointInTime.kind !== "block")) {
      throw refuse(
        EngineErrorKind.INVALID_REQUEST,
        `disk ${disk.target}: its point-in-time image ${pointInTime === undefined ? "is unknown" : `${describeImage(pointInTime)} is not a file or block device`}`,
        disk.target,
      );
    }
    const overlayPath = revertOverlayPath(view, disk.target, disk.overlay, input, claimed);
    claimed.add(overlayPath);
    const previous = live.chain[0];
    return {
      target: disk.target,
      ...(live.bus === undefined ? {} : { bus: live.bus }),
      pointInTime,
      ...(previous === undefined ? {} : { previousActive: previous }),
      overlayPath,
    };
  });
  const memoryFile = view.memory.mode === "external" && state !== "shutoff" ? view.memory.file : undefined;
  return {
    domain: domain.name,
    snapshot: name,
    state,
    ...(memoryFile === undefined ? {} : { memoryFile }),
    disks,
  };
}

/**
 * `<stem>.<snapshot>.revert-<n>.qcow2`, in the snapshot's overlay directory (or `overlayDir`): the stem is the
 * one the create engine gave the snapshot's overlay, and n is one more than the highest n of that name known on
 * the host, skipping paths found taken. Deterministic given the host's state; never an image already in use.
 */
export function revertOverlayPath(
  view: SnapshotView,
  target: string,
  overlay: ImageSource,
  input: Pick<RevertPlanInput, "forest" | "options" | "knownPaths" | "takenPaths">,
  claimed: ReadonlySet<string> = new Set(),
): string {
  const base = revertOverlayStem(view.name, target, overlay, input.forest);
  const dir =
    input.options.overlayDir ?? (overlay.path === undefined ? undefined : posix.dirname(overlay.path));
  if (dir === undefined) {
    throw new EngineError({
      kind: EngineErrorKind.INVALID_REQUEST,
      snapshot: view.name,
      disk: target,
      message: `snapshot ${view.name}, disk ${target}: its overlay is not a file; give overlayDir for the new overlay`,
    });
  }
  const pattern = new RegExp(`^${escapeRegExp(base)}\\.revert-(\\d+)\\.qcow2$`);
  let highest = 0;
  for (const path of [...input.knownPaths, ...(input.takenPaths ?? []), ...claimed]) {
    if (posix.dirname(path) !== dir) continue;
    const match = pattern.exec(posix.basename(path));
    if (match !== null) highest = Math.max(highest, Number(match[1]));
  }
  return hostJoin(dir, `${base}.revert-${highest + 1}.qcow2`);
}

/**
 * The file name of a revert overlay of snapshot `snapshot`, disk `target`, without `.revert-<n>.qcow2`: the
 * name the create engine gives the snapshot's own overlay, without its extension.
 */
export function revertOverlayStem(
  snapshot: string,
  target: string,
  overlay: ImageSource,
  forest: SnapshotForest,
): string {
  const names = new Set(forest.snapshots.map((s) => s.name));
  return defaultOverlayName(overlay.path ?? `${target}.qcow2`, snapshot, names).replace(/\.qcow2$/, "");
}

/** Whether the file name `name` is one of the revert overlays with this stem. */
export function isRevertOverlayName(name: string, stem: string): boolean {
  return name.startsWith(`${stem}.revert-`) && /^\d+\.qcow2$/.test(name.slice(stem.length + 8));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The descendants of `name` in the tree, children after their own descendants (leaves first). */
export function descendantsLeavesFirst(forest: SnapshotForest, name: string): string[] {
  const byName = new Map(forest.snapshots.map((s) => [s.name, s]));
  const out: string[] = [];
  const visit = (current: string) => {
    for (const childName of byName.get(current)?.children ?? []) {
      visit(childName);
      out.push(childName);
    }
  };
  visit(name);
  return out;
}

/** The name of the automatic snapshot that keeps the current state: `<prefix>-YYYYMMDDTHHMMSSmmmZ`. */
export function automaticSnapshotName(prefix: string, now: Date): string {
  return `${prefix}-${now.toISOString().replace(/[-:]/g, "").replace(".", "")}`;
}
