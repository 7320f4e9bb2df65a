/**
 * Finishing whatever a killed or failed operation left on a domain: the one recovery entry of the engine.
 * Every operation (create, delete, revert, preview, commit, undo) calls `finishInterruptedOperations` under the
 * domain lock before it acts, and so does `verify --repair`; create first checks the domain XML it reads anyway
 * with `hasInterruptedOperation` and calls it only when that finds something to finish.
 *
 * - A delete journal says which snapshot, which disks and how far it got; the live chains and block jobs say
 *   what actually happened. The delete executor runs again from the journal: it skips what is done,
 *   re-attaches to a job that still runs (pivoting a READY one), restarts a commit that was cancelled, then
 *   deletes the metadata and the files. A delete that had only started a shut-off domain to look at its chains
 *   is rolled back (the domain is stopped again if it is still paused as the delete left it).
 * - A revert record is rolled back or completed by `finishUnfinishedRevert` (revert-recipe.ts).
 *
 * A record is only ever taken over from a process that has gone: the per-domain lock excludes operations of
 * this process only, and a record written last by another live process of this host (its owner stamp, see
 * operation-owner.ts) is an operation still running, which recovery refuses with DOMAIN_BUSY. A record
 * written on another host cannot be told from one left by a crash there, and is recovered.
 */
import type { DomainRef } from "../libvirt/api";
import { type DeletePort, executeDelete, type MergeOptions } from "./delete-execute";
import { leftBehind, mergeFailureKind } from "./delete-outcome";
import { rollBackStart } from "./delete-start";
import { EngineError, EngineErrorKind } from "./errors";
import { type DeleteJournal, OperationPhase, parseJournal } from "./journal";
import { classifyOwner } from "./operation-owner";
import { projectMetadataOwner, readProjectMetadata } from "./project-metadata";
import { finishUnfinishedRevert, type RecipePort, type RevertRecoveryReport } from "./revert-recipe";
import { parseRevertRecord } from "./revert-state";

/** Every call recovery makes. */
export type RecoveryPort = DeletePort & RecipePort;

/** What recovery did. */
export interface RecoveryReport {
  /** The unfinished delete found on the domain, finished or rolled back. */
  readonly delete?: DeleteRecoveryReport;
  /** The unfinished revert found on the domain, finished or rolled back. */
  readonly revert?: RevertRecoveryReport;
  /** One sentence per operation finished or rolled back, in the order it was done, for logs and users. */
  readonly messages: readonly string[];
}

/**
 * Finishes (or rolls back) every unfinished operation recorded on `domain`: first a delete, then a revert.
 * Resolves null when there was none. Throws an EngineError DOMAIN_BUSY, having changed nothing, when another
 * live process of this host wrote the record (it is still running that operation). The caller must hold the
 * domain lock (it is not re-entrant: never call this from inside another locked section of the same domain
 * through a locking engine function).
 * Idempotent: running it again after a failure continues from where that failure stopped. Throws an
 * EngineError when an operation can neither be finished nor rolled back, and nothing after it is attempted:
 * for a delete with the executor's kind (BLOCK_JOB_ACTIVE, TIMEOUT, ABORTED, VERIFY_FAILED or LIBVIRT) and a
 * message that says whether it stays recorded or was rolled back; for a revert with the kind of the engine's
 * error (VERIFY_FAILED when a file the definition needs is missing) or LIBVIRT, its record staying on the
 * domain.
 */
export async function finishInterruptedOperations(
  port: RecoveryPort,
  domain: DomainRef,
  options: MergeOptions = {},
): Promise<RecoveryReport | null> {
  const metadata = await readProjectMetadata(port, domain);
  if (!hasInterruptedOperation(metadata)) return null;
  refuseWhenOwnedByLiveProcess(domain, metadata);
  const deleted = await finishUnfinishedDelete(port, domain, parseJournal(metadata), options);
  const reverted = await finishUnfinishedRevert(port, domain).catch((e: unknown) => {
    throw new EngineError({
      kind: e instanceof EngineError ? e.kind : EngineErrorKind.LIBVIRT,
      domain: domain.name,
      message:
        `domain ${domain.name}: an interrupted revert recorded on the domain could not be cleaned up; it ` +
        "stays recorded and the next operation tries again",
      cause: e,
    });
  });
  if (deleted === null && reverted === null) return null;
  return {
    ...(deleted === null ? {} : { delete: deleted }),
    ...(reverted === null ? {} : { revert: reverted }),
    messages: [deleted?.message ?? [], reverted?.message ?? []].flat(),
  };
}

/**
 * Whether the project metadata `projectMetadataXml` (DomainModel.projectMetadataXml of a domain XML read under
 * the domain lock, or what `virDomainGetMetadata` returns) records an operation that
 * `finishInterruptedOperations` would finish: a delete journal or a revert record. A record this version
 * cannot read counts as one (recovery then reports it). A preview record is not one: a preview in progress is
 * a state the domain is meant to be in. Pure.
 */
export function hasInterruptedOperation(projectMetadataXml: string | undefined): boolean {
  if (projectMetadataXml === undefined) return false;
  try {
    return parseJournal(projectMetadataXml) !== null || parseRevertRecord(projectMetadataXml) !== null;
  } catch {
    return true;
  }
}

/** What recovery of a delete did. */
export interface DeleteRecoveryReport {
  /** The operation found on the domain. */
  readonly journal: DeleteJournal;
  /** `finished`: the delete was completed; `rolled-back`: nothing had been merged and nothing now is. */
  readonly action: "finished" | "rolled-back";
  /** One sentence for logs and users. */
  readonly message: string;
}

/**
 * Throws DOMAIN_BUSY when the project metadata `metadata`, which records an unfinished operation, was written
 * last by another process of this host that still runs. Reads /proc only; changes nothing.
 */
function refuseWhenOwnedByLiveProcess(domain: DomainRef, metadata: string | undefined): void {
  const verdict = classifyOwner(ownerOf(metadata));
  if (verdict.status !== "alive-here") return;
  const other = `process ${verdict.owner.pid}${verdict.command === undefined ? "" : ` (${verdict.command})`}`;
  throw new EngineError({
    kind: EngineErrorKind.DOMAIN_BUSY,
    domain: domain.name,
    message:
      `domain ${domain.name}: ${recordedOperation(metadata)} is in progress in another ${other} on this ` +
      `host (\`ps -fp ${verdict.owner.pid}\` shows its command line); nothing was changed. Wait for it to ` +
      "finish, or stop that process and try again",
  });
}

/** The owner stamp of `metadata`; undefined when there is none or the document cannot be read. */
function ownerOf(metadata: string | undefined): string | undefined {
  try {
    return projectMetadataOwner(metadata);
  } catch {
    return undefined;
  }
}

/** The unfinished operation `metadata` records, in words ("a delete of snapshot s2 (started ..., phase ...)"). */
function recordedOperation(metadata: string | undefined): string {
  try {
    const journal = parseJournal(metadata);
    if (journal !== null) {
      return `a delete of snapshot ${journal.snapshot} (started ${journal.startedAt}, phase ${journal.phase})`;
    }
    const revert = parseRevertRecord(metadata);
    if (revert !== null) {
      return `a revert to snapshot ${revert.snapshot} (started ${revert.started}, phase ${revert.phase})`;
    }
  } catch {
    // A record this version cannot read is still someone's operation.
  }
  return "an operation";
}

/** Finishes (or rolls back) the unfinished delete `journal` of `domain`; null when there is none. */
async function finishUnfinishedDelete(
  port: DeletePort,
  domain: DomainRef,
  journal: DeleteJournal | null,
  options: MergeOptions = {},
): Promise<DeleteRecoveryReport | null> {
  if (journal === null) return null;
  if (journal.phase === OperationPhase.STARTING) {
    return { journal, action: "rolled-back", message: await rollBackStart(port, domain, journal) };
  }
  try {
    await executeDelete(port, domain, journal, options);
  } catch (e) {
    throw new EngineError({
      kind: mergeFailureKind(e),
      domain: domain.name,
      snapshot: journal.snapshot,
      message:
        `domain ${domain.name}: an unfinished delete of snapshot ${journal.snapshot} (started ` +
        `${journal.startedAt}, phase ${journal.phase}) could not be finished: ${(e as Error).message}; ` +
        leftBehind(journal.snapshot, e),
      cause: e,
    });
  }
  return {
    journal,
    action: "finished",
    message:
      `finished an interrupted delete of snapshot ${journal.snapshot} of domain ${domain.name} ` +
      `(started ${journal.startedAt}, stopped in phase ${journal.phase})`,
  };
}
