import { describe, expect, it } from "vitest";
import { givenUpOnAbort } from "../../../provider/dynamic/abort";

const never = new Promise<string>(() => undefined);
const outcome = (p: Promise<unknown>) =>
  p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error: String(error) }),
  );

describe("givenUpOnAbort", () => {
  it("resolves with the operation when it finishes before the signal aborts", async () => {
    expect(await outcome(givenUpOnAbort(Promise.resolve("done"), new AbortController().signal, 0))).toEqual({
      value: "done",
    });
  });

  it("rejects with the signal's reason when it aborts first, or had already aborted", async () => {
    const timeout = new AbortController();
    const waited = outcome(givenUpOnAbort(never, timeout.signal, 0));
    timeout.abort(new Error("timed out"));
    expect(await waited).toEqual({ error: "Error: timed out" });
    expect(await outcome(givenUpOnAbort(Promise.resolve("late"), timeout.signal, 0))).toEqual({
      error: "Error: timed out",
    });
  });

  it("with a grace period, waits for the operation in flight to settle and still reports the deadline", async () => {
    const timeout = new AbortController();
    let finish: (value: string) => void = () => undefined;
    let settled = false;
    const operation = new Promise<string>((resolve) => (finish = resolve)).finally(() => (settled = true));
    const waited = outcome(givenUpOnAbort(operation, timeout.signal, 60_000));
    timeout.abort(new Error("timed out"));
    finish("made after the deadline");
    expect(await waited).toEqual({ error: "Error: timed out" });
    expect(settled).toBe(true);
  });
});
