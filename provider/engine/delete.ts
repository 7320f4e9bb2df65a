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
import { ErrorCode } from "../libvirt/flags";
import { parseDomainXml } from "../model/domain";
import { executeDelete, journalForSteps, type MergeOptions } from "./delete-execute";
import { removeHostFile } from "./delete-files";
import {
  commitNotes,
  type DeleteView,
  failureError,
  foreignJobError,
  refusalError,
  verifyFindings,
} from "./delete-outcome";
import { type DeleteStep, type PlanDomainState, planDelete, planStateOf } from "./delete-plan";
import { type LockedView, offChainBacking, readFirst, readRestarted, readSecond } from "./delete-read";
import {
  type FileReferences,
  keepReferencedFiles,
  mergesChangingOthers,
  nativeDeleteConflicts,
  type ReferencePort,
  startReferencesOutside,
} from "./delete-references";
import { rollBackStart, startPausedForDelete, whileStartedPaused } from "./delete-start";
import { withDomainLock } from "./domain-lock";
import { resolveDomain } from "./domain-ref";
import { EngineError, EngineErrorKind, isEngineError, libvirtCodeOf } from "./errors";
import { type DomainSnapshots, forestOf, readAllSnapshots } from "./inspect";
import { newOperationId, OperationPhase } from "./journal";
import type { DomainReadPort } from "./libvirt-port";
import {
  finishInterruptedOperations,
  hasInterruptedOperation,
  type RecoveryPort,
  type RecoveryReport,
} from "./recover";
import { parsePreviewRecord } from "./revert-state";
import { scanMark } from "./scan-sharing";

export const DeleteStrategy = { BLOCKCOMMIT: "blockcommit", NATIVE: "native" } as const;
export type DeleteStrategy = (typeof DeleteStrategy)[keyof typeof DeleteStrategy];

export interface DeleteOptions extends MergeOptions {
  /** Default `blockcommit`. */
  readonly strategy?: DeleteStrategy;
}

/** Every call `deleteSnapshot` makes. */
export type DeleteSnapshotPort = RecoveryPort &
  DomainReadPort &
  ReferencePort &
  Pick<LibvirtApi, "connectGetLibVersion">;

export interface DeleteResult {
  readonly domain: string;
  readonly snapshot: string;
  /** `deleted`; `absent`: there was no such snapshot; `domain-absent`: there is no such domain. */
  readonly outcome: "deleted" | "absent" | "domain-absent";
  /** Unfinished earlier operations (a delete, a revert) that were finished (or rolled back) first. */
  readonly recovered?: RecoveryReport;
  /** Sentences for the user: what was merged where, what was noticed. */
  readonly notes: readonly string[];
  /** Sentences the user should act on: files kept because another domain still uses them. */
  readonly warnings: readonly string[];
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
 * - BLOCK_JOB_ACTIVE when a block job runs on one of the snapshot's disks (someone else's: a fresh delete has
 *   none of its own); nothing done.
 * - INVALID_REQUEST / DOMAIN_STATE when the delete is refused (another branch, or another domain on the host,
 *   reads the image the merge writes into without the merged layer above it; the snapshot is not on the live
 *   branch; a paused-domain memory snapshot with the domain paused; the state saved by an open preview: commit
 *   or undo the preview first); nothing done.
 * - LIBVIRT on a failed merge, TIMEOUT when it took longer than `timeoutMs`, ABORTED when `signal` stopped it:
 *   the job was cancelled, the chain is consistent, and the message says whether the delete was rolled back
 *   or stays recorded for the next operation to finish.
 * - VERIFY_FAILED when the chains or libvirt's tree disagree afterwards.
 * A merged overlay or memory file that another domain on the host uses is kept, with a warning (see
 * delete-references.ts). With `strategy: native` libvirt merges and removes the overlays itself, so only the
 * memory file can be kept: the delete is refused instead (INVALID_REQUEST, nothing done) when another domain
 * names one of the snapshot's overlays or an image libvirt would merge into; blockcommit handles such files.
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
        warnings: [],
      };
    }
    throw e;
  }
  return withDomainLock(ref.uuid, () => deleteSnapshotWhileLocked(port, ref, name, options, context));
}

/**
 * The body of `deleteSnapshot` for a caller that already holds the domain lock of `ref` (the lock is not
 * re-entrant: taking it again here would wait for the caller for ever). Same contract as `deleteSnapshot`
 * once the domain is resolved: finishes interrupted operations first, then plans, merges and verifies.
 */
export async function deleteSnapshotWhileLocked(
  port: DeleteSnapshotPort,
  ref: DomainRef,
  name: string,
  options: DeleteOptions = {},
  context: DeleteContext = {},
): Promise<DeleteResult> {
  // The reference scan may join one that concurrent deletes started after this point (delete-references.ts).
  const lockedAt = scanMark();
  let references = startReferencesOutside(port, ref, lockedAt);
  let first = await readFirst(port, ref);
  // Recovery reads the metadata again only when the domain XML just read says there is something to finish.
  let recovered: RecoveryReport | undefined;
  if (hasInterruptedOperation(first.model.projectMetadataXml)) {
    recovered = (await finishInterruptedOperations(port, ref, options)) ?? undefined;
    // Recovering a revert may undefine its helper domain, which the scan may have read: scan again.
    references = startReferencesOutside(port, ref, scanMark());
    first = await readFirst(port, ref);
  }
  if (context.endingPreview !== true) refuseSavedStateOfPreview(ref, name, first.model.projectMetadataXml);
  const base = { domain: ref.name, snapshot: name, ...(recovered ? { recovered } : {}) };
  const notes = recovered ? [...recovered.messages] : [];
  const before = await readSecond(port, ref, first);
  const snapshot = before.forest.snapshots.find((s) => s.name === name);
  if (snapshot === undefined) {
    const absent = `domain ${ref.name} has no snapshot ${name}`;
    return { ...base, outcome: "absent", notes: [...notes, absent], warnings: [] };
  }
  const state = planStateOf(before.state, ref.name);
  const jobs = before.jobs.filter((j) => snapshot.disks.some((d) => d.target === j.disk));
  if (jobs.length > 0) throw foreignJobError(ref.name, name, jobs);
  const done =
    options.strategy === DeleteStrategy.NATIVE
      ? await deleteNatively(port, ref, before.forest, name, state, references)
      : await deleteByCommit(port, ref, before, name, state, options, references);
  await verifyAfter(port, ref, before, name);
  return { ...base, outcome: "deleted", notes: [...notes, ...done.notes], warnings: done.warnings };
}

/** Internal knobs for preview.ts. */
export interface DeleteContext {
  /** The delete is `undoPreview` merging away the preview's saved state, which is otherwise protected. */
  readonly endingPreview?: boolean;
}

/**
 * Without its saved state a preview could not be undone: that snapshot goes only by `commit` or `undo`.
 * `projectMetadataXml` is the project's metadata of the domain XML read under the lock (every writer of it
 * holds the lock, so it is current).
 */
function refuseSavedStateOfPreview(ref: DomainRef, name: string, projectMetadataXml: string | undefined) {
  const preview = parsePreviewRecord(projectMetadataXml);
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

/** What a delete did, for the result. */
interface Done {
  readonly notes: string[];
  readonly warnings: string[];
}

/** The live domain model and the snapshot forest joined with its chains. */
async function readForest(port: DeleteSnapshotPort, ref: DomainRef): Promise<DeleteView> {
  const [xml, snapshots] = await Promise.all([port.domainGetXMLDesc(ref, 0), readAllSnapshots(port, ref)]);
  const model = parseDomainXml(xml);
  return { model, forest: forestOf(model, snapshots) };
}

/** The journal's id and start time of one delete. */
interface Operation {
  readonly id: string;
  readonly startedAt: Date;
}

async function deleteByCommit(
  port: DeleteSnapshotPort,
  ref: DomainRef,
  before: LockedView,
  name: string,
  state: PlanDomainState | "shutoff",
  options: MergeOptions,
  references: () => Promise<FileReferences>,
): Promise<Done> {
  const operation = { id: newOperationId(), startedAt: new Date() };
  if (state !== "shutoff") {
    const backing = await offChainBacking(port, ref, before);
    const planned = await planAgainstOthers(ref, { view: before, state, backing }, name, references);
    return runPlanned(port, ref, planned, name, state, options, operation);
  }
  // The persistent definition may not list the backing chains; the started domain's live XML does.
  const starting = {
    ...journalForSteps(name, [{ kind: "stop-domain" }], operation.id, operation.startedAt),
    phase: OperationPhase.STARTING,
  };
  await startPausedForDelete(port, ref, starting);
  let planned: Planned;
  try {
    const view = await readRestarted(port, ref, before);
    const backing = await offChainBacking(port, ref, view);
    planned = await planAgainstOthers(ref, { view, state: "started-paused", backing }, name, references);
  } catch (e) {
    // Nothing merged: stop the domain again. Left to recovery when this fails too (the journal stays).
    await rollBackStart(port, ref, starting).catch(() => undefined);
    throw e;
  }
  if (planned === "nothing-to-do") await rollBackStart(port, ref, starting);
  return runPlanned(port, ref, planned, name, "started-paused", options, operation);
}

/** What the planner is given besides the snapshot's name. */
interface PlanInput {
  readonly view: DeleteView;
  readonly state: PlanDomainState;
  readonly backing: ReadonlyMap<string, string>;
}

/** The steps to run and the warnings about files kept; or `nothing-to-do` when the snapshot is gone. */
type Planned = { readonly steps: DeleteStep[]; readonly warnings: string[] } | "nothing-to-do";

/**
 * Plans the delete, then waits for the reference scan and refuses a merge that changes what another domain
 * reads, and drops the removal of files other domains use (with warnings). Throws EngineError INVALID_REQUEST
 * or DOMAIN_STATE on a refusal, or the scan's error; nothing changed.
 */
async function planAgainstOthers(
  ref: DomainRef,
  input: PlanInput,
  name: string,
  references: () => Promise<FileReferences>,
): Promise<Planned> {
  const { view, state, backing } = input;
  const plan = planDelete({ domain: view.model, state, forest: view.forest, snapshot: name, backing });
  if (plan.kind === "nothing-to-do") return "nothing-to-do";
  if (plan.kind !== "steps") throw refusalError(ref.name, plan);
  const found = await references();
  const conflicts = mergesChangingOthers(plan.steps, found);
  if (conflicts.length > 0) {
    throw new EngineError({
      kind: EngineErrorKind.INVALID_REQUEST,
      domain: ref.name,
      snapshot: name,
      message:
        `cannot delete snapshot ${name} of domain ${ref.name}: ${conflicts.join("; ")}. Delete it once ` +
        "nothing else uses that image (or give the other domains their own copy); nothing was changed",
    });
  }
  return keepReferencedFiles(plan.steps, found);
}

/** Runs the planned steps under a journal (the executor records it before the first irreversible step). */
async function runPlanned(
  port: DeleteSnapshotPort,
  ref: DomainRef,
  planned: Planned,
  name: string,
  state: PlanDomainState,
  options: MergeOptions,
  operation: Operation,
): Promise<Done> {
  if (planned === "nothing-to-do")
    return { notes: [`domain ${ref.name} has no snapshot ${name}`], warnings: [] };
  const journal = journalForSteps(name, planned.steps, operation.id, operation.startedAt);
  try {
    await executeDelete(port, ref, journal, options);
  } catch (e) {
    throw failureError(ref.name, name, e, state === "paused");
  }
  return { notes: commitNotes(planned.steps), warnings: planned.warnings };
}

/**
 * libvirt's own delete (it merges with block commit itself), then the memory file libvirt 9.0 leaves behind.
 * Refuses on libvirt older than 9.0, which cannot delete external snapshots, and, with nothing changed, when
 * another domain names an overlay libvirt would remove or an image it would merge into.
 */
async function deleteNatively(
  port: DeleteSnapshotPort,
  ref: DomainRef,
  before: DomainSnapshots,
  name: string,
  state: PlanDomainState | "shutoff",
  scan: () => Promise<FileReferences>,
): Promise<Done> {
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
  // Read before anything changes: a refusal then leaves nothing to undo.
  const references = await scan();
  const conflicts = nativeDeleteConflicts(view?.disks ?? [], references);
  if (conflicts.length > 0) {
    throw new EngineError({
      kind: EngineErrorKind.INVALID_REQUEST,
      domain: ref.name,
      snapshot: name,
      message:
        `cannot delete snapshot ${name} of domain ${ref.name} natively: ${conflicts.join("; ")}. Use the ` +
        "blockcommit strategy, which keeps such files and refuses only merges that change what others read, " +
        "or remove the other domain's use first; nothing was changed",
    });
  }
  // libvirt removes the overlays itself; only the memory file it leaves behind is this delete's to remove.
  const memory: DeleteStep[] =
    view?.memory.mode === "external" && view.memory.file !== undefined
      ? [{ kind: "remove-file", path: view.memory.file, role: "memory" }]
      : [];
  const kept = keepReferencedFiles(memory, references);
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
  if (state === "shutoff") {
    const starting = journalForSteps(name, [{ kind: "stop-domain" }], newOperationId(), new Date());
    await whileStartedPaused(port, ref, { ...starting, phase: OperationPhase.STARTING }, deleteInLibvirt);
  } else {
    await deleteInLibvirt();
  }
  for (const step of kept.steps) if (step.kind === "remove-file") await removeHostFile(port, step.path);
  return { notes: [], warnings: kept.warnings };
}

/**
 * After a delete: no block job remains on any disk that had none before, and the join of libvirt's tree with
 * the live chains has no problem it did not have before (children re-parented, their overlays where the tree
 * says).
 */
async function verifyAfter(port: DeleteSnapshotPort, ref: DomainRef, before: DeleteView, name: string) {
  const findings = verifyFindings(before, await readForest(port, ref), name);
  if (findings.length === 0) return;
  throw new EngineError({
    kind: EngineErrorKind.VERIFY_FAILED,
    domain: ref.name,
    snapshot: name,
    message: `after deleting snapshot ${name} of domain ${ref.name}: ${findings.join("; ")}`,
  });
}
