/**
 * Starting a shut-off domain paused for a delete (block jobs and libvirt's own delete need QEMU) and stopping it
 * again, under a STARTING journal so that a killed run is undone by the next operation. The domain is only
 * ever stopped while it is still paused as the delete left it.
 */
import type { DomainRef } from "../libvirt/api";
import { DomainState } from "../libvirt/api";
import { isLibvirtError } from "../libvirt/errors";
import { DomainCreateFlags, ErrorCode } from "../libvirt/flags";
import type { DeletePort } from "./delete-execute";
import { EngineError, EngineErrorKind } from "./errors";
import { type DeleteJournal, writeJournal } from "./journal";

/**
 * Destroys a domain a delete started paused, but only while it is still PAUSED, the state the delete left it
 * in: one that was resumed or started again since belongs to someone and is never hard-stopped. Resolves true
 * when the domain is shut off afterwards, false when it was left running. Idempotent.
 */
export async function stopStartedDomain(port: DeletePort, domain: DomainRef): Promise<boolean> {
  const { state } = await port.domainGetState(domain);
  if (state === DomainState.SHUTOFF || state === DomainState.CRASHED) return true;
  if (state !== DomainState.PAUSED) return false;
  try {
    await port.domainDestroyFlags(domain, 0);
  } catch (e) {
    if (!(isLibvirtError(e) && e.code === ErrorCode.OPERATION_INVALID)) throw e;
  }
  return true;
}

/**
 * Starts the shut-off `domain` paused for a delete (block jobs, and libvirt's own delete, need QEMU), after
 * recording `journal` (phase STARTING, `startedDomain`) so that a killed run is undone by `rollBackStart`.
 * When the start fails nothing was started: the journal is cleared (best effort) and the error rethrown.
 */
export async function startPausedForDelete(
  port: DeletePort,
  domain: DomainRef,
  journal: DeleteJournal,
): Promise<void> {
  await writeJournal(port, domain, journal);
  try {
    await port.domainCreateWithFlags(domain, DomainCreateFlags.START_PAUSED);
  } catch (e) {
    await writeJournal(port, domain, null).catch(() => undefined);
    throw e;
  }
}

/**
 * Runs `action` on the shut-off `domain` started paused for it (see `startPausedForDelete`), then rolls the
 * start back (`rollBackStart`) whether `action` failed or not. A rollback failure never hides the action's
 * error: the error thrown then names both, and the journal stays so the next operation stops the domain.
 */
export async function whileStartedPaused(
  port: DeletePort,
  domain: DomainRef,
  journal: DeleteJournal,
  action: () => Promise<void>,
): Promise<void> {
  await startPausedForDelete(port, domain, journal);
  let failure: { error: unknown } | undefined;
  try {
    await action();
  } catch (e) {
    failure = { error: e };
  }
  try {
    await rollBackStart(port, domain, journal);
  } catch (stopError) {
    const first = failure === undefined ? "" : `${(failure.error as Error).message}; and then `;
    throw new EngineError({
      kind: EngineErrorKind.LIBVIRT,
      domain: domain.name,
      snapshot: journal.snapshot,
      message:
        `${first}domain ${domain.name}, started paused for the delete of snapshot ${journal.snapshot}, could ` +
        `not be shut off again (${(stopError as Error).message}); the next operation on it does`,
      cause: failure?.error ?? stopError,
    });
  }
  if (failure !== undefined) throw failure.error;
}

/**
 * Undoes a STARTING journal: stops the domain the delete started if it is still paused, then clears the
 * journal. Resolves a sentence for the user. Throws when the stop or the write fails; the journal then stays
 * and the next call tries again. Idempotent.
 */
export async function rollBackStart(port: DeletePort, domain: DomainRef, journal: DeleteJournal) {
  const stopped = !journal.startedDomain || (await stopStartedDomain(port, domain));
  await writeJournal(port, domain, null);
  return stopped
    ? `an interrupted delete of snapshot ${journal.snapshot} had only started domain ${domain.name} paused ` +
        "to read its chains; it was shut off again and nothing was merged"
    : `an interrupted delete of snapshot ${journal.snapshot} had started domain ${domain.name} paused to ` +
        "read its chains and nothing was merged; the domain was left running because it is no longer paused " +
        "as the delete left it (someone resumed or started it)";
}
