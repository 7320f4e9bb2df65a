import { afterEach, describe, expect, test } from "vitest";
import type { CallOptions } from "../../../provider/libvirt/api";
import { type LibvirtError, localError } from "../../../provider/libvirt/errors";
import { EventRegistrar, MAX_LATE_REGISTRATIONS } from "../../../provider/libvirt/event-registrations";
import { EventHub } from "../../../provider/libvirt/events";
import { ErrorCode } from "../../../provider/libvirt/flags";
import { EventProcedure, type Procedure } from "../../../provider/libvirt/procedures";
import { XdrReader } from "../../../provider/libvirt/xdr";
import { libvirtRejection } from "../../support/rejections";
import { FakeDaemon, Proc } from "./support/fake-daemon";
import { cat, domain, i32 } from "./support/wire-bytes";

const UUID_A = "11111111-2222-3333-4444-555555555555";

let daemon: FakeDaemon | undefined;
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});

function summary(error: LibvirtError) {
  return { kind: error.kind, codeName: error.codeName, procedure: error.procedure, message: error.message };
}

const hex = (bytes: Parameters<typeof Buffer.from>[0]) => Buffer.from(bytes as Uint8Array).toString("hex");

describe("a registration whose caller gave up is undone when its reply arrives", () => {
  test("deadline: the late reply's callback id is deregistered at once, and its events reach nobody", async () => {
    daemon = await FakeDaemon.start();
    const { connection, peer } = await daemon.connect();
    const seen: number[] = [];
    const subscribing = connection.subscribeLifecycleEvents(null, (e) => seen.push(e.event), {
      timeoutMs: 50,
    });
    const register = await peer.nextCall(Proc.REGISTER_ANY);
    const error = await libvirtRejection(subscribing);
    // The daemon answers after the caller left, with an event for that callback right behind the reply.
    await peer.reply(register, i32(41));
    await peer.event(Proc.EVENT_LIFECYCLE, cat(i32(41), domain("vm", UUID_A, 4), i32(5), i32(0)));
    const deregister = await peer.nextCall(Proc.DEREGISTER_ANY);
    await peer.reply(deregister);
    expect({ error: summary(error), deregistered: hex(deregister.payload), seen }).toEqual({
      error: {
        kind: "timeout",
        codeName: "OPERATION_TIMEOUT",
        procedure: "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY",
        message:
          "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY timed out [CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY]",
      },
      deregistered: hex(i32(41)),
      seen: [],
    });
    expect(connection.closedReason).toBe(null);
    await connection.close();
  });

  test("abort: the same, and the abort reason is the cause", async () => {
    daemon = await FakeDaemon.start();
    const { connection, peer } = await daemon.connect();
    const controller = new AbortController();
    const subscribing = connection.subscribeBlockJobEvents(null, () => undefined, {
      signal: controller.signal,
    });
    const register = await peer.nextCall(Proc.REGISTER_ANY);
    controller.abort(new Error("caller left"));
    const error = await libvirtRejection(subscribing);
    await peer.reply(register, i32(42));
    const deregister = await peer.nextCall(Proc.DEREGISTER_ANY);
    await peer.reply(deregister);
    expect({
      kind: error.kind,
      cause: (error.cause as Error).message,
      deregistered: hex(deregister.payload),
    }).toEqual({ kind: "aborted", cause: "caller left", deregistered: hex(i32(42)) });
    await connection.close();
  });

  test("an already aborted signal sends nothing", async () => {
    daemon = await FakeDaemon.start();
    const { connection, peer } = await daemon.connect();
    const error = await libvirtRejection(
      connection.subscribeLifecycleEvents(null, () => undefined, { signal: AbortSignal.abort() }),
    );
    await connection.close();
    expect({ kind: error.kind, sent: peer.received.map((m) => m.procedure) }).toEqual({
      kind: "aborted",
      sent: [Proc.AUTH_LIST, Proc.CONNECT_OPEN, Proc.CONNECT_CLOSE],
    });
  });
});

/** An RPC stand-in that never answers and records each call's signal. */
class SilentRpc {
  readonly refusing = null;
  readonly calls: { name: string; signal: AbortSignal | undefined }[] = [];
  call<A, R>(procedure: Procedure<A, R>, _args: A, options?: CallOptions): Promise<R> {
    this.calls.push({ name: procedure.name, signal: options?.signal });
    return new Promise<R>(() => undefined);
  }
}

/** An RPC stand-in whose REGISTER reply the test decodes and settles by hand; other calls are recorded. */
class ScriptedRpc {
  readonly refusing = null;
  readonly sent: { name: string; args: unknown }[] = [];
  register: { procedure: Procedure<unknown, number>; resolve: (id: number) => void } | undefined;
  call<A, R>(procedure: Procedure<A, R>, args: A): Promise<R> {
    this.sent.push({ name: procedure.name, args });
    if (procedure.name !== "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY")
      return Promise.resolve(undefined as R);
    return new Promise<R>((resolve) => {
      this.register = {
        procedure: procedure as unknown as Procedure<unknown, number>,
        resolve: resolve as (id: number) => void,
      };
    });
  }
}

describe("a caller that leaves while the reply is being routed", () => {
  test("abort after the reply bound the subscription, before the caller saw it: unbound, silent, deregistered", async () => {
    const rpc = new ScriptedRpc();
    const hub = new EventHub();
    const registrar = new EventRegistrar(rpc, hub, 16, 60_000);
    const controller = new AbortController();
    const seen: number[] = [];
    const ends: string[] = [];
    const subscribing = registrar.subscribe<{ event: number }>(0, null, (e) => seen.push(e.event), {
      signal: controller.signal,
      onEnd: (reason) => ends.push(reason.message),
    });
    const register = rpc.register as NonNullable<typeof rpc.register>;
    // One read of the socket: the reply is decoded (binding callback 43), an event for it follows, and the
    // caller's signal fires, all before the microtask that would hand the subscription to the caller.
    const callbackId = register.procedure.decode(new XdrReader(Buffer.from(i32(43))));
    register.resolve(callbackId);
    const lifecycle = (event: number) =>
      new XdrReader(Buffer.from(cat(i32(43), domain("vm", UUID_A, 4), i32(event), i32(0))));
    hub.dispatch(EventProcedure.DOMAIN_EVENT_CALLBACK_LIFECYCLE, lifecycle(5));
    controller.abort(new Error("caller left"));
    const error = await libvirtRejection(subscribing);
    // Later events, and the connection ending, must not reach the listener of the rejected call.
    hub.dispatch(EventProcedure.DOMAIN_EVENT_CALLBACK_LIFECYCLE, lifecycle(6));
    hub.endAll(localError("closed", ErrorCode.INVALID_CONN, "connection closed"));
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect({ kind: error.kind, seen, ends, sent: rpc.sent.map((c) => [c.name, c.args]) }).toEqual({
      kind: "aborted",
      seen: [],
      ends: [],
      sent: [
        ["CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY", { eventId: 0, domain: null }],
        ["CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY", 43],
      ],
    });
  });
});

describe("bookkeeping of late registrations is bounded", () => {
  test(`past ${MAX_LATE_REGISTRATIONS} awaited registrations, the oldest is given up at the RPC level`, async () => {
    const rpc = new SilentRpc();
    const registrar = new EventRegistrar(rpc, new EventHub(), 16, 60_000);
    const attempts = MAX_LATE_REGISTRATIONS + 2;
    for (let i = 0; i < attempts; i += 1) {
      await libvirtRejection(registrar.subscribe(0, null, () => undefined, { signal: abortSoon() }));
    }
    expect({
      late: registrar.lateCount,
      rpcAborted: rpc.calls.map((call) => call.signal?.aborted ?? false),
      deadlinesAtRpcLevel: rpc.calls.filter(
        (call) => call.name !== "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY",
      ),
    }).toEqual({
      late: MAX_LATE_REGISTRATIONS,
      rpcAborted: Array.from({ length: attempts }, (_, i) => i < 2),
      deadlinesAtRpcLevel: [],
    });
  });
});

/** A signal that fires on the next turn of the event loop, after the registration was sent. */
function abortSoon(): AbortSignal {
  const controller = new AbortController();
  setImmediate(() => controller.abort());
  return controller.signal;
}
