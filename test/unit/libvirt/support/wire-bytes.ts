/**
 * A test-only builder of libvirt wire bytes, written independently of provider/libvirt's codec (plain byte
 * arithmetic, no XdrWriter), so tests compare the product's output against bytes built another way.
 */

export type Bytes = number[];

/** Big-endian 32-bit two's complement. */
export function u32(value: number): Bytes {
  const v = value >>> 0;
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

export const i32 = u32;

/** Big-endian 64-bit two's complement. */
export function u64(value: bigint): Bytes {
  const v = BigInt.asUintN(64, value);
  return [...u32(Number(v >> 32n)), ...u32(Number(v & 0xffffffffn))];
}

function pad(length: number): Bytes {
  return new Array((4 - (length % 4)) % 4).fill(0);
}

/** XDR string: length, UTF-8 bytes, zero padding. */
export function str(value: string): Bytes {
  const bytes = [...new TextEncoder().encode(value)];
  return [...u32(bytes.length), ...bytes, ...pad(bytes.length)];
}

/** XDR optional string (`remote_string`). */
export function optStr(value: string | null): Bytes {
  return value === null ? u32(0) : [...u32(1), ...str(value)];
}

/** A UUID's 16 raw bytes from its canonical text. */
export function uuid(text: string): Bytes {
  const hex = text.replaceAll("-", "");
  const bytes: Bytes = [];
  for (let i = 0; i < 32; i += 2) bytes.push(Number.parseInt(hex.slice(i, i + 2), 16));
  return bytes;
}

/** `remote_nonnull_domain`. */
export function domain(name: string, uuidText: string, id: number): Bytes {
  return [...str(name), ...uuid(uuidText), ...i32(id)];
}

export function cat(...parts: Bytes[]): Bytes {
  return parts.flat();
}

export interface HeaderFields {
  program: number;
  version?: number;
  procedure: number;
  type: number;
  serial: number;
  status: number;
}

/** A whole message: length word (counting itself), header, payload. */
export function message(header: HeaderFields, payload: Bytes = []): Buffer {
  const body = cat(
    u32(header.program),
    u32(header.version ?? 1),
    i32(header.procedure),
    i32(header.type),
    u32(header.serial),
    i32(header.status),
    payload,
  );
  return Buffer.from([...u32(body.length + 4), ...body]);
}

export const REMOTE = 0x20008086;
export const KEEPALIVE = 0x6b656570;
export const CALL = 0;
export const REPLY = 1;
export const EVENT = 2;
export const OK = 0;
export const ERROR = 1;

/** A `remote_error` payload with every field set. */
export function remoteError(fields: {
  code: number;
  domain: number;
  message: string | null;
  level: number;
  str1: string | null;
  str2: string | null;
  str3: string | null;
  int1: number;
  int2: number;
}): Bytes {
  return cat(
    i32(fields.code),
    i32(fields.domain),
    optStr(fields.message),
    i32(fields.level),
    u32(0), // dom: absent
    optStr(fields.str1),
    optStr(fields.str2),
    optStr(fields.str3),
    i32(fields.int1),
    i32(fields.int2),
    u32(0), // net: absent
  );
}
