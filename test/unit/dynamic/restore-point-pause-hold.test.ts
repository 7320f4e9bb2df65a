import { describe, expect, it } from "vitest";
import { ConnectionCache } from "../../../provider/dynamic/connections";
import { restorePointHostFactory } from "../../../provider/dynamic/restore-point-host";
import { isDomainLocked, withDomainLock } from "../../../provider/engine/domain-lock";
import { type DomainRef, DomainState } from "../../../provider/libvirt/api";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";

// The pause of `consistency: paused` over a fake connection and the real per-domain lock: a suspend the daemon
// completed after the client gave up, and the hold from pause to resume that keeps other operations of the
// process off the domain.

const DOMAINS: Record<string, DomainRef> = {
  "hold-a": { name: "hold-a", uuid: "00000000-0000-4000-8000-0000000000d1", id: 7 },
  "hold-b": { name: "hold-b", uuid: "00000000-0000-4000-8000-0000000000d2", id: 8 },
};
const UUID_A = DOMAINS["hold-a"]?.uuid as string;

type SuspendFailure = "after-pausing" | "without-pausing" | "state-unreadable";

/** Running domains hold-a and hold-b; records the calls that change or read their state, per domain. */
function fakeDaemon() {
  const calls: string[] = [];
  const states = new Map(Object.keys(DOMAINS).map((name) => [name, DomainState.RUNNING as number]));
  let failSuspend: SuspendFailure | null = null;
  let stateUnreadable = false;
  const connection = {
    whenClosed: new Promise<void>(() => undefined),
    close: async () => undefined,
    domainLookupByName: async (name: string) => DOMAINS[name],
    domainLookupByUUID: async (uuid: string) => Object.values(DOMAINS).find((d) => d.uuid === uuid),
    domainGetState: async (ref: DomainRef) => {
      if (stateUnreadable) throw new Error("connection to libvirtd lost");
      return { state: states.get(ref.name), reason: 0 };
    },
    domainSuspend: async (ref: DomainRef) => {
      calls.push(`suspend ${ref.name}`);
      if (failSuspend === "after-pausing") states.set(ref.name, DomainState.PAUSED);
      if (failSuspend === "state-unreadable") stateUnreadable = true;
      if (failSuspend !== null) throw new Error("call domainSuspend timed out after 60000 ms");
      states.set(ref.name, DomainState.PAUSED);
    },
    domainResume: async (ref: DomainRef) => {
      calls.push(`resume ${ref.name}`);
      states.set(ref.name, DomainState.RUNNING);
    },
    domainGetXMLDesc: async (ref: DomainRef) => {
      calls.push(`read xml ${ref.name}`);
      throw new Error("fake daemon: no domain XML");
    },
    domainListAllSnapshots: async () => [],
  } as unknown as LibvirtConnection;
  const hostFor = restorePointHostFactory(new ConnectionCache(async () => connection));
  return {
    calls,
    states,
    newHost: () => hostFor("qemu:///system"),
    failSuspend: (failure: SuspendFailure) => {
      failSuspend = failure;
    },
    of: (name: string) => calls.filter((c) => c.endsWith(` ${name}`)),
  };
}

const never = () => new AbortController().signal;
/** Lets every promise that can settle now settle (a fake call settles in a few microtasks). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("RestorePoint pause: a suspend that failed in the client", () => {
  it("Quirk: a suspend that timed out in the client may still complete in the daemon: the pause counts the domain as paused, and the resume resumes it", async () => {
    const daemon = fakeDaemon();
    daemon.failSuspend("after-pausing");
    const host = daemon.newHost();
    expect(await host.pause("hold-a", never())).toBe(true);
    await host.resume("hold-a", never());
    expect([daemon.calls, daemon.states.get("hold-a"), isDomainLocked(UUID_A)]).toEqual([
      ["suspend hold-a", "resume hold-a"],
      DomainState.RUNNING,
      false,
    ]);
  });

  it("the domain still runs: the pause rejects and releases the domain's lock", async () => {
    const daemon = fakeDaemon();
    daemon.failSuspend("without-pausing");
    const outcome = await daemon
      .newHost()
      .pause("hold-a", never())
      .catch((e: unknown) => (e as Error).message);
    expect([outcome, daemon.calls, isDomainLocked(UUID_A)]).toEqual([
      "suspending domain hold-a failed (call domainSuspend timed out after 60000 ms); if it shows as paused " +
        "later, resume it with virsh resume",
      ["suspend hold-a"],
      false,
    ]);
  });

  it("the state cannot be read back: the pause rejects and says the domain may be paused", async () => {
    const daemon = fakeDaemon();
    daemon.failSuspend("state-unreadable");
    const outcome = await daemon
      .newHost()
      .pause("hold-a", never())
      .catch((e: unknown) => (e as Error).message);
    expect([outcome, isDomainLocked(UUID_A)]).toEqual([
      "suspending domain hold-a failed (call domainSuspend timed out after 60000 ms) and reading its state " +
        "back failed too (connection to libvirtd lost): it may be paused; check with virsh domstate and " +
        "resume it with virsh resume",
      false,
    ]);
  });
});

describe("RestorePoint pause: the domain stays held from pause to resume", () => {
  it("an operation of the process that pauses the domain on purpose runs after the resume, and its pause stays", async () => {
    const daemon = fakeDaemon();
    const host = daemon.newHost();
    expect(await host.pause("hold-a", never())).toBe(true);
    // A Revert with targetState paused, say: it queues for the domain while the restore point holds it.
    const revert = withDomainLock(UUID_A, async () => {
      daemon.calls.push("revert leaving hold-a");
      daemon.states.set("hold-a", DomainState.PAUSED);
    });
    await settle();
    expect(daemon.calls).toEqual(["suspend hold-a"]);
    await host.resume("hold-a", never());
    await revert;
    expect([daemon.calls, daemon.states.get("hold-a")]).toEqual([
      ["suspend hold-a", "resume hold-a", "revert leaving hold-a"],
      DomainState.PAUSED,
    ]);
  });

  it("resume leaves alone a domain this restore point did not pause", async () => {
    const daemon = fakeDaemon();
    daemon.states.set("hold-a", DomainState.PAUSED);
    const host = daemon.newHost();
    expect(await host.pause("hold-a", never())).toBe(false);
    await host.resume("hold-a", never());
    await daemon.newHost().resume("hold-a", never());
    expect([daemon.calls, daemon.states.get("hold-a"), isDomainLocked(UUID_A)]).toEqual([
      [],
      DomainState.PAUSED,
      false,
    ]);
  });

  it("the snapshot of a held domain is taken in the hold, without waiting for the domain's lock", async () => {
    const daemon = fakeDaemon();
    const host = daemon.newHost();
    expect(await host.pause("hold-a", never())).toBe(true);
    const request = {
      domain: "hold-a",
      name: "rp-1",
      memory: false,
      live: false,
      quiesce: "off" as const,
      adopt: false,
      onProgress: () => undefined,
    };
    // The fake daemon has no domain XML: the engine's create fails at its first read, under the hold.
    const created = await host.create(request, never()).catch((e: unknown) => e);
    expect((created as Error).cause).toEqual(new Error("fake daemon: no domain XML"));
    await host.resume("hold-a", never());
    expect(daemon.calls).toEqual(["suspend hold-a", "read xml hold-a", "resume hold-a"]);
  });

  it("two restore points pausing the same domains in opposite orders take turns instead of deadlocking", async () => {
    const daemon = fakeDaemon();
    const first = daemon.newHost();
    const second = daemon.newHost();
    const firstPauses = Promise.all([first.pause("hold-a", never()), first.pause("hold-b", never())]);
    let secondPaused = false;
    const secondPauses = Promise.all([second.pause("hold-b", never()), second.pause("hold-a", never())]).then(
      (paused) => {
        secondPaused = true;
        return paused;
      },
    );
    expect(await firstPauses).toEqual([true, true]);
    await settle();
    expect(secondPaused).toBe(false);
    await Promise.all([first.resume("hold-a", never()), first.resume("hold-b", never())]);
    expect(await secondPauses).toEqual([true, true]);
    await Promise.all([second.resume("hold-b", never()), second.resume("hold-a", never())]);
    const cycle = (name: string) => [
      `suspend ${name}`,
      `resume ${name}`,
      `suspend ${name}`,
      `resume ${name}`,
    ];
    expect([daemon.of("hold-a"), daemon.of("hold-b")]).toEqual([cycle("hold-a"), cycle("hold-b")]);
    expect([isDomainLocked(UUID_A), isDomainLocked(DOMAINS["hold-b"]?.uuid as string)]).toEqual([
      false,
      false,
    ]);
  });
});
