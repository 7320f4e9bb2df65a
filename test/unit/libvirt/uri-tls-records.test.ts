import { EventEmitter } from "node:events";
import type { TLSSocket } from "node:tls";
import { describe, expect, it } from "vitest";
import { RecordPerMessageStream } from "../../../provider/libvirt/transports/tls-records";

/** Records each write the stream makes on the "TLS socket": each write is one TLS record. */
class RecordingSocket extends EventEmitter {
  readonly writes: number[][] = [];
  write(piece: Buffer, callback?: (error?: Error | null) => void): boolean {
    this.writes.push([...piece]);
    if (callback) setImmediate(callback);
    return true;
  }
  end(callback?: () => void): void {
    if (callback) setImmediate(callback);
  }
  destroy(): void {}
  pause(): void {}
  resume(): void {}
}

/** A message of `length` bytes (length prefix included) filled with `fill` after the prefix. */
function message(length: number, fill: number): number[] {
  const bytes = Buffer.alloc(length, fill);
  bytes.writeUInt32BE(length, 0);
  return [...bytes];
}

async function recordsFor(chunks: number[][]): Promise<number[][]> {
  const socket = new RecordingSocket();
  const stream = new RecordPerMessageStream(socket as unknown as TLSSocket);
  for (const chunk of chunks) {
    await new Promise<void>((resolve, reject) =>
      stream.write(Buffer.from(chunk), (error) => (error ? reject(error) : resolve())),
    );
  }
  return socket.writes;
}

describe("Quirk: libvirtd stalls on the second of two RPC messages in one TLS record", () => {
  const a = message(8, 0xaa);
  const b = message(6, 0xbb);
  const c = message(4, 0xcc);

  it("writes two messages batched into one chunk as two records", async () => {
    expect(await recordsFor([[...a, ...b]])).toEqual([a, b]);
  });

  it("never lets a record hold the end of one message and the start of the next", async () => {
    // a's tail and b's split length prefix in one chunk; b's rest, an empty-body message c, in the next.
    const stream = [...a, ...b, ...c];
    expect(await recordsFor([stream.slice(0, 5), stream.slice(5, 10), stream.slice(10)])).toEqual([
      a.slice(0, 5),
      a.slice(5, 8),
      b.slice(0, 2),
      b.slice(2, 6),
      c,
    ]);
  });

  it("writes byte by byte unchanged", async () => {
    const stream = [...a, ...b];
    expect((await recordsFor(stream.map((byte) => [byte]))).flat()).toEqual(stream);
  });
});
