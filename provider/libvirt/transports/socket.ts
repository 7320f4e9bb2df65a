import net from "node:net";
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
 * Runs one dial step under the dial's deadline and signal. `release` undoes whatever the step holds (destroy a
 * socket, kill a child) when the deadline passes or the signal fires; the step's own rejection is passed on.
 * The timer is unref'd: a pending dial never keeps the process alive by itself.
 */
export function underDeadline<T>(
  transport: Transport,
  target: string,
  options: DialOptions,
  step: Promise<T>,
  release: () => void,
  timeoutHint: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (action: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      action();
    };
    const giveUp = (error: LibvirtTransportError): void =>
      finish(() => {
        release();
        reject(error);
      });
    const onAbort = (): void =>
      giveUp(
        new LibvirtTransportError({
          transport,
          target,
          failure: "aborted",
          message: "aborted by the caller",
          cause: options.signal?.reason,
        }),
      );
    const timer = setTimeout(
      () =>
        giveUp(
          new LibvirtTransportError({
            transport,
            target,
            failure: "timeout",
            message: `not ready within ${options.connectTimeoutMs} ms: ${timeoutHint}`,
          }),
        ),
      options.connectTimeoutMs,
    );
    timer.unref();
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    options.signal?.addEventListener("abort", onAbort, { once: true });
    step.then(
      (value) => finish(() => resolve(value)),
      (error: unknown) =>
        finish(() => {
          release();
          reject(error);
        }),
    );
  });
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
  return underDeadline(transport, target, options, connected, () => socket.destroy(), hint);
}
