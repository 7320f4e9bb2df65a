import { withDomainLock } from "../engine/domain-lock";
import { resolveDomain } from "../engine/domain-ref";
import { type DomainRef, DomainState } from "../libvirt/api";
import type { LibvirtConnection } from "../libvirt/connection";
import { givenUpOnAbort, messageOf } from "./abort";
import type { ConnectionCache } from "./connections";
import { createSnapshotWhileHolding, engineHostFactory } from "./engine-host";
import type { SnapshotHost } from "./host";

/**
 * The host operations of a `RestorePoint`: those of a Snapshot (create, get, delete, through the snapshot
 * engine and its per-domain lock, so restore points and Snapshot resources on the same domain take turns),
 * plus pausing and resuming domains for `consistency: paused`. Unit tests substitute a fake.
 *
 * One host serves one operation of one restore point (the provider asks for a host per call). A domain it
 * pauses stays under the engine's per-domain lock from before the pause to after the resume, and its snapshot
 * is taken under that same hold: no other operation of this process (a merge, a Revert that leaves the domain
 * paused on purpose, another restore point) runs on the domain in between, so the resume resumes only the
 * pause this restore point made. Other processes (another `pulumi up`, virsh) are not excluded by the lock.
 */
export interface RestorePointHost extends SnapshotHost {
  /**
   * Pauses the domain if it runs, and says whether this call paused it: false for a domain that was already
   * paused or is shut off, which is left as it is. Waits for an operation of this process on the domain (a
   * merge, say) to finish first, so a domain is never paused in the middle of another resource's operation.
   * On true the domain's lock stays held until `resume`: the caller must resume every domain it paused, and
   * creates on it go through this host. A suspend that fails (a client deadline, say) while the daemon paused
   * the domain anyway counts as paused (the state is read back). Rejects only when this call did not pause the
   * domain and never will: aborting `signal` gives up the wait for the lock, and inside the lock the suspend
   * is skipped once the signal aborted; a suspend already sent is awaited and reported (true), so the caller
   * can resume every domain it paused.
   */
  pause(domain: string, signal: AbortSignal): Promise<boolean>;
  /**
   * Resumes a domain that `pause` of this host paused (named as `pause` was given it; when it is still paused)
   * and releases its lock; does nothing for any other domain. A failed resume rejects; the lock is released
   * either way. Aborting `signal` gives up waiting only: the resume and the release happen.
   */
  resume(domain: string, signal: AbortSignal): Promise<void>;
}

export type RestorePointHostFactory = (uri: string) => RestorePointHost;

/**
 * The process-wide turn of the restore points that pause domains: one holds domain locks at a time. A paused
 * generation holds the locks of several domains at once, and two taken in parallel could each hold one the
 * other waits for; everything else holds one domain's lock at a time, so with this turn no wait can close a
 * cycle. It is a queue of the engine's lock registry (shared by every copy of the package in the process),
 * under a key that is not a UUID, so no domain shares it.
 */
const PAUSED_GENERATIONS_TURN = "restore-point-paused-generations";

/**
 * This host's share of the turn: taken by its first pause, given back when none of its pauses is pending and
 * none of its domains is held any more. Pauses enter synchronously when called, so the pauses of one
 * generation, requested together, share one turn.
 */
function pausedGenerationsTurn() {
  let users = 0;
  let entered: Promise<void> | null = null;
  let leave: () => void = () => undefined;
  return {
    /** Counts the caller in at once, then waits for the turn; a rejection (abort) counts it out again. */
    async enter(signal: AbortSignal): Promise<void> {
      users += 1;
      entered ??= new Promise<void>((resolve, reject) => {
        withDomainLock(
          PAUSED_GENERATIONS_TURN,
          () => {
            resolve();
            return new Promise<void>((done) => {
              leave = done;
            });
          },
          undefined,
          signal,
        ).catch(reject);
      });
      try {
        await entered;
      } catch (error) {
        this.exit();
        throw error;
      }
    },
    exit(): void {
      users -= 1;
      if (users > 0) return;
      leave();
      leave = () => undefined;
      entered = null;
    },
  };
}

/**
 * Suspends `ref` if it runs; true when it is paused by this call. Quirk: a suspend that timed out in the
 * client may still complete in the daemon (the call has the client's 60 s deadline; the daemon's suspend
 * waits for the domain's job and for QEMU, see qemuDomainSuspend in libvirt's src/qemu/qemu_driver.c, and
 * nothing cancels it). A rejected suspend is therefore followed by a read of the state, and a PAUSED domain
 * counts as paused by this call (the caller holds the domain's lock, so no operation of this process paused
 * it). When that read fails too the domain may be paused, and the error says how to check. Not covered: a
 * daemon that finishes the suspend after the read back (the domain then stays paused; the error says so).
 */
async function suspendIfRunning(
  connection: LibvirtConnection,
  ref: DomainRef,
  signal: AbortSignal,
): Promise<boolean> {
  const { state } = await connection.domainGetState(ref);
  if (state !== DomainState.RUNNING && state !== DomainState.BLOCKED) return false;
  signal.throwIfAborted();
  try {
    await connection.domainSuspend(ref);
  } catch (error) {
    let after: number;
    try {
      after = (await connection.domainGetState(ref)).state;
    } catch (readError) {
      throw new Error(
        `suspending domain ${ref.name} failed (${messageOf(error)}) and reading its state back failed too ` +
          `(${messageOf(readError)}): it may be paused; check with virsh domstate and resume it with virsh resume`,
        { cause: error },
      );
    }
    if (after !== DomainState.PAUSED) {
      throw new Error(
        `suspending domain ${ref.name} failed (${messageOf(error)}); if it shows as paused later, resume it ` +
          "with virsh resume",
        { cause: error },
      );
    }
  }
  return true;
}

/** A domain paused by a RestorePointHost, under the domain's lock until resumed. */
interface Hold {
  readonly ref: DomainRef;
  /** The last create made in the hold, settled or not (never rejects). */
  creates: Promise<unknown>;
  /** Asks for the resume, which happens under the lock; settles when the lock is released. */
  readonly resume: () => Promise<void>;
}

/** The host the plugin uses: the Snapshot's engine host plus pause and resume over the same connection. */
export function restorePointHostFactory(connections: ConnectionCache): RestorePointHostFactory {
  const snapshotHostFor = engineHostFactory(connections);
  return (uri) => {
    const snapshots = snapshotHostFor(uri);
    const turn = pausedGenerationsTurn();
    /**
     * UUIDs of the domains this host paused or is pausing -> the hold: how to resume the domain and release
     * its lock, and the creates made in the hold, one after the other as the lock would have them.
     */
    const held = new Map<string, Hold | "pausing">();
    /** The domains as `pause` was given them -> their UUIDs: `resume` needs no call to find its hold. */
    const uuidOf = new Map<string, string>();

    /**
     * Takes the domain's lock, suspends the domain and keeps the lock until `resume` asks (the resume then
     * happens under it). Resolves with whether this call paused the domain; when not, the lock is released.
     */
    function pauseAndHold(connection: LibvirtConnection, ref: DomainRef, signal: AbortSignal) {
      return new Promise<boolean>((answer, refuse) => {
        let resumeNow: () => void = () => undefined;
        const resumeAsked = new Promise<void>((resolve) => {
          resumeNow = resolve;
        });
        const hold = withDomainLock(
          ref.uuid,
          async () => {
            if (!(await suspendIfRunning(connection, ref, signal))) return;
            held.set(ref.uuid, {
              ref,
              creates: Promise.resolve(),
              resume: () => {
                resumeNow();
                return hold;
              },
            });
            answer(true);
            try {
              await resumeAsked;
              // Under the lock since the pause: a domain still paused is paused by this host.
              const { state } = await connection.domainGetState(ref);
              if (state === DomainState.PAUSED) await connection.domainResume(ref);
            } finally {
              held.delete(ref.uuid);
              turn.exit();
            }
          },
          undefined,
          signal,
        );
        // After answer(true) these settle nothing more: a failed resume reaches the caller through `resume`.
        hold.then(() => answer(false), refuse);
      });
    }

    return {
      create: async (request, signal) => {
        if (held.size === 0) return snapshots.create(request, signal);
        const connection = await givenUpOnAbort(connections.get(uri), signal, 0);
        const ref = await givenUpOnAbort(resolveDomain(connection, request.domain), signal, 0);
        const holder = held.get(ref.uuid);
        // A domain this host holds paused is snapshotted in that hold; taking its lock again would wait for ever.
        if (holder === undefined || holder === "pausing") return snapshots.create(request, signal);
        const create = () => createSnapshotWhileHolding(connection, holder.ref, request, signal);
        const created = holder.creates.then(create, create);
        holder.creates = created.catch(() => undefined);
        return created;
      },
      get: (domain, name, signal) => snapshots.get(domain, name, signal),
      setDescription: (domain, name, description, signal) =>
        snapshots.setDescription(domain, name, description, signal),
      delete: (request, signal) => snapshots.delete(request, signal),

      // Never raced against the signal as a whole: a pause given up by the caller while the suspend still
      // happens later would leave the domain paused for ever. Only steps that change nothing are abandoned.
      pause: async (domain, signal) => {
        // Counted in before the first await, so that the pauses of one generation share one turn.
        await turn.enter(signal);
        let paused = false;
        try {
          const connection = await givenUpOnAbort(connections.get(uri), signal, 0);
          const ref = await givenUpOnAbort(resolveDomain(connection, domain), signal, 0);
          // The same domain named twice (by name and by UUID) is paused once; its lock is not re-entrant.
          if (held.has(ref.uuid)) return false;
          held.set(ref.uuid, "pausing");
          try {
            paused = await pauseAndHold(connection, ref, signal);
          } finally {
            if (!paused) held.delete(ref.uuid);
          }
          if (paused) uuidOf.set(domain, ref.uuid);
          return paused;
        } finally {
          // A paused domain gives its share of the turn back when it is resumed.
          if (!paused) turn.exit();
        }
      },

      resume: async (domain, signal) => {
        const uuid = uuidOf.get(domain);
        const holder = uuid === undefined ? undefined : held.get(uuid);
        if (holder === undefined || holder === "pausing") return;
        uuidOf.delete(domain);
        // A resume given up on still happens: the domain then runs, as it should, and its lock is released.
        await givenUpOnAbort(holder.resume(), signal, 0);
      },
    };
  };
}
