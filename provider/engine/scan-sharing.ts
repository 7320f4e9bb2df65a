/**
 * Sharing one host-wide read between concurrent operations, and keeping such a read from flooding the daemon.
 * Used by delete-references.ts, whose scan of every domain of the host would otherwise run once per delete:
 * libvirt's list of all domains waits for the lock of every domain object of the host, and the daemon serves
 * at most 5 requests of one client at once (`max_client_requests`).
 *
 * Order, not time: a `ScanMark` is a number from one counter of this module copy, so "started after" means
 * "started later in this process's order of events", never a clock reading that could tie or go backwards.
 */

/** A point in this process's order of events (scan starts, lock takings); larger is later. */
export type ScanMark = number;

let lastMark = 0;

/** A new mark, later than every mark given before. Take it right after the lock it stands for is held. */
export function scanMark(): ScanMark {
  lastMark += 1;
  return lastMark;
}

/** See `freshFlights`. */
export interface FreshFlights<K extends object, T> {
  /**
   * The result of the newest run for `key` still in flight when that run started after `since`; otherwise
   * starts `start` (marked now) and returns its result, which later callers may then join. A rejection is
   * shared by everyone who joined; a settled run is never joined again.
   */
  run(key: K, since: ScanMark, start: () => Promise<T>): Promise<T>;
}

/**
 * Single flight with a freshness rule: a caller joins a run only if the run started after the caller's
 * `since` (for a delete, the mark it took once it held its domain lock), so what the run reads reflects every
 * change made before the caller got there. Runs are kept per `key` (a connection) in a WeakMap: nothing is held
 * for a connection nobody uses any more, and each copy of this package shares only its own runs.
 */
export function freshFlights<K extends object, T>(): FreshFlights<K, T> {
  const newest = new WeakMap<K, { readonly startedAt: ScanMark; readonly result: Promise<T> }>();
  return {
    run(key, since, start) {
      const flight = newest.get(key);
      if (flight !== undefined && flight.startedAt > since) return flight.result;
      const startedAt = scanMark();
      const result = (async () => start())();
      const entry = { startedAt, result };
      newest.set(key, entry);
      const settled = () => {
        if (newest.get(key) === entry) newest.delete(key);
      };
      result.then(settled, settled);
      return result;
    },
  };
}

/** Runs a call once fewer than the limit of calls given to it are pending; see `callSlots`. */
export type CallSlots = <T>(call: () => Promise<T>) => Promise<T>;

/**
 * At most `limit` of the calls given to the returned function pending at once; the others wait in the order
 * they came. A call that fails frees its slot like one that succeeds. Holding a slot is never nested (a call
 * given here must not itself wait for a slot), so the queue cannot deadlock.
 */
export function callSlots(limit: number): CallSlots {
  let pending = 0;
  const waiting: (() => void)[] = [];
  return async (call) => {
    if (pending >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    else pending += 1;
    try {
      return await call();
    } finally {
      // The slot passes to the next waiter directly, so no newcomer can take it in between.
      const next = waiting.shift();
      if (next === undefined) pending -= 1;
      else next();
    }
  };
}
