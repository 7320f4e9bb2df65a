import { execFileSync } from "node:child_process";
import net from "node:net";
import os from "node:os";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { LibvirtConnection } from "../../../provider/libvirt/connection";
import { isLibvirtError, type LibvirtError } from "../../../provider/libvirt/errors";
import { openConnection } from "../../../provider/libvirt/open";
import { dial, isLibvirtTransportError } from "../../../provider/libvirt/transports";
import type { SshTunnel } from "../../../provider/libvirt/transports/ssh";
import { isLibvirtUriError, parseLibvirtUri } from "../../../provider/libvirt/uri";
import { lab, requireLab, silentServer, sshUri } from "./transport-support";

// Whole connections through every transport: libvirt's handshake, then real calls checked against oracles.
// An ssh login takes seconds of CPU on a busy host: the deadline only bounds a failing test.
const CONNECT_TIMEOUT_MS = 30_000;
const connections: LibvirtConnection[] = [];
let daemonVersion: number;

beforeAll(() => {
  requireLab();
  // Oracle independent of this client: virsh (the C library) asks the same daemon.
  const text = execFileSync("virsh", ["-c", "qemu:///system", "version", "--daemon"], { encoding: "utf8" });
  const [major, minor, micro] = (/Running against daemon: (\d+)\.(\d+)\.(\d+)/.exec(text) ?? [])
    .slice(1)
    .map(Number);
  daemonVersion = (major as number) * 1_000_000 + (minor as number) * 1000 + (micro as number);
});
afterEach(async () => {
  await Promise.all(connections.splice(0).map((connection) => connection.close()));
});

function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (
    let at = error;
    at !== undefined && chain.length < 10;
    at = (at as { cause?: unknown } | null)?.cause
  ) {
    chain.push(at);
  }
  return chain;
}

async function track(opening: Promise<LibvirtConnection>): Promise<LibvirtConnection> {
  const connection = await opening;
  connections.push(connection);
  return connection;
}

describe("openConnection through each transport", () => {
  it.each([
    ["default URI (LIBVIRT_DEFAULT_URI unset)", undefined],
    ["unix", "qemu:///system"],
    ["tcp", "qemu+tcp://127.0.0.1/system"],
    ["tls, system PKI", "qemu+tls://127.0.0.1/system"],
    ["tls, pkipath", `qemu+tls://localhost/system?pkipath=${lab}/pki-client`],
    ["ssh", sshUri()],
  ])("%s: %s", async (_label, uri) => {
    const connection = await track(openConnection(uri, { env: {}, connectTimeoutMs: CONNECT_TIMEOUT_MS }));
    const [version, hostname, capabilities] = await Promise.all([
      connection.connectGetLibVersion(),
      connection.connectGetHostname(),
      connection.connectGetCapabilities(),
    ]);
    expect({ version, hostname, capabilitiesStart: capabilities.trimStart().slice(0, 14) }).toEqual({
      version: daemonVersion,
      hostname: os.hostname(),
      capabilitiesStart: "<capabilities>",
    });
  });

  it.each([
    ["unix (libvirt-sock-ro)", "qemu:///system"],
    ["ssh (virt-ssh-helper -r)", sshUri()],
  ])("read-only over %s: reads work, changes are denied", async (_label, uri) => {
    const connection = await track(
      openConnection(uri, { readonly: true, connectTimeoutMs: CONNECT_TIMEOUT_MS }),
    );
    expect(await connection.connectGetLibVersion()).toBe(daemonVersion);
    const error = await connection.domainDefineXMLFlags("<domain type='qemu'/>", 0).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(isLibvirtError(error) && { kind: error.kind, codeName: error.codeName }).toEqual({
      kind: "remote",
      codeName: "OPERATION_DENIED",
    });
  });

  it("takes LIBVIRT_DEFAULT_URI when no URI is given", async () => {
    const connection = await track(
      openConnection(undefined, {
        env: { LIBVIRT_DEFAULT_URI: "qemu+tcp://127.0.0.1/system" },
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
      }),
    );
    expect(await connection.connectGetLibVersion()).toBe(daemonVersion);
  });

  it("sends the name parameter instead of the reduced URI", async () => {
    const error = await openConnection("qemu+tcp://127.0.0.1/system?name=bogus:///nowhere").then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(isLibvirtError(error) && { kind: error.kind, procedure: error.procedure }).toEqual({
      kind: "remote",
      procedure: "CONNECT_OPEN",
    });
  });

  it("refuses a bad URI before touching the network", async () => {
    const error = await openConnection("qemu+libssh2://h/system").then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(isLibvirtUriError(error) && error.part).toBe("transport");
  });
});

describe("Quirk: libvirtd stalls on the second of two RPC messages in one TLS record", () => {
  it("concurrent calls over TLS are all answered without keepalive traffic to unstick them", async () => {
    const connection = await track(
      // The stall never ends: the deadline is only the patience for a busy daemon.
      openConnection("qemu+tls://127.0.0.1/system", {
        keepalive: false,
        callTimeoutMs: 30_000,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
      }),
    );
    const versions = await Promise.all(Array.from({ length: 8 }, () => connection.connectGetLibVersion()));
    expect(versions).toEqual(Array.from({ length: 8 }, () => daemonVersion));
  });
});

describe("peers that are not libvirt", () => {
  it("a peer that accepts and says nothing times out", async () => {
    const server = await silentServer();
    try {
      const uri = `qemu+tcp://127.0.0.1:${server.port}/system`;
      const error = await openConnection(uri, { connectTimeoutMs: 800 }).then(
        () => null,
        (caught: unknown) => caught,
      );
      expect(isLibvirtTransportError(error) && { failure: error.failure, target: error.target }).toEqual({
        failure: "timeout",
        target: uri,
      });
      expect((error as Error).message).toContain("did not complete libvirt's handshake within 800 ms");
    } finally {
      await server.close();
    }
  });

  it("a peer that sends garbage gets a protocol error", async () => {
    const server = net.createServer((socket) => {
      socket.on("error", () => undefined);
      socket.resume(); // read the client's bytes, so its close is seen and server.close() can finish
      socket.end("SSH-2.0-OpenSSH_9.2 not libvirt\r\n".repeat(4));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as net.AddressInfo;
      const error = await openConnection(`qemu+tcp://127.0.0.1:${port}/system`, {
        connectTimeoutMs: 15_000,
      }).then(
        () => null,
        (caught: unknown) => caught,
      );
      expect(isLibvirtError(error) && error.kind).toBe("protocol");
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("a dead ssh peer", () => {
  it("killing the ssh process fails a pending call and closes the connection", async () => {
    const tunnel = (await dial(parseLibvirtUri(sshUri()), {
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
    })) as SshTunnel;
    const connection = await track(
      LibvirtConnection.open(tunnel, { name: "qemu:///system", keepalive: false, callTimeoutMs: 20_000 }),
    );
    expect(await connection.connectGetLibVersion()).toBe(daemonVersion);
    const pid = tunnel.pid as number;
    // Freeze the tunnel so the call is surely pending, then kill it.
    process.kill(pid, "SIGSTOP");
    const pending = connection.connectGetCapabilities({ timeoutMs: 30_000 }).then(
      () => null,
      (caught: unknown) => caught,
    );
    process.kill(pid, "SIGKILL");
    const error = (await pending) as LibvirtError;
    // The call's error -> the connection's close reason -> what the transport saw.
    const cause = causeChain(error).find(isLibvirtTransportError);
    expect({
      kind: isLibvirtError(error) && error.kind,
      cause: isLibvirtTransportError(cause) && { failure: cause.failure, transport: cause.transport },
      closed: (await connection.whenClosed).kind,
    }).toEqual({ kind: "closed", cause: { failure: "closed", transport: "ssh" }, closed: "closed" });
    expect((cause as Error).message).toContain("ssh was killed by SIGKILL");
  });
});
