import { describe, expect, it } from "vitest";
import { ConnectionCache } from "../../../provider/dynamic/connections";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";

/** A stand-in connection: only `whenClosed` and `close` are used by the cache. */
function fakeConnection() {
  let closeNow: () => void = () => undefined;
  const whenClosed = new Promise<void>((resolve) => {
    closeNow = resolve;
  });
  const connection = { whenClosed, close: async () => closeNow() } as unknown as LibvirtConnection;
  return { connection, closeNow };
}

describe("ConnectionCache", () => {
  it("opens once per URI, reopens after the connection closed, and never caches a failed open", async () => {
    const opened: string[] = [];
    const fakes: ReturnType<typeof fakeConnection>[] = [];
    let failNext = false;
    const cache = new ConnectionCache(async (uri) => {
      opened.push(uri);
      if (failNext) {
        failNext = false;
        throw new Error("refused");
      }
      const fake = fakeConnection();
      fakes.push(fake);
      return fake.connection;
    });
    const [a, b] = await Promise.all([cache.get("qemu:///system"), cache.get("qemu:///system")]);
    expect(a).toBe(b);
    await cache.get("qemu:///session");
    expect(opened).toEqual(["qemu:///system", "qemu:///session"]);

    fakes[0]?.closeNow();
    await new Promise((r) => setImmediate(r));
    failNext = true;
    await expect(cache.get("qemu:///system")).rejects.toThrow("refused");
    expect(await cache.get("qemu:///system")).toBe(fakes[2]?.connection);
    expect(opened).toEqual(["qemu:///system", "qemu:///session", "qemu:///system", "qemu:///system"]);
    await cache.closeAll();
  });
});
