import { describe, expect, test } from "vitest";
import { callSlots, freshFlights, scanMark } from "../../../provider/engine/scan-sharing";

/** A promise with its resolve and reject, to settle calls in the order a test chooses. */
function deferred<T>() {
  let resolve: (value: T) => void = () => undefined;
  let reject: (reason: unknown) => void = () => undefined;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("scanMark", () => {
  test("each mark is later than every earlier one", () => {
    const [first, second, third] = [scanMark(), scanMark(), scanMark()] as const;
    expect([second > first, third > second]).toEqual([true, true]);
  });
});

describe("freshFlights", () => {
  test("a caller joins a run started after its mark; one marked after the start gets a new run", async () => {
    const flights = freshFlights<object, string>();
    const key = {};
    const started: string[] = [];
    const runs = [deferred<string>(), deferred<string>()] as const;
    const start = (i: 0 | 1) => () => {
      started.push(`run ${i}`);
      return runs[i].promise;
    };
    const lockedEarly = scanMark();
    const lockedLater = scanMark();
    const first = flights.run(key, lockedEarly, start(0));
    const joined = flights.run(key, lockedLater, start(1));
    // Locked after run 0 started: run 0 may have read the host before this caller's lock was held.
    const lockedAfterStart = scanMark();
    const fresh = flights.run(key, lockedAfterStart, start(1));
    expect(started).toEqual(["run 0", "run 1"]);
    runs[0].resolve("host as read by run 0");
    runs[1].resolve("host as read by run 1");
    expect(await Promise.all([first, joined, fresh])).toEqual([
      "host as read by run 0",
      "host as read by run 0",
      "host as read by run 1",
    ]);
  });

  test("a settled run is never joined, even by a caller marked before it started", async () => {
    const flights = freshFlights<object, number>();
    const key = {};
    let starts = 0;
    const start = async () => ++starts;
    const locked = scanMark();
    expect(await flights.run(key, locked, start)).toBe(1);
    expect(await flights.run(key, locked, start)).toBe(2);
  });

  test("runs are kept per key", async () => {
    const flights = freshFlights<object, string>();
    const pending = deferred<string>();
    const locked = scanMark();
    const one = flights.run({}, locked, () => pending.promise);
    const other = flights.run({}, locked, async () => "other connection");
    pending.resolve("one connection");
    expect(await Promise.all([one, other])).toEqual(["one connection", "other connection"]);
  });

  test("a rejection reaches every caller that joined, and the next caller starts a new run", async () => {
    const flights = freshFlights<object, string>();
    const key = {};
    const failing = deferred<string>();
    const locked = scanMark();
    const results = [
      flights.run(key, locked, () => failing.promise),
      flights.run(key, locked, async () => "not started"),
    ].map((p) => p.then(String, (e: Error) => `rejected: ${e.message}`));
    failing.reject(new Error("list failed"));
    expect(await Promise.all(results)).toEqual(["rejected: list failed", "rejected: list failed"]);
    expect(await flights.run(key, locked, async () => "new run")).toBe("new run");
  });
});

describe("callSlots", () => {
  test("at most `limit` calls pending; the others start in arrival order as slots free up", async () => {
    const slots = callSlots(2);
    const events: string[] = [];
    const calls = [deferred<void>(), deferred<void>(), deferred<void>(), deferred<void>()] as const;
    const all = calls.map((c, i) =>
      slots(async () => {
        events.push(`start ${i}`);
        try {
          await c.promise;
        } finally {
          events.push(`end ${i}`);
        }
      }).catch(() => undefined),
    );
    await settle();
    expect(events).toEqual(["start 0", "start 1"]);
    calls[1].reject(new Error("a failed call frees its slot too"));
    await settle();
    expect(events).toEqual(["start 0", "start 1", "end 1", "start 2"]);
    calls[0].resolve();
    await settle();
    expect(events).toEqual(["start 0", "start 1", "end 1", "start 2", "end 0", "start 3"]);
    calls[2].resolve();
    calls[3].resolve();
    await Promise.all(all);
    expect(events.slice(6).sort()).toEqual(["end 2", "end 3"]);
  });
});
