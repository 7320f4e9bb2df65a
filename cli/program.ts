/**
 * The command line: commands, options, help and argument checks (commander). Parsing only: it turns argv into
 * the command to run and the global options, and runs nothing on the host.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import type { CreateOptions } from "./commands/create";
import type { DeleteCommandOptions } from "./commands/delete";
import type { StateOption } from "./commands/preview";
import type { RevertCommandOptions } from "./commands/revert";
import { ExitCode } from "./failure";

/** A parsed command line: which command, with which arguments and options (checked, with defaults). */
export type Invocation =
  | { readonly command: "list"; readonly domain: string }
  | {
      readonly command: "create";
      readonly domain: string;
      readonly name: string;
      readonly options: CreateOptions;
    }
  | {
      readonly command: "delete";
      readonly domain: string;
      readonly name: string;
      readonly options: DeleteCommandOptions;
    }
  | {
      readonly command: "revert";
      readonly domain: string;
      readonly name: string;
      readonly options: RevertCommandOptions;
    }
  | {
      readonly command: "preview";
      readonly domain: string;
      readonly name: string;
      readonly state: StateOption;
    }
  | { readonly command: "commit"; readonly domain: string }
  | { readonly command: "undo"; readonly domain: string; readonly state: StateOption }
  | { readonly command: "verify"; readonly domain: string; readonly repair: boolean };

/** What parsing produced: a command to run, or an exit with what commander printed (help, usage error). */
export type ParseResult =
  | {
      readonly kind: "run";
      readonly invocation: Invocation;
      readonly connect?: string;
      readonly json: boolean;
    }
  | {
      readonly kind: "exit";
      readonly exitCode: ExitCode;
      /** For a usage error: what is wrong, in one line (commander has printed it with the usage). */
      readonly message: string;
    };

/** Text commander would print, redirected so the caller decides (stdout for help, stderr or JSON for errors). */
export interface ParseOutput {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

const EXAMPLES = `
Examples:
  libvirt-snapshot list web1
  libvirt-snapshot create web1 before-deploy --description "release 4.2"
  libvirt-snapshot -c qemu+ssh://root@host/system delete web1 before-deploy --bandwidth 52428800
  libvirt-snapshot revert web1 before-deploy --keep-current
  libvirt-snapshot preview web1 before-deploy   (then: commit web1, or undo web1)
  libvirt-snapshot verify --repair web1

Exit codes: 0 done, 1 the operation failed (or verify found a problem), 2 usage error.
The connection URI defaults to LIBVIRT_DEFAULT_URI, then qemu:///system.`;

/**
 * Parses `args` (without the node and script paths). Never exits the process and never throws for user input:
 * help and usage errors come back as `exit` results, with commander's text written to `output`.
 */
export async function parseCommandLine(args: readonly string[], output: ParseOutput): Promise<ParseResult> {
  let selected: Invocation | undefined;
  const select = (invocation: Invocation) => {
    selected = invocation;
  };
  const program = buildProgram(select);
  program.exitOverride();
  program.configureOutput({ writeOut: (s) => output.writeOut(s), writeErr: (s) => output.writeErr(s) });
  for (const command of program.commands) {
    command.exitOverride();
    command.configureOutput({ writeOut: (s) => output.writeOut(s), writeErr: (s) => output.writeErr(s) });
  }
  try {
    await program.parseAsync([...args], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return { kind: "exit", exitCode: ExitCode.OK, message: "" };
      // Commander shows the help as the error when no command was given.
      const message = e.code === "commander.help" ? "no command given" : e.message.replace(/^error: /, "");
      return { kind: "exit", exitCode: ExitCode.USAGE, message };
    }
    throw e;
  }
  if (selected === undefined) return { kind: "exit", exitCode: ExitCode.USAGE, message: "no command given" };
  const globals = program.opts<{ connect?: string; json?: boolean }>();
  return {
    kind: "run",
    invocation: selected,
    ...(globals.connect === undefined ? {} : { connect: globals.connect }),
    json: globals.json === true,
  };
}

function buildProgram(select: (invocation: Invocation) => void) {
  const program = new Command("libvirt-snapshot")
    .description(
      "External snapshots of libvirt/QEMU domains: list, create, delete by merging, revert, preview, verify and repair.",
    )
    .option(
      "-c, --connect <uri>",
      "libvirt connection URI (default: LIBVIRT_DEFAULT_URI, then qemu:///system)",
    )
    .option("--json", "print the result as one JSON document on stdout")
    .showHelpAfterError("(add --help for usage)")
    .addHelpText("after", EXAMPLES);

  program
    .command("list")
    .description(
      "show the snapshot tree: creation time and age, state, memory or disk-only, quiesced, overlays",
    )
    .argument("<domain>", "domain name or UUID")
    .action((domain: string) => select({ command: "list", domain }));

  program
    .command("create")
    .description("take an external snapshot (disk-only by default; all disks in one atomic call)")
    .argument("<domain>", "domain name or UUID")
    .argument("<name>", "snapshot name: letters, digits, _ . + - (not first: . + -)")
    .option("--memory", "also save the guest's memory (the domain must be running or paused)")
    .option("--live", "with --memory: keep the guest running while memory is saved")
    .addOption(
      new Option("--quiesce <mode>", "freeze guest file systems through the guest agent")
        .choices(["auto", "required", "off"])
        .default("auto"),
    )
    .addOption(
      new Option("--disk <target>", "snapshot only this disk (repeatable)")
        .argParser(collect)
        .default([])
        .conflicts("excludeDisk"),
    )
    .addOption(
      new Option("--exclude-disk <target>", "leave this disk out (repeatable)")
        .argParser(collect)
        .default([]),
    )
    .option("--description <text>", "free text stored with the snapshot")
    .option("--overlay-dir <dir>", "absolute directory on the host for overlays (default: next to each disk)")
    .action((domain: string, name: string, options: Record<string, unknown>, command: Command) => {
      if (options.live === true && options.memory !== true) command.error("error: --live needs --memory");
      select({
        command: "create",
        domain,
        name,
        options: {
          memory: options.memory === true,
          live: options.live === true,
          quiesce: options.quiesce as "auto" | "required" | "off",
          disk: options.disk as string[],
          excludeDisk: options.excludeDisk as string[],
          ...(typeof options.description === "string" ? { description: options.description } : {}),
          ...(typeof options.overlayDir === "string" ? { overlayDir: options.overlayDir } : {}),
        },
      });
    });

  program
    .command("delete")
    .description(
      "delete a snapshot, merging its overlay into the image below (progress on stderr; Ctrl-C cancels)",
    )
    .argument("<domain>", "domain name or UUID")
    .argument("<name>", "snapshot name")
    .addOption(
      new Option(
        "--strategy <strategy>",
        "blockcommit: this project's journaled merge; native: libvirt's own delete",
      )
        .choices(["blockcommit", "native"])
        .default("blockcommit"),
    )
    .option(
      "--bandwidth <bytes-per-second>",
      "limit the merge to this many bytes per second",
      positiveInteger,
    )
    .option("--timeout <seconds>", "cancel a disk's merge that takes longer than this", positiveNumber)
    .action((domain: string, name: string, options: Record<string, unknown>) =>
      select({
        command: "delete",
        domain,
        name,
        options: {
          strategy: options.strategy as "blockcommit" | "native",
          ...(typeof options.bandwidth === "number" ? { bandwidth: options.bandwidth } : {}),
          ...(typeof options.timeout === "number" ? { timeout: options.timeout } : {}),
        },
      }),
    );

  program
    .command("revert")
    .description("bring the domain back to a snapshot (disks, and memory for a memory snapshot)")
    .argument("<domain>", "domain name or UUID")
    .argument("<name>", "snapshot name")
    .addOption(
      new Option(
        "--state <state>",
        "state to leave the domain in (default: as the snapshot recorded it)",
      ).choices(TARGET_STATES),
    )
    .option(
      "--keep-current",
      "first keep the current state as an automatic snapshot, so the revert can be undone",
    )
    .option("--discard-newer", "delete the snapshots taken after this one (never merged) and their files")
    .action((domain: string, name: string, options: Record<string, unknown>) =>
      select({
        command: "revert",
        domain,
        name,
        options: {
          ...(typeof options.state === "string" ? { state: options.state as TargetState } : {}),
          keepCurrent: options.keepCurrent === true,
          discardNewer: options.discardNewer === true,
        },
      }),
    );

  program
    .command("preview")
    .description("try a snapshot out: keep the current state as an automatic snapshot, then revert to it")
    .argument("<domain>", "domain name or UUID")
    .argument("<name>", "snapshot name")
    .addOption(stateOption("state to leave the domain in (default: as the snapshot recorded it)"))
    .action((domain: string, name: string, options: { state?: TargetState }) =>
      select({ command: "preview", domain, name, state: options.state }),
    );

  program
    .command("commit")
    .description("end a preview keeping the previewed state (the automatic snapshot is deleted)")
    .argument("<domain>", "domain name or UUID")
    .action((domain: string) => select({ command: "commit", domain }));

  program
    .command("undo")
    .description("end a preview going back to the state from before it (the preview's branch is deleted)")
    .argument("<domain>", "domain name or UUID")
    .addOption(stateOption("state to leave the domain in (default: as it was before the preview)"))
    .action((domain: string, options: { state?: TargetState }) =>
      select({ command: "undo", domain, state: options.state }),
    );

  program
    .command("verify")
    .description("check snapshot metadata against the real chains, unfinished operations and leftover files")
    .argument("<domain>", "domain name or UUID")
    .option("--repair", "finish or roll back what an interrupted operation left, then check again")
    .action((domain: string, options: { repair?: boolean }) =>
      select({ command: "verify", domain, repair: options.repair === true }),
    );

  return program;
}

const TARGET_STATES = ["running", "paused", "shutoff"] as const;
type TargetState = (typeof TARGET_STATES)[number];

function stateOption(description: string): Option {
  return new Option("--state <state>", description).choices(TARGET_STATES);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function positiveInteger(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError("expected a positive whole number of bytes per second");
  }
  return Number(value);
}

function positiveNumber(value: string): number {
  const parsed = Number(value);
  if (value.trim() === "" || !Number.isFinite(parsed) || parsed <= 0) {
    throw new InvalidArgumentError("expected a positive number of seconds");
  }
  return parsed;
}
