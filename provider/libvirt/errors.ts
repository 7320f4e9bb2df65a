import { ErrorCode, type ErrorCodeName } from "./flags";

/**
 * The one error type of the libvirt client. A daemon error keeps every field of libvirt's `remote_error`; local
 * failures (lost or garbled connection, deadline, abort, unsupported authentication) use the same shape with
 * the libvirt code that the C library would report for them, so callers branch on `code` / `codeName` alone.
 *
 * Check with `isLibvirtError(e)`, never `instanceof`: Pulumi may load two copies of this package, and the
 * brand is a registered symbol shared by both.
 */

const BRAND = Symbol.for("pulumi-libvirt-snapshot/LibvirtError");

/** Where the error came from. `remote` is the daemon; every other kind is raised by this client. */
export type LibvirtErrorKind =
  /** The daemon replied with an error. */
  | "remote"
  /** Bytes that violate the protocol; the connection was closed because it lost sync. */
  | "protocol"
  /** The connection closed (asked for or not) before the call completed, or a subscription ended with it. */
  | "closed"
  /** The call's deadline passed; the daemon may still complete it. */
  | "timeout"
  /** The caller's AbortSignal fired; the daemon may still complete it. */
  | "aborted"
  /** The daemon demands an authentication method this client does not implement. */
  | "auth"
  /** The call's arguments cannot be encoded (not a UUID, a number out of range); nothing was sent. */
  | "argument"
  /**
   * An event subscription's listener fell more than its buffer bound behind: the undelivered events were
   * dropped and the subscription ended (code OVERFLOW). The connection is still open; subscribe again and
   * re-read the state the events were about.
   */
  | "overflow";

/** virErrorLevel. */
export const ErrorLevel = { NONE: 0, WARNING: 1, ERROR: 2 } as const;
export type ErrorLevel = (typeof ErrorLevel)[keyof typeof ErrorLevel];

/** virErrorDomain names by number (the part of libvirt that raised the error). */
// biome-ignore format: a table reads better packed
const ERROR_DOMAIN_NAMES: readonly string[] = [
  "NONE", "XEN", "XEND", "XENSTORE", "SEXPR", "XML", "DOM", "RPC", "PROXY", "CONF", "QEMU", "NET", "TEST",
  "REMOTE", "OPENVZ", "XENXM", "STATS_LINUX", "LXC", "STORAGE", "NETWORK", "DOMAIN", "UML", "NODEDEV",
  "XEN_INOTIFY", "SECURITY", "VBOX", "INTERFACE", "ONE", "ESX", "PHYP", "SECRET", "CPU", "XENAPI", "NWFILTER",
  "HOOK", "DOMAIN_SNAPSHOT", "AUDIT", "SYSINFO", "STREAMS", "VMWARE", "EVENT", "LIBXL", "LOCKING", "HYPERV",
  "CAPABILITIES", "URI", "AUTH", "DBUS", "PARALLELS", "DEVICE", "SSH", "LOCKSPACE", "INITCTL", "IDENTITY",
  "CGROUP", "ACCESS", "SYSTEMD", "BHYVE", "CRYPTO", "FIREWALL", "POLKIT", "THREAD", "ADMIN", "LOGGING", "XENXL",
  "PERF", "LIBSSH", "RESCTRL", "FIREWALLD", "DOMAIN_CHECKPOINT", "TPM", "BPF", "CH",
];

/** virErrorDomain number of errors raised by the RPC layer (used for local failures). */
export const ERROR_DOMAIN_RPC = 7;

const CODE_NAMES: ReadonlyMap<number, ErrorCodeName> = new Map(
  (Object.entries(ErrorCode) as [ErrorCodeName, number][]).map(([name, code]) => [code, name]),
);

/** libvirt's name for an error code (`NO_DOMAIN` for 42), or `UNKNOWN_<n>` for a code newer than this table. */
export function errorCodeName(code: number): string {
  return CODE_NAMES.get(code) ?? `UNKNOWN_${code}`;
}

/** libvirt's name for an error domain (`QEMU` for 10), or `UNKNOWN_<n>`. */
export function errorDomainName(domain: number): string {
  return ERROR_DOMAIN_NAMES[domain] ?? `UNKNOWN_${domain}`;
}

/** Every field libvirt's `remote_error` carries (the unused `dom` and `net` members excepted). */
export interface RemoteErrorFields {
  readonly code: number;
  readonly domain: number;
  readonly message: string | null;
  readonly level: number;
  readonly str1: string | null;
  readonly str2: string | null;
  readonly str3: string | null;
  readonly int1: number;
  readonly int2: number;
}

export interface LibvirtErrorInit extends RemoteErrorFields {
  readonly kind: LibvirtErrorKind;
  /** libvirt's procedure name (`DOMAIN_GET_XML_DESC`), or null for errors not tied to one call. */
  readonly procedure: string | null;
  readonly cause?: unknown;
}

export class LibvirtError extends Error {
  declare readonly [BRAND]: true;
  readonly kind: LibvirtErrorKind;
  readonly code: number;
  readonly codeName: string;
  readonly domain: number;
  readonly domainName: string;
  readonly level: number;
  readonly str1: string | null;
  readonly str2: string | null;
  readonly str3: string | null;
  readonly int1: number;
  readonly int2: number;
  readonly procedure: string | null;

  constructor(init: LibvirtErrorInit) {
    const text = init.message ?? `libvirt error ${errorCodeName(init.code)} (${init.code})`;
    super(init.procedure ? `${text} [${init.procedure}]` : text, { cause: init.cause });
    Object.defineProperty(this, BRAND, { value: true });
    this.name = "LibvirtError";
    this.kind = init.kind;
    this.code = init.code;
    this.codeName = errorCodeName(init.code);
    this.domain = init.domain;
    this.domainName = errorDomainName(init.domain);
    this.level = init.level;
    this.str1 = init.str1;
    this.str2 = init.str2;
    this.str3 = init.str3;
    this.int1 = init.int1;
    this.int2 = init.int2;
    this.procedure = init.procedure;
  }
}

/** True for a LibvirtError from any loaded copy of this package. */
export function isLibvirtError(error: unknown): error is LibvirtError {
  return typeof error === "object" && error !== null && (error as { [BRAND]?: unknown })[BRAND] === true;
}

/** A local failure in LibvirtError shape: domain RPC, level ERROR, no extra strings. */
export function localError(
  kind: Exclude<LibvirtErrorKind, "remote">,
  code: number,
  message: string,
  procedure: string | null = null,
  cause?: unknown,
): LibvirtError {
  return new LibvirtError({
    kind,
    code,
    domain: ERROR_DOMAIN_RPC,
    message,
    level: ErrorLevel.ERROR,
    str1: null,
    str2: null,
    str3: null,
    int1: 0,
    int2: 0,
    procedure,
    cause,
  });
}

/** A protocol violation (code RPC): the byte stream can no longer be trusted. */
export function protocolError(message: string, cause?: unknown): LibvirtError {
  return localError("protocol", ErrorCode.RPC, `libvirt protocol error: ${message}`, null, cause);
}
