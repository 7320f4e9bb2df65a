import type { Duplex } from "node:stream";
import { LibvirtConnection } from "./connection";
import { type GiveUpReason, underDeadline } from "./deadline";
import type { KeepaliveSettings } from "./keepalive";
import { dial } from "./transports";
import { isLibvirtTransportError, LibvirtTransportError } from "./transports/errors";
import { defaultUri, type LibvirtUri, parseLibvirtUri, redactUri } from "./uri";

/** Default deadline of `openConnection` (dial and handshake together), in milliseconds. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;

export interface OpenConnectionOptions {
  /**
   * Deadline in milliseconds for the whole open: reaching the daemon (TCP/TLS handshake, ssh login) and the
   * libvirt handshake (AUTH_LIST, CONNECT_OPEN). A peer that accepts and never answers fails when it passes.
   * Default 15 000 (ssh logins over slow links take seconds).
   */
  readonly connectTimeoutMs?: number;
  /** Default deadline of every later call, in milliseconds (see `LibvirtConnection.open`). */
  readonly callTimeoutMs?: number;
  /** Keepalive settings, or false (see `LibvirtConnection.open`). */
  readonly keepalive?: KeepaliveSettings | false;
  /** Open read-only: read-only sockets locally and over ssh, VIR_CONNECT_RO in CONNECT_OPEN. */
  readonly readonly?: boolean;
  /** Bound of undelivered events per subscription (see `LibvirtConnection.open`). */
  readonly eventBufferSize?: number;
  /** Aborting gives up the open at once; nothing is left open. */
  readonly signal?: AbortSignal;
  /** Environment to read `LIBVIRT_DEFAULT_URI` from; default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Opens a connection to a libvirt daemon: picks the URI (the argument, else `LIBVIRT_DEFAULT_URI`, else
 * `qemu:///system`), parses it (uri.ts), reaches the daemon with the URI's transport (unix, tcp, tls, ssh), and
 * runs libvirt's handshake with the daemon name libvirt's remote driver would send (`qemu:///system` for
 * `qemu+ssh://root@host/system?keyfile=...`).
 *
 * Fails with a LibvirtUriError (bad URI; nothing was attempted), a LibvirtTransportError (the daemon could not
 * be reached, or the transport died during the handshake, or the deadline passed), or a LibvirtError from the
 * handshake (authentication, the daemon refusing the URI). On failure nothing is left open: sockets are closed
 * and an ssh child is killed. Each call opens a new connection; close it with `connection.close()`.
 */
export async function openConnection(
  uri?: string,
  options: OpenConnectionOptions = {},
): Promise<LibvirtConnection> {
  const parsed = parseLibvirtUri(defaultUri(uri, options.env));
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const started = performance.now();
  const stream = await dial(parsed, {
    connectTimeoutMs,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.readonly === undefined ? {} : { readonly: options.readonly }),
  });
  return handshake(parsed, stream, options, Math.max(1, connectTimeoutMs - (performance.now() - started)));
}

/**
 * Runs `LibvirtConnection.open` on a dialled stream under what is left of the connect deadline. A transport
 * error seen on the stream meanwhile (ssh's stderr, a refused client certificate) is reported instead of the
 * connection's more generic "closed", since it says what to fix.
 */
async function handshake(
  uri: LibvirtUri,
  stream: Duplex,
  options: OpenConnectionOptions,
  remainingMs: number,
): Promise<LibvirtConnection> {
  let transportError: LibvirtTransportError | null = null;
  const onStreamError = (error: unknown): void => {
    if (isLibvirtTransportError(error)) transportError = error;
  };
  stream.on("error", onStreamError);
  const opening = LibvirtConnection.open(stream, {
    name: uri.daemonName,
    ...(options.readonly === undefined ? {} : { readonly: options.readonly }),
    ...(options.callTimeoutMs === undefined ? {} : { callTimeoutMs: options.callTimeoutMs }),
    ...(options.keepalive === undefined ? {} : { keepalive: options.keepalive }),
    ...(options.eventBufferSize === undefined ? {} : { eventBufferSize: options.eventBufferSize }),
  });
  const limits = { timeoutMs: remainingMs, signal: options.signal };
  const giveUp = (reason: GiveUpReason, cause: unknown): LibvirtTransportError => {
    stream.destroy();
    const message =
      reason === "aborted"
        ? "aborted by the caller"
        : `the peer accepted the connection but did not complete libvirt's handshake within ` +
          `${options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS} ms: is it a libvirt daemon?`;
    return new LibvirtTransportError({
      transport: uri.transport,
      target: redactUri(uri.uri),
      failure: reason,
      message,
      cause,
    });
  };
  try {
    return await underDeadline(opening, limits, giveUp);
  } catch (error) {
    throw transportError ?? error;
  } finally {
    stream.off("error", onStreamError);
  }
}
