import { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";

/**
 * Quirk: libvirtd stalls on the second of two RPC messages that arrive in one TLS record. It decrypts a record,
 * handles the first message, and then waits for the socket to become readable again; the rest of the record
 * sits in GnuTLS's buffer, which libvirt's event loop does not look at (src/rpc/virnetsocket.c,
 * virNetSocketHasCachedData checks SASL and libssh buffers but not TLS). The call stays unanswered until
 * some other bytes arrive. Node's TLS socket puts all chunks of one writev into a single record, and the
 * connection batches the calls of one tick into one writev, so concurrent calls hit this.
 *
 * This stream sits on the TLS socket and writes every RPC message with its own TLS write (hence its own
 * record), splitting writes at message boundaries by the 4-byte big-endian length that starts each message
 * (RFC 4506 record marking as libvirt uses it; nothing else of the message is looked at). Reads pass through
 * unchanged. Destroying it destroys the TLS socket and the other way round.
 */
export class RecordPerMessageStream extends Duplex {
  /** Bytes of the current message still to come; 0 means the next byte starts a length prefix. */
  private remaining = 0;
  /** Length-prefix bytes received so far, when a prefix is split across writes. */
  private prefix = Buffer.alloc(0);

  constructor(private readonly socket: TLSSocket) {
    super({ allowHalfOpen: false });
    socket.on("data", (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("error", (error) => this.destroy(error));
    socket.on("close", () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const pieces = this.splitAtMessages(chunk);
    pieces.forEach((piece, index) => {
      this.socket.write(piece, index === pieces.length - 1 ? (error) => callback(error ?? null) : undefined);
    });
    if (pieces.length === 0) callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }

  /** Cuts `chunk` so that no piece holds the end of one message and the start of the next. */
  private splitAtMessages(chunk: Buffer): Buffer[] {
    const pieces: Buffer[] = [];
    let start = 0;
    let at = 0;
    while (at < chunk.length) {
      if (this.remaining === 0) {
        if (at > start) pieces.push(chunk.subarray(start, at));
        start = at;
        const needed = 4 - this.prefix.length;
        const taken = chunk.subarray(at, at + needed);
        this.prefix = Buffer.concat([this.prefix, taken]);
        at += taken.length;
        if (this.prefix.length < 4) break;
        // The length counts its own 4 bytes; a bogus length is the daemon's to reject, not ours.
        this.remaining = Math.max(0, this.prefix.readUInt32BE(0) - 4);
        this.prefix = Buffer.alloc(0);
      } else {
        const taken = Math.min(this.remaining, chunk.length - at);
        this.remaining -= taken;
        at += taken;
      }
    }
    if (at > start) pieces.push(chunk.subarray(start, at));
    return pieces;
  }
}
