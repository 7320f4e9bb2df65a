#!/usr/bin/env node
/**
 * The `libvirt-snapshot` operator CLI: parses the command line, runs one command against the libvirt host,
 * prints the result (human text, or one JSON document with --json) and exits 0 (done), 1 (the operation
 * failed) or 2 (usage error). Host logic lives in the engine; this layer only translates.
 */
import { createCommand } from "./commands/create";
import { deleteCommand } from "./commands/delete";
import { listCommand } from "./commands/list";
import { commitCommand, previewCommand, undoCommand } from "./commands/preview";
import { revertCommand } from "./commands/revert";
import { verifyCommand } from "./commands/verify";
import type { CommandContext, CommandOutcome, ProgressStream } from "./context";
import { lazyConnection } from "./context";
import { describeFailure, ExitCode, exitCodeFor, formatFailure, UsageError } from "./failure";
import { type Invocation, parseCommandLine } from "./program";

/** Where a run reads and writes; `process` in production, buffers in tests. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: ProgressStream;
  /** Aborted when the user presses Ctrl-C. */
  readonly signal: AbortSignal;
}

/**
 * Runs the CLI once with `args` (without node and script) and resolves its exit code. Never throws: every
 * failure is printed (stderr, or the JSON document on stdout with --json) and mapped to an exit code.
 */
export async function runCli(args: readonly string[], io: CliIo): Promise<ExitCode> {
  const wantsJson = args.includes("--json");
  const printJson = (document: unknown) => io.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  const parsed = await parseCommandLine(args, {
    writeOut: (text) => io.stdout.write(text),
    writeErr: (text) => {
      if (!wantsJson) io.stderr.write(text);
    },
  }).catch((e: unknown) => ({ kind: "failed", error: e }) as const);
  if (parsed.kind === "failed") return report(parsed.error);
  if (parsed.kind === "exit") {
    if (wantsJson && parsed.exitCode !== ExitCode.OK) {
      printJson({ ok: false, error: describeFailure(new UsageError(parsed.message)) });
    }
    return parsed.exitCode;
  }

  const connection = lazyConnection(parsed.connect, io.signal);
  const context: CommandContext = {
    connection: connection.connection,
    stderr: io.stderr,
    signal: io.signal,
    now: () => new Date(),
  };
  try {
    const outcome = await dispatch(context, parsed.invocation);
    if (parsed.json) printJson({ ok: outcome.exitCode === 0, ...(outcome.document as object) });
    else io.stdout.write(`${outcome.text}\n`);
    return outcome.exitCode;
  } catch (e) {
    return report(e);
  } finally {
    await connection.close();
  }

  function report(error: unknown): ExitCode {
    const failure = describeFailure(error);
    if (wantsJson) printJson({ ok: false, error: failure });
    else io.stderr.write(`${formatFailure(failure)}\n`);
    return exitCodeFor(failure);
  }
}

/** Runs a parsed command. */
function dispatch(context: CommandContext, invocation: Invocation): Promise<CommandOutcome> {
  switch (invocation.command) {
    case "list":
      return listCommand(context, invocation.domain);
    case "create":
      return createCommand(context, invocation.domain, invocation.name, invocation.options);
    case "delete":
      return deleteCommand(context, invocation.domain, invocation.name, invocation.options);
    case "revert":
      return revertCommand(context, invocation.domain, invocation.name, invocation.options);
    case "preview":
      return previewCommand(context, invocation.domain, invocation.name, invocation.state);
    case "commit":
      return commitCommand(context, invocation.domain);
    case "undo":
      return undoCommand(context, invocation.domain, invocation.state);
    case "verify":
      return verifyCommand(context, invocation.domain, { repair: invocation.repair });
  }
}

/**
 * Process entry: the first Ctrl-C aborts the command's signal (a merge is cancelled; creates and reverts are
 * not interrupted half-way), a second one exits at once with 130.
 */
async function main(): Promise<void> {
  const controller = new AbortController();
  process.on("SIGINT", () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(
      "\nstopping as soon as it is safe: a merge is cancelled, other steps finish first " +
        "(Ctrl-C again quits at once; then run `libvirt-snapshot verify --repair`)\n",
    );
    controller.abort(new Error("cancelled by Ctrl-C"));
  });
  const code = await runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    signal: controller.signal,
  });
  process.exitCode = code;
}

if (require.main === module) void main();
