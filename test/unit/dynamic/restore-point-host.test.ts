import { describe, expect, it } from "vitest";
import { ConnectionCache } from "../../../provider/dynamic/connections";
import { restorePointHostFactory } from "../../../provider/dynamic/restore-point-host";
import { withDomainLock } from "../../../provider/engine/domain-lock";
import { DomainState } from "../../../provider/libvirt/api";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";

// pause and resume of the RestorePoint host over a fake connection and the real per-domain lock.

const UUID = "00000000-0000-4000-8000-0000000000c1";

/** A connection to one running domain that records the calls which change its state. */
function fakeDomainConnection() {
  const calls: string[] = [];
  let state: number = DomainState.RUNNING;
  const ref = { name: "lvsnap-tmp-l-pause", uuid: UUID, id: 1 };
  const connection = {
    whenClosed: new Promise<void>(() => undefined),
    close: async () => undefined,
    domainLookupByName: async () => ref,
    domainLookupByUUID: async () => ref,
    domainGetState: async () => ({ state, reason: 0 }),
    domainSuspend: async () => {
      calls.push("suspend");
      state = DomainState.PAUSED;
    },
    domainResume: async () => {
      calls.push("resume");
      state = DomainState.RUNNING;
    },
  } as unknown as LibvirtConnection;
  return { connection, calls };
}

describe("RestorePoint host pause", () => {
  it("a pause whose signal aborts while another operation holds the domain's lock never suspends later", async () => {
    const fake = fakeDomainConnection();
    const host = restorePointHostFactory(new ConnectionCache(async () => fake.connection))("qemu:///system");
    let releaseLock: () => void = () => undefined;
    const held = withDomainLock(UUID, () => new Promise<void>((resolve) => (releaseLock = resolve)));

    const timeout = new AbortController();
    const pause = host.pause("lvsnap-tmp-l-pause", timeout.signal);
    const outcome = pause.then(
      (paused) => ({ paused }),
      (error: unknown) => ({ rejected: String(error) }),
    );
    await new Promise((resolve) => setImmediate(resolve));
    timeout.abort(new Error("create timed out"));
    expect(await outcome).toEqual({ rejected: "Error: create timed out" });

    releaseLock();
    await held;
    // Whatever still waited for the lock has run by now: an operation queued after it gets its turn only then.
    await withDomainLock(UUID, async () => undefined);
    expect(fake.calls).toEqual([]);
  });

  it("a pause that got the lock before the abort suspends and says so, so the caller resumes the domain", async () => {
    const fake = fakeDomainConnection();
    const host = restorePointHostFactory(new ConnectionCache(async () => fake.connection))("qemu:///system");
    const timeout = new AbortController();
    expect(await host.pause("lvsnap-tmp-l-pause", timeout.signal)).toBe(true);
    timeout.abort(new Error("create timed out"));
    await host.resume("lvsnap-tmp-l-pause", new AbortController().signal);
    expect(fake.calls).toEqual(["suspend", "resume"]);
  });
});
