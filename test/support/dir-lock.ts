import { createHash } from "node:crypto";
import { mkdir, rm, stat, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/**
 * A lock between processes (test files run in parallel workers, other runs on the same machine): a directory
 * that exists while someone holds it. The holder touches it every HEARTBEAT_MS, so a lock whose holder died (a
 * killed worker leaves it behind) is recognised by its age and taken over, while a live holder keeps it however
 * long its work takes.
 */

const HEARTBEAT_MS = 15_000;
/** A lock untouched for this long was left by a holder that died. */
const STALE_MS = 4 * HEARTBEAT_MS;
const RETRY_MS = 500;

/**
 * Runs `body` while holding the lock `lockDir`, waiting up to `waitMs` for it (then throws, having run
 * nothing). Releases the lock when `body` settles, whether it resolved or threw; returns or rethrows `body`'s
 * outcome.
 */
export async function withDirLock<T>(
  lockDir: string,
  body: () => Promise<T>,
  waitMs = 20 * 60_000,
): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const touched = await stat(lockDir).then(
        (s) => s.mtimeMs,
        () => Date.now(), // released meanwhile: try again at once
      );
      if (Date.now() - touched > STALE_MS) await rm(lockDir, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`timed out after ${waitMs} ms waiting for ${lockDir}`);
      else await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(lockDir, now, now).catch(() => undefined);
  }, HEARTBEAT_MS);
  try {
    return await body();
  } finally {
    clearInterval(heartbeat);
    await rm(lockDir, { recursive: true, force: true });
  }
}

/**
 * The lock on this checkout's build output (dist/): held by whoever rewrites it (`npm run build`) or reads it
 * while it must not change (`npm pack`, the demo running the built CLI). One per checkout, in os.tmpdir().
 */
export function buildOutputLockDir(): string {
  const checkout = createHash("sha256").update(resolve(__dirname, "../..")).digest("hex").slice(0, 16);
  return join(tmpdir(), `lvsnap-build-output-${checkout}.lock`);
}
