import { describe, expect, it, vi } from "vitest";
import { type GiveUpReason, underDeadline } from "../../../provider/libvirt/deadline";

/** A step that settles only when told to. */
function pendingStep<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const step = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { step, resolve, reject };
}

function recorder() {
  const calls: { reason: GiveUpReason; cause: unknown }[] = [];
  const giveUp = (reason: GiveUpReason, cause: unknown): Error => {
    calls.push({ reason, cause });
    return new Error(`gave up: ${reason}`);
  };
  return { calls, giveUp };
}

const outcome = (promise: Promise<unknown>) =>
  promise.then(
    (value) => ({ value }),
    (error: Error) => ({ error: error.message }),
  );

describe("underDeadline: one race of a step against a deadline and a signal", () => {
  it("passes the step's value and failure on, and never gives up afterwards", async () => {
    vi.useFakeTimers();
    try {
      const { calls, giveUp } = recorder();
      const controller = new AbortController();
      const ok = pendingStep<string>();
      const bad = pendingStep<string>();
      const resolved = outcome(
        underDeadline(ok.step, { timeoutMs: 1000, signal: controller.signal }, giveUp),
      );
      const rejected = outcome(underDeadline(bad.step, { timeoutMs: 1000 }, giveUp));
      ok.resolve("done");
      bad.reject(new Error("step failed"));
      expect([await resolved, await rejected]).toEqual([{ value: "done" }, { error: "step failed" }]);
      vi.advanceTimersByTime(5000);
      controller.abort();
      expect(calls).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("gives up once when the deadline passes; the step's later outcome is ignored", async () => {
    vi.useFakeTimers();
    try {
      const { calls, giveUp } = recorder();
      const slow = pendingStep<string>();
      const raced = outcome(underDeadline(slow.step, { timeoutMs: 1000 }, giveUp));
      vi.advanceTimersByTime(1000);
      slow.resolve("too late");
      expect({ result: await raced, calls }).toEqual({
        result: { error: "gave up: timeout" },
        calls: [{ reason: "timeout", cause: undefined }],
      });
    } finally {
      vi.useRealTimers();
    }
  });

  it("gives up on abort with the signal's reason, and at once for a signal aborted before the race", async () => {
    const { calls, giveUp } = recorder();
    const controller = new AbortController();
    const first = outcome(
      underDeadline(
        pendingStep<string>().step,
        { timeoutMs: Number.POSITIVE_INFINITY, signal: controller.signal },
        giveUp,
      ),
    );
    controller.abort("changed my mind");
    const failing = pendingStep<string>();
    const second = outcome(
      underDeadline(failing.step, { timeoutMs: 1000, signal: AbortSignal.abort("already") }, giveUp),
    );
    failing.reject(new Error("not news")); // must not surface as an unhandled rejection
    expect({ results: [await first, await second], calls }).toEqual({
      results: [{ error: "gave up: aborted" }, { error: "gave up: aborted" }],
      calls: [
        { reason: "aborted", cause: "changed my mind" },
        { reason: "aborted", cause: "already" },
      ],
    });
  });
});
