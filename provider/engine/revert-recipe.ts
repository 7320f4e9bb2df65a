/**
 * The engine's own revert of an external snapshot, for libvirt versions without a native one (< 9.9), through
 * libvirt calls only (so it works the same on a remote host): stop the domain, have libvirt create a new qcow2
 * overlay on each disk's point-in-time image, switch the persistent definition to the overlays, then restore
 * the saved memory state or start the domain. The intent is recorded on the domain before the first change
 * (revert-state.ts), and `finishUnfinishedRevert` (revert-recovery.ts) cleans up after a run that was
 * killed.
 *
 * Why overlays are made by a throwaway "helper" domain: a disk-only, metadata-less snapshot of a shut-off
 * domain makes libvirt create overlays with the right backing file and format (qemu-img on the host, no shell
 * here), and the storage API of the wire protocol used by this project has no volume creation. Doing it on a
 * never-started helper whose disks open the point-in-time images, rather than on the user's domain, means the
 * user's definition never names a point-in-time image: a `virsh start` at the wrong moment cannot write into
 * a snapshot's data.
 */
import { randomUUID } from "node:crypto";
import type { DomainRef, LibvirtApi } from "../libvirt/api";
import { DomainState } from "../libvirt/api";
import { isLibvirtError } from "../libvirt/errors";
import {
  DomainCreateFlags,
  DomainXMLFlags,
  ErrorCode,
  SaveRestoreFlags,
  SnapshotCreateFlags,
} from "../libvirt/flags";
import { removeHostFile } from "./delete-files";
import { EngineError, EngineErrorKind, libvirtCodeOf } from "./errors";
import type { BranchPort } from "./revert-branch";
import type { RevertDiskPlan, RevertPlan } from "./revert-plan";
import { finishUnfinishedRevert, persistentImagePaths } from "./revert-recovery";
import {
  RevertPhase as Phase,
  type PreviewRecord,
  type RevertPhase,
  type RevertRecord,
  writeRevertRecord,
} from "./revert-state";
import { helperDomainXml, type NewSource, overlayCreateXml, restoreXml, withNewSources } from "./revert-xml";

/** Every call the recipe and its recovery make. */
export type RecipePort = BranchPort &
  Pick<
    LibvirtApi,
    | "domainGetState"
    | "domainGetMetadata"
    | "domainSetMetadata"
    | "domainDestroyFlags"
    | "domainCreateWithFlags"
    | "domainDefineXMLFlags"
    | "domainUndefineFlags"
    | "domainLookupByName"
    | "domainSnapshotCreateXML"
    | "domainSaveImageGetXMLDesc"
    | "domainRestoreFlags"
  >;

// Recovery lives in revert-recovery.ts; recover.ts, the engine's one recovery entry, reaches it through here.
export { finishUnfinishedRevert, type RevertRecoveryReport } from "./revert-recovery";

/** Prefix of the helper domains (defined for a moment, never started). */
export const HELPER_DOMAIN_PREFIX = "lvsnap-revert-";

/** Most overlay names tried when libvirt finds the planned files already exist (left by others). */
const MAX_NAME_ATTEMPTS = 10;

/** What the recipe did: the disks as reverted, and the record it left in phase `finishing`. */
export interface RecipeOutcome {
  readonly disks: readonly RevertDiskPlan[];
  readonly record: RevertRecord;
}

/**
 * Runs `plan` on the domain. `replan(taken)` plans again with overlay paths found to exist on the host.
 * `discard` (leaves first) is recorded from the start for the finishing phase, which only happens once the
 * disks are reverted. Resolves the disks as reverted (with their final overlay paths) and leaves the record
 * in phase `finishing`: the caller finishes with revert-finish.ts `finishBranch`, which clears it.
 * `finishingPreview`, when given, replaces the preview record in the same metadata write that records phase
 * `finishing` (an undo marks its preview returned there). On failure throws an EngineError LIBVIRT that names
 * the step and what it left behind; the record stays on the domain for `finishUnfinishedRevert` unless the
 * failure was cleaned up on the spot (then `leftDomainUnchanged` holds for the error). Before cleaning up, the
 * definition is read back, and an overlay it names is never removed: a define whose reply was lost may have
 * been applied (the revert then stays recorded for the next operation to complete).
 */
export async function runRecipe(
  port: RecipePort,
  ref: DomainRef,
  plan: RevertPlan,
  replan: (taken: ReadonlySet<string>) => RevertPlan,
  discard: readonly string[],
  finishingPreview?: PreviewRecord,
): Promise<RecipeOutcome> {
  const helper = `${HELPER_DOMAIN_PREFIX}${randomUUID().slice(0, 8)}`;
  let record: RevertRecord = {
    id: randomUUID(),
    snapshot: plan.snapshot,
    started: new Date().toISOString(),
    phase: Phase.STOPPING,
    helper,
    // Only overlays known to be created by this revert are recorded (from DEFINING on): recovery removes
    // the recorded ones, and a planned path may turn out to be someone else's file.
    overlays: [],
    previous: plan.disks.flatMap((d) =>
      d.previousActive?.path === undefined ? [] : [{ target: d.target, path: d.previousActive.path }],
    ),
    ...(discard.length === 0 ? {} : { discard }),
  };
  const step = async (phase: RevertPhase, changes: Partial<RevertRecord> = {}, preview?: PreviewRecord) => {
    record = { ...record, ...changes, phase };
    await writeRevertRecord(port, ref, record, preview);
  };
  let disks = plan.disks;
  // What this run created and whether the user's definition was switched yet: on a failure before the
  // switch, the overlays made so far are removed at once (the record may not list them yet).
  let created: readonly RevertDiskPlan[] = [];
  let switched = false;
  try {
    await step(Phase.STOPPING);
    const { state } = await port.domainGetState(ref);
    if (state !== DomainState.SHUTOFF) await destroyIfRunning(port, ref);
    await step(Phase.OVERLAYS);
    disks = await createOverlays(port, ref, helper, plan, replan, (made) => {
      created = made;
    });
    await step(Phase.DEFINING, { overlays: disks.map((d) => ({ target: d.target, path: d.overlayPath })) });
    const sources: NewSource[] = disks.map((d) => ({ target: d.target, overlayPath: d.overlayPath }));
    const persistentXml = await port.domainGetXMLDesc(ref, DomainXMLFlags.INACTIVE);
    await port.domainDefineXMLFlags(withNewSources(persistentXml, sources), 0);
    switched = true;
    await step(Phase.STARTING);
    if (plan.memoryFile !== undefined) {
      const saved = await port.domainSaveImageGetXMLDesc(plan.memoryFile, 0);
      const current = await port.domainGetXMLDesc(ref, DomainXMLFlags.INACTIVE);
      const flags = plan.state === "paused" ? SaveRestoreFlags.PAUSED : SaveRestoreFlags.RUNNING;
      await port.domainRestoreFlags(plan.memoryFile, restoreXml(saved, sources, current), flags);
    } else if (plan.state !== "shutoff") {
      await port.domainCreateWithFlags(ref, plan.state === "paused" ? DomainCreateFlags.START_PAUSED : 0);
    }
    await step(Phase.FINISHING, {}, finishingPreview);
    return { disks, record };
  } catch (e) {
    if (switched) throw recipeFailure(ref, plan, record.phase, "recorded", e);
    // As far as this run knows the user's definition is unchanged: undo at once rather than leave it for later.
    const left = await rollBack(port, ref, created).catch(() => "recorded" as const);
    const failure = recipeFailure(ref, plan, record.phase, left, e);
    if (left === "cleaned") unchangedFailures.add(failure);
    throw failure;
  }
}

/** What a failed run left: see `rollBack`; `recorded`: the record stays for the next operation. */
type RecipeLeft = "cleaned" | "switched" | "completed" | "recorded";

/**
 * Undoes a run that failed before it knew the definition was switched. The persistent definition is read
 * back first: a define whose reply was lost (a timeout, an aborted call, a dropped connection) may have been
 * applied all the same (api.ts). When it uses the new overlays nothing is removed and the revert stays
 * recorded for the next operation to complete ("switched"). Otherwise the overlays this run created that the
 * definition does not name are removed and the record is rolled back by `finishUnfinishedRevert`, which reads
 * the definition again: "cleaned", or "completed" when that read found the overlays in use after all. Throws,
 * the record kept, when a read or a removal fails.
 */
async function rollBack(
  port: RecipePort,
  ref: DomainRef,
  created: readonly RevertDiskPlan[],
): Promise<"cleaned" | "switched" | "completed"> {
  const named = await persistentImagePaths(port, ref);
  if (created.length > 0 && created.every((d) => named.has(d.overlayPath))) return "switched";
  for (const disk of created) if (!named.has(disk.overlayPath)) await removeHostFile(port, disk.overlayPath);
  const report = await finishUnfinishedRevert(port, ref);
  return report?.action === "finished" ? "completed" : "cleaned";
}

/**
 * Failures of a revert after which the domain is as it was: the run failed before its first change, or its
 * partial work was rolled back on the spot (the domain may have been stopped). See `leftDomainUnchanged`.
 */
const unchangedFailures = new WeakSet<object>();

/**
 * Whether `error`, thrown by a revert (runRecipe, revert.ts `revertWhileLocked`), says the revert left the
 * domain's disks and definition as they were: nothing of the revert is recorded on the domain any more.
 */
export function leftDomainUnchanged(error: unknown): boolean {
  return typeof error === "object" && error !== null && unchangedFailures.has(error);
}

/** Marks `error` as thrown before the revert changed anything (see `leftDomainUnchanged`); returns it. */
export function failedBeforeAnyChange<E>(error: E): E {
  if (typeof error === "object" && error !== null) unchangedFailures.add(error);
  return error;
}

function recipeFailure(
  ref: DomainRef,
  plan: RevertPlan,
  phase: RevertPhase,
  outcome: RecipeLeft,
  cause: unknown,
): EngineError {
  const text = cause instanceof Error ? cause.message : String(cause);
  const disk = plan.disks.find(
    (d) => text.includes(d.overlayPath) || text.includes(d.pointInTime.path ?? "\0"),
  );
  const left: Record<RevertPhase, string> = {
    stopping: "the domain may have been stopped; its disks and definition are unchanged",
    overlays: "the domain is shut off with its previous disks and definition",
    defining:
      outcome === "cleaned"
        ? "the domain is shut off with its previous disks and definition"
        : "the domain is shut off; its definition may already use the new overlays",
    starting: `the domain's definition uses the new overlays (the disks are reverted) but it could not be ${plan.memoryFile === undefined ? "started" : "restored from the memory state"}; it is shut off`,
    finishing: "the disks are reverted and the domain is in its target state",
  };
  const lostReply = "its definition was switched to the new overlays all the same (the reply was lost)";
  const next: Record<RecipeLeft, string> = {
    cleaned: "the partial work was cleaned up",
    recorded: "the revert stays recorded on the domain and the next engine operation on it cleans it up",
    switched: `${lostReply}: the revert stays recorded on the domain and the next engine operation on it completes it`,
    completed: `${lostReply}, so the revert was completed and the domain left shut off`,
  };
  return new EngineError({
    kind: EngineErrorKind.LIBVIRT,
    domain: ref.name,
    snapshot: plan.snapshot,
    ...(disk === undefined ? {} : { disk: disk.target }),
    message: `reverting domain ${ref.name} to snapshot ${plan.snapshot} failed while ${phaseWords[phase]}: ${left[phase]}; ${next[outcome]}`,
    cause,
  });
}

const phaseWords: Record<RevertPhase, string> = {
  stopping: "stopping the domain",
  overlays: "creating the new overlays",
  defining: "switching the definition to the new overlays",
  starting: "starting the domain",
  finishing: "recording that the revert is finishing",
};

/**
 * Creates the overlays through a helper domain, retrying with the next names when libvirt reports that a
 * planned file already exists (CONFIG_UNSUPPORTED). The helper is always undefined again. On success, the
 * overlays exist with their point-in-time images as backing files; on failure none of them was created.
 */
async function createOverlays(
  port: RecipePort,
  ref: DomainRef,
  helperName: string,
  first: RevertPlan,
  replan: (taken: ReadonlySet<string>) => RevertPlan,
  onCreated: (disks: readonly RevertDiskPlan[]) => void,
): Promise<readonly RevertDiskPlan[]> {
  const userXml = await port.domainGetXMLDesc(ref, DomainXMLFlags.INACTIVE);
  const helperDisks = (plan: RevertPlan) =>
    plan.disks.map((d) => ({
      target: d.target,
      ...(d.bus ? { bus: d.bus } : {}),
      image: d.pointInTime,
      overlayPath: d.overlayPath,
    }));
  const helper = await port.domainDefineXMLFlags(helperDomainXml(userXml, helperName, helperDisks(first)), 0);
  try {
    const taken = new Set<string>();
    let plan = first;
    for (let attempt = 1; ; attempt++) {
      try {
        await port.domainSnapshotCreateXML(
          helper,
          overlayCreateXml(helperDisks(plan)),
          SnapshotCreateFlags.DISK_ONLY | SnapshotCreateFlags.NO_METADATA | SnapshotCreateFlags.ATOMIC,
        );
        onCreated(plan.disks);
        return plan.disks;
      } catch (e) {
        const text = e instanceof Error ? e.message : "";
        const existing = plan.disks.find((d) => text.includes(d.overlayPath));
        if (
          libvirtCodeOf(e) !== ErrorCode.CONFIG_UNSUPPORTED ||
          existing === undefined ||
          attempt >= MAX_NAME_ATTEMPTS
        ) {
          throw e;
        }
        taken.add(existing.overlayPath);
        plan = replan(taken);
      }
    }
  } finally {
    await port.domainUndefineFlags(helper, 0);
  }
}

async function destroyIfRunning(port: RecipePort, ref: DomainRef): Promise<void> {
  try {
    await port.domainDestroyFlags(ref, 0);
  } catch (e) {
    if (!(isLibvirtError(e) && e.code === ErrorCode.OPERATION_INVALID)) throw e;
  }
}
