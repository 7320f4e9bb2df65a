import { existsSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import type { Duplex } from "node:stream";
import tls from "node:tls";

/**
 * The remote-transport lab made by scripts/host/transports.sh (sourced by scripts/libvirt-host.sh): same
 * variable, same default.
 */
export const lab = process.env.LVSNAP_TRANSPORT_LAB ?? "/var/lib/lvsnap-lab/transports";

/** Fails (never skips) when the lab is missing, saying how to make it. */
export function requireLab(): void {
  for (const file of ["ssh/client_key", "ssh/known_hosts", "pki-client/clientkey.pem", "ca/cacert.pem"]) {
    if (!existsSync(path.join(lab, file))) {
      throw new Error(
        `transport lab incomplete (${path.join(lab, file)} missing): run \`sudo bash scripts/libvirt-host.sh\` ` +
          "(it sources scripts/host/transports.sh and starts libvirtd with --listen)",
      );
    }
  }
}

/** The lab's ssh URI, with extra query parameters appended. */
export function sshUri(extra = "", keyfile = path.join(lab, "ssh/client_key"), user = "root"): string {
  return `qemu+ssh://${user}@127.0.0.1:2222/system?keyfile=${keyfile}&known_hosts=${path.join(lab, "ssh/known_hosts")}${extra}`;
}

const PROGRAM = 0x20008086;
const PROC_AUTH_LIST = 66;

export interface AuthListReply {
  readonly program: number;
  readonly version: number;
  readonly procedure: number;
  readonly type: number;
  readonly serial: number;
  readonly status: number;
  readonly authTypes: number[];
}

/**
 * Sends one REMOTE_PROC_AUTH_LIST call, built by hand independently of the client's codec, and decodes the
 * reply: proof that a stream reaches a libvirt daemon. Rejects if the stream fails or closes first.
 */
export function authList(stream: Duplex, serial = 1): Promise<AuthListReply> {
  const call = Buffer.alloc(28);
  [28, PROGRAM, 1, PROC_AUTH_LIST, 0, serial, 0].forEach((word, i) => {
    call.writeUInt32BE(word, i * 4);
  });
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4 || received.length < received.readUInt32BE(0)) return;
      stream.off("data", onData);
      const word = (i: number): number => received.readUInt32BE(i * 4);
      const count = word(7);
      resolve({
        program: word(1),
        version: word(2),
        procedure: word(3),
        type: word(4),
        serial: word(5),
        status: word(6),
        authTypes: Array.from({ length: count }, (_, i) => word(8 + i)),
      });
    };
    stream.on("data", onData);
    stream.once("error", reject);
    stream.once("close", () => reject(new Error("stream closed before the AUTH_LIST reply")));
    stream.write(call);
  });
}

/**
 * Sends two AUTH_LIST calls written in one tick with the stream corked (as the RPC client batches the calls of
 * one tick) and resolves with the serials of the replies in ascending order
 * (libvirtd's worker threads may answer in either order), or rejects when
 * they do not both arrive within `patienceMs` (a stalled daemon: see the TLS record quirk; a stall never ends,
 * so the patience is that of a busy daemon's slowest answer).
 */
export function twoAuthListsInOneTick(stream: Duplex, patienceMs = 30_000): Promise<number[]> {
  const call = (serial: number): Buffer => {
    const bytes = Buffer.alloc(28);
    [28, PROGRAM, 1, PROC_AUTH_LIST, 0, serial, 0].forEach((word, i) => {
      bytes.writeUInt32BE(word, i * 4);
    });
    return bytes;
  };
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error(`only ${received.length} reply bytes`)), patienceMs);
    stream.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 8 || received.length < received.readUInt32BE(0) + 8) return;
      const second = received.readUInt32BE(0);
      if (received.length < second + received.readUInt32BE(second)) return;
      clearTimeout(timer);
      resolve([received.readUInt32BE(20), received.readUInt32BE(second + 20)].sort((x, y) => x - y));
    });
    stream.cork();
    stream.write(call(1));
    stream.write(call(2));
    stream.uncork();
  });
}

/** The reply libvirtd gives on every lab transport: auth "none" only. */
export const AUTH_NONE_REPLY: AuthListReply = {
  program: PROGRAM,
  version: 1,
  procedure: PROC_AUTH_LIST,
  type: 1,
  serial: 1,
  status: 0,
  authTypes: [0],
};

/** A TCP server on 127.0.0.1 that accepts and never says anything; returns its port and a closer. */
export async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A TLS server on 127.0.0.1 presenting the lab's certificate for `wrong.invalid` (signed by the lab CA), to
 * test host-name verification; it closes every session right after the handshake, without libvirtd's
 * confirmation byte. Returns its port and a closer.
 */
export async function wrongNameTlsServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = tls.createServer(
    {
      cert: readFileSync(path.join(lab, "wrong-name-server/servercert.pem")),
      key: readFileSync(path.join(lab, "wrong-name-server/serverkey.pem")),
    },
    (socket) => socket.end(),
  );
  server.on("tlsClientError", () => undefined);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A port on 127.0.0.1 that nothing listens on (bound, read, released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
