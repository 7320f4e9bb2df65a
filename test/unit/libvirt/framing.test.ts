import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { isLibvirtError } from "../../../provider/libvirt/errors";
import { FrameDecoder } from "../../../provider/libvirt/framing";
import { MessageEncoder } from "../../../provider/libvirt/protocol";
import { CALL, message, OK, REMOTE, REPLY, str, u32 } from "./support/wire-bytes";

/** Feeds `chunks` to a fresh decoder and returns the message bodies as hex (copies, to catch aliasing bugs). */
function decode(chunks: Buffer[]): string[] {
  const bodies: Buffer[] = [];
  const decoder = new FrameDecoder((body) => bodies.push(body));
  for (const chunk of chunks) decoder.push(chunk);
  expect(decoder.idle).toBe(true);
  return bodies.map((body) => body.toString("hex"));
}

/** Splits `bytes` at the given sorted offsets. */
function splitAt(bytes: Buffer, offsets: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let start = 0;
  for (const offset of [...offsets, bytes.length]) {
    chunks.push(Buffer.from(bytes.subarray(start, offset)));
    start = offset;
  }
  return chunks;
}

/** A small deterministic PRNG (mulberry32), so a failing split can be reproduced from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const first = message(
  { program: REMOTE, procedure: 59, type: REPLY, serial: 1, status: OK },
  str("host.example"),
);
const second = message(
  { program: REMOTE, procedure: 157, type: REPLY, serial: 2, status: OK },
  [0, 0, 0, 0, 0, 0x89, 0x54, 0x40],
);
const twoFrames = Buffer.concat([first, second]);
const expectedTwo = [first.subarray(4).toString("hex"), second.subarray(4).toString("hex")];

describe("framing reassembles messages split or coalesced anywhere", () => {
  test("two frames in one chunk", () => {
    expect(decode([twoFrames])).toEqual(expectedTwo);
  });

  test("two frames split at every byte offset", () => {
    for (let offset = 0; offset <= twoFrames.length; offset++) {
      expect({ offset, bodies: decode(splitAt(twoFrames, [offset])) }).toEqual({
        offset,
        bodies: expectedTwo,
      });
    }
  });

  test("two frames split at every pair of offsets", () => {
    for (let a = 1; a < twoFrames.length; a++) {
      for (let b = a; b < twoFrames.length; b += 3) {
        expect(decode(splitAt(twoFrames, [a, b]))).toEqual(expectedTwo);
      }
    }
  });

  test("two frames byte by byte", () => {
    expect(
      decode(
        splitAt(
          twoFrames,
          [...Array(twoFrames.length - 1).keys()].map((i) => i + 1),
        ),
      ),
    ).toEqual(expectedTwo);
  });

  test("a delivered body is not overwritten by later chunks", () => {
    const kept: Buffer[] = [];
    const decoder = new FrameDecoder((body) => kept.push(body));
    for (const chunk of splitAt(twoFrames, [3, 30])) decoder.push(chunk);
    expect(kept.map((body) => body.toString("hex"))).toEqual(expectedTwo);
  });
});

describe("framing of a recorded libvirt session (libvirt 9.0, both directions)", () => {
  for (const side of ["server", "client"] as const) {
    const recording = readFileSync(join(__dirname, "fixtures", `session-${side}.bin`));
    const whole = decode([recording]);

    test(`${side}: the bodies re-framed reproduce the recording byte for byte`, () => {
      const reframed = Buffer.concat(
        whole.map((hex) => Buffer.concat([Buffer.from(u32(hex.length / 2 + 4)), Buffer.from(hex, "hex")])),
      );
      expect(reframed.equals(recording)).toBe(true);
      expect(whole.length).toBeGreaterThanOrEqual(9);
    });

    test(`${side}: 200 random splits decode to the same messages`, () => {
      for (let seed = 1; seed <= 200; seed++) {
        const next = random(seed);
        const offsets = new Set<number>();
        const cuts = 1 + Math.floor(next() * 40);
        for (let i = 0; i < cuts; i++) offsets.add(1 + Math.floor(next() * (recording.length - 1)));
        const sorted = [...offsets].sort((a, b) => a - b);
        expect({ seed, bodies: decode(splitAt(recording, sorted)) }).toEqual({ seed, bodies: whole });
      }
    });

    test(`${side}: byte by byte`, () => {
      expect(
        decode(
          splitAt(
            recording,
            [...Array(recording.length - 1).keys()].map((i) => i + 1),
          ),
        ),
      ).toEqual(whole);
    });
  }
});

describe("a bad length word is a protocol error and poisons the decoder", () => {
  test.each([
    ["below the header size", 27],
    ["zero", 0],
    ["above libvirt's 32 MiB message limit (VIR_NET_MESSAGE_MAX)", 32 * 1024 * 1024 + 5],
  ])("length %s", (_what, length) => {
    const decoder = new FrameDecoder(() => {});
    const bad = Buffer.from([...u32(length), ...new Array(40).fill(0)]);
    let error: unknown;
    try {
      decoder.push(bad);
    } catch (caught) {
      error = caught;
    }
    expect(isLibvirtError(error) && { kind: error.kind, codeName: error.codeName }).toEqual({
      kind: "protocol",
      codeName: "RPC",
    });
    expect(() =>
      decoder.push(message({ program: REMOTE, procedure: 1, type: CALL, serial: 1, status: OK })),
    ).toThrow(/lost sync/);
  });
});

describe("message size limits: 32 MiB read (current libvirt), 16 MiB sent (older daemons)", () => {
  test("a length word of 32 MiB + 4 (the largest body libvirt sends) starts a message", () => {
    const decoder = new FrameDecoder(() => {});
    decoder.push(Buffer.from([...u32(32 * 1024 * 1024 + 4), ...new Array(40).fill(0)]));
    expect(decoder.idle).toBe(false);
  });

  test("a message over 16 MiB is refused before it is sent; one just under it is built", () => {
    const encoder = new MessageEncoder();
    const build = (payloadBytes: number): number => {
      encoder.begin(REMOTE, 1, 1, CALL, 1, OK).string("x".repeat(payloadBytes));
      return encoder.finish().length;
    };
    // Body = 24-byte header + 4-byte string length + payload.
    expect(build(16 * 1024 * 1024 - 28)).toBe(16 * 1024 * 1024 + 4);
    expect(() => build(16 * 1024 * 1024 - 24)).toThrow(RangeError);
  });
});
