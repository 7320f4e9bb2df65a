import { once } from "node:events";
import net from "node:net";
import { afterEach, describe, expect, test, vi } from "vitest";
import type { BlockJobEvent, LifecycleEvent } from "../../../provider/libvirt/api";
import { LibvirtConnection } from "../../../provider/libvirt/connection";
import { isLibvirtError, type LibvirtError } from "../../../provider/libvirt/errors";
import { libvirtRejection } from "../../support/rejections";
import { FakeDaemon, type FakePeer, Proc } from "./support/fake-daemon";
import {
  cat,
  domain,
  ERROR,
  EVENT,
  i32,
  KEEPALIVE,
  message,
  OK,
  optStr,
  REMOTE,
  REPLY,
  remoteError,
  str,
  u32,
  u64,
} from "./support/wire-bytes";

const UUID_A = "11111111-2222-3333-4444-555555555555";
const UUID_B = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

let daemon: FakeDaemon | undefined;
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});

async function start(options: Parameters<typeof FakeDaemon.start>[0] = {}): Promise<FakeDaemon> {
  daemon = await FakeDaemon.start(options);
  return daemon;
}

function summary(error: LibvirtError) {
  return { kind: error.kind, code: error.code, codeName: error.codeName, procedure: error.procedure };
}

/** Resolves once `condition` holds, checking on each turn of the event loop. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe("handshake", () => {
  test("AUTH_LIST, then CONNECT_OPEN with the name and the read-only flag", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect({ name: "qemu:///system", readonly: true });
    expect(peer.received.map((m) => [m.procedure, m.payload.toString("hex")])).toEqual([
      [Proc.AUTH_LIST, ""],
      [Proc.CONNECT_OPEN, Buffer.from(cat(optStr("qemu:///system"), u32(1))).toString("hex")],
    ]);
    await connection.close();
  });

  test("polkit is answered with AUTH_POLKIT; keepalive is asked for when enabled", async () => {
    const fake = await start({ authTypes: [2], keepalive: true });
    const { connection, peer } = await fake.connect({ keepalive: { intervalMs: 1000, count: 3 } });
    expect(peer.received.map((m) => m.procedure)).toEqual([
      Proc.AUTH_LIST,
      Proc.AUTH_POLKIT,
      Proc.CONNECT_OPEN,
      Proc.CONNECT_SUPPORTS_FEATURE,
    ]);
    expect(peer.received[3]?.payload.toString("hex")).toBe(Buffer.from(i32(10)).toString("hex"));
    await connection.close();
  });

  test("a daemon that only offers SASL is refused with an error naming the offer, and the stream is closed", async () => {
    const fake = await start({ authTypes: [1] });
    const peer = fake.nextPeer();
    const error = await libvirtRejection(
      LibvirtConnection.open(net.connect(fake.path), { name: "test:///fake" }),
    );
    expect({ ...summary(error), message: error.message }).toEqual({
      kind: "auth",
      code: 94,
      codeName: "AUTH_UNAVAILABLE",
      procedure: "AUTH_LIST",
      message:
        "libvirt daemon requires authentication this client does not support (offered: sasl) [AUTH_LIST]",
    });
    const socket = (await peer).socket;
    if (!socket.closed) await once(socket, "close");
  });
});

describe("calls", () => {
  test("replies in reverse order reach their own callers", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const results = Promise.all([
      connection.domainLookupByName("a"),
      connection.domainLookupByName("b"),
      connection.connectGetHostname(),
    ]);
    const calls = [await peer.next(), await peer.next(), await peer.next()];
    expect(calls.map((c) => [c.procedure, c.serial])).toEqual([
      [Proc.DOMAIN_LOOKUP_BY_NAME, calls[0]?.serial],
      [Proc.DOMAIN_LOOKUP_BY_NAME, (calls[0]?.serial ?? 0) + 1],
      [Proc.CONNECT_GET_HOSTNAME, (calls[0]?.serial ?? 0) + 2],
    ]);
    const [a, b, host] = calls as [FakePeer["received"][0], FakePeer["received"][0], FakePeer["received"][0]];
    await peer.reply(host, str("host.example"));
    await peer.reply(b, domain("b", UUID_B, -1));
    await peer.reply(a, domain("a", UUID_A, 7));
    expect(await results).toEqual([
      { name: "a", uuid: UUID_A, id: 7 },
      { name: "b", uuid: UUID_B, id: -1 },
      "host.example",
    ]);
    await connection.close();
  });

  test("a reply written one byte per write", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const version = connection.connectGetLibVersion();
    await peer.reply(await peer.nextCall(Proc.CONNECT_GET_LIB_VERSION), u64(9_000_000n), true);
    expect(await version).toBe(9_000_000);
    await connection.close();
  });

  test("an error reply keeps every field, the procedure, and the caller's stack", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const lookup = connection.domainLookupByName("missing");
    await peer.replyError(await peer.nextCall(Proc.DOMAIN_LOOKUP_BY_NAME), {
      code: 42,
      domain: 10,
      message: "Domain not found: no domain with matching name 'missing'",
      level: 2,
      str1: "Domain not found: %s",
      str2: "no domain with matching name 'missing'",
      str3: "extra",
      int1: -1,
      int2: 5,
    });
    const error = await libvirtRejection(lookup);
    expect({
      kind: error.kind,
      code: error.code,
      codeName: error.codeName,
      domain: error.domain,
      domainName: error.domainName,
      level: error.level,
      message: error.message,
      str1: error.str1,
      str2: error.str2,
      str3: error.str3,
      int1: error.int1,
      int2: error.int2,
      procedure: error.procedure,
    }).toEqual({
      kind: "remote",
      code: 42,
      codeName: "NO_DOMAIN",
      domain: 10,
      domainName: "QEMU",
      level: 2,
      message: "Domain not found: no domain with matching name 'missing' [DOMAIN_LOOKUP_BY_NAME]",
      str1: "Domain not found: %s",
      str2: "no domain with matching name 'missing'",
      str3: "extra",
      int1: -1,
      int2: 5,
      procedure: "DOMAIN_LOOKUP_BY_NAME",
    });
    expect(error.stack).toMatch(/connection\.test\.ts/);
    expect(connection.closedReason).toBe(null);
    await connection.close();
  });

  test("a stalled call hits its deadline; its late reply is dropped and the connection stays usable", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const stalled = connection.connectGetHostname({ timeoutMs: 150 });
    const stalledCall = await peer.nextCall(Proc.CONNECT_GET_HOSTNAME);
    expect(summary(await libvirtRejection(stalled))).toEqual({
      kind: "timeout",
      code: 68,
      codeName: "OPERATION_TIMEOUT",
      procedure: "CONNECT_GET_HOSTNAME",
    });
    await peer.reply(stalledCall, str("late"));
    const next = connection.connectGetLibVersion();
    await peer.reply(await peer.nextCall(Proc.CONNECT_GET_LIB_VERSION), u64(1n));
    expect(await next).toBe(1);
    expect(connection.closedReason).toBe(null);
    await connection.close();
  });

  test("long-running state changes get no default deadline; a caller's timeoutMs still applies", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect({ callTimeoutMs: 50 });
    const vm = { name: "vm", uuid: UUID_A, id: 1 };
    const snapshot = { name: "s1", domain: vm };
    const creating = connection.domainSnapshotCreateXML(vm, "<domainsnapshot/>", 0);
    const deleting = connection.domainSnapshotDelete(snapshot, 0);
    const bounded = connection.domainSnapshotDelete(snapshot, 0, { timeoutMs: 50 });
    const hostname = connection.connectGetHostname();
    const [createCall, deleteCall] = [
      await peer.nextCall(Proc.DOMAIN_SNAPSHOT_CREATE_XML),
      await peer.nextCall(Proc.DOMAIN_SNAPSHOT_DELETE),
    ];
    // Issued together: once the short calls have passed their deadlines, so would have the long ones.
    expect([summary(await libvirtRejection(hostname)), summary(await libvirtRejection(bounded))]).toEqual([
      { kind: "timeout", code: 68, codeName: "OPERATION_TIMEOUT", procedure: "CONNECT_GET_HOSTNAME" },
      { kind: "timeout", code: 68, codeName: "OPERATION_TIMEOUT", procedure: "DOMAIN_SNAPSHOT_DELETE" },
    ]);
    await peer.reply(createCall, cat(str("s1"), domain("vm", UUID_A, 1)));
    await peer.reply(deleteCall);
    expect(await Promise.all([creating, deleting])).toEqual([snapshot, undefined]);
    await connection.close();
  });

  test("deadlines follow the monotonic clock: a wall-clock step forward expires nothing", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const hostname = connection.connectGetHostname({ timeoutMs: 60_000 });
    const hostnameCall = await peer.nextCall(Proc.CONNECT_GET_HOSTNAME);
    const realNow = Date.now.bind(Date);
    const clock = vi.spyOn(Date, "now").mockImplementation(() => realNow() + 2 * 3600_000);
    try {
      // Once this call has timed out, the ticker has run after the step.
      const short = connection.connectGetLibVersion({ timeoutMs: 150 });
      expect(summary(await libvirtRejection(short)).kind).toBe("timeout");
      await peer.reply(hostnameCall, str("h"));
      expect(await hostname).toBe("h");
    } finally {
      clock.mockRestore();
    }
    await connection.close();
  });

  test("arguments that cannot be encoded are refused before anything is sent", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const vm = { name: "vm", uuid: UUID_A, id: 1 };
    const errors = await Promise.all([
      libvirtRejection(connection.domainLookupByUUID("../../etc/passwd")),
      libvirtRejection(connection.domainGetXMLDesc(vm, -1)),
      libvirtRejection(connection.domainGetXMLDesc({ ...vm, uuid: "not-a-uuid" }, 0)),
      libvirtRejection(connection.domainGetXMLDesc(vm, undefined as unknown as number)),
      libvirtRejection(connection.domainGetXMLDesc(vm, 0.5)),
    ]);
    expect(errors.map(summary)).toEqual([
      { kind: "argument", code: 8, codeName: "INVALID_ARG", procedure: "DOMAIN_LOOKUP_BY_UUID" },
      { kind: "argument", code: 8, codeName: "INVALID_ARG", procedure: "DOMAIN_GET_XML_DESC" },
      { kind: "argument", code: 8, codeName: "INVALID_ARG", procedure: "DOMAIN_GET_XML_DESC" },
      { kind: "argument", code: 8, codeName: "INVALID_ARG", procedure: "DOMAIN_GET_XML_DESC" },
      { kind: "argument", code: 8, codeName: "INVALID_ARG", procedure: "DOMAIN_GET_XML_DESC" },
    ]);
    const hostname = connection.connectGetHostname();
    await peer.reply(await peer.nextCall(Proc.CONNECT_GET_HOSTNAME), str("h"));
    expect(await hostname).toBe("h");
    expect(peer.received.map((m) => m.procedure)).toEqual([
      Proc.AUTH_LIST,
      Proc.CONNECT_OPEN,
      Proc.CONNECT_GET_HOSTNAME,
    ]);
    await connection.close();
  });

  test("an AbortSignal rejects the call at once", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const controller = new AbortController();
    const call = connection.connectGetHostname({ signal: controller.signal });
    await peer.nextCall(Proc.CONNECT_GET_HOSTNAME);
    controller.abort();
    expect(summary(await libvirtRejection(call))).toEqual({
      kind: "aborted",
      code: 78,
      codeName: "OPERATION_ABORTED",
      procedure: "CONNECT_GET_HOSTNAME",
    });
    expect(
      summary(await libvirtRejection(connection.connectGetHostname({ signal: controller.signal }))),
    ).toEqual({
      kind: "aborted",
      code: 78,
      codeName: "OPERATION_ABORTED",
      procedure: "CONNECT_GET_HOSTNAME",
    });
    await connection.close();
  });
});

describe("failures close the connection and reject every pending call", () => {
  test("garbage: a protocol error, the stream closed, later calls refused", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const pending = [connection.connectGetHostname(), connection.connectGetLibVersion()];
    await peer.nextCall(Proc.CONNECT_GET_LIB_VERSION);
    await peer.send(Buffer.from([0, 0, 0, 5, 1, 2, 3, 4, 5, 6, 7, 8]));
    expect((await Promise.all(pending.map(libvirtRejection))).map(summary)).toEqual([
      { kind: "protocol", code: 39, codeName: "RPC", procedure: "CONNECT_GET_HOSTNAME" },
      { kind: "protocol", code: 39, codeName: "RPC", procedure: "CONNECT_GET_LIB_VERSION" },
    ]);
    expect((await connection.whenClosed).kind).toBe("protocol");
    if (!peer.socket.closed) await once(peer.socket, "close");
    expect(summary(await libvirtRejection(connection.connectGetHostname()))).toEqual({
      kind: "protocol",
      code: 39,
      codeName: "RPC",
      procedure: "CONNECT_GET_HOSTNAME",
    });
  });

  test("a well-framed reply whose payload does not decode fails its call and closes the connection", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const hostname = connection.connectGetHostname();
    const other = connection.connectGetLibVersion();
    // A string that claims 100 bytes inside a message that carries 3.
    await peer.reply(await peer.nextCall(Proc.CONNECT_GET_HOSTNAME), cat(u32(100), [104, 105, 33]));
    const [first, second] = await Promise.all([libvirtRejection(hostname), libvirtRejection(other)]);
    expect([summary(first), summary(second)]).toEqual([
      { kind: "protocol", code: 39, codeName: "RPC", procedure: "CONNECT_GET_HOSTNAME" },
      { kind: "protocol", code: 39, codeName: "RPC", procedure: "CONNECT_GET_LIB_VERSION" },
    ]);
    expect(first.message).toBe("bad reply to CONNECT_GET_HOSTNAME [CONNECT_GET_HOSTNAME]");
    expect((await connection.whenClosed).message).toBe(
      "libvirt protocol error: reading string needs 100 bytes, only 3 left",
    );
  });

  test("an error reply with a truncated body rejects its call and closes the connection", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const hostname = connection.connectGetHostname();
    const call = await peer.nextCall(Proc.CONNECT_GET_HOSTNAME);
    const body = remoteError({
      code: 42,
      domain: 10,
      message: "gone",
      level: 2,
      str1: null,
      str2: null,
      str3: null,
      int1: 0,
      int2: 0,
    });
    await peer.send(
      message(
        { program: REMOTE, procedure: call.procedure, type: REPLY, serial: call.serial, status: ERROR },
        body.slice(0, body.length - 4),
      ),
    );
    expect(summary(await libvirtRejection(hostname))).toEqual({
      kind: "protocol",
      code: 39,
      codeName: "RPC",
      procedure: "CONNECT_GET_HOSTNAME",
    });
    expect((await connection.whenClosed).kind).toBe("protocol");
  });

  test("a reply with a status other than OK or ERROR (CONTINUE) rejects its call and closes the connection", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const hostname = connection.connectGetHostname();
    const call = await peer.nextCall(Proc.CONNECT_GET_HOSTNAME);
    await peer.send(
      message({ program: REMOTE, procedure: call.procedure, type: REPLY, serial: call.serial, status: 2 }),
    );
    const error = await libvirtRejection(hostname);
    expect({ ...summary(error), message: error.message }).toEqual({
      kind: "protocol",
      code: 39,
      codeName: "RPC",
      procedure: "CONNECT_GET_HOSTNAME",
      message: "libvirt protocol error: reply to CONNECT_GET_HOSTNAME with status 2 [CONNECT_GET_HOSTNAME]",
    });
  });

  test("a reply to a serial nobody waits for is a protocol error", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    await peer.send(
      message({ program: 0x20008086, procedure: 59, type: 1, serial: 999, status: OK }, str("x")),
    );
    expect((await connection.whenClosed).message).toBe(
      "libvirt protocol error: reply to serial 999, which no call is waiting for",
    );
  });

  test("a dropped connection mid-call rejects the call; subscriptions get what had arrived, then their end", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const log: string[] = [];
    const subscribing = connection.subscribeLifecycleEvents(null, (e) => log.push(`event ${e.event}`), {
      onEnd: (e) => log.push(`end ${isLibvirtError(e) && e.kind}`),
    });
    await peer.reply(await peer.nextCall(Proc.REGISTER_ANY), i32(3));
    await subscribing;
    const call = connection.connectGetHostname();
    await peer.nextCall(Proc.CONNECT_GET_HOSTNAME);
    await peer.event(Proc.EVENT_LIFECYCLE, cat(i32(3), domain("vm", UUID_A, 4), i32(5), i32(0)));
    peer.drop();
    expect(summary(await libvirtRejection(call))).toEqual({
      kind: "closed",
      code: 39,
      codeName: "RPC",
      procedure: "CONNECT_GET_HOSTNAME",
    });
    await until(() => log.length === 2);
    expect(log).toEqual(["event 5", "end closed"]);
  });

  test("keepalive: pings are answered; a silent daemon fails pending calls without any call deadline", async () => {
    const fake = await start({ keepalive: true });
    // An interval of two ticks, so both pings go out however the ticks fall.
    const { connection, peer } = await fake.connect({ keepalive: { intervalMs: 200, count: 2 } });
    await peer.send(message({ program: KEEPALIVE, procedure: 1, type: EVENT, serial: 0, status: OK }));
    await until(() => peer.received.some((m) => m.program === KEEPALIVE && m.procedure === 2));
    peer.stalled = true;
    const error = await libvirtRejection(connection.connectGetHostname());
    expect(summary(error)).toEqual({
      kind: "closed",
      code: 39,
      codeName: "RPC",
      procedure: "CONNECT_GET_HOSTNAME",
    });
    expect(error.message).toMatch(/did not answer keepalive/);
    expect(
      peer.received.filter((m) => m.program === KEEPALIVE && m.procedure === 1).length,
    ).toBeGreaterThanOrEqual(2);
  });

  test("close() rejects pending calls with INVALID_CONN and is idempotent", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const call = connection.connectGetHostname();
    await peer.nextCall(Proc.CONNECT_GET_HOSTNAME);
    await Promise.all([connection.close(), connection.close()]);
    expect(summary(await libvirtRejection(call))).toEqual({
      kind: "closed",
      code: 6,
      codeName: "INVALID_CONN",
      procedure: "CONNECT_GET_HOSTNAME",
    });
    expect(peer.received.map((m) => m.procedure)).toContain(Proc.CONNECT_CLOSE);
  });
  test("close() is serialized: one CONNECT_CLOSE, one shared promise, and calls made meanwhile are never sent", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const first = connection.close();
    const second = connection.close();
    const late = connection.connectGetHostname();
    expect(second).toBe(first);
    expect(summary(await libvirtRejection(late))).toEqual({
      kind: "closed",
      code: 6,
      codeName: "INVALID_CONN",
      procedure: "CONNECT_GET_HOSTNAME",
    });
    await first;
    if (!peer.socket.closed) await once(peer.socket, "close");
    expect(peer.received.map((m) => m.procedure)).toEqual([
      Proc.AUTH_LIST,
      Proc.CONNECT_OPEN,
      Proc.CONNECT_CLOSE,
    ]);
    expect((await connection.whenClosed).codeName).toBe("INVALID_CONN");
  });
});

describe("events", () => {
  const lifecycle = (callbackId: number, event: number) =>
    cat(i32(callbackId), domain("vm", UUID_A, 4), i32(event), i32(0));
  const blockJob = (callbackId: number, status: number) =>
    cat(i32(callbackId), domain("vm", UUID_A, 4), str("vda"), i32(4), i32(status));
  const vm = { name: "vm", uuid: UUID_A, id: 4 };

  test("events arriving with and between replies reach their subscribers, in order", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const lifecycleEvents: LifecycleEvent[] = [];
    const blockJobEvents: BlockJobEvent[] = [];
    const subscribing = connection.subscribeLifecycleEvents(vm, (e) => lifecycleEvents.push(e));
    const register = await peer.nextCall(Proc.REGISTER_ANY);
    expect(register.payload.toString("hex")).toBe(
      Buffer.from(cat(i32(0), u32(1), domain("vm", UUID_A, 4))).toString("hex"),
    );
    // The registration reply and the first event in one write: the event must not be lost.
    await peer.send(
      Buffer.concat([
        message(
          { program: 0x20008086, procedure: Proc.REGISTER_ANY, type: 1, serial: register.serial, status: OK },
          i32(7),
        ),
        message(
          { program: 0x20008086, procedure: Proc.EVENT_LIFECYCLE, type: EVENT, serial: 0, status: OK },
          lifecycle(7, 2),
        ),
      ]),
    );
    await subscribing;
    const blockSubscribing = connection.subscribeBlockJobEvents(null, (e) => blockJobEvents.push(e));
    await peer.reply(await peer.nextCall(Proc.REGISTER_ANY), i32(8));
    await blockSubscribing;

    const hostname = connection.connectGetHostname();
    const call = await peer.nextCall(Proc.CONNECT_GET_HOSTNAME);
    await peer.event(Proc.EVENT_BLOCK_JOB_2, blockJob(8, 3));
    await peer.event(Proc.EVENT_LIFECYCLE, lifecycle(99, 5)); // unknown callback: dropped
    await peer.event(Proc.EVENT_LIFECYCLE, lifecycle(7, 3));
    await peer.reply(call, str("h"), true);
    await peer.event(Proc.EVENT_BLOCK_JOB_2, blockJob(8, 0));
    expect(await hostname).toBe("h");
    await until(() => blockJobEvents.length === 2);
    expect({ lifecycleEvents, blockJobEvents }).toEqual({
      lifecycleEvents: [
        { domain: vm, event: 2, detail: 0 },
        { domain: vm, event: 3, detail: 0 },
      ],
      blockJobEvents: [
        { domain: vm, disk: "vda", type: 4, status: 3 },
        { domain: vm, disk: "vda", type: 4, status: 0 },
      ],
    });
    await connection.close();
  });

  test("a throwing listener keeps receiving; close() stops delivery and deregisters", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect();
    const seen: number[] = [];
    const subscribing = connection.subscribeLifecycleEvents(null, (e) => {
      seen.push(e.event);
      throw new Error("listener bug");
    });
    await peer.reply(await peer.nextCall(Proc.REGISTER_ANY), i32(5));
    const subscription = await subscribing;
    await peer.event(Proc.EVENT_LIFECYCLE, lifecycle(5, 2));
    await peer.event(Proc.EVENT_LIFECYCLE, lifecycle(5, 4));
    await until(() => seen.length === 2);
    const closing = subscription.close();
    const deregister = await peer.nextCall(Proc.DEREGISTER_ANY);
    expect(deregister.payload.toString("hex")).toBe(Buffer.from(i32(5)).toString("hex"));
    await peer.event(Proc.EVENT_LIFECYCLE, lifecycle(5, 5));
    await peer.reply(deregister);
    await closing;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(seen).toEqual([2, 4]);
    await connection.close();
  });

  test("overflow ends the subscription with OVERFLOW and deregisters it; replies keep flowing", async () => {
    const fake = await start();
    const { connection, peer } = await fake.connect({ eventBufferSize: 2 });
    const seen: number[] = [];
    const ended: Error[] = [];
    const subscribing = connection.subscribeLifecycleEvents(null, (e) => seen.push(e.event), {
      onEnd: (e) => ended.push(e),
    });
    await peer.reply(await peer.nextCall(Proc.REGISTER_ANY), i32(6));
    await subscribing;
    const burst = [2, 3, 4, 5].map((event) =>
      message(
        { program: 0x20008086, procedure: Proc.EVENT_LIFECYCLE, type: EVENT, serial: 0, status: OK },
        lifecycle(6, event),
      ),
    );
    await peer.send(Buffer.concat(burst));
    const deregister = await peer.nextCall(Proc.DEREGISTER_ANY);
    await peer.reply(deregister);
    const hostname = connection.connectGetHostname();
    await peer.reply(await peer.nextCall(Proc.CONNECT_GET_HOSTNAME), str("still fine"));
    expect(await hostname).toBe("still fine");
    expect({ seen, ended: ended.map((e) => isLibvirtError(e) && [e.kind, e.codeName]) }).toEqual({
      seen: [],
      ended: [["overflow", "OVERFLOW"]],
    });
    expect(connection.closedReason).toBe(null);
    await connection.close();
  });
});
