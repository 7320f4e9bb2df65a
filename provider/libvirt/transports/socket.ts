import net from "node:net";
import { underDeadline } from "../deadline";
import type { Transport } from "../uri";
import { fromSocketError, LibvirtTransportError } from "./errors";

/** Options every transport's dial takes. */
export interface DialOptions {
  /** Deadline in milliseconds for the transport to be ready (connected, handshaken, tunnel started). */
  readonly connectTimeoutMs: number;
  /** Aborting gives up the dial at once and releases what it holds. */
  readonly signal?: AbortSignal;
  /**
   * The connection will be opened read-only: local and remote system sockets are then the `-sock-ro` ones,
   * which unprivileged users may reach, and virt-ssh-helper gets `-r`, as libvirt does.
   */
  readonly readonly?: boolean;
}

/**
 * Runs one dial step under the dial's deadline and signal (deadline.ts). `release` undoes whatever the step
 * holds (destroy a socket, kill a child) when the step fails, the deadline passes or the signal fires; the
 * step's own rejection is passed on, giving up rejects with a LibvirtTransportError of failure `timeout` (whose
 * message ends with `timeoutHint`) or `aborted`.
 */
export function dialStep<T>(
  transport: Transport,
  target: string,
  options: DialOptions,
  step: Promise<T>,
  release: () => void,
  timeoutHint: string,
): Promise<T> {
  const released = step.catch((error: unknown) => {
    release();
    throw error;
  });
  return underDeadline(
    released,
    { timeoutMs: options.connectTimeoutMs, signal: options.signal },
    (reason, cause) => {
      release();
      return new LibvirtTransportError({
        transport,
        target,
        failure: reason,
        message:
          reason === "aborted"
            ? "aborted by the caller"
            : `not ready within ${options.connectTimeoutMs} ms: ${timeoutHint}`,
        cause,
      });
    },
  );
}

/** Opens a stream socket under the dial deadline; the socket is destroyed if the deadline passes first. */
export function connectSocket(
  transport: Transport,
  target: string,
  connect: net.NetConnectOpts,
  options: DialOptions,
  hint: string,
): Promise<net.Socket> {
  const socket = net.connect(connect);
  const connected = new Promise<net.Socket>((resolve, reject) => {
    const onError = (error: Error): void => reject(fromSocketError(transport, target, error));
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      resolve(socket);
    });
  });
  return dialStep(transport, target, options, connected, () => socket.destroy(), hint);
}
