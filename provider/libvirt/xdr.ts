import { protocolError } from "./errors";

/**
 * The subset of XDR (RFC 4506) that libvirt's remote protocol uses: 32-bit ints, 64-bit hypers, booleans,
 * strings and opaques (length-prefixed, padded to 4 bytes), fixed opaques, optional values (`*` pointers,
 * encoded as a boolean then the value) and variable arrays. No I/O: a writer fills a buffer, a reader walks one.
 *
 * Why not a library: `@stellar/js-xdr` wants every type declared through its own type DSL and returns its own
 * wrapper objects; the protocol needs a dozen primitives, and a reader that turns every malformed input into a
 * protocol error (never a RangeError) with no per-value allocation is about as long as the glue would be.
 */

/** Largest string the reader accepts (libvirt's VIR_NET_MESSAGE_STRING_MAX). */
export const XDR_STRING_MAX = 4_194_304;

const INITIAL_CAPACITY = 4096;

/** Bytes of padding that follow `length` bytes of string or opaque data. */
function padding(length: number): number {
  return (4 - (length & 3)) & 3;
}

/**
 * Throws a RangeError unless `value` is an integer in min..max. Buffer's own writers let NaN, undefined and
 * fractions through (as 0 or truncated), so an unset flag would silently go out as 0.
 */
function checkInteger(value: unknown, min: number, max: number, type: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`XDR ${type} needs an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

/** Throws a RangeError unless `value` is a bigint in min..max. */
function checkBigint(value: unknown, min: bigint, max: bigint, type: string): bigint {
  if (typeof value !== "bigint" || value < min || value > max) {
    throw new RangeError(`XDR ${type} needs a bigint in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

/**
 * Appends XDR values to a growing buffer. Reusable: `reset()` keeps the allocation, so a connection encodes
 * every call into one buffer. Values out of range of their XDR type, and numbers that are not integers (NaN,
 * undefined, fractions), throw a RangeError before anything is written: that is a bug in the caller, not a
 * protocol condition (the connection reports it as kind `argument`, and sends nothing).
 */
export class XdrWriter {
  private buffer: Buffer;
  private offset = 0;

  constructor(capacity = INITIAL_CAPACITY) {
    this.buffer = Buffer.allocUnsafe(capacity);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.offset;
  }

  reset(): void {
    this.offset = 0;
  }

  /** A copy of the bytes written so far (safe to hand to a socket while this writer is reused). */
  toBuffer(): Buffer {
    return Buffer.from(this.buffer.subarray(0, this.offset));
  }

  /** Overwrites an unsigned int at an earlier position (used for a frame's length word). */
  patchUint(position: number, value: number): void {
    this.buffer.writeUInt32BE(value, position);
  }

  int(value: number): void {
    checkInteger(value, -(2 ** 31), 2 ** 31 - 1, "int");
    this.ensure(4);
    this.offset = this.buffer.writeInt32BE(value, this.offset);
  }

  uint(value: number): void {
    checkInteger(value, 0, 2 ** 32 - 1, "unsigned int");
    this.ensure(4);
    this.offset = this.buffer.writeUInt32BE(value, this.offset);
  }

  bool(value: boolean): void {
    this.int(value ? 1 : 0);
  }

  hyper(value: bigint): void {
    checkBigint(value, -(2n ** 63n), 2n ** 63n - 1n, "hyper");
    this.ensure(8);
    this.offset = this.buffer.writeBigInt64BE(value, this.offset);
  }

  uhyper(value: bigint): void {
    checkBigint(value, 0n, 2n ** 64n - 1n, "unsigned hyper");
    this.ensure(8);
    this.offset = this.buffer.writeBigUInt64BE(value, this.offset);
  }

  /** A UTF-8 string: length, bytes, zero padding. */
  string(value: string): void {
    const length = Buffer.byteLength(value, "utf8");
    this.ensure(4 + length + 3);
    this.offset = this.buffer.writeUInt32BE(length, this.offset);
    this.offset += this.buffer.write(value, this.offset, length, "utf8");
    this.zeroPad(length);
  }

  /** A fixed-length opaque: bytes and padding, no length word. */
  fixedOpaque(value: Uint8Array, length: number): void {
    if (value.length !== length)
      throw new RangeError(`fixed opaque needs ${length} bytes, got ${value.length}`);
    this.ensure(length + 3);
    this.buffer.set(value, this.offset);
    this.offset += length;
    this.zeroPad(length);
  }

  /** An optional string (`remote_string`): null is encoded as absent. */
  optionalString(value: string | null): void {
    if (value === null) {
      this.int(0);
    } else {
      this.int(1);
      this.string(value);
    }
  }

  private zeroPad(length: number): void {
    const pad = padding(length);
    for (let i = 0; i < pad; i++) this.buffer[this.offset++] = 0;
  }

  private ensure(extra: number): void {
    const needed = this.offset + extra;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }
}

/**
 * Reads XDR values from a buffer range. Every read past the end, bad boolean, bad padding-free length or
 * oversized string throws a LibvirtError of kind `protocol`.
 */
export class XdrReader {
  private offset: number;

  constructor(
    private readonly buffer: Buffer,
    start = 0,
    private readonly end = buffer.length,
  ) {
    this.offset = start;
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.end - this.offset;
  }

  /** Throws unless every byte was consumed: trailing bytes mean the two sides disagree on a type. */
  expectEnd(what: string): void {
    if (this.offset !== this.end)
      throw protocolError(`${this.end - this.offset} unexpected trailing bytes in ${what}`);
  }

  int(): number {
    this.need(4, "int");
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  uint(): number {
    this.need(4, "unsigned int");
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  bool(): boolean {
    const value = this.int();
    if (value !== 0 && value !== 1) throw protocolError(`boolean with value ${value}`);
    return value === 1;
  }

  hyper(): bigint {
    this.need(8, "hyper");
    const value = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  uhyper(): bigint {
    this.need(8, "unsigned hyper");
    const value = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  string(max = XDR_STRING_MAX): string {
    const length = this.uint();
    if (length > max) throw protocolError(`string of ${length} bytes exceeds the limit of ${max}`);
    this.need(length + padding(length), "string");
    const value = this.buffer.toString("utf8", this.offset, this.offset + length);
    this.offset += length + padding(length);
    return value;
  }

  /** A fixed-length opaque, as a copy (it outlives the frame). */
  fixedOpaque(length: number): Buffer {
    return this.take(length, "fixed opaque");
  }

  optionalString(): string | null {
    return this.bool() ? this.string() : null;
  }

  /**
   * A variable array. `minItemBytes` is the smallest encoding of one item, so a count that cannot fit in the
   * remaining bytes is rejected before any item is decoded.
   */
  array<T>(readItem: (reader: XdrReader) => T, minItemBytes: number, max = Number.MAX_SAFE_INTEGER): T[] {
    const count = this.uint();
    if (count > max) throw protocolError(`array of ${count} items exceeds the limit of ${max}`);
    if (count * minItemBytes > this.remaining)
      throw protocolError(`array of ${count} items overruns the message`);
    const items = new Array<T>(count);
    for (let i = 0; i < count; i++) items[i] = readItem(this);
    return items;
  }

  private take(length: number, what: string): Buffer {
    this.need(length + padding(length), what);
    const value = Buffer.from(this.buffer.subarray(this.offset, this.offset + length));
    this.offset += length + padding(length);
    return value;
  }

  private need(bytes: number, what: string): void {
    if (this.end - this.offset < bytes) {
      throw protocolError(`reading ${what} needs ${bytes} bytes, only ${this.end - this.offset} left`);
    }
  }
}
