import { describe, expect, it, vi } from "vitest";
import { ConnectionCache } from "../../../provider/dynamic/connections";
import { engineHostFactory } from "../../../provider/dynamic/engine-host";
import type { DeleteOptions, DeleteResult } from "../../../provider/engine/delete";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";

// The Pulumi delete against a stand-in engine: the delete's signal must reach the engine's merge, which
// cancels its block job and rejects when the signal aborts.

const engineCalls: { domain: string; name: string; options: DeleteOptions }[] = [];
/** What the stand-in engine resolves with; absent: a merge that only the signal ends. */
let engineResult: DeleteResult | undefined;

vi.mock("../../../provider/engine/delete", () => ({
  deleteSnapshot: (_port: unknown, domain: string, name: string, options: DeleteOptions) => {
    engineCalls.push({ domain, name, options });
    if (engineResult !== undefined) return Promise.resolve(engineResult);
    // A merge that never ends by itself: only the caller's signal (as the block job watches it) stops it.
    return new Promise<DeleteResult>((_, reject) => {
      options.signal?.addEventListener("abort", () =>
        reject(new Error("block job on vda cancelled by the caller")),
      );
    });
  },
}));

describe("engine host delete", () => {
  it("passes the delete's signal to the engine, whose cancelled merge rejects the delete", async () => {
    const connection = { whenClosed: new Promise<void>(() => undefined), close: async () => undefined };
    const connections = new ConnectionCache(async () => connection as unknown as LibvirtConnection);
    const host = engineHostFactory(connections)("qemu:///system");
    const timeout = new AbortController();
    const deleted = host
      .delete(
        {
          domain: "lvsnap-tmp-l-del",
          name: "s1",
          strategy: "blockcommit",
          timeoutMs: 3_600_000,
          onProgress: () => undefined,
        },
        timeout.signal,
      )
      .then(
        () => "resolved",
        (error: unknown) => String(error),
      );
    await vi.waitFor(() => expect(engineCalls).toHaveLength(1));
    expect(engineCalls[0]?.options.signal).toBe(timeout.signal);
    timeout.abort(new Error("delete timed out"));
    // The host's strict deadline reports the timeout once the engine settled.
    expect(await deleted).toBe("Error: delete timed out");
  });

  it("logs the result's notes, then its warnings, through the delete's progress", async () => {
    engineResult = {
      domain: "lvsnap-tmp-l-del",
      snapshot: "s1",
      outcome: "deleted",
      notes: ["merged /images/vda.s1.qcow2 into /images/vda.qcow2"],
      warnings: [
        "kept merged overlay /images/vda.s1.qcow2: domain clone-1 still uses it; remove it once nothing uses it any more",
      ],
    };
    const connection = { whenClosed: new Promise<void>(() => undefined), close: async () => undefined };
    const host = engineHostFactory(
      new ConnectionCache(async () => connection as unknown as LibvirtConnection),
    )("qemu:///system");
    const lines: string[] = [];
    await host.delete(
      {
        domain: "lvsnap-tmp-l-del",
        name: "s1",
        strategy: "blockcommit",
        timeoutMs: 3_600_000,
        onProgress: (line) => lines.push(line),
      },
      new AbortController().signal,
    );
    engineResult = undefined;
    expect(lines).toEqual([
      "merged /images/vda.s1.qcow2 into /images/vda.qcow2",
      "warning: kept merged overlay /images/vda.s1.qcow2: domain clone-1 still uses it; remove it once nothing uses it any more",
    ]);
  });
});
