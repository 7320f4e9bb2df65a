/**
 * How the Pulumi layer stops waiting for a host operation when its timeout signal aborts. One helper for every
 * host method, so each says only how long it waits for the call in flight to settle.
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
