import { EventEmitter } from "node:events";
import type { TLSSocket } from "node:tls";
import { describe, expect, it } from "vitest";
import { RecordPerMessageStream } from "../../../provider/libvirt/transports/tls-records";

/**
 * Stands in for the TLS socket: each write is one TLS record. Writes complete only when `complete()` says so,
 * so a test can see what the stream hands over while an earlier write is still in flight.
 */
class RecordingSocket extends EventEmitter {
  readonly writes: number[][] = [];
  private readonly inFlight: (() => void)[] = [];
  write(piece: Buffer, callback?: (error?: Error | null) => void): boolean {
    this.writes.push([...piece]);
    this.inFlight.push(() => callback?.());
    return true;
  }
  /** Completes the oldest write still in flight; false when none is. */
  complete(): boolean {
    const next = this.inFlight.shift();
    next?.();
    return next !== undefined;
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

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("Quirk: libvirtd stalls on the second of two RPC messages in one TLS record", () => {
  const a = message(8, 0xaa);
  const b = message(6, 0xbb);
  const c = message(4, 0xcc);

  it("messages written in one tick (corked, as the RPC client batches them) become one record each", async () => {
    const socket = new RecordingSocket();
    const stream = new RecordPerMessageStream(socket as unknown as TLSSocket);
    const written = new Promise<void>((resolve) => {
      stream.cork();
      stream.write(Buffer.from(a));
      stream.write(Buffer.from(b));
      stream.write(Buffer.from(c), () => resolve());
      stream.uncork();
    });
    while (socket.complete() || socket.writes.length < 3) await tick();
    await written;
    expect(socket.writes).toEqual([a, b, c]);
  });

  it("hands a message to the socket only once the previous write completed, so none are gathered", async () => {
    const socket = new RecordingSocket();
    const stream = new RecordPerMessageStream(socket as unknown as TLSSocket);
    stream.write(Buffer.from(a));
    stream.write(Buffer.from(b));
    await tick();
    const whileFirstInFlight = socket.writes.map((record) => [...record]);
    socket.complete();
    await tick();
    expect({ whileFirstInFlight, afterItCompleted: socket.writes }).toEqual({
      whileFirstInFlight: [a],
      afterItCompleted: [a, b],
    });
  });
});
