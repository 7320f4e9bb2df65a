import type { Duplex } from "node:stream";
import type { CallOptions } from "./api";
import { isLibvirtError, type LibvirtError, localError, protocolError } from "./errors";
import { ErrorCode } from "./flags";
import { FrameDecoder } from "./framing";
import { type KeepaliveAction, KeepaliveMonitor, type KeepaliveSettings } from "./keepalive";
import type { Procedure } from "./procedures";
import {
  KEEPALIVE_PROGRAM,
  KEEPALIVE_PROTOCOL_VERSION,
  KeepaliveProcedure,
  MessageEncoder,
  type MessageHeader,
  MessageStatus,
  MessageType,
  REMOTE_PROGRAM,
  REMOTE_PROTOCOL_VERSION,
  readHeader,
  readRemoteError,
  unexpectedMessage,
} from "./protocol";
import { XdrReader } from "./xdr";

/**
 * The RPC layer of a libvirt connection over one byte stream: numbers calls by serial, routes replies back to
 * their callers in any order, hands event messages to a sink, answers and sends keepalive pings, and enforces
 * deadlines. It knows procedures only as encode/decode pairs.
 *
 * Guarantees: no call waits forever (a deadline, an AbortSignal, keepalive, or the stream closing ends it);
 * closing, for whatever reason, rejects every pending call; a protocol violation closes the stream. One
 * unref'd interval timer serves all deadlines and keepalive, so an idle client never keeps Node alive. Times
 * are read from the monotonic clock (performance.now): a wall-clock step (NTP, suspend) neither expires calls
 * early nor keeps them alive.
 */

/** Granularity of deadlines and keepalive checks, in milliseconds. */
const TICK_MS = 100;

export interface RpcClientOptions {
  /** Default deadline of a call that is not long-running (see `Procedure.longRunning`), in milliseconds. */
  readonly callTimeoutMs: number;
  /** Receives each event message of the remote program; may throw a protocol error. Runs synchronously. */
  readonly onEvent: (procedure: number, reader: XdrReader) => void;
  /** Told once when the client closes, with the reason. */
  readonly onClose: (reason: LibvirtError) => void;
}

interface PendingCall {
  readonly procedureName: string;
  readonly decode: (reader: XdrReader) => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: LibvirtError) => void;
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class RpcClient {
  private readonly pending = new Map<number, PendingCall>();
  /** Serials of calls given up locally (deadline, abort) whose late replies are dropped, not treated as errors. */
  private readonly abandoned = new Set<number>();
  private nextSerial = 1;
  private readonly decoder = new FrameDecoder((body) => this.onMessage(body));
  private readonly encoder = new MessageEncoder();
  private readonly ticker: NodeJS.Timeout;
  private keepalive: KeepaliveMonitor | null = null;
  private heardSinceTick = false;
  private corked = false;
  private closeReason: LibvirtError | null = null;
  /** Set once a graceful close has begun: new calls are refused with it. */
  private closingReason: LibvirtError | null = null;

  constructor(
    private readonly stream: Duplex,
    private readonly options: RpcClientOptions,
  ) {
    stream.on("data", (chunk: Buffer) => this.onData(chunk));
    stream.on("error", (error: Error) =>
      this.close(
        localError(
          "closed",
          ErrorCode.SYSTEM_ERROR,
          `libvirt connection failed: ${error.message}`,
          null,
          error,
        ),
      ),
    );
    stream.on("close", () =>
      this.close(localError("closed", ErrorCode.RPC, "libvirt connection closed by the peer")),
    );
    stream.on("end", () =>
      this.close(localError("closed", ErrorCode.RPC, "libvirt connection closed by the peer")),
    );
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.ticker.unref();
  }

  /** Why the client closed, or null while it is open. */
  get closed(): LibvirtError | null {
    return this.closeReason;
  }

  /** Why new calls are refused (closed, or a graceful close under way), or null while calls are accepted. */
  get refusing(): LibvirtError | null {
    return this.closeReason ?? this.closingReason;
  }

  /**
   * Sends one call and resolves with its decoded reply. Rejects with a LibvirtError: `remote` for a daemon
   * error, `timeout` / `aborted` when given up locally (the daemon may still carry the call out), `closed` or
   * `protocol` when the connection ends first. The error's stack is the caller's (see below).
   */
  async call<A, R>(procedure: Procedure<A, R>, args: A, options?: CallOptions): Promise<R> {
    try {
      return await this.send(procedure, args, options);
    } catch (error) {
      // Errors are raised in the socket handler, far from the caller. Re-capturing the stack here, where the
      // caller awaits, lets V8's async stack traces list the awaiting callers: the caller's stack at no cost
      // to calls that succeed (capturing a stack for every call would double the client's CPU per call).
      if (isLibvirtError(error)) Error.captureStackTrace(error);
      throw error;
    }
  }

  /**
   * Closes gracefully: from now on new calls are refused with `reason`; `farewell` (CONNECT_CLOSE) is sent and
   * awaited under `timeoutMs`, its failure ignored; then the client closes with `reason`. Calls already pending
   * may still be answered meanwhile. The caller makes sure this runs once.
   */
  async closeAfter(
    farewell: Procedure<undefined, void>,
    timeoutMs: number,
    reason: LibvirtError,
  ): Promise<void> {
    if (this.refusing !== null) return;
    this.closingReason = reason;
    await new Promise<void>((resolve, reject) =>
      this.dispatch(farewell, undefined, { timeoutMs }, resolve, reject),
    )
      // Once the daemon has answered it, every byte sent before it has arrived: the stream need not be flushed.
      .catch(() => {});
    this.close(reason);
  }

  private send<A, R>(procedure: Procedure<A, R>, args: A, options: CallOptions | undefined): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const refusal = this.refusing;
      if (refusal !== null) {
        reject(this.closedCallError(refusal, procedure.name));
        return;
      }
      this.dispatch(procedure, args, options, resolve, reject);
    });
  }

  /** Encodes and sends one call and records it as pending; `resolve`/`reject` settle it. */
  private dispatch<A, R>(
    procedure: Procedure<A, R>,
    args: A,
    options: CallOptions | undefined,
    resolve: (value: R) => void,
    reject: (error: LibvirtError) => void,
  ): void {
    const signal = options?.signal;
    if (signal?.aborted) {
      reject(this.abortError(procedure.name, signal.reason));
      return;
    }
    const serial = this.nextSerial;
    this.nextSerial = (this.nextSerial + 1) >>> 0 || 1;
    let message: Buffer;
    try {
      const writer = this.encoder.begin(
        REMOTE_PROGRAM,
        REMOTE_PROTOCOL_VERSION,
        procedure.number,
        MessageType.CALL,
        serial,
        MessageStatus.OK,
      );
      procedure.encode(writer, args);
      message = this.encoder.finish();
    } catch (error) {
      reject(
        localError(
          "argument",
          ErrorCode.INVALID_ARG,
          `cannot encode ${procedure.name}: ${String(error)}`,
          procedure.name,
          error,
        ),
      );
      return;
    }
    const entry: PendingCall = {
      procedureName: procedure.name,
      decode: procedure.decode,
      resolve: resolve as (value: unknown) => void,
      reject,
      deadline: this.deadlineOf(procedure, options),
      signal,
      onAbort: undefined,
    };
    if (signal !== undefined) {
      entry.onAbort = () => this.giveUp(serial, this.abortError(procedure.name, signal.reason));
      signal.addEventListener("abort", entry.onAbort, { once: true });
    }
    this.pending.set(serial, entry);
    this.write(message);
  }

  /**
   * When a call is given up: the caller's `timeoutMs`, else none for a long-running state change (a deadline
   * would report failure while the daemon completes it; keepalive and the caller's signal still end it), else
   * the default.
   */
  private deadlineOf(procedure: { readonly longRunning: boolean }, options: CallOptions | undefined): number {
    const timeoutMs =
      options?.timeoutMs ?? (procedure.longRunning ? Number.POSITIVE_INFINITY : this.options.callTimeoutMs);
    return performance.now() + timeoutMs;
  }

  /**
   * Starts pinging a silent daemon and declaring it dead after too many unanswered pings (once the daemon has
   * confirmed it speaks the keepalive program). The daemon's own pings are answered in any case.
   */
  startKeepalive(settings: KeepaliveSettings): void {
    this.keepalive = new KeepaliveMonitor(settings, performance.now());
  }

  /**
   * Closes the client: rejects every pending call with `reason` (as seen from each caller), tells the owner,
   * and destroys the stream. Idempotent; the first reason wins.
   */
  close(reason: LibvirtError): void {
    if (this.closeReason !== null) return;
    this.closeReason = reason;
    clearInterval(this.ticker);
    const calls = [...this.pending.values()];
    this.pending.clear();
    this.abandoned.clear();
    for (const call of calls) {
      this.detachAbort(call);
      call.reject(this.closedCallError(reason, call.procedureName));
    }
    this.stream.destroy();
    this.options.onClose(reason);
  }

  private write(message: Buffer): void {
    // Calls issued in the same tick leave in one writev.
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      process.nextTick(() => {
        this.corked = false;
        this.stream.uncork();
      });
    }
    this.stream.write(message);
  }

  private onData(chunk: Buffer): void {
    this.heardSinceTick = true;
    try {
      this.decoder.push(chunk);
    } catch (error) {
      this.close(isLibvirtError(error) ? error : protocolError(String(error), error));
    }
  }

  private onMessage(body: Buffer): void {
    if (this.closeReason !== null) return;
    const reader = new XdrReader(body);
    const header = readHeader(reader);
    if (header.program === REMOTE_PROGRAM && header.version === REMOTE_PROTOCOL_VERSION) {
      if (header.type === MessageType.REPLY) this.onReply(header, reader);
      else if (header.type === MessageType.MESSAGE) this.options.onEvent(header.procedure, reader);
      else throw unexpectedMessage(header);
    } else if (header.program === KEEPALIVE_PROGRAM && header.type === MessageType.MESSAGE) {
      if (header.procedure === KeepaliveProcedure.PING) this.sendKeepalive(KeepaliveProcedure.PONG);
      else if (header.procedure !== KeepaliveProcedure.PONG) throw unexpectedMessage(header);
    } else {
      throw unexpectedMessage(header);
    }
  }

  private onReply(header: MessageHeader, reader: XdrReader): void {
    const call = this.pending.get(header.serial);
    if (call === undefined) {
      if (this.abandoned.delete(header.serial)) return;
      throw protocolError(`reply to serial ${header.serial}, which no call is waiting for`);
    }
    // The call stays pending until its reply is decoded: if decoding throws, closing the connection rejects it
    // with every other pending call, so no path leaves it waiting.
    if (header.status === MessageStatus.OK) {
      let value: unknown;
      try {
        value = call.decode(reader);
        reader.expectEnd(`the reply to ${call.procedureName}`);
      } catch (error) {
        this.settle(header.serial, call);
        call.reject(
          localError(
            "protocol",
            ErrorCode.RPC,
            `bad reply to ${call.procedureName}`,
            call.procedureName,
            error,
          ),
        );
        throw error;
      }
      this.settle(header.serial, call);
      call.resolve(value);
    } else if (header.status === MessageStatus.ERROR) {
      const error = readRemoteError(reader, call.procedureName);
      this.settle(header.serial, call);
      call.reject(error);
    } else {
      throw protocolError(`reply to ${call.procedureName} with status ${header.status}`);
    }
  }

  /** Takes an answered call out of the pending set. */
  private settle(serial: number, call: PendingCall): void {
    this.pending.delete(serial);
    this.detachAbort(call);
  }

  private sendKeepalive(procedure: number): void {
    if (this.closeReason !== null) return;
    this.encoder.begin(
      KEEPALIVE_PROGRAM,
      KEEPALIVE_PROTOCOL_VERSION,
      procedure,
      MessageType.MESSAGE,
      0,
      MessageStatus.OK,
    );
    this.write(this.encoder.finish());
  }

  private tick(): void {
    const now = performance.now();
    if (this.pending.size > 0) {
      for (const [serial, call] of this.pending) {
        if (call.deadline <= now) {
          const error = localError(
            "timeout",
            ErrorCode.OPERATION_TIMEOUT,
            `${call.procedureName} timed out`,
            call.procedureName,
          );
          this.giveUp(serial, error);
        }
      }
    }
    const keepalive = this.keepalive;
    if (keepalive === null) return;
    if (this.heardSinceTick) {
      this.heardSinceTick = false;
      keepalive.heard(now);
    }
    const action: KeepaliveAction = keepalive.tick(now);
    if (action === "ping") this.sendKeepalive(KeepaliveProcedure.PING);
    else if (action === "dead") {
      this.close(
        localError(
          "closed",
          ErrorCode.RPC,
          `libvirt daemon did not answer keepalive for ${Math.round(keepalive.silentFor(now))} ms`,
        ),
      );
    }
  }

  private giveUp(serial: number, error: LibvirtError): void {
    const call = this.pending.get(serial);
    if (call === undefined) return;
    this.pending.delete(serial);
    this.abandoned.add(serial);
    this.detachAbort(call);
    call.reject(error);
  }

  private detachAbort(call: PendingCall): void {
    if (call.onAbort !== undefined) call.signal?.removeEventListener("abort", call.onAbort);
  }

  private abortError(procedureName: string, reason: unknown): LibvirtError {
    return localError(
      "aborted",
      ErrorCode.OPERATION_ABORTED,
      `${procedureName} aborted`,
      procedureName,
      reason,
    );
  }

  /** The error one pending call sees when the connection closes: its own object, the close reason as cause. */
  private closedCallError(reason: LibvirtError, procedureName: string): LibvirtError {
    const kind = reason.kind === "remote" ? "closed" : reason.kind;
    return localError(kind, reason.code, reason.message, procedureName, reason);
  }
}
