import { afterEach, describe, expect, test } from "vitest";
import type { CallOptions } from "../../../provider/libvirt/api";
import type { LibvirtError } from "../../../provider/libvirt/errors";
import { EventRegistrar, MAX_LATE_REGISTRATIONS } from "../../../provider/libvirt/event-registrations";
import { EventHub } from "../../../provider/libvirt/events";
import type { Procedure } from "../../../provider/libvirt/procedures";
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
