/**
 * The one way this client gives up waiting: a step (a dial, a handshake, a registration) raced against a
 * deadline and an AbortSignal. The transports, `openConnection` and event subscriptions all use it, each with
 * its own error type, so the timer and listener bookkeeping exists once. No I/O of its own.
 */

/** Why a step was given up. */
export type GiveUpReason = "timeout" | "aborted";

/** The limits of one step. */
export interface StepLimits {
  /** Milliseconds from the call until the step is given up; `Infinity` for none. */
  readonly timeoutMs: number;
  /** Aborting gives the step up at once (an already aborted signal gives it up before it is awaited). */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Resolves or rejects as `step` does, unless the deadline passes or the signal fires first: then `giveUp`
 * runs once (it undoes what the step holds and returns the error to reject with; for `aborted` it receives
 * the signal's reason) and the step's later outcome is ignored. The timer is unref'd, so a pending step
 * never keeps the process alive by itself, and the timer and abort listener are removed however the race
 * ends. Not idempotent: each call races anew.
 */
export function underDeadline<T>(
  step: Promise<T>,
  limits: StepLimits,
  giveUp: (reason: GiveUpReason, cause: unknown) => Error,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const { signal } = limits;
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      return true;
    };
    const onGiveUp = (reason: GiveUpReason, cause: unknown): void => {
      if (finish()) reject(giveUp(reason, cause));
    };
    const onAbort = (): void => onGiveUp("aborted", signal?.reason);
    if (signal?.aborted) {
      onAbort();
      step.catch(() => undefined); // given up before it could be awaited: its failure is not news
      return;
    }
    if (Number.isFinite(limits.timeoutMs)) {
      timer = setTimeout(() => onGiveUp("timeout", undefined), Math.max(0, limits.timeoutMs));
      timer.unref();
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    step.then(
      (value) => {
        if (finish()) resolve(value);
      },
      (error: unknown) => {
        if (finish()) reject(error);
      },
    );
  });
}
