import type {
  BlockJobEvent,
  BlockJobStatus,
  BlockJobType,
  CallOptions,
  EventSubscription,
  LifecycleEvent,
} from "./api";
import { type LibvirtError, localError } from "./errors";
import { ErrorCode } from "./flags";
import { EventProcedure } from "./procedures";
import { readDomain } from "./wire-types";
import type { XdrReader } from "./xdr";

/**
 * Routes domain event messages (the callback variants, which carry the callbackID the daemon assigned at
 * registration) to subscriptions, through a bounded queue per subscription drained on a later turn of the event
 * loop. Reply routing therefore never waits for a listener, and a listener that throws or is slow affects only
 * its own subscription.
 *
 * Overflow policy: a subscription whose queue exceeds its bound is ended with an error of kind `overflow`, code
 * OVERFLOW (delivered by `onEnd`; the connection stays open), never silently thinned: a lost READY event would leave a block job unpivoted.
 */

/** Default bound of undelivered events per subscription. */
export const DEFAULT_EVENT_BUFFER = 1024;

type DecodedEvent = { readonly callbackId: number; readonly event: BlockJobEvent | LifecycleEvent };

/** Decodes one event message; null for event kinds this client does not subscribe to. */
export function decodeEvent(procedure: number, reader: XdrReader): DecodedEvent | null {
  if (procedure === EventProcedure.DOMAIN_EVENT_CALLBACK_LIFECYCLE) {
    const callbackId = reader.int();
    const domain = readDomain(reader);
    const event = reader.int();
    const detail = reader.int();
    reader.expectEnd("a lifecycle event");
    return { callbackId, event: { domain, event, detail } };
  }
  if (procedure === EventProcedure.DOMAIN_EVENT_BLOCK_JOB_2) {
    const callbackId = reader.int();
    const domain = readDomain(reader);
    const disk = reader.string();
    const type = reader.int() as BlockJobType;
    const status = reader.int() as BlockJobStatus;
    reader.expectEnd("a block job event");
    return { callbackId, event: { domain, disk, type, status } };
  }
  return null;
}

/**
 * A subscription as the hub sees it: a queue, a listener, and how it ends. States: open (queues and delivers),
 * ending (the connection is gone: delivers what had arrived, then calls onEnd), closed (delivers nothing more).
 */
export class Subscription<E> implements EventSubscription {
  private readonly queue: E[] = [];
  private draining = false;
  private state: "open" | "ending" | "closed" = "open";
  private endReason: LibvirtError | undefined;

  constructor(
    private readonly listener: (event: E) => void,
    private readonly maxBuffered: number,
    private readonly unregister: (subscription: Subscription<E>, options?: CallOptions) => Promise<void>,
    private readonly onEnd: ((reason: LibvirtError) => void) | undefined,
  ) {}

  /** Queues an event for delivery; past the bound, drops the queue and ends with OVERFLOW. */
  push(event: E): void {
    if (this.state !== "open") return;
    if (this.queue.length >= this.maxBuffered) {
      this.queue.length = 0;
      const message = `event subscription overflowed (${this.maxBuffered} undelivered events)`;
      this.end(localError("overflow", ErrorCode.OVERFLOW, message));
      void this.unregister(this).catch(() => {});
      return;
    }
    this.queue.push(event);
    this.scheduleDrain();
  }

  /** Ends the subscription because of `reason`: events already queued are delivered first. Idempotent. */
  end(reason: LibvirtError): void {
    if (this.state !== "open") return;
    this.state = "ending";
    this.endReason = reason;
    this.scheduleDrain();
  }

  async close(options?: CallOptions): Promise<void> {
    if (this.state === "closed") return;
    this.state = "closed";
    this.queue.length = 0;
    await this.unregister(this, options);
  }

  private scheduleDrain(): void {
    if (this.draining) return;
    this.draining = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.draining = false;
    // Events queued while draining wait for the next turn, so a listener cannot starve the event loop.
    const batch = this.queue.splice(0, this.queue.length);
    for (const event of batch) {
      if (this.state === "closed") return;
      try {
        this.listener(event);
      } catch {
        // A throwing listener does not stop delivery (api.ts contract).
      }
    }
    if (this.state === "ending" && this.queue.length === 0) {
      this.state = "closed";
      try {
        this.onEnd?.(this.endReason as LibvirtError);
      } catch {
        // Thrown from a timer callback it would crash the process; the subscriber's bug stays its own.
      }
    }
  }
}

/** The subscriptions of one connection, keyed by the daemon's callbackID. */
export class EventHub {
  private readonly byCallbackId = new Map<number, Subscription<unknown>>();

  /** Binds a callbackID to a subscription; called synchronously with the registration reply. */
  add(callbackId: number, subscription: Subscription<unknown>): void {
    this.byCallbackId.set(callbackId, subscription);
  }

  /** Forgets a subscription; returns its callbackID, or undefined if it was not bound. */
  remove(subscription: Subscription<unknown>): number | undefined {
    for (const [callbackId, candidate] of this.byCallbackId) {
      if (candidate === subscription) {
        this.byCallbackId.delete(callbackId);
        return callbackId;
      }
    }
    return undefined;
  }

  /** Routes one event message (the RpcClient's event sink). Unknown callbackIDs are late events: dropped. */
  dispatch(procedure: number, reader: XdrReader): void {
    const decoded = decodeEvent(procedure, reader);
    if (decoded === null) return;
    this.byCallbackId.get(decoded.callbackId)?.push(decoded.event);
  }

  /** Ends every subscription with `reason` (the connection closed). */
  endAll(reason: LibvirtError): void {
    const subscriptions = [...this.byCallbackId.values()];
    this.byCallbackId.clear();
    for (const subscription of subscriptions) subscription.end(reason);
  }
}
