import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { labUri } from "../../support/virsh";

/**
 * Runs the CLI from its sources as a real process (`node --import tsx cli/main.ts -c <lab URI> ...`), the way
 * an operator runs the built one: its own connection, its own signal handling, its exit code.
 */

const repoRoot = join(__dirname, "..", "..", "..");
const entry = join(repoRoot, "cli", "main.ts");

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cliArgv(args: readonly string[]): string[] {
  return ["--import", "tsx", entry, "-c", labUri, ...args];
}

/** A running CLI process with its output collected so far. */
export class CliProcess {
  stdout = "";
  stderr = "";
  readonly done: Promise<CliRun>;
  private readonly child: ChildProcess;

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, cliArgv(args), { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stdout += chunk;
    });
    this.child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    this.done = new Promise((resolve, reject) => {
      this.child.on("error", reject);
      this.child.on("close", (code, signal) =>
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr }),
      );
    });
  }

  /** Resolves once stderr matches `pattern`; rejects if the process ends first. */
  async waitForStderr(pattern: RegExp): Promise<void> {
    for (;;) {
      if (pattern.test(this.stderr)) return;
      const ended = await Promise.race([this.done, new Promise((r) => setTimeout(r, 50)).then(() => null)]);
      if (ended !== null && !pattern.test(this.stderr)) {
        throw new Error(`the CLI ended (${ended.code}) before stderr matched ${pattern}: ${ended.stderr}`);
      }
    }
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

/** Runs the CLI to its end. */
export function runCli(...args: string[]): Promise<CliRun> {
  return new CliProcess(args).done;
}

/** Runs the CLI with `--json` and parses stdout, which must be exactly one JSON document. */
export async function runCliJson(
  ...args: string[]
): Promise<{ code: number | null; document: unknown; stderr: string }> {
  const run = await runCli("--json", ...args);
  let document: unknown;
  try {
    document = JSON.parse(run.stdout);
  } catch (e) {
    throw new Error(`stdout of ${args.join(" ")} is not one JSON document: ${JSON.stringify(run.stdout)}`, {
      cause: e,
    });
  }
  return { code: run.code, document, stderr: run.stderr };
}

/**
 * A pseudo-terminal without native addons: Python's pty module forks the CLI onto a new terminal
 * and copies everything it writes (stdout and stderr both go to the terminal) to our stdout. The command is
 * an argv array passed through, never a shell string.
 */
const PTY_RUNNER = `
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    os.write(1, data)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
`;

/** Runs the CLI on a pseudo-terminal; `output` is what the terminal showed (stdout and stderr interleaved). */
export function runCliOnTerminal(...args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("python3", ["-c", PTY_RUNNER, process.execPath, ...cliArgv(args)], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, COLUMNS: "120" },
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}
