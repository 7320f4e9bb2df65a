/**
 * `deleteSnapshot`: forget a snapshot and merge its layer away, with the domain running, paused or shut off.
 *
 * Strategies
 * - `blockcommit` (default): this project's own merge, planned by delete-plan.ts and run by delete-execute.ts
 *   with a journal on the domain, so a killed run is finished by the next engine call. Works on every libvirt
 *   that has block commit, gives progress, a bandwidth limit and a timeout.
 * - `native`: libvirt's own `virDomainSnapshotDelete` (libvirt >= 9.0), plus removal of the memory file that
 *   libvirt 9.0 leaves behind. Used as the oracle of differential tests; no journal, progress or timeout.
 */
import type { DomainRef, LibvirtApi } from "../libvirt/api";
import { DomainState } from "../libvirt/api";
import { ErrorCode } from "../libvirt/flags";
import { type DomainModel, parseDomainXml } from "../model/domain";
import type { ConsistencyProblem } from "../model/snapshot-tree";
import { BlockJobErrorKind, isBlockJobError } from "./block-job";
import { executeDelete, journalForSteps, type MergeOptions } from "./delete-execute";
import { removeHostFile } from "./delete-files";
import { type DeletePlan, type PlanDomainState, planDelete, RefusalReason } from "./delete-plan";
import { rollBackStart, startPausedForDelete, whileStartedPaused } from "./delete-start";
import { withDomainLock } from "./domain-lock";
import { resolveDomain } from "./domain-ref";
import { EngineError, EngineErrorKind, isEngineError, libvirtCodeOf } from "./errors";
import { type DomainSnapshots, forestOf, readAllSnapshots } from "./inspect";
import { newOperationId, OperationPhase } from "./journal";
import type { DomainReadPort } from "./libvirt-port";
import { finishInterruptedOperations, type RecoveryPort, type RecoveryReport } from "./recover";
import { readPreviewRecord } from "./revert-state";

export const DeleteStrategy = { BLOCKCOMMIT: "blockcommit", NATIVE: "native" } as const;
export type DeleteStrategy = (typeof DeleteStrategy)[keyof typeof DeleteStrategy];

export interface DeleteOptions extends MergeOptions {
  /** Default `blockcommit`. */
  readonly strategy?: DeleteStrategy;
}

/** Every call `deleteSnapshot` makes. */
export type DeleteSnapshotPort = RecoveryPort & DomainReadPort & Pick<LibvirtApi, "connectGetLibVersion">;

export interface DeleteResult {
  readonly domain: string;
  readonly snapshot: string;
  /** `deleted`; `absent`: there was no such snapshot; `domain-absent`: there is no such domain. */
  readonly outcome: "deleted" | "absent" | "domain-absent";
  /** Unfinished earlier operations (a delete, a revert) that were finished (or rolled back) first. */
  readonly recovered?: RecoveryReport;
  /** Sentences for the user: what was merged where, what was noticed. */
  readonly notes: readonly string[];
}

/** The libvirt version (major * 1e6 + minor * 1e3 + micro) from which `native` can delete external snapshots. */
export const NATIVE_DELETE_MIN_VERSION = 9_000_000;

/**
 * Deletes snapshot `name` of `domain` (name or UUID): per disk its overlay is merged into the layer below it,
 * then its metadata is forgotten (children re-parented by libvirt) and the merged overlays and memory file are
 * removed through libvirt. The guest-visible data of the active layer and of every other snapshot stays as it
 * was; a shut-off domain is started paused for the merge and shut off again.
 *
 * Idempotent: a snapshot that does not exist resolves `absent`, a domain that does not exist `domain-absent`.
 * First finishes any unfinished operation (delete, revert) recorded on the domain. Throws EngineError:
 * - INVALID_REQUEST / DOMAIN_STATE when the delete is refused (another branch depends on the images, the
 *   snapshot is not on the live branch, a paused-domain memory snapshot with the domain paused, the state
 *   saved by an open preview: commit or undo the preview first); nothing done.
 * - LIBVIRT on a failed merge, TIMEOUT when it took longer than `timeoutMs`, ABORTED when `signal` stopped it:
 *   the job was cancelled, the chain is consistent, and the message says whether the delete was rolled back
 *   or stays recorded for the next operation to finish.
 * - VERIFY_FAILED when the chains or libvirt's tree disagree afterwards.
 */
export async function deleteSnapshot(
  port: DeleteSnapshotPort,
  domain: string,
  name: string,
  options: DeleteOptions = {},
  context: DeleteContext = {},
): Promise<DeleteResult> {
  let ref: DomainRef;
  try {
    ref = await resolveDomain(port, domain);
  } catch (e) {
    if (isEngineError(e) && e.kind === EngineErrorKind.DOMAIN_NOT_FOUND) {
      return {
        domain,
        snapshot: name,
        outcome: "domain-absent",
        notes: [`domain ${domain} no longer exists`],
      };
    }
    throw e;
  }
  return withDomainLock(ref.uuid, async () => {
    const recovered = (await finishInterruptedOperations(port, ref, options)) ?? undefined;
    if (context.endingPreview !== true) await refuseSavedStateOfPreview(port, ref, name);
    const base = { domain: ref.name, snapshot: name, ...(recovered ? { recovered } : {}) };
    const notes = recovered ? [...recovered.messages] : [];
    const before = await readForest(port, ref);
    if (!before.forest.snapshots.some((s) => s.name === name)) {
      return { ...base, outcome: "absent", notes: [...notes, `domain ${ref.name} has no snapshot ${name}`] };
    }
    if (options.strategy === DeleteStrategy.NATIVE) {
      await deleteNatively(port, ref, before.forest, name);
    } else {
      notes.push(...(await deleteByCommit(port, ref, before, name, options)));
    }
    await verifyAfter(port, ref, before.forest, name);
    return { ...base, outcome: "deleted", notes };
  });
}

/** Internal knobs for preview.ts. */
export interface DeleteContext {
  /** The delete is `undoPreview` merging away the preview's saved state, which is otherwise protected. */
  readonly endingPreview?: boolean;
}

/** Without its saved state a preview could not be undone: that snapshot goes only by `commit` or `undo`. */
async function refuseSavedStateOfPreview(port: DeleteSnapshotPort, ref: DomainRef, name: string) {
  const preview = await readPreviewRecord(port, ref);
  if (preview === null || preview.saved !== name) return;
  throw new EngineError({
    kind: EngineErrorKind.DOMAIN_STATE,
    domain: ref.name,
    snapshot: name,
    message:
      `snapshot ${name} of domain ${ref.name} holds the state saved when the preview of snapshot ` +
      `${preview.snapshot} started (${preview.started}); commit or undo the preview first`,
  });
}

interface DomainView {
  readonly model: DomainModel;
  readonly forest: DomainSnapshots;
}

/** The live domain model and the snapshot forest joined with its chains. */
async function readForest(port: DeleteSnapshotPort, ref: DomainRef): Promise<DomainView> {
  const [xml, snapshots] = await Promise.all([port.domainGetXMLDesc(ref, 0), readAllSnapshots(port, ref)]);
  const model = parseDomainXml(xml);
  return { model, forest: forestOf(model, snapshots) };
}

async function planState(port: DeleteSnapshotPort, ref: DomainRef): Promise<PlanDomainState | "shutoff"> {
  const { state } = await port.domainGetState(ref);
  if (state === DomainState.SHUTOFF || state === DomainState.CRASHED) return "shutoff";
  return state === DomainState.PAUSED ? "paused" : "running";
}

async function deleteByCommit(
  port: DeleteSnapshotPort,
  ref: DomainRef,
  before: DomainView,
  name: string,
  options: MergeOptions,
): Promise<string[]> {
  let state = await planState(port, ref);
  let view = before;
  const id = newOperationId();
  const startedAt = new Date();
  if (state === "shutoff") {
    // The persistent definition may not list the backing chains; the started domain's live XML does.
    const starting = {
      ...journalForSteps(name, [{ kind: "stop-domain" }], id, startedAt),
      phase: OperationPhase.STARTING,
    };
    await startPausedForDelete(port, ref, starting);
    state = "started-paused";
    try {
      view = await readForest(port, ref);
    } catch (e) {
      // Left to recovery when this fails too: the journal stays and the domain is still paused.
      await rollBackStart(port, ref, starting).catch(() => undefined);
      throw e;
    }
  }
  const plan = planDelete({ domain: view.model, state, forest: view.forest, snapshot: name });
  if (plan.kind !== "steps") {
    if (state === "started-paused") await finishInterruptedOperations(port, ref);
    if (plan.kind === "nothing-to-do") return [`domain ${ref.name} has no snapshot ${name}`];
    throw refusalError(ref, plan);
  }
  // The executor records the journal before the first irreversible step.
  const journal = journalForSteps(name, plan.steps, id, startedAt);
  try {
    await executeDelete(port, ref, journal, options);
  } catch (e) {
    throw failureError(ref, name, e, state === "paused");
  }
  return plan.steps.flatMap((step) =>
    step.kind === "commit"
      ? [
          `disk ${step.disk}: merged ${step.top} into ${step.base}${step.active ? " (active commit, pivoted)" : ""}`,
        ]
      : [],
  );
}

function refusalError(ref: DomainRef, plan: Extract<DeletePlan, { kind: "refused" }>): EngineError {
  return new EngineError({
    kind:
      plan.reason === RefusalReason.PAUSED_MEMORY
        ? EngineErrorKind.DOMAIN_STATE
        : EngineErrorKind.INVALID_REQUEST,
    domain: ref.name,
    snapshot: plan.snapshot,
    message: plan.message,
  });
}

function failureError(ref: DomainRef, name: string, e: unknown, paused: boolean): EngineError {
  const state = (e as { deleteState?: string }).deleteState;
  // A memory snapshot taken while paused leaves QEMU's disks read-only until the domain runs again.
  const readOnly = paused && /read-only/i.test((e as Error).message);
  const hint = readOnly ? "; resume the domain (virsh resume) and delete again" : "";
  const what =
    state === "rolled-back"
      ? `the merge was cancelled and nothing was merged: snapshot ${name} still exists (its point-in-time ` +
        "image may hold part of the newer data, so revert to it only after checking); delete it again"
      : `the delete stays recorded on the domain and the next operation on it finishes it`;
  const kind = readOnly ? EngineErrorKind.DOMAIN_STATE : stoppedKind(e);
  const ended =
    kind === EngineErrorKind.TIMEOUT
      ? "timed out"
      : kind === EngineErrorKind.ABORTED
        ? "was aborted"
        : "failed";
  return new EngineError({
    kind,
    domain: ref.name,
    snapshot: name,
    ...(isBlockJobError(e) ? { disk: e.disk } : {}),
    message:
      `deleting snapshot ${name} of domain ${ref.name} ${ended}: ` +
      `${(e as Error).message}; the chains are consistent; ${what}${hint}`,
    cause: e,
  });
}

/** TIMEOUT or ABORTED when the merge was stopped by its time limit or the caller's signal, else LIBVIRT. */
function stoppedKind(e: unknown): EngineErrorKind {
  if (isBlockJobError(e) && e.kind === BlockJobErrorKind.TIMEOUT) return EngineErrorKind.TIMEOUT;
  if (isBlockJobError(e) && e.kind === BlockJobErrorKind.ABORTED) return EngineErrorKind.ABORTED;
  return EngineErrorKind.LIBVIRT;
}

/**
 * libvirt's own delete (it merges with block commit itself), then the memory file libvirt 9.0 leaves behind.
 * Refuses on libvirt older than 9.0, which cannot delete external snapshots.
 */
async function deleteNatively(
  port: DeleteSnapshotPort,
  ref: DomainRef,
  before: DomainSnapshots,
  name: string,
): Promise<void> {
  const version = await port.connectGetLibVersion();
  if (version < NATIVE_DELETE_MIN_VERSION) {
    throw new EngineError({
      kind: EngineErrorKind.INVALID_REQUEST,
      domain: ref.name,
      snapshot: name,
      message: `the native strategy needs libvirt 9.0 or newer (the host has ${version}); use blockcommit`,
    });
  }
  const view = before.snapshots.find((s) => s.name === name);
  // Quirk: libvirt 9.0 deletes an external snapshot of a shut-off domain only when the persistent definition
  // lists the backing chain, which it does not for snapshots created offline ("could not find base disk
  // source in disk source chain", INVALID_ARG). Started paused, libvirt reads the chain from QEMU.
  const deleteInLibvirt = async () => {
    try {
      await port.domainSnapshotDelete(await port.domainSnapshotLookupByName(ref, name), 0);
    } catch (e) {
      if (libvirtCodeOf(e) !== ErrorCode.NO_DOMAIN_SNAPSHOT) {
        throw new EngineError({
          kind: EngineErrorKind.LIBVIRT,
          domain: ref.name,
          snapshot: name,
          message: `libvirt could not delete snapshot ${name} of domain ${ref.name}`,
          cause: e,
        });
      }
    }
  };
  if ((await planState(port, ref)) === "shutoff") {
    const starting = journalForSteps(name, [{ kind: "stop-domain" }], newOperationId(), new Date());
    await whileStartedPaused(port, ref, { ...starting, phase: OperationPhase.STARTING }, deleteInLibvirt);
  } else {
    await deleteInLibvirt();
  }
  if (view?.memory.mode === "external" && view.memory.file !== undefined) {
    await removeHostFile(port, view.memory.file);
  }
}

/** What a consistency problem is about (kind, snapshot, disk): the same problem before and after an operation. */
function problemKey(problem: ConsistencyProblem): string {
  return JSON.stringify([problem.kind, problem.snapshot, problem.disk ?? null]);
}

/**
 * After a delete: no block job remains on any disk, and the join of libvirt's tree with the live chains has no
 * problem it did not have before (children re-parented, their overlays where the tree says).
 */
async function verifyAfter(port: DeleteSnapshotPort, ref: DomainRef, before: DomainSnapshots, name: string) {
  const after = await readForest(port, ref);
  // By identity, never by message: a message may quote the live chain, which every merge changes.
  const known = new Set(before.problems.map(problemKey));
  const fresh = after.forest.problems.filter((p) => !known.has(problemKey(p)));
  const jobs = after.model.disks.filter((d) => d.mirror !== undefined).map((d) => d.target);
  const stillThere = after.forest.snapshots.some((s) => s.name === name);
  if (fresh.length === 0 && jobs.length === 0 && !stillThere) return;
  throw new EngineError({
    kind: EngineErrorKind.VERIFY_FAILED,
    domain: ref.name,
    snapshot: name,
    message:
      `after deleting snapshot ${name} of domain ${ref.name}: ` +
      [
        ...(stillThere ? ["the snapshot still exists"] : []),
        ...(jobs.length > 0 ? [`block jobs remain on ${jobs.join(", ")}`] : []),
        ...fresh.map((p) => p.message),
      ].join("; "),
  });
}
