/**
 * How the CLI reports a failure: the exit code, and a description that says what failed, the libvirt code and
 * its name, and what the operator can do, for humans (stderr) and as data (`--json`).
 */
import { type EngineErrorKind, isEngineError } from "../provider/engine/errors";
import { isLibvirtError } from "../provider/libvirt/errors";
import { isLibvirtTransportError } from "../provider/libvirt/transports/errors";
import { isLibvirtUriError } from "../provider/libvirt/uri";

/** The CLI's exit codes. */
export const ExitCode = {
  /** The command did what was asked (also: nothing to do, as for a snapshot already deleted). */
  OK: 0,
  /** The operation failed, or `verify` found something wrong that it did not repair. */
  FAILED: 1,
  /** The command line is wrong (unknown command or option, bad value, bad URI); nothing was attempted. */
  USAGE: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A command-line mistake found by the CLI itself (exit 2). */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** A failure as data: the shape of `error` in `--json` output. */
export interface FailureDescription {
  readonly message: string;
  /** The engine's error kind (`snapshot-not-found`), `usage`, `connection`, or `internal`. */
  readonly kind: EngineErrorKind | "usage" | "connection" | "internal";
  readonly libvirtCode?: number;
  readonly libvirtCodeName?: string;
  readonly domain?: string;
  readonly snapshot?: string;
  readonly disk?: string;
  /** What the operator can do about it. */
  readonly hint: string;
}

const HINTS: Record<EngineErrorKind, string> = {
  "invalid-request": "change the request as the message says; nothing was changed on the host",
  "domain-not-found": "check the domain name (virsh list --all) and that -c/--connect names the right host",
  "snapshot-not-found": "see the domain's snapshots with `libvirt-snapshot list <domain>`",
  "domain-state":
    "bring the domain into a state the operation accepts (start, resume or shut it off), then retry",
  "domain-busy": "wait for the other process to finish, or stop it, then run the command again",
  "block-job-active":
    "wait for the running block job to end, or run `libvirt-snapshot verify --repair <domain>` if it was ours",
  "snapshot-conflict": "choose another snapshot name, or delete the existing snapshot first",
  "quiesce-failed": "install and start qemu-guest-agent in the guest, or pass --quiesce auto or off",
  timeout:
    "the merge was cancelled and the chains are consistent; retry with a longer --timeout or, if another " +
    "operation is slow, later",
  aborted: "stopped on request; the message says what is left, and running the command again finishes it",
  libvirt: "see libvirt's message above; `libvirt-snapshot verify <domain>` shows whether anything was left",
  "verify-failed": "run `libvirt-snapshot verify <domain>` to see where metadata and chains disagree",
};

/** Describes any thrown value for the operator; never throws. */
export function describeFailure(error: unknown): FailureDescription {
  if (error instanceof UsageError) {
    return { message: error.message, kind: "usage", hint: "see `libvirt-snapshot <command> --help`" };
  }
  if (isEngineError(error)) {
    return {
      message: error.message,
      kind: error.kind,
      ...(error.libvirtCode === undefined ? {} : { libvirtCode: error.libvirtCode }),
      ...(error.libvirtCodeName === undefined ? {} : { libvirtCodeName: error.libvirtCodeName }),
      ...(error.domain === undefined ? {} : { domain: error.domain }),
      ...(error.snapshot === undefined ? {} : { snapshot: error.snapshot }),
      ...(error.disk === undefined ? {} : { disk: error.disk }),
      hint: HINTS[error.kind],
    };
  }
  if (isLibvirtUriError(error)) {
    return {
      message: error.message,
      kind: "usage",
      libvirtCode: error.code,
      libvirtCodeName: error.codeName,
      hint: "give a libvirt URI such as qemu:///system or qemu+ssh://user@host/system with -c/--connect",
    };
  }
  if (isLibvirtTransportError(error)) {
    return {
      message: error.stderr ? `${error.message}\n${error.stderr}` : error.message,
      kind: "connection",
      libvirtCode: error.code,
      libvirtCodeName: error.codeName,
      hint:
        error.failure === "permission"
          ? "run as a user allowed to manage libvirt (root, or a member of the libvirt group), or fix ssh keys"
          : "check that libvirtd (or virtqemud) runs on the host and that -c/--connect or LIBVIRT_DEFAULT_URI " +
            "names it",
    };
  }
  if (isLibvirtError(error)) {
    return {
      message: error.message,
      kind: "connection",
      libvirtCode: error.code,
      libvirtCodeName: error.codeName,
      hint: "libvirt refused the connection or a call; check the URI, credentials and the daemon's logs",
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    message,
    kind: "internal",
    hint: "this is a bug of libvirt-snapshot; please report it with the command",
  };
}

/** The exit code for a failure. */
export function exitCodeFor(failure: FailureDescription): ExitCode {
  return failure.kind === "usage" ? ExitCode.USAGE : ExitCode.FAILED;
}

/** Human lines (no trailing newline) for stderr. */
export function formatFailure(failure: FailureDescription): string {
  const lines = [`libvirt-snapshot: error: ${failure.message}`];
  if (failure.libvirtCode !== undefined) {
    lines.push(`  libvirt error: ${failure.libvirtCodeName ?? "?"} (code ${failure.libvirtCode})`);
  }
  lines.push(`  what to do: ${failure.hint}`);
  return lines.join("\n");
}
