/**
 * One operation at a time per domain inside this process: operations on one domain queue up in call order,
 * operations on different domains run in parallel. Keyed by UUID, because a domain can be renamed and the same
 * domain can be named by name or by UUID.
 *
 * This is an in-process lock only (shared by every copy of the package loaded in the process); other processes
 * (another `pulumi up`, the CLI, virsh) are not queued. What keeps two processes of this tool apart is the
 * owner stamp on the domain's records: recovery refuses, as `domain-busy`, an unfinished operation that a live
 * process on this host recorded (operation-owner.ts, recover.ts). The engine re-reads the host's state after
 * taking the lock, so it never acts on what it saw before waiting.
 */

/**
 * The queues live on `globalThis` under a registered symbol: Pulumi's plugin may load a second copy of this
 * package (one per resource type's serialized provider, or a program with two installs), and every copy must
 * share one lock per domain.
 */
const TAILS_KEY = Symbol.for("pulumi-libvirt-snapshot.domain-locks.v1");
const registry = globalThis as { [TAILS_KEY]?: Map<string, Promise<void>> };
registry[TAILS_KEY] ??= new Map<string, Promise<void>>();
const tails = registry[TAILS_KEY];

/**
 * Runs `operation` once every earlier operation on the same domain has settled (resolved or rejected), and
 * returns its result. The lock is released however `operation` ends. `onWait` is called synchronously when the
 * operation has to wait for another one (for progress reporting). Aborting `signal` while waiting rejects with
 * its reason without running `operation`; later operations still wait for the earlier ones.
 */
export async function withDomainLock<T>(
  uuid: string,
  operation: () => Promise<T>,
  onWait?: () => void,
  signal?: AbortSignal,
): Promise<T> {
  const key = uuid.toLowerCase();
  const previous = tails.get(key);
  let release: () => void = () => undefined;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  const tail = (previous ?? Promise.resolve()).then(() => mine);
  tails.set(key, tail);
  try {
    if (previous !== undefined) {
      onWait?.();
      await (signal === undefined ? previous : untilAborted(previous, signal));
    }
    return await operation();
  } finally {
    release();
    // The last one out removes the entry, so the map does not grow with every domain ever touched.
    if (tails.get(key) === tail) tails.delete(key);
  }
}

/** Whether an operation currently holds or waits for the lock of this domain (for tests and diagnostics). */
export function isDomainLocked(uuid: string): boolean {
  return tails.has(uuid.toLowerCase());
}

/** `waited`, or a rejection with the signal's reason as soon as it aborts (the listener is always removed). */
async function untilAborted(waited: Promise<void>, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await Promise.race([waited, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
