import { randomBytes } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, onTestFinished, test } from "vitest";
import { TRANSIENT_POOL_PREFIX } from "../../../provider/engine/delete-files";
import { localError } from "../../../provider/libvirt/errors";
import { ErrorCode, ListStoragePoolsFlags } from "../../../provider/libvirt/flags";
import * as P from "../../../provider/libvirt/procedures";
import { RpcClient } from "../../../provider/libvirt/rpc-client";
import { createImage } from "../../support/qemu-tools";
import { libvirtRejection } from "../../support/rejections";
import { virsh } from "../../support/virsh";
import { connectSocket, daemonSocket, openForTest } from "./support/connect";

/** libvirt's version number from `major.minor.micro`. */
function versionNumber(text: string): number {
  const [major = 0, minor = 0, micro = 0] = text.split(".").map(Number);
  return major * 1_000_000 + minor * 1_000 + micro;
}

describe("connection-level calls agree with virsh", () => {
  test("library version, hostname, capabilities", async () => {
    const connection = await openForTest();
    const version = await virsh("version");
    const library = /Using library: libvirt (\d+\.\d+\.\d+)/.exec(version)?.[1] ?? "";
    const [ours, capabilities, hostname] = await Promise.all([
      connection.connectGetLibVersion(),
      connection.connectGetCapabilities(),
      connection.connectGetHostname(),
    ]);
    expect(ours).toBe(versionNumber(library));
    expect(hostname).toBe((await virsh("hostname")).trim());
    expect(capabilities.trimEnd()).toBe((await virsh("capabilities")).trimEnd());
  });

  test("a missing domain is NO_DOMAIN (42) with every field of the daemon's error", async () => {
    const connection = await openForTest();
    const name = `lvsnap-tmp-b-missing-${randomBytes(4).toString("hex")}`;
    const error = await libvirtRejection(connection.domainLookupByName(name));
    expect({
      kind: error.kind,
      code: error.code,
      codeName: error.codeName,
      domainName: error.domainName,
      level: error.level,
      str2: error.str2,
      procedure: error.procedure,
    }).toEqual({
      kind: "remote",
      code: 42,
      codeName: "NO_DOMAIN",
      domainName: "QEMU",
      level: 2,
      str2: `no domain with matching name '${name}'`,
      procedure: "DOMAIN_LOOKUP_BY_NAME",
    });
    expect(error.message).toBe(
      `Domain not found: no domain with matching name '${name}' [DOMAIN_LOOKUP_BY_NAME]`,
    );
  });
});

describe("handshake", () => {
  test("Quirk: the daemon answers the keepalive feature after AUTH_LIST and before CONNECT_OPEN", async () => {
    const socket = await connectSocket();
    const rpc = new RpcClient(socket, { callTimeoutMs: 30_000, onEvent: () => {}, onClose: () => {} });
    onTestFinished(() => rpc.close(localError("closed", ErrorCode.INVALID_CONN, "test over")));
    const beforeAuth = await libvirtRejection(
      rpc.call(P.CONNECT_SUPPORTS_FEATURE, P.FEATURE_PROGRAM_KEEPALIVE),
    );
    expect(beforeAuth.message).toMatch(/authentication required/);
    expect(await rpc.call(P.AUTH_LIST, undefined)).toEqual([P.AuthType.NONE]);
    expect(await rpc.call(P.CONNECT_SUPPORTS_FEATURE, P.FEATURE_PROGRAM_KEEPALIVE)).toBe(true);
    // Any other feature does need the open connection.
    expect((await libvirtRejection(rpc.call(P.CONNECT_SUPPORTS_FEATURE, 14))).message).toMatch(
      /connection not open/,
    );
  });
});

/** Name prefix of this file's throwaway pools. */
const THROWAWAY_POOL_PREFIX = "lvsnap-tmp-b-pool-";

describe("storage calls on a throwaway directory pool", () => {
  test("create, refresh, inspect and delete a volume; destroy the pool", async () => {
    const connection = await openForTest();
    const dir = await mkdtemp(join(tmpdir(), THROWAWAY_POOL_PREFIX));
    const name = `${THROWAWAY_POOL_PREFIX}${randomBytes(4).toString("hex")}`;
    onTestFinished(async () => {
      await virsh("pool-destroy", name).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    });
    const poolXml = `<pool type='dir'><name>${name}</name><target><path>${dir}</path></target></pool>`;
    const pool = await connection.storagePoolCreateXML(poolXml, 0);
    expect(pool.name).toBe(name);
    expect(pool.uuid).toBe((await virsh("pool-uuid", name)).trim());
    expect((await connection.storagePoolGetXMLDesc(pool, 0)).trimEnd()).toBe(
      (await virsh("pool-dumpxml", name)).trimEnd(),
    );
    // Deletes running meanwhile (other test files, other users of the daemon) create and destroy transient pools
    // of their own between any two listings: only the pools that are not such passers-by are compared.
    const settled = (names: string[]) =>
      names
        .filter((n) => !n.startsWith(TRANSIENT_POOL_PREFIX) && !n.startsWith(THROWAWAY_POOL_PREFIX))
        .sort();
    const listed = (await connection.connectListAllStoragePools(ListStoragePoolsFlags.ACTIVE)).map(
      (p) => p.name,
    );
    const virshListed = (await virsh("pool-list", "--name")).split("\n").filter((line) => line.length > 0);
    expect([listed.includes(name), settled(listed)]).toEqual([true, settled(virshListed)]);

    const file = join(dir, "disk.qcow2");
    await createImage(file, "qcow2", 16);
    await connection.storagePoolRefresh(pool);
    const volume = await connection.storageVolLookupByPath(file);
    expect(volume).toEqual({ pool: name, name: "disk.qcow2", key: file });
    const info = await connection.storageVolGetInfo(volume);
    const virshInfo = await virsh("vol-info", "--bytes", file);
    const field = (label: string) =>
      BigInt(new RegExp(`${label}:\\s+(\\d+) bytes`).exec(virshInfo)?.[1] ?? "-1");
    expect(info).toEqual({ type: 0, capacity: field("Capacity"), allocation: field("Allocation") });

    await connection.storageVolDelete(volume, 0);
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
    await connection.storagePoolDestroy(pool);
    const afterDestroy = await connection.connectListAllStoragePools(0);
    expect(afterDestroy.filter((p) => p.name === name)).toEqual([]);
  });
});

/**
 * A unix-socket proxy to the daemon that can stall (stop forwarding in both directions, as a hung peer or a
 * dead network would) or be killed (both sides closed, as a crashed daemon would).
 */
async function startProxy(): Promise<{ path: string; stall: () => void; kill: () => void }> {
  const dir = await mkdtemp(join(tmpdir(), "lvsnap-tmp-b-proxy-"));
  const path = join(dir, "proxy.sock");
  const sockets: net.Socket[] = [];
  let stalled = false;
  const server = net.createServer((client) => {
    const daemon = net.connect(daemonSocket);
    sockets.push(client, daemon);
    client.on("data", (chunk) => stalled || daemon.write(chunk));
    daemon.on("data", (chunk) => stalled || client.write(chunk));
    client.on("error", () => undefined);
    daemon.on("error", () => undefined);
    client.on("close", () => daemon.destroy());
    daemon.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  onTestFinished(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  return {
    path,
    stall: () => {
      stalled = true;
    },
    kill: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

describe("a stalled or killed peer fails pending calls within seconds", () => {
  test("stalled: keepalive declares the daemon dead and rejects the pending call", async () => {
    const proxy = await startProxy();
    const connection = await openForTest({ keepalive: { intervalMs: 300, count: 2 } }, proxy.path);
    proxy.stall();
    const error = await libvirtRejection(connection.connectGetHostname());
    expect({ kind: error.kind, codeName: error.codeName, procedure: error.procedure }).toEqual({
      kind: "closed",
      codeName: "RPC",
      procedure: "CONNECT_GET_HOSTNAME",
    });
    expect(error.message).toMatch(/did not answer keepalive/);
  });

  test("killed: the pending call is rejected as soon as the stream closes", async () => {
    const proxy = await startProxy();
    const connection = await openForTest({}, proxy.path);
    proxy.stall(); // hold the call's reply back, so the call is surely pending when the peer dies
    const pending = connection.connectGetCapabilities();
    proxy.kill();
    const error = await libvirtRejection(pending);
    expect({ kind: error.kind, procedure: error.procedure }).toEqual({
      kind: "closed",
      procedure: "CONNECT_GET_CAPABILITIES",
    });
    expect((await connection.whenClosed).kind).toBe("closed");
  });
});
