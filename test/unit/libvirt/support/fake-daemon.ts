import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LibvirtConnection, type OpenOptions } from "../../../../provider/libvirt/connection";
import {
  type Bytes,
  cat,
  ERROR,
  EVENT,
  i32,
  KEEPALIVE,
  message,
  OK,
  REMOTE,
  REPLY,
  remoteError,
  u32,
} from "./wire-bytes";

/**
 * A scripted fake libvirtd on a real unix socket in os.tmpdir(), for connection tests. It frames messages on
 * its own (no provider code), answers the handshake by itself, and hands every other call to the test, which
 * replies in any order, byte by byte, with errors, events, garbage, or not at all. Replies keep the serial of
 * the call they answer, so concurrent calls are really tested.
 */

export interface ReceivedMessage {
  readonly program: number;
  readonly procedure: number;
  readonly type: number;
  readonly serial: number;
  readonly payload: Buffer;
}

export const Proc = {
  CONNECT_OPEN: 1,
  CONNECT_CLOSE: 2,
  CONNECT_GET_VERSION: 4,
  CONNECT_GET_HOSTNAME: 59,
  CONNECT_SUPPORTS_FEATURE: 60,
  AUTH_LIST: 66,
  AUTH_POLKIT: 70,
  CONNECT_GET_LIB_VERSION: 157,
  DOMAIN_LOOKUP_BY_NAME: 23,
  DOMAIN_SNAPSHOT_CREATE_XML: 185,
  DOMAIN_SNAPSHOT_DELETE: 193,
  REGISTER_ANY: 316,
  DEREGISTER_ANY: 317,
  EVENT_LIFECYCLE: 318,
  EVENT_BLOCK_JOB_2: 339,
} as const;

export interface FakeDaemonOptions {
  /** What AUTH_LIST offers (default [0], "none"). */
  readonly authTypes?: number[];
  /** Whether CONNECT_SUPPORTS_FEATURE(keepalive) says yes (default false). */
  readonly keepalive?: boolean;
  /** Whether the fake answers keepalive pings (default true). */
  readonly answerPings?: boolean;
}

/** One accepted client connection, as the fake daemon sees it. */
export class FakePeer {
  readonly received: ReceivedMessage[] = [];
  private buffered = Buffer.alloc(0);
  private readonly waiters: {
    match: (m: ReceivedMessage) => boolean;
    resolve: (m: ReceivedMessage) => void;
  }[] = [];
  private readonly unclaimed: ReceivedMessage[] = [];
  /** Set to stop answering anything, pings included (a stalled daemon). */
  stalled = false;

  constructor(
    readonly socket: net.Socket,
    private readonly options: FakeDaemonOptions,
  ) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => {});
  }

  /** The next message (not answered by the fake itself) matching `match`, waiting for it if needed. */
  next(match: (m: ReceivedMessage) => boolean = () => true): Promise<ReceivedMessage> {
    const index = this.unclaimed.findIndex(match);
    if (index >= 0) return Promise.resolve(this.unclaimed.splice(index, 1)[0] as ReceivedMessage);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  /** The next call of a procedure. */
  nextCall(procedure: number): Promise<ReceivedMessage> {
    return this.next((m) => m.program === REMOTE && m.procedure === procedure);
  }

  /** Replies OK to `call` with `payload`, in one write or one byte per write. */
  reply(call: ReceivedMessage, payload: Bytes = [], byteByByte = false): Promise<void> {
    return this.send(
      message(
        { program: REMOTE, procedure: call.procedure, type: REPLY, serial: call.serial, status: OK },
        payload,
      ),
      byteByByte,
    );
  }

  /** Replies with a `remote_error`. */
  replyError(call: ReceivedMessage, fields: Parameters<typeof remoteError>[0]): Promise<void> {
    return this.send(
      message(
        { program: REMOTE, procedure: call.procedure, type: REPLY, serial: call.serial, status: ERROR },
        remoteError(fields),
      ),
    );
  }

  /** Sends an event message of the remote program. */
  event(procedure: number, payload: Bytes): Promise<void> {
    return this.send(message({ program: REMOTE, procedure, type: EVENT, serial: 0, status: OK }, payload));
  }

  /** Writes raw bytes; with `byteByByte`, one write per byte with a pause so they arrive as separate reads. */
  async send(bytes: Buffer, byteByByte = false): Promise<void> {
    if (!byteByByte) {
      this.socket.write(bytes);
      return;
    }
    for (const byte of bytes) {
      this.socket.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Drops the connection abruptly. */
  drop(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 4) {
      const length = this.buffered.readUInt32BE(0);
      if (this.buffered.length < length) return;
      const body = this.buffered.subarray(4, length);
      this.buffered = this.buffered.subarray(length);
      this.onMessage({
        program: body.readUInt32BE(0),
        procedure: body.readInt32BE(8),
        type: body.readInt32BE(12),
        serial: body.readUInt32BE(16),
        payload: Buffer.from(body.subarray(24)),
      });
    }
  }

  private onMessage(m: ReceivedMessage): void {
    this.received.push(m);
    if (this.stalled) return;
    if (m.program === KEEPALIVE) {
      if (m.procedure === 1 && this.options.answerPings !== false) {
        void this.send(message({ program: KEEPALIVE, procedure: 2, type: EVENT, serial: 0, status: OK }));
      }
      return;
    }
    if (m.procedure === Proc.AUTH_LIST) {
      const types = this.options.authTypes ?? [0];
      void this.reply(m, cat(u32(types.length), ...types.map((type) => i32(type))));
    } else if (m.procedure === Proc.AUTH_POLKIT) {
      void this.reply(m, i32(1));
    } else if (m.procedure === Proc.CONNECT_OPEN || m.procedure === Proc.CONNECT_CLOSE) {
      void this.reply(m);
    } else if (m.procedure === Proc.CONNECT_SUPPORTS_FEATURE) {
      void this.reply(m, i32(this.options.keepalive ? 1 : 0));
    } else {
      const waiter = this.waiters.findIndex((w) => w.match(m));
      if (waiter >= 0) this.waiters.splice(waiter, 1)[0]?.resolve(m);
      else this.unclaimed.push(m);
    }
  }
}

export class FakeDaemon {
  /** Accepted connections not yet handed to a test. */
  private readonly ready: FakePeer[] = [];
  private readonly peerWaiters: ((peer: FakePeer) => void)[] = [];
  /** Every connection ever accepted, so `stop` can drop them. */
  private readonly all: FakePeer[] = [];

  private constructor(
    private readonly server: net.Server,
    private readonly dir: string,
    readonly path: string,
  ) {}

  static async start(options: FakeDaemonOptions = {}): Promise<FakeDaemon> {
    const dir = mkdtempSync(join(tmpdir(), "fake-libvirtd-"));
    const path = join(dir, "libvirt-sock");
    // Assigned before listen(), so before any connection can arrive.
    let daemon: FakeDaemon | undefined;
    const server = net.createServer((socket) => daemon?.accept(new FakePeer(socket, options)));
    daemon = new FakeDaemon(server, dir, path);
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return daemon;
  }

  /** Opens a LibvirtConnection to the fake; resolves with it and the fake's side of it. */
  async connect(
    options: Partial<OpenOptions> = {},
  ): Promise<{ connection: LibvirtConnection; peer: FakePeer }> {
    const peer = this.nextPeer();
    const stream = net.connect(this.path);
    const connection = await LibvirtConnection.open(stream, {
      name: "test:///fake",
      keepalive: false,
      ...options,
    });
    return { connection, peer: await peer };
  }

  /** The next accepted connection. */
  nextPeer(): Promise<FakePeer> {
    const ready = this.ready.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => this.peerWaiters.push(resolve));
  }

  /** Drops every connection (as a daemon that exits would) and stops listening. */
  async stop(): Promise<void> {
    for (const peer of this.all) peer.drop();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private accept(peer: FakePeer): void {
    this.all.push(peer);
    const waiter = this.peerWaiters.shift();
    if (waiter) waiter(peer);
    else this.ready.push(peer);
  }
}
