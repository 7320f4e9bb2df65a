import net from "node:net";
import { onTestFinished } from "vitest";
import { LibvirtConnection, type OpenOptions } from "../../../../provider/libvirt/connection";
import { labUri } from "../../../support/virsh";

/** The daemon's read-write unix socket (LIBVIRT_SOCK overrides it). */
export const daemonSocket = process.env.LIBVIRT_SOCK ?? "/var/run/libvirt/libvirt-sock";

/** Opens a unix socket to the daemon, resolving once connected. */
export function connectSocket(path = daemonSocket): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/**
 * A LibvirtConnection to the lab's daemon over its unix socket, closed when the running test finishes (passed
 * or failed). Must be called inside a test.
 */
export async function openForTest(
  options: Partial<OpenOptions> = {},
  path = daemonSocket,
): Promise<LibvirtConnection> {
  const connection = await LibvirtConnection.open(await connectSocket(path), { name: labUri, ...options });
  onTestFinished(() => connection.close());
  return connection;
}

/**
 * Collects events from a listener and resolves `waitFor(predicate)` once a matching event has arrived (or
 * rejects after `timeoutMs`, naming what arrived instead).
 */
export class EventLog<E> {
  readonly events: E[] = [];
  private waiters: { predicate: (e: E) => boolean; resolve: (e: E) => void }[] = [];

  readonly listener = (event: E): void => {
    this.events.push(event);
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.predicate(event)) return true;
      waiter.resolve(event);
      return false;
    });
  };

  waitFor(predicate: (e: E) => boolean, timeoutMs = 60_000): Promise<E> {
    const seen = this.events.find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(this.events)}`)),
        timeoutMs,
      );
      this.waiters.push({
        predicate,
        resolve: (event) => {
          clearTimeout(timer);
          resolve(event);
        },
      });
    });
  }
}
