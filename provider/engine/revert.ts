/**
 * `revertSnapshot`: bring a domain back to an external snapshot, on any libvirt >= 9.0.
 *
 * Strategies
 * - `native`: libvirt's own `virDomainRevertToSnapshot`, where the host capabilities advertise
 *   `<externalSnapshot/>` (libvirt >= 9.9). libvirt then manages the overlays itself.
 * - `recipe`: the engine's own revert (revert-recipe.ts): stop, new overlays on the point-in-time images,
 *   redefine, restore the memory state or start. Chosen automatically where native revert is missing.
 *
 * Around either: the unfinished operations recorded on the domain are finished first, the current state is
 * optionally kept as an automatic snapshot, libvirt's current snapshot becomes the target (so the next snapshot
 * is its child), the chains are verified, and what the revert abandoned is removed: the layers the disks wrote
 * to since the last snapshot (unless something needs them) and, with `discardNewer`, the target's descendants.
 */
import type { DomainRef, LibvirtApi } from "../libvirt/api";
import { DomainState } from "../libvirt/api";
import { DomainXMLFlags, SnapshotRevertFlags } from "../libvirt/flags";
import { parseDomainXml } from "../model/domain";
import { chainMismatches } from "./chain-verify";
import { createSnapshotWhileLocked } from "./create";
import type { DeleteSnapshotPort } from "./delete";
import { withDomainLock } from "./domain-lock";
import { resolveDomain } from "./domain-ref";
import { EngineError, EngineErrorKind, isEngineError } from "./errors";
import type { DomainIdentity } from "./inspect";
import type { CreatePort } from "./libvirt-port";
import { finishInterruptedOperations } from "./recover";
import { type HostView, knownImagePaths, readHostView } from "./revert-branch";
import { finishBranch, finishingRecord } from "./revert-finish";
import {
  automaticSnapshotName,
  chooseStrategy,
  descendantsLeavesFirst,
  hostRevertsExternalSnapshots,
  planRevert,
  type RevertedState,
  type RevertOptions,
  type RevertPlan,
  validateRevertOptions,
} from "./revert-plan";
import { failedBeforeAnyChange, leftDomainUnchanged, type RecipePort, runRecipe } from "./revert-recipe";
import { type PreviewRecord, readPreviewRecord } from "./revert-state";
import { type ScanMark, scanMark } from "./scan-sharing";

/** Every call a revert (and a preview) makes. */
export type RevertPort = DeleteSnapshotPort &
  CreatePort &
  RecipePort &
  Pick<LibvirtApi, "connectGetCapabilities" | "domainRevertToSnapshot">;

export interface RevertResult {
  readonly domain: DomainIdentity;
  readonly snapshot: string;
  readonly strategy: "native" | "recipe";
  /** The state the domain was left in. */
  readonly state: RevertedState;
  /** True when the saved memory state was restored (the guest continues where the snapshot was taken). */
  readonly memoryRestored: boolean;
  /** Per disk, the new overlay the disk writes to and its backing (point-in-time) image. Recipe only. */
  readonly overlays: readonly { readonly target: string; readonly path: string; readonly backing: string }[];
  /** The automatic snapshot that keeps the state from before the revert (with `keepCurrent`). */
  readonly savedAs?: string;
  /** Snapshots deleted on purpose (`discardNewer`), leaves first. */
  readonly discarded: readonly string[];
  /** Files removed: abandoned layers, discarded overlays and memory files. */
  readonly removedFiles: readonly string[];
  /** Sentences for the user: recovered operations, what was kept and why (files another domain uses too). */
  readonly notes: readonly string[];
}

/** Internal knobs for preview.ts. */
export interface RevertContext {
  /** Prefix of the automatic snapshot name with keepCurrent. */
  readonly savedPrefix?: string;
  /** Runs under the domain lock after the automatic snapshot exists and before the revert changes anything. */
  readonly beforeRevert?: (ref: DomainRef, savedAs: string | undefined) => Promise<void>;
  /**
   * Runs under the domain lock when the revert failed and left the domain's disks and definition as they were
   * (failed before its first change, or rolled back on the spot); resolves a sentence that is added to the
   * error's message. Must not reject.
   */
  readonly afterUnchangedFailure?: (ref: DomainRef) => Promise<string>;
}

/**
 * Reverts `domain` (name or UUID) to its snapshot `snapshot`.
 *
 * - Validation of the options happens before anything is sent to the host (INVALID_REQUEST).
 * - Takes the domain lock once for the whole revert, the automatic snapshot of `keepCurrent` included (no
 *   other operation of the process runs in between); first finishes unfinished deletes and reverts recorded on
 *   the domain (an
 *   EngineError LIBVIRT when one cannot be finished: nothing else is done).
 * - Refused (nothing changed) during a preview (DOMAIN_STATE), a running block job (BLOCK_JOB_ACTIVE), for an
 *   unknown snapshot (SNAPSHOT_NOT_FOUND), and for snapshots it cannot revert to (INVALID_REQUEST).
 * - The guest-visible disks afterwards are the snapshot's point in time; a memory snapshot comes back running
 *   (or paused) from its saved state unless the target state is shutoff; the persistent definition uses the
 *   new overlays. The snapshot itself and the other snapshots stay usable.
 * - On failure: an EngineError LIBVIRT names the step and what it left (see revert-recipe.ts); once the disks
 *   are reverted, VERIFY_FAILED (chains not as planned) or LIBVIRT (they could not be read) says so, and the
 *   finishing phase stays recorded for the next operation; an automatic snapshot made with keepCurrent stays
 *   (its name is in the message).
 * - Disks the snapshot does not cover keep their current images and data.
 * - Afterwards the snapshot is libvirt's current one; when nothing else descends from it, the new overlays are
 *   recorded as its own (see `settleSnapshot`), so it can later be deleted (merged) like a fresh snapshot.
 * - Not idempotent: each call starts a new branch from the snapshot (the previous one is discarded).
 */
export async function revertSnapshot(
  port: RevertPort,
  domain: string,
  snapshot: string,
  options: RevertOptions = {},
  context: RevertContext = {},
): Promise<RevertResult> {
  validateRevertOptions(domain, snapshot, options);
  const ref = await resolveDomain(port, domain);
  return withDomainLock(ref.uuid, async () => {
    // The finishing phase's reference scan may join one that concurrent deletes started after this point.
    const lockedAt = scanMark();
    const notes = await recoverAndCheck(port, ref, snapshot);
    let savedAs: string | undefined;
    if (options.keepCurrent === true) {
      // Refused reverts are refused before the automatic snapshot is made.
      planFrom(await readHostView(port, ref), snapshot, options);
      savedAs = await keepCurrentState(port, ref, snapshot, context.savedPrefix ?? "auto-before-revert");
    }
    await context.beforeRevert?.(ref, savedAs);
    try {
      const result = await revertWhileLocked(port, ref, snapshot, options, { lockedAt });
      return { ...result, ...(savedAs === undefined ? {} : { savedAs }), notes: [...notes, ...result.notes] };
    } catch (e) {
      const after = leftDomainUnchanged(e) ? await context.afterUnchangedFailure?.(ref) : undefined;
      if (savedAs === undefined || !isEngineError(e)) throw e;
      throw new EngineError({
        kind: e.kind,
        domain: ref.name,
        snapshot,
        ...(e.disk === undefined ? {} : { disk: e.disk }),
        message: `${e.message}; the state from before the revert is kept as snapshot ${savedAs}${after === undefined ? "" : `; ${after}`}`,
        cause: e,
      });
    }
  });
}

/** Finishes recorded operations and refuses during a preview. Returns what recovery reported. */
async function recoverAndCheck(port: RevertPort, ref: DomainRef, snapshot: string): Promise<string[]> {
  const notes = [...((await finishInterruptedOperations(port, ref))?.messages ?? [])];
  const preview = await readPreviewRecord(port, ref);
  if (preview !== null) {
    throw new EngineError({
      kind: EngineErrorKind.DOMAIN_STATE,
      domain: ref.name,
      snapshot,
      message:
        `domain ${ref.name} is previewing snapshot ${preview.snapshot} (since ${preview.started}); ` +
        "commit or undo the preview before reverting",
    });
  }
  return notes;
}

function planFrom(
  view: HostView,
  snapshot: string,
  options: RevertOptions,
  taken?: ReadonlySet<string>,
): RevertPlan {
  return planRevert({
    domain: view.live,
    forest: view.forest,
    savedDomains: view.savedDomains,
    snapshot,
    options,
    knownPaths: knownImagePaths(view),
    ...(taken === undefined ? {} : { takenPaths: taken }),
  });
}

/** Creates the automatic snapshot of the current state (with memory when the domain runs or is paused). */
async function keepCurrentState(
  port: RevertPort,
  ref: DomainRef,
  target: string,
  prefix: string,
): Promise<string> {
  const { state } = await port.domainGetState(ref);
  const name = automaticSnapshotName(prefix, new Date());
  const withMemory =
    state === DomainState.RUNNING || state === DomainState.PAUSED || state === DomainState.BLOCKED;
  try {
    await createSnapshotWhileLocked(port, ref, {
      domain: ref.uuid,
      name,
      description: `State of ${ref.name} before reverting to snapshot ${target}, kept automatically`,
      memory: withMemory ? "memory" : "disk-only",
    });
  } catch (e) {
    throw new EngineError({
      kind: isEngineError(e) ? e.kind : EngineErrorKind.LIBVIRT,
      domain: ref.name,
      snapshot: target,
      message: `reverting domain ${ref.name} to snapshot ${target}: keeping the current state as snapshot ${name} failed, so nothing was reverted`,
      cause: e,
    });
  }
  return name;
}

/** What a caller that holds the domain lock tells `revertWhileLocked`. */
export interface LockedRevert {
  /** The mark the caller took once it held the domain lock (scan-sharing.ts `scanMark`). */
  readonly lockedAt: ScanMark;
  /** The snapshots to discard, leaves first, instead of those `discardNewer` would discard. */
  readonly discard?: readonly string[];
  /**
   * The preview record to write in the metadata write that records the finishing phase (an undo marks its
   * preview returned there: from that phase on the domain is in the saved state, whatever fails later).
   */
  readonly finishingPreview?: PreviewRecord;
}

/**
 * The revert itself, for callers that already hold the domain lock, finished the interrupted operations and
 * checked the preview state (revertSnapshot, preview.ts). `held.discard` (leaves first) overrides the snapshots
 * `options.discardNewer` would discard. Everything after the domain reached its final state (dropping,
 * removing abandoned layers, settling) is one finishing phase recorded on the domain until it is done: a
 * failure or kill there leaves it for the next operation to finish. Errors as `revertSnapshot`.
 */
export async function revertWhileLocked(
  port: RevertPort,
  ref: DomainRef,
  snapshot: string,
  options: RevertOptions,
  held: LockedRevert,
): Promise<Omit<RevertResult, "savedAs">> {
  const { before, plan, strategy } = await prepareRevert(port, ref, snapshot, options);
  const discard =
    held.discard ?? (options.discardNewer === true ? descendantsLeavesFirst(before.forest, snapshot) : []);
  const notes: string[] = [];
  let overlays: RevertResult["overlays"] = [];
  let finishing = finishingRecord(snapshot, discard, false);
  if (strategy === "native") {
    await revertNatively(port, ref, plan);
  } else {
    const done = await runRecipe(
      port,
      ref,
      plan,
      (taken) => planFrom(before, snapshot, options, taken),
      discard,
      held.finishingPreview,
    );
    finishing = done.record;
    overlays = done.disks.map((d) => ({
      target: d.target,
      path: d.overlayPath,
      backing: d.pointInTime.path ?? "",
    }));
    await verifyReverted(port, ref, plan, overlays);
  }
  const abandoned = finishing.previous.map((p) => p.path);
  // After a recipe the domain holds the record and preview as written: finishBranch writes them only after a
  // native revert.
  const dropped = await finishBranch(port, ref, finishing, {
    lockedAt: held.lockedAt,
    earlier: before,
    ...(held.finishingPreview === undefined ? {} : { preview: held.finishingPreview }),
  }).catch((e: unknown) => {
    throw new EngineError({
      kind: EngineErrorKind.LIBVIRT,
      domain: ref.name,
      snapshot,
      message: `domain ${ref.name} was reverted to snapshot ${snapshot}, but finishing the revert (dropping the discarded snapshots, removing what it abandoned, making the snapshot current) failed; it stays recorded on the domain and the next operation on it finishes it`,
      cause: e,
    });
  });
  const kept = abandoned.filter((p) => !dropped.removedFiles.includes(p));
  if (kept.length > 0) notes.push(`kept ${kept.join(", ")}: a snapshot still needs it`);
  notes.push(...dropped.warnings);
  return {
    domain: { name: before.live.name, uuid: before.live.uuid },
    snapshot,
    strategy,
    state: plan.state,
    memoryRestored: plan.memoryFile !== undefined,
    overlays,
    discarded: dropped.dropped,
    removedFiles: dropped.removedFiles,
    notes,
  };
}

/**
 * Reads the host, plans the revert and chooses its strategy. Changes nothing: its failures are marked as
 * leaving the domain as it was (revert-recipe.ts `leftDomainUnchanged`).
 */
async function prepareRevert(
  port: RevertPort,
  ref: DomainRef,
  snapshot: string,
  options: RevertOptions,
): Promise<{ before: HostView; plan: RevertPlan; strategy: "native" | "recipe" }> {
  try {
    const before = await readHostView(port, ref);
    const plan = planFrom(before, snapshot, options);
    const capabilities = await port.connectGetCapabilities();
    const strategy = chooseStrategy(
      options.strategy,
      hostRevertsExternalSnapshots(capabilities),
      ref.name,
      snapshot,
    );
    return { before, plan, strategy };
  } catch (e) {
    throw failedBeforeAnyChange(e);
  }
}

/** libvirt's own revert (>= 9.9), into the planned state. */
async function revertNatively(port: RevertPort, ref: DomainRef, plan: RevertPlan): Promise<void> {
  const flags =
    plan.state === "running"
      ? SnapshotRevertFlags.RUNNING
      : plan.state === "paused"
        ? SnapshotRevertFlags.PAUSED
        : 0;
  try {
    await port.domainRevertToSnapshot(await port.domainSnapshotLookupByName(ref, plan.snapshot), flags);
    if (plan.state === "shutoff" && (await port.domainGetState(ref)).state !== DomainState.SHUTOFF) {
      await port.domainDestroyFlags(ref, 0);
    }
  } catch (e) {
    throw new EngineError({
      kind: EngineErrorKind.LIBVIRT,
      domain: ref.name,
      snapshot: plan.snapshot,
      message: `libvirt could not revert domain ${ref.name} to snapshot ${plan.snapshot}; libvirt's revert changes nothing when it fails before starting the domain`,
      cause: e,
    });
  }
}

/**
 * The live chains must start with the new overlay and, once QEMU opened them, the point-in-time image. Runs
 * after the recipe recorded its finishing phase: VERIFY_FAILED when the chains differ, an EngineError LIBVIRT
 * when they cannot be read; either way the record stays for the next operation to finish.
 */
async function verifyReverted(
  port: RevertPort,
  ref: DomainRef,
  plan: RevertPlan,
  overlays: RevertResult["overlays"],
): Promise<void> {
  const started = plan.state !== "shutoff";
  const left = "the rest of the revert stays recorded on the domain and the next operation on it finishes it";
  const xml = await port.domainGetXMLDesc(ref, started ? 0 : DomainXMLFlags.INACTIVE).catch((e: unknown) => {
    throw new EngineError({
      kind: EngineErrorKind.LIBVIRT,
      domain: ref.name,
      snapshot: plan.snapshot,
      message: `domain ${ref.name} was reverted to snapshot ${plan.snapshot}, but reading its chains to verify them failed; ${left}`,
      cause: e,
    });
  });
  const problems = chainMismatches(
    parseDomainXml(xml),
    overlays.map((o) => ({ target: o.target, top: started ? [o.path, o.backing] : [o.path] })),
  );
  if (problems.length === 0) return;
  throw new EngineError({
    kind: EngineErrorKind.VERIFY_FAILED,
    domain: ref.name,
    snapshot: plan.snapshot,
    message: `domain ${ref.name} was reverted to snapshot ${plan.snapshot}, but its chains are not as planned: ${problems.join("; ")}; ${left}`,
  });
}
