import { protocolError } from "./errors";

/**
 * libvirt's RPC framing: every message is a 4-byte big-endian length, counting itself, followed by that many
 * bytes minus four (a 24-byte header and a payload). The decoder reassembles messages from chunks split or
 * coalesced anywhere, and knows nothing of headers or procedures. No I/O.
 */

/** Bytes of the length word. */
export const LENGTH_WORD_BYTES = 4;
/** Bytes of the message header that follows the length word (virNetMessageHeader). */
export const HEADER_BYTES = 24;
/**
 * Largest message body accepted from the daemon: VIR_NET_MESSAGE_MAX of current libvirt
 * (src/rpc/virnetprotocol.x, 32 MiB; the length word is not counted).
 */
export const READ_MESSAGE_MAX = 33_554_432;
/**
 * Largest message body sent: 16 MiB, VIR_NET_MESSAGE_MAX before libvirt raised it to 32 MiB, so a message
 * this client sends is accepted by older daemons too.
 */
export const SEND_MESSAGE_MAX = 16_777_216;

/**
 * Turns a byte stream into message bodies (header + payload, without the length word). `onMessage` receives
 * a view that stays valid after it returns (it is never overwritten), so it may be kept.
 *
 * A length below the header size or above READ_MESSAGE_MAX throws a protocol error from `push`; the decoder is then
 * unusable, as is the stream: bytes after a bad length cannot be trusted.
 */
export class FrameDecoder {
  /** Bytes of a length word that arrived split across chunks. */
  private readonly lengthBytes = Buffer.alloc(LENGTH_WORD_BYTES);
  private lengthFilled = 0;
  /** The body being assembled across chunks, once its length is known. */
  private partial: Buffer | null = null;
  private partialFilled = 0;
  private failed = false;

  constructor(private readonly onMessage: (body: Buffer) => void) {}

  /** Feeds the next chunk of the stream; delivers each completed message in order. */
  push(chunk: Buffer): void {
    if (this.failed) throw protocolError("the stream already lost sync");
    let offset = 0;
    while (offset < chunk.length) {
      if (this.partial !== null) {
        offset = this.continuePartial(chunk, offset);
        continue;
      }
      if (this.lengthFilled === 0 && chunk.length - offset >= LENGTH_WORD_BYTES) {
        const bodyLength = this.checkedBodyLength(chunk.readUInt32BE(offset));
        const start = offset + LENGTH_WORD_BYTES;
        if (chunk.length - start >= bodyLength) {
          // The common case: the whole message is in this chunk, delivered without a copy.
          offset = start + bodyLength;
          this.onMessage(chunk.subarray(start, offset));
        } else {
          this.partial = Buffer.allocUnsafe(bodyLength);
          this.partialFilled = 0;
          offset = start;
        }
        continue;
      }
      // A length word split across chunks: collect it byte by byte.
      this.lengthBytes[this.lengthFilled++] = chunk[offset++] as number;
      if (this.lengthFilled === LENGTH_WORD_BYTES) {
        this.lengthFilled = 0;
        this.partial = Buffer.allocUnsafe(this.checkedBodyLength(this.lengthBytes.readUInt32BE(0)));
        this.partialFilled = 0;
      }
    }
  }

  /** True when no message is half received (a clean point to close the stream). */
  get idle(): boolean {
    return this.partial === null && this.lengthFilled === 0;
  }

  private continuePartial(chunk: Buffer, offset: number): number {
    const partial = this.partial as Buffer;
    const copied = chunk.copy(partial, this.partialFilled, offset);
    this.partialFilled += copied;
    if (this.partialFilled === partial.length) {
      this.partial = null;
      this.onMessage(partial);
    }
    return offset + copied;
  }

  private checkedBodyLength(totalLength: number): number {
    const bodyLength = totalLength - LENGTH_WORD_BYTES;
    if (bodyLength < HEADER_BYTES || bodyLength > READ_MESSAGE_MAX) {
      this.failed = true;
      throw protocolError(
        `message length ${totalLength} is outside ${HEADER_BYTES + 4}..${READ_MESSAGE_MAX + 4}`,
      );
    }
    return bodyLength;
  }
}
