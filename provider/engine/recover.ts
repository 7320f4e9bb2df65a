/**
 * Finishing what a killed or failed delete left on a domain. The journal on the domain says which snapshot,
 * which disks and how far it got; the live chains and block jobs say what actually happened. Recovery runs the
 * delete executor from the journal, which skips what is done, re-attaches to a job that still runs (pivoting a
 * READY one), restarts a commit that was cancelled, then deletes the metadata and the files. A delete that had
 * only started a shut-off domain to look at its chains is rolled back (the domain is stopped again).
 *
 * Engine operations on a domain call `finishUnfinishedDelete` under the domain lock before they act
 * (`deleteSnapshot` does); callers outside an operation use `recoverDomain`, which takes the lock itself.
 */
import type { DomainRef } from "../libvirt/api";
import { type DeletePort, executeDelete, isShutOff, type MergeOptions } from "./delete-execute";
import { withDomainLock } from "./domain-lock";
import { EngineError, EngineErrorKind } from "./errors";
import { type DeleteJournal, OperationPhase, readJournal, writeJournal } from "./journal";

/** What recovery did. */
export interface RecoveryReport {
  /** The operation found on the domain. */
  readonly journal: DeleteJournal;
  /** `finished`: the delete was completed; `rolled-back`: nothing had been merged and nothing now is. */
  readonly action: "finished" | "rolled-back";
  /** One sentence for logs and users. */
  readonly message: string;
}

/**
 * Finishes (or rolls back) the unfinished delete recorded on `domain`, if any; resolves null when there is
 * none. The caller must hold the domain lock (see `recoverDomain` for a locked variant). Idempotent: running it
 * again after a failure continues from where that failure stopped. Throws an EngineError when the delete can
 * neither be finished nor rolled back; the journal then stays on the domain.
 */
export async function finishUnfinishedDelete(
  port: DeletePort,
  domain: DomainRef,
  options: MergeOptions = {},
): Promise<RecoveryReport | null> {
  const journal = await readJournal(port, domain);
  if (journal === null) return null;
  if (journal.phase === OperationPhase.STARTING) {
    if (journal.startedDomain && !(await isShutOff(port, domain))) await port.domainDestroyFlags(domain, 0);
    await writeJournal(port, domain, null);
    return {
      journal,
      action: "rolled-back",
      message:
        `an interrupted delete of snapshot ${journal.snapshot} had only started domain ${domain.name} ` +
        "paused to read its chains; it was shut off again and nothing was merged",
    };
  }
  try {
    await executeDelete(port, domain, journal, options);
  } catch (e) {
    throw new EngineError({
      kind: EngineErrorKind.LIBVIRT,
      domain: domain.name,
      snapshot: journal.snapshot,
      message:
        `domain ${domain.name}: an unfinished delete of snapshot ${journal.snapshot} (started ` +
        `${journal.startedAt}, phase ${journal.phase}) could not be finished: ${(e as Error).message}. It stays ` +
        "recorded on the domain and the next operation tries again",
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

/** `finishUnfinishedDelete` under the domain lock, for callers that do not hold it. */
export function recoverDomain(
  port: DeletePort,
  domain: DomainRef,
  options: MergeOptions = {},
): Promise<RecoveryReport | null> {
  return withDomainLock(domain.uuid, () => finishUnfinishedDelete(port, domain, options));
}
