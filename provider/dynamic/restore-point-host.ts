import { withDomainLock } from "../engine/domain-lock";
import { resolveDomain } from "../engine/domain-ref";
import { DomainState } from "../libvirt/api";
import { givenUpOnAbort } from "./abort";
import type { ConnectionCache } from "./connections";
import { engineHostFactory } from "./engine-host";
import type { SnapshotHost } from "./host";

/**
 * The host operations of a `RestorePoint`: those of a Snapshot (create, get, delete, through the snapshot
 * engine and its per-domain lock, so restore points and Snapshot resources on the same domain take turns),
 * plus pausing and resuming domains for `consistency: paused`. Unit tests substitute a fake.
 */
export interface RestorePointHost extends SnapshotHost {
  /**
   * Pauses the domain if it runs, and says whether this call paused it: false for a domain that was already
   * paused or is shut off, which is left as it is. Waits for an operation of this process on the domain (a
   * merge, say) to finish first, so a domain is never paused in the middle of another resource's operation.
   * Rejects only when this call did not pause the domain and never will: aborting `signal` gives up the wait
   * for the lock, and inside the lock the suspend is skipped once the signal aborted; a suspend already sent
   * is awaited and reported (true), so the caller can resume every domain it paused.
   */
  pause(domain: string, signal: AbortSignal): Promise<boolean>;
  /** Resumes a domain that `pause` paused. Resolves also when it already runs again. */
  resume(domain: string, signal: AbortSignal): Promise<void>;
}

export type RestorePointHostFactory = (uri: string) => RestorePointHost;

/** The host the plugin uses: the Snapshot's engine host plus pause and resume over the same connection. */
export function restorePointHostFactory(connections: ConnectionCache): RestorePointHostFactory {
  const snapshotHostFor = engineHostFactory(connections);
  return (uri) => {
    const snapshots = snapshotHostFor(uri);
    return {
      create: (request, signal) => snapshots.create(request, signal),
      get: (domain, name, signal) => snapshots.get(domain, name, signal),
      setDescription: (domain, name, description, signal) =>
        snapshots.setDescription(domain, name, description, signal),
      delete: (request, signal) => snapshots.delete(request, signal),

      // Never raced against the signal as a whole: a pause given up by the caller while the suspend still
      // happens later would leave the domain paused for ever. Only steps that change nothing are abandoned.
      pause: async (domain, signal) => {
        const connection = await givenUpOnAbort(connections.get(uri), signal, 0);
        const ref = await givenUpOnAbort(resolveDomain(connection, domain), signal, 0);
        return withDomainLock(
          ref.uuid,
          async () => {
            const { state } = await connection.domainGetState(ref);
            if (state !== DomainState.RUNNING && state !== DomainState.BLOCKED) return false;
            signal.throwIfAborted();
            await connection.domainSuspend(ref);
            return true;
          },
          undefined,
          signal,
        );
      },

      resume: (domain, signal) =>
        // A resume given up on may still happen: the domain then runs, as it should.
        givenUpOnAbort(
          (async () => {
            const connection = await connections.get(uri);
            const ref = await resolveDomain(connection, domain);
            // Not under the domain lock: a domain paused for a snapshot runs again at once, even while another
            // operation (which works on paused domains too) waits for the lock.
            const { state } = await connection.domainGetState(ref);
            if (state === DomainState.PAUSED) await connection.domainResume(ref);
          })(),
          signal,
          0,
        ),
    };
  };
}
