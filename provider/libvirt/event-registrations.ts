import type { CallOptions, DomainRef, EventSubscription, SubscribeOptions } from "./api";
import { type GiveUpReason, underDeadline } from "./deadline";
import { isLibvirtError, type LibvirtError, localError } from "./errors";
import type { EventHub } from "./events";
import { Subscription } from "./events";
import { ErrorCode } from "./flags";
import {
  CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
  CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
  type Procedure,
} from "./procedures";

/**
 * Registering and deregistering domain event callbacks with the daemon, for the subscriptions of one
 * connection (events.ts routes the events themselves).
 *
 * A registration's reply carries the callback id the daemon assigned, and only that id can undo it. So the
 * REGISTER call is never given up at the RPC level when its caller gives up (deadline, abort): the caller's
 * limits are applied around the call, and a reply that arrives after the caller left is answered at once with
 * a DEREGISTER of the id it carries. Registrations whose callers left and whose replies are still awaited are
 * bounded by `MAX_LATE_REGISTRATIONS`: past it, the oldest one is given up at the RPC level, and should its
 * reply still come, that one daemon-side registration stays until the connection closes (its events are
 * dropped as events of an unknown callback id). Every registration ends with the connection in any case.
 */

/** Registrations whose callers gave up that are still awaited, at most; the oldest is given up past it. */
export const MAX_LATE_REGISTRATIONS = 64;

/** What the registrar needs of the RPC client. */
export interface RegistrationRpc {
  call<A, R>(procedure: Procedure<A, R>, args: A, options?: CallOptions): Promise<R>;
  /** Non-null once calls are refused (closed or closing): nothing is sent then. */
  readonly refusing: LibvirtError | null;
}

type RegisterArgs = { readonly eventId: number; readonly domain: DomainRef | null };

export class EventRegistrar {
  /** RPC-level aborts of the registrations whose callers gave up, oldest first (a Set keeps insertion order). */
  private readonly late = new Set<AbortController>();

  constructor(
    private readonly rpc: RegistrationRpc,
    private readonly hub: EventHub,
    private readonly eventBufferSize: number,
    /** Deadline of a registration whose caller gives no `timeoutMs`, in milliseconds. */
    private readonly callTimeoutMs: number,
  ) {}

  /** Registrations whose callers gave up and whose replies are still awaited (for tests and diagnostics). */
  get lateCount(): number {
    return this.late.size;
  }

  /**
   * Registers `eventId` (for `domain`, or every domain when null) and resolves with a subscription bound to
   * the daemon's callback id before any event that follows the reply is routed. Rejects like any call:
   * `timeout` / `aborted` when the caller's limits pass first (the registration is then undone when its reply
   * arrives, see above), `remote`, `closed`. Not idempotent: each call is one more daemon-side registration.
   */
  async subscribe<E>(
    eventId: number,
    domain: DomainRef | null,
    listener: (event: E) => void,
    options: SubscribeOptions | undefined,
  ): Promise<EventSubscription> {
    const name = CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY.name;
    if (options?.signal?.aborted) throw giveUpError("aborted", name, options.signal.reason);
    const subscription = new Subscription<E>(
      listener,
      this.eventBufferSize,
      (s, o) => this.unsubscribe(s as Subscription<unknown>, o),
      options?.onEnd,
    );
    let callerLeft = false;
    const register: Procedure<RegisterArgs, number> = {
      ...CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
      // Binding while the reply is decoded: an event right behind the reply already finds its subscription.
      decode: (reader) => {
        const callbackId = reader.int();
        if (!callerLeft) this.hub.add(callbackId, subscription as Subscription<unknown>);
        return callbackId;
      },
    };
    const rpcAbort = new AbortController();
    const registering = this.rpc.call(
      register,
      { eventId, domain },
      { timeoutMs: Number.POSITIVE_INFINITY, signal: rpcAbort.signal },
    );
    const limits = { timeoutMs: options?.timeoutMs ?? this.callTimeoutMs, signal: options?.signal };
    try {
      await underDeadline(registering, limits, (reason, cause) => {
        callerLeft = true;
        this.undoWhenAnswered(registering, rpcAbort, subscription as Subscription<unknown>);
        return giveUpError(reason, name, cause);
      });
    } catch (error) {
      // As RpcClient.call does: the stack of the caller, not of the timer or socket handler that failed it.
      if (isLibvirtError(error)) Error.captureStackTrace(error);
      throw error;
    }
    return subscription;
  }

  /** Deregisters a subscription's callback, unless it was never bound or the connection refuses calls. */
  private async unsubscribe(subscription: Subscription<unknown>, options?: CallOptions): Promise<void> {
    const callbackId = this.hub.remove(subscription);
    if (callbackId === undefined) return;
    await this.deregister(callbackId, options);
  }

  private async deregister(callbackId: number, options?: CallOptions): Promise<void> {
    if (this.rpc.refusing !== null) return;
    await this.rpc.call(CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, callbackId, options);
  }

  /**
   * Tracks a registration whose caller left; once its reply comes, unbinds and closes `subscription` and
   * deregisters the callback id the reply carries.
   */
  private undoWhenAnswered(
    registering: Promise<number>,
    rpcAbort: AbortController,
    subscription: Subscription<unknown>,
  ): void {
    this.late.add(rpcAbort);
    if (this.late.size > MAX_LATE_REGISTRATIONS) {
      const oldest = this.late.values().next().value as AbortController;
      this.late.delete(oldest);
      oldest.abort();
    }
    registering.then(
      (callbackId) => {
        this.late.delete(rpcAbort);
        // The reply may have bound the subscription before the caller left (an abort in the same microtask
        // drain as the reply): unbind it, and close it so that events already queued for it, or the connection
        // ending, never reach the listener of a rejected subscribe. Closing deregisters nothing once unbound.
        this.hub.remove(subscription);
        void subscription.close();
        // Failure is ignored: the caller is gone, and a closed connection took the registration with it.
        this.deregister(callbackId).catch(() => undefined);
      },
      () => this.late.delete(rpcAbort),
    );
  }
}

/** The error a caller gets when it gives up a registration, shaped as RpcClient's for any other call. */
function giveUpError(reason: GiveUpReason, procedure: string, cause: unknown): LibvirtError {
  return reason === "timeout"
    ? localError("timeout", ErrorCode.OPERATION_TIMEOUT, `${procedure} timed out`, procedure)
    : localError("aborted", ErrorCode.OPERATION_ABORTED, `${procedure} aborted`, procedure, cause);
}
