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
 * This stream sits on the TLS socket and turns every write into its own TLS write, one at a time: a write is
 * handed to the socket only once the previous one has completed, so the socket never gathers two of them into
 * one record. Its writer (the RPC client) writes each whole message with one write, and the framing already
 * knows where messages end, so no length is parsed here; writes corked together still arrive one by one,
 * because this stream has no `_writev`. Reads pass through unchanged. Destroying it destroys the TLS socket
 * and the other way round.
 */
export class RecordPerMessageStream extends Duplex {
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

  override _write(
    message: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    this.socket.write(message, (error) => callback(error ?? null));
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }
}
