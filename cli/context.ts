/**
 * What every command gets from the CLI around it: the libvirt connection (opened on first use with the
 * `-c/--connect` URI, closed by the CLI when the command ends), the output mode, stderr for progress, and the
 * AbortSignal that Ctrl-C fires.
 */
import type { LibvirtConnection } from "../provider/libvirt/connection";
import { openConnection } from "../provider/libvirt/open";

/** Where a command writes progress and notes (never the result: that is returned). */
export interface ProgressStream {
  write(text: string): unknown;
  /** True on a terminal: progress is then redrawn in place. */
  readonly isTTY?: boolean;
  /** Terminal width in columns, when known. */
  readonly columns?: number;
}

export interface CommandContext {
  /** The connection for this run; opened once, on first call. */
  connection(): Promise<LibvirtConnection>;
  readonly stderr: ProgressStream;
  /** Fires on the first Ctrl-C (SIGINT); long operations cancel cleanly on it. */
  readonly signal: AbortSignal;
  /** The clock, for ages in human output. */
  now(): Date;
}

/**
 * What a command hands back: the exit code (0 done, 1 failed), the document `--json` prints, and the text a
 * human sees on stdout.
 */
export interface CommandOutcome {
  readonly exitCode: 0 | 1;
  readonly document: unknown;
  readonly text: string;
}

/**
 * Opens the connection lazily and closes it once; the closer is idempotent and never throws. `signal` gives up
 * an open that is still under way (a host that does not answer) instead of waiting for its deadline.
 */
export function lazyConnection(
  uri: string | undefined,
  signal: AbortSignal,
): {
  connection: () => Promise<LibvirtConnection>;
  close: () => Promise<void>;
} {
  let opening: Promise<LibvirtConnection> | undefined;
  return {
    connection: () => {
      opening ??= openConnection(uri, { signal });
      return opening;
    },
    close: async () => {
      if (opening === undefined) return;
      const pending = opening;
      opening = undefined;
      try {
        await (await pending).close();
      } catch {
        // A connection that failed to open or is already gone needs no closing.
      }
    },
  };
}
