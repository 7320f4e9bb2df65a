import type { Transport } from "../uri";

const BRAND = Symbol.for("pulumi-libvirt-snapshot/LibvirtTransportError");

/** Why a transport could not reach the daemon, for callers that branch (retry on `timeout`, not on `auth`). */
export type TransportFailure =
  /** Nothing listens there (ECONNREFUSED), or the unix socket does not exist. */
  | "refused"
  /** The connect deadline passed: unreachable host, a peer that never answers, a slow ssh login. */
  | "timeout"
  /** DNS failed or no route to the host. */
  | "unreachable"
  /** Permission denied on a unix socket, or ssh refused every authentication method. */
  | "permission"
  /** The ssh host key is unknown or changed. */
  | "host-key"
  /** The server's TLS certificate failed verification (untrusted CA, wrong name, expired). */
  | "server-certificate"
  /** The daemon refused our TLS client certificate (it closed instead of sending its confirmation byte). */
  | "client-certificate"
  /** No TLS protocol version or cipher suite in common with the server (libvirtd's tls_priority). */
  | "tls-parameters"
  /** TLS credential files are missing or unreadable. */
  | "credentials"
  /** The local ssh binary could not be started. */
  | "spawn"
  /** The stream ended while the transport was being set up, or the tunnel exited. */
  | "closed"
  /** The caller's AbortSignal fired. */
  | "aborted";

export interface TransportErrorInit {
  readonly transport: Transport;
  /** Where we tried to go, for messages: `127.0.0.1:16514`, `/var/run/libvirt/libvirt-sock`, `root@h:22`. */
  readonly target: string;
  readonly failure: TransportFailure;
  readonly message: string;
  /** The libvirt URI being opened, already redacted (uri.ts redactUri), when the transport knows it. */
  readonly uri?: string;
  /** The last lines ssh wrote to stderr, if any. */
  readonly stderr?: string;
  readonly cause?: unknown;
}

/**
 * A failure to reach the daemon. Code 38 (VIR_ERR_SYSTEM_ERROR) is what libvirt reports for the same
 * situations; `failure` says which one. Check with `isLibvirtTransportError`, never `instanceof`.
 */
export class LibvirtTransportError extends Error {
  declare readonly [BRAND]: true;
  readonly code = 38;
  readonly codeName = "SYSTEM_ERROR";
  readonly transport: Transport;
  readonly target: string;
  readonly failure: TransportFailure;
  /** The (redacted) libvirt URI being opened, or null when the transport was not told. */
  readonly uri: string | null;
  readonly stderr: string | null;

  constructor(init: TransportErrorInit) {
    const opening = init.uri === undefined ? "" : ` for ${init.uri}`;
    super(`${init.transport} connection to ${init.target}${opening} failed: ${init.message}`, {
      cause: init.cause,
    });
    Object.defineProperty(this, BRAND, { value: true });
    this.name = "LibvirtTransportError";
    this.transport = init.transport;
    this.target = init.target;
    this.failure = init.failure;
    this.uri = init.uri ?? null;
    this.stderr = init.stderr ?? null;
  }
}

/** True for a LibvirtTransportError from any loaded copy of this package. */
export function isLibvirtTransportError(error: unknown): error is LibvirtTransportError {
  return typeof error === "object" && error !== null && (error as { [BRAND]?: unknown })[BRAND] === true;
}

/** Maps a Node.js socket error to a transport failure with a message that says what to check. */
export function fromSocketError(
  transport: Transport,
  target: string,
  error: unknown,
  uri?: string,
): LibvirtTransportError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const text = error instanceof Error ? error.message : String(error);
  const known: Record<string, [TransportFailure, string]> = {
    ECONNREFUSED: ["refused", "connection refused: is the daemon running and listening there?"],
    ENOENT: ["refused", "no such socket: is libvirtd or virtqemud running?"],
    EACCES: ["permission", "permission denied on the socket: run as root or join the libvirt group"],
    EPERM: ["permission", "operation not permitted on the socket"],
    ENOTFOUND: ["unreachable", "host name not found"],
    EAI_AGAIN: ["unreachable", "host name lookup failed"],
    EHOSTUNREACH: ["unreachable", "no route to host"],
    ENETUNREACH: ["unreachable", "network unreachable"],
    ECONNRESET: ["closed", "connection reset by the peer"],
    EPIPE: ["closed", "connection closed by the peer"],
  };
  const [failure, message] = (code !== undefined ? known[code] : undefined) ?? ["closed", text];
  return new LibvirtTransportError({
    transport,
    target,
    failure,
    message: `${message} (${text})`,
    ...(uri === undefined ? {} : { uri }),
    cause: error,
  });
}
