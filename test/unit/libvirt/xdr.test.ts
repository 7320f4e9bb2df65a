import { describe, expect, test } from "vitest";
import { isLibvirtError, type LibvirtError } from "../../../provider/libvirt/errors";
import { XdrReader, XdrWriter } from "../../../provider/libvirt/xdr";
import { cat, i32, optStr, str, u32, u64 } from "./support/wire-bytes";

function written(fill: (writer: XdrWriter) => void): number[] {
  const writer = new XdrWriter(4); // tiny, so every test also exercises growth
  fill(writer);
  return [...writer.toBuffer()];
}

function reader(bytes: number[]): XdrReader {
  return new XdrReader(Buffer.from(bytes));
}

function protocolErrorOf(read: () => unknown): LibvirtError {
  try {
    read();
  } catch (error) {
    if (isLibvirtError(error)) return error;
    throw error;
  }
  throw new Error("expected a protocol error, got a value");
}

describe("XDR writer produces the bytes of an independent builder", () => {
  test.each([0, 1, -1, 2 ** 31 - 1, -(2 ** 31)])("int %d", (value) => {
    expect(written((w) => w.int(value))).toEqual(i32(value));
    expect(reader(i32(value)).int()).toBe(value);
  });

  test.each([0, 1, 2 ** 31, 2 ** 32 - 1])("unsigned int %d", (value) => {
    expect(written((w) => w.uint(value))).toEqual(u32(value));
    expect(reader(u32(value)).uint()).toBe(value);
  });

  test.each([0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n)])("hyper %d", (value) => {
    expect(written((w) => w.hyper(value))).toEqual(u64(value));
    expect(reader(u64(value)).hyper()).toBe(value);
  });

  test.each([0n, 2n ** 32n, 2n ** 64n - 1n])("unsigned hyper %d", (value) => {
    expect(written((w) => w.uhyper(value))).toEqual(u64(value));
    expect(reader(u64(value)).uhyper()).toBe(value);
  });

  test("booleans are ints 0 and 1", () => {
    const bytes = written((w) => {
      w.bool(true);
      w.bool(false);
    });
    expect(bytes).toEqual(cat(i32(1), i32(0)));
    const r = reader(cat(i32(1), i32(0)));
    expect([r.bool(), r.bool()]).toEqual([true, false]);
  });

  test.each(["", "a", "ab", "abc", "abcd", "abcde", "ünïcödé ✓", "<a href='x'>&amp;</a>"])(
    "string %j is length, UTF-8 bytes and zero padding",
    (value) => {
      expect(written((w) => w.string(value))).toEqual(str(value));
      const r = reader(str(value));
      expect(r.string()).toBe(value);
      expect(r.remaining).toBe(0);
    },
  );

  test("optional strings, string arrays, fixed opaques", () => {
    const bytes = written((w) => {
      w.optionalString(null);
      w.optionalString("x");
      w.uint(3);
      for (const item of ["vda", "", "/mnt/a b"]) w.string(item);
      w.fixedOpaque(Uint8Array.from([9, 8, 7]), 3);
    });
    expect(bytes).toEqual(
      cat(optStr(null), optStr("x"), u32(3), str("vda"), str(""), str("/mnt/a b"), [9, 8, 7, 0]),
    );
    const r = reader(bytes);
    expect({
      absent: r.optionalString(),
      present: r.optionalString(),
      list: r.array((x) => x.string(), 4),
      fixed: [...r.fixedOpaque(3)],
    }).toEqual({
      absent: null,
      present: "x",
      list: ["vda", "", "/mnt/a b"],
      fixed: [9, 8, 7],
    });
    r.expectEnd("test");
  });

  test("a value out of range of its XDR type is a caller bug (RangeError), not a protocol error", () => {
    expect(() => written((w) => w.int(2 ** 31))).toThrow(RangeError);
    expect(() => written((w) => w.uint(-1))).toThrow(RangeError);
    expect(() => written((w) => w.uhyper(-1n))).toThrow(RangeError);
    expect(() => written((w) => w.fixedOpaque(Uint8Array.from([1]), 16))).toThrow(RangeError);
  });

  test("numbers that are not integers (NaN, undefined, fractions) and non-bigint hypers are refused, not sent as 0", () => {
    const notInts: unknown[] = [Number.NaN, undefined, 1.5, Number.POSITIVE_INFINITY, "1", null];
    const refused = (write: (w: XdrWriter, value: never) => void, values: unknown[]): boolean[] =>
      values.map((value) => {
        try {
          written((w) => write(w, value as never));
          return false;
        } catch (error) {
          return error instanceof RangeError;
        }
      });
    expect({
      int: refused((w, v) => w.int(v), notInts),
      uint: refused((w, v) => w.uint(v), notInts),
      hyper: refused((w, v) => w.hyper(v), [...notInts, 1, 2n ** 63n]),
      uhyper: refused((w, v) => w.uhyper(v), [...notInts, 1, 2n ** 64n]),
    }).toEqual({
      int: notInts.map(() => true),
      uint: notInts.map(() => true),
      hyper: [...notInts, 1, 2n ** 63n].map(() => true),
      uhyper: [...notInts, 1, 2n ** 64n].map(() => true),
    });
    expect(written((w) => w.hyper(-(2n ** 63n)))).toEqual(u64(-(2n ** 63n)));
    expect(written((w) => w.uhyper(2n ** 64n - 1n))).toEqual(u64(2n ** 64n - 1n));
  });
});

describe("XDR reader turns every malformed input into a protocol error, never a RangeError", () => {
  const composite = cat(
    i32(-5),
    u64(7n),
    str("hello"),
    optStr("world"),
    u32(2),
    str("a"),
    str("bc"),
    [1, 2, 3, 4],
  );
  const readAll = (r: XdrReader) => [
    r.int(),
    r.hyper(),
    r.string(),
    r.optionalString(),
    r.array((x) => x.string(), 4),
    [...r.fixedOpaque(4)],
  ];

  test("the whole composite decodes", () => {
    expect(readAll(reader(composite))).toEqual([-5, 7n, "hello", "world", ["a", "bc"], [1, 2, 3, 4]]);
  });

  test("every truncation of the composite is a protocol error", () => {
    for (let length = 0; length < composite.length; length++) {
      const error = protocolErrorOf(() => readAll(reader(composite.slice(0, length))));
      expect({ length, kind: error.kind, codeName: error.codeName }).toEqual({
        length,
        kind: "protocol",
        codeName: "RPC",
      });
    }
  });

  test("a boolean other than 0 or 1", () => {
    expect(protocolErrorOf(() => reader(i32(2)).bool()).message).toMatch(/boolean with value 2/);
  });

  test("a string longer than the limit, or than the message", () => {
    expect(protocolErrorOf(() => reader(cat(u32(10), [97, 98])).string(4)).message).toMatch(
      /exceeds the limit/,
    );
    expect(protocolErrorOf(() => reader(cat(u32(0xffffffff))).string()).kind).toBe("protocol");
    expect(protocolErrorOf(() => reader(cat(u32(3), [97, 98, 99])).string()).message).toMatch(
      /needs 4 bytes/,
    );
  });

  test("an array count that cannot fit is rejected before decoding items", () => {
    let itemsRead = 0;
    const error = protocolErrorOf(() =>
      reader(cat(u32(1_000_000), str("a"))).array((x) => {
        itemsRead++;
        return x.string();
      }, 4),
    );
    expect({ message: error.message, itemsRead }).toEqual({
      message: "libvirt protocol error: array of 1000000 items overruns the message",
      itemsRead: 0,
    });
  });

  test("trailing bytes after a complete value", () => {
    const r = reader(cat(i32(1), i32(2)));
    r.int();
    expect(protocolErrorOf(() => r.expectEnd("a reply")).message).toBe(
      "libvirt protocol error: 4 unexpected trailing bytes in a reply",
    );
  });

  test("a reader over a range of a larger buffer stops at the range's end", () => {
    const buffer = Buffer.from(cat(i32(1), i32(2), i32(3)));
    const r = new XdrReader(buffer, 4, 8);
    expect(r.int()).toBe(2);
    expect(protocolErrorOf(() => r.int()).kind).toBe("protocol");
  });
});
