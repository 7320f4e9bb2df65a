/**
 * Which process runs an operation recorded on a domain. The per-domain lock (domain-lock.ts) only excludes
 * operations of one process; a CLI run and a Pulumi plugin working on the same domain at once each see the
 * other's journal or revert record, and recovery must not take over an operation a live process is still
 * running. So every write of the project's metadata carries an owner stamp (project-metadata.ts), and recovery
 * asks `classifyOwner` about the stamp before it acts.
 *
 * A stamp is one short attribute value: `pid=<pid> start=<ticks> boot=<boot id> host=<hostname>`, values
 * URI-encoded, `start` and `boot` only where known. `start` (field 22 of /proc/<pid>/stat, clock ticks since
 * boot) tells a reused pid from the owner; `boot` (/proc/sys/kernel/random/boot_id) tells this host after a
 * reboot, or another host of the same name, from this one. Elsewhere than Linux, a stamp has the hostname and
 * the pid only.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";

/** The identity of a process as an operation owner. */
export interface OperationOwner {
  readonly pid: number;
  /** Start time of the process (clock ticks after boot, decimal), Linux only. */
  readonly start?: string;
  /** The kernel's boot id of the host, Linux only. */
  readonly boot?: string;
  readonly host: string;
}

/**
 * What a stamp says about its owner:
 * - `this-process`: written by this very process;
 * - `alive-here`: by another process of this host that still runs (it may be in the middle of the operation);
 * - `gone`: by a process of this host that has ended (or is ending: killed, exiting or a zombie; a live process
 *   with the stamp's pid but another start time is a reused pid);
 * - `elsewhere`: on another host, or the stamp is missing or unreadable: nothing can be told.
 */
export type OwnerVerdict =
  | { readonly status: "this-process"; readonly owner: OperationOwner }
  | {
      readonly status: "alive-here";
      readonly owner: OperationOwner;
      /** The process's name, where /proc tells it (`node`, `pulumi-resource`). */
      readonly command?: string;
    }
  | { readonly status: "gone"; readonly owner: OperationOwner }
  | { readonly status: "elsewhere"; readonly owner?: OperationOwner };

let self: OperationOwner | undefined;

/** This process as an owner (read once: pid, start time, boot id and hostname do not change). */
export function thisProcessOwner(): OperationOwner {
  if (self === undefined) {
    const start = processFacts(process.pid)?.start;
    const boot = readText("/proc/sys/kernel/random/boot_id")?.trim();
    self = {
      pid: process.pid,
      ...(start === undefined ? {} : { start }),
      ...(boot === undefined || boot === "" ? {} : { boot }),
      host: hostname(),
    };
  }
  return self;
}

/** This process's stamp, for the `owner` attribute of the project's metadata. */
export function ownerStamp(): string {
  return formatOwnerStamp(thisProcessOwner());
}

/** An owner as a stamp. Pure. */
export function formatOwnerStamp(owner: OperationOwner): string {
  const fields: [string, string | undefined][] = [
    ["pid", String(owner.pid)],
    ["start", owner.start],
    ["boot", owner.boot],
    ["host", owner.host],
  ];
  return fields
    .filter((f): f is [string, string] => f[1] !== undefined)
    .map(([key, value]) => `${key}=${encodeURIComponent(value)}`)
    .join(" ");
}

/**
 * The owner a stamp names, or undefined when the stamp cannot be read (no pid that could be a process, no
 * host, a malformed field). Unknown fields are ignored, so later versions may add some. Pure.
 */
export function parseOwnerStamp(stamp: string): OperationOwner | undefined {
  const fields = new Map<string, string>();
  for (const field of stamp.split(" ")) {
    if (field === "") continue;
    const match = /^([a-z]+)=(.*)$/.exec(field);
    if (match === null || fields.has(match[1] as string)) return undefined;
    try {
      fields.set(match[1] as string, decodeURIComponent(match[2] as string));
    } catch {
      return undefined;
    }
  }
  const pid = fields.get("pid") ?? "";
  const start = fields.get("start");
  const boot = fields.get("boot");
  const host = fields.get("host");
  // A pid of 0 or below would make process.kill signal a process group: only 1 .. 2^31-1 name a process.
  if (!/^[1-9][0-9]{0,9}$/.test(pid) || Number(pid) > 2 ** 31 - 1) return undefined;
  if (start !== undefined && !/^[0-9]{1,20}$/.test(start)) return undefined;
  if (host === undefined || host === "" || boot === "") return undefined;
  return {
    pid: Number(pid),
    ...(start === undefined ? {} : { start }),
    ...(boot === undefined ? {} : { boot }),
    host,
  };
}

/**
 * Classifies the owner recorded in `stamp` (undefined: the metadata has none, as written by earlier versions).
 * Reads /proc on Linux and probes the pid with signal 0 (nothing is sent); never throws, changes nothing.
 */
export function classifyOwner(stamp: string | undefined): OwnerVerdict {
  const owner = stamp === undefined ? undefined : parseOwnerStamp(stamp);
  if (owner === undefined) return { status: "elsewhere" };
  const me = thisProcessOwner();
  if (owner.host !== me.host || owner.boot !== me.boot) return { status: "elsewhere", owner };
  if (owner.pid === me.pid) return { status: owner.start === me.start ? "this-process" : "gone", owner };
  if (!pidExists(owner.pid)) return { status: "gone", owner };
  const facts = processFacts(owner.pid);
  if (facts?.dying === true) return { status: "gone", owner };
  if (owner.start !== undefined && facts !== undefined && facts.start !== owner.start) {
    return { status: "gone", owner };
  }
  const command = facts?.command;
  return { status: "alive-here", owner, ...(command === undefined ? {} : { command }) };
}

/** Whether a process with this pid exists (EPERM: it exists but belongs to another user). */
function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** PF_EXITING in the flags of /proc/<pid>/stat: the process has begun to exit. */
const PF_EXITING = 0x4;
/** SIGKILL's bit in the pending-signal masks of /proc/<pid>/status. */
const SIGKILL_BIT = 1n << 8n;

interface ProcessFacts {
  readonly start: string;
  /**
   * The process is ending: a zombie, exiting, or with SIGKILL pending (a killed process still exists for a
   * moment, and a zombie until its parent reaps it, which may be never when that parent is killed too).
   */
  readonly dying: boolean;
  /** The process's name (Linux's comm, at most 15 characters). */
  readonly command?: string;
}

/** What Linux's /proc says about a process; undefined when it cannot be read (not Linux, gone, hidden). */
function processFacts(pid: number): ProcessFacts | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Field 2 (the command name, in parentheses) may contain spaces and parentheses: fields 3.. follow the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const state = fields[0];
  const flags = Number(fields[6]);
  const start = fields[19];
  if (state === undefined || start === undefined || !/^[0-9]+$/.test(start)) return undefined;
  const dying =
    state === "Z" ||
    state === "X" ||
    (Number.isInteger(flags) && (flags & PF_EXITING) !== 0) ||
    killPending(pid);
  // The name only (what `ps -o comm` shows): a command line may carry secrets, and messages reach logs.
  const command = readText(`/proc/${pid}/comm`)?.trim();
  return { start, dying, ...(command === undefined || command === "" ? {} : { command }) };
}

/** Whether SIGKILL is pending for the process (its own or its thread group's mask). */
function killPending(pid: number): boolean {
  const status = readText(`/proc/${pid}/status`) ?? "";
  return [...status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)].some(
    (m) => (BigInt(`0x${m[1]}`) & SIGKILL_BIT) !== 0n,
  );
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
