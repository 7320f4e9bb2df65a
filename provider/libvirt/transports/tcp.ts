import type { Duplex } from "node:stream";
import type { LibvirtUri } from "../uri";
import { connectSocket, type DialOptions } from "./socket";

/** libvirtd's default plain TCP port (LIBVIRTD_TCP_PORT). */
export const DEFAULT_TCP_PORT = 16509;

/** `host:port`, with IPv6 hosts in brackets, for messages. */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Connects to libvirtd's unencrypted TCP listener (`listen_tcp = 1`, libvirtd `--listen`). Resolves with the
 * connected socket (Nagle off: the protocol is request/reply); on failure nothing is left open.
 * Plain TCP carries no encryption: use it on trusted networks or loopback only.
 */
export function dialTcp(uri: LibvirtUri, options: DialOptions): Promise<Duplex> {
  const host = uri.host ?? "localhost";
  const port = uri.port ?? DEFAULT_TCP_PORT;
  return connectSocket(
    "tcp",
    hostPort(host, port),
    { host, port, noDelay: true },
    options,
    "the host did not complete the TCP handshake (unreachable or filtered)",
  );
}
