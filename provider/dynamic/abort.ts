/**
 * How the Pulumi layer bounds host operations: the timeout signals of the resources' `timeouts`, how a method
 * stops waiting when its signal aborts (one helper for every host method, so each says only how long it waits
 * for the call in flight to settle), and the message that says which timeout fired.
 */

/**
 * Resolves or rejects as `operation` does, unless `signal` aborts first: then it waits at most `graceMs`
 * milliseconds more for `operation` to settle and rejects with the signal's reason either way (the deadline is
 * strict: an operation that finished after it still failed, and the caller records what it made). With
 * `graceMs` 0 it rejects as soon as the signal aborts. Rejects at once when the signal already aborted.
 *
 * Only gives up waiting: `operation` runs on. Use it for operations that change nothing on the host, or whose
 * outcome a later read sees; an operation whose late effect the caller must know about (a pause) must not be
 * abandoned this way.
 */
export async function givenUpOnAbort<T>(
  operation: Promise<T>,
  signal: AbortSignal,
  graceMs: number,
): Promise<T> {
  if (signal.aborted) throw signal.reason;
  let onAbort: () => void = () => undefined;
  const abandoned = new Promise<void>((resolve) => {
    onAbort = () => setTimeout(resolve, graceMs).unref();
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await Promise.race([operation.then(noop, noop), abandoned]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  if (signal.aborted) throw signal.reason;
  return operation;
}

function noop(): void {}

/** Budget of the existence checks around a create, which are not part of the create's own timeout. */
export const PROBE_TIMEOUT_SECONDS = 60;

/** A signal that aborts after `seconds` (rounded up to whole milliseconds). */
export function timeoutSignal(seconds: number): AbortSignal {
  return AbortSignal.timeout(Math.ceil(seconds * 1000));
}

/** Replaces a timeout rejection with one that says which timeout fired and how to raise it. */
export function explainTimeout(
  error: unknown,
  signal: AbortSignal,
  what: string,
  key: string,
  seconds: number,
): unknown {
  if (!signal.aborted) return error;
  return new Error(`${what} did not finish within ${seconds} s; raise timeouts.${key} if the host is slow`, {
    cause: error,
  });
}

/** The message of a rejection, whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
