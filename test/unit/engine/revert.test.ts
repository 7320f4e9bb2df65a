import { describe, expect, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { isEngineError } from "../../../provider/engine/errors";
import { type RevertPort, revertSnapshot } from "../../../provider/engine/revert";
import type { DomainRef, SnapshotRef } from "../../../provider/libvirt/api";
import { DomainState } from "../../../provider/libvirt/api";
import { SnapshotRevertFlags } from "../../../provider/libvirt/flags";
import { fixture } from "../model/fixtures";
import { FakeLibvirt } from "./fake-libvirt";

/** The create fake, plus what a libvirt >= 9.9 host answers for a native revert. */
class NativeRevertHost extends FakeLibvirt {
  capabilities =
    "<capabilities><host/><guest><features><externalSnapshot/></features></guest></capabilities>";
  async connectGetCapabilities(): Promise<string> {
    return this.capabilities;
  }
  async domainRevertToSnapshot(snapshot: SnapshotRef, flags: number): Promise<void> {
    this.calls.push(`domainRevertToSnapshot ${snapshot.name} ${flags}`);
    this.state = flags & SnapshotRevertFlags.PAUSED ? DomainState.PAUSED : DomainState.RUNNING;
  }
  override async domainDestroyFlags(_domain: DomainRef): Promise<void> {
    this.calls.push("domainDestroyFlags");
    this.state = DomainState.SHUTOFF;
  }
  port(): RevertPort {
    return this as unknown as RevertPort;
  }
}

async function withSnapshot() {
  const host = new NativeRevertHost(fixture("domain-running-fresh.xml"));
  await createSnapshot(host, { domain: "lvsnap-fixture", name: "s1" });
  host.calls.length = 0;
  return host;
}

describe("native revert, where the host capabilities advertise <externalSnapshot/>", () => {
  test.each([
    [undefined, SnapshotRevertFlags.RUNNING, [], "running"],
    ["paused", SnapshotRevertFlags.PAUSED, [], "paused"],
    ["shutoff", 0, ["domainDestroyFlags"], "shutoff"],
  ] as const)(
    "target %s: one libvirt revert with flags %i, then %j",
    async (targetState, flags, after, state) => {
      const host = await withSnapshot();
      const result = await revertSnapshot(
        host.port(),
        "lvsnap-fixture",
        "s1",
        targetState ? { targetState } : {},
      );
      expect([result.strategy, result.state, result.overlays, result.removedFiles]).toEqual([
        "native",
        state,
        [],
        [],
      ]);
      const changes = host.calls.filter((c) =>
        /^domain(RevertToSnapshot|DestroyFlags|DefineXML|SnapshotCreateXML|SnapshotDelete)/.test(c),
      );
      expect(changes).toEqual([`domainRevertToSnapshot s1 ${flags}`, ...after]);
    },
  );

  test("asking for native on a host without it is refused before anything changes", async () => {
    const host = await withSnapshot();
    host.capabilities = "<capabilities><host/></capabilities>";
    const error = await revertSnapshot(host.port(), "lvsnap-fixture", "s1", { strategy: "native" }).catch(
      (e: unknown) => e,
    );
    expect(isEngineError(error) ? [error.kind, error.message] : error).toEqual([
      "invalid-request",
      expect.stringContaining("the native strategy needs libvirt 9.9 or newer"),
    ]);
    expect(
      host.calls.filter((c) => c.startsWith("domainRevertToSnapshot") || c === "domainSetMetadata"),
    ).toEqual([]);
  });
});
