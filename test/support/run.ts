import { execFile } from "node:child_process";

/** What a finished child process printed. */
export interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * A child process that exited non-zero (or could not start). Keeps the argv, the exit code and both outputs so
 * a failing test says exactly which command failed and what it printed.
 */
export class RunError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    const output = (stderr.trim() || stdout.trim()).slice(0, 2000);
    super(`${argv.join(" ")} failed (exit ${exitCode}): ${output}`, options);
    this.name = "RunError";
  }
}

/**
 * Runs `command` with `args` as an argv array (never through a shell) and resolves with its output.
 * Rejects with RunError when the process exits non-zero, is killed by `timeoutMs` (default 60 s), or cannot
 * start. Leaves nothing behind but what the command itself did.
 */
export function run(command: string, args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          const code = typeof error.code === "number" || typeof error.code === "string" ? error.code : null;
          reject(new RunError([command, ...args], code, stdout, stderr, { cause: error }));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
  });
}
