/**
 * The engine's error type. Every failure of a host operation is an EngineError that names the domain (and the
 * snapshot and disk when known), says what the user can do, and keeps the libvirt error as `cause` with its
 * code and code name copied onto the EngineError for branching.
 *
 * Check with `isEngineError(e)`, never `instanceof`: Pulumi may load two copies of this package.
 */
import { isLibvirtError } from "../libvirt/errors";

const BRAND = Symbol.for("pulumi-libvirt-snapshot/EngineError");

/** What went wrong, for callers that branch (the CLI's exit codes, the dynamic provider's messages). */
export const EngineErrorKind = {
  /** The request is invalid; nothing was sent to the host. */
  INVALID_REQUEST: "invalid-request",
  DOMAIN_NOT_FOUND: "domain-not-found",
  SNAPSHOT_NOT_FOUND: "snapshot-not-found",
  /** The domain is in a state the operation cannot work with (memory snapshot of a shut-off domain, ...). */
  DOMAIN_STATE: "domain-state",
  /**
   * Another live process of this host (a second CLI run, a Pulumi plugin) recorded an operation on the domain
   * that it is still running; nothing was changed. Retry once it has finished, or stop it first.
   */
  DOMAIN_BUSY: "domain-busy",
  /** A block job (commit, copy) is running on the domain; it must end first. */
  BLOCK_JOB_ACTIVE: "block-job-active",
  /** A snapshot of that name exists and differs from the request. */
  SNAPSHOT_CONFLICT: "snapshot-conflict",
  /** Quiescing was required and the guest agent could not freeze the file systems. */
  QUIESCE_FAILED: "quiesce-failed",
  /**
   * The operation's time limit (a merge's `timeoutMs`) expired: what it had started was cancelled, and the
   * message says what is left (rolled back, or recorded for the next operation to finish).
   */
  TIMEOUT: "timeout",
  /** The caller's AbortSignal stopped the operation (Ctrl-C); as for TIMEOUT, the message says what is left. */
  ABORTED: "aborted",
  /** libvirt refused or failed the operation; `libvirtCode` says why. */
  LIBVIRT: "libvirt",
  /** The operation reported success but the chains read back do not match what was asked for. */
  VERIFY_FAILED: "verify-failed",
} as const;
export type EngineErrorKind = (typeof EngineErrorKind)[keyof typeof EngineErrorKind];

export interface EngineErrorInit {
  readonly kind: EngineErrorKind;
  readonly message: string;
  /** Domain name (or the name/UUID the caller gave when it was not found). */
  readonly domain?: string;
  readonly snapshot?: string;
  readonly disk?: string;
  readonly cause?: unknown;
}

export class EngineError extends Error {
  declare readonly [BRAND]: true;
  readonly kind: EngineErrorKind;
  readonly domain: string | undefined;
  readonly snapshot: string | undefined;
  readonly disk: string | undefined;
  /** libvirt's error code when the cause is a libvirt error (`67`), else undefined. */
  readonly libvirtCode: number | undefined;
  /** libvirt's name of that code (`CONFIG_UNSUPPORTED`). */
  readonly libvirtCodeName: string | undefined;

  constructor(init: EngineErrorInit) {
    const libvirt = isLibvirtError(init.cause) ? init.cause : undefined;
    const suffix =
      libvirt === undefined ? "" : ` [libvirt ${libvirt.codeName} (${libvirt.code}): ${libvirt.message}]`;
    super(`${init.message}${suffix}`, { cause: init.cause });
    Object.defineProperty(this, BRAND, { value: true });
    this.name = "EngineError";
    this.kind = init.kind;
    this.domain = init.domain;
    this.snapshot = init.snapshot;
    this.disk = init.disk;
    this.libvirtCode = libvirt?.code;
    this.libvirtCodeName = libvirt?.codeName;
  }
}

/** True for an EngineError from any loaded copy of this package. */
export function isEngineError(error: unknown): error is EngineError {
  return typeof error === "object" && error !== null && (error as { [BRAND]?: unknown })[BRAND] === true;
}

/** libvirt's error code of `error`, or undefined when it is not a libvirt error. */
export function libvirtCodeOf(error: unknown): number | undefined {
  return isLibvirtError(error) ? error.code : undefined;
}

/**
 * Runs one libvirt step of an operation on snapshot `snapshot` of domain `domain`, turning any failure into an
 * EngineError LIBVIRT that says what was being done (the original error is its `cause`).
 */
export async function libvirtStep<T>(
  domain: string,
  snapshot: string,
  what: string,
  step: () => Promise<T>,
): Promise<T> {
  try {
    return await step();
  } catch (e) {
    throw new EngineError({
      kind: EngineErrorKind.LIBVIRT,
      domain,
      snapshot,
      message: `snapshot ${snapshot} of domain ${domain}: ${what} failed`,
      cause: e,
    });
  }
}
