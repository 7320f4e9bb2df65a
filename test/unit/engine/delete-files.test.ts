import { describe, expect, test } from "vitest";
import {
  HostFileRemover,
  poolTargetPath,
  removeHostFile,
  TRANSIENT_POOL_PREFIX,
  transientPoolName,
  transientPoolOwner,
  transientPoolXml,
} from "../../../provider/engine/delete-files";
import { type OperationOwner, thisProcessOwner } from "../../../provider/engine/operation-owner";
import type { StoragePoolRef, StorageVolRef } from "../../../provider/libvirt/api";
import { ErrorCode } from "../../../provider/libvirt/flags";
import { daemonError, FakeHost } from "./delete-fakes";

/** A creator that has ended: this process's pid with another start time (a reused pid). */
const goneOwner: OperationOwner = { ...thisProcessOwner(), start: "1" };
/** A creator that still runs: the parent of this test process (no start time: only the pid is probed). */
const liveOtherOwner: OperationOwner = (({ start: _, ...me }) => ({ ...me, pid: process.ppid }))(
  thisProcessOwner(),
);

function poolVanished(name: string) {
  return daemonError(
    ErrorCode.NO_STORAGE_POOL,
    `Storage pool not found: no storage pool with matching name '${name}'`,
  );
}

describe("file removal through storage pools", () => {
  test("a transient pool per directory, shared by concurrent removals and destroyed by the last one", async () => {
    const host = new FakeHost({}, [], ["/i/a", "/i/b", "/j/c"]);
    const first = HostFileRemover.prepare(host, ["/i/a", "/j/c"]);
    const second = HostFileRemover.prepare(host, ["/i/b"]);
    expect(await Promise.all([first.remove("/i/a"), second.remove("/i/b"), first.remove("/j/c")])).toEqual([
      "removed",
      "removed",
      "removed",
    ]);
    expect(host.mutations.filter((m) => m === "pool-create")).toHaveLength(2);
    await first.close();
    expect([...host.pools.values()]).toEqual(["/i"]);
    await second.close();
    expect([host.pools.size, [...host.files]]).toEqual([0, []]);
  });

  test("a missing file is absent (idempotent), and a pool someone else made is used and kept", async () => {
    const host = new FakeHost({}, [], ["/i/a"]);
    host.pools.set("images", "/i");
    expect([await removeHostFile(host, "/i/a"), await removeHostFile(host, "/i/a")]).toEqual([
      "removed",
      "absent",
    ]);
    expect([...host.pools.keys()]).toEqual(["images"]);
    expect(host.mutations).toEqual(["vol-delete"]);
  });

  test("a transient pool left by a killed run (its creator is gone) is adopted and destroyed", async () => {
    const host = new FakeHost({}, [], ["/i/a"]);
    host.pools.set(transientPoolName(goneOwner), "/i");
    expect(await removeHostFile(host, "/i/a")).toBe("removed");
    expect([host.pools.size, host.mutations]).toEqual([0, ["vol-delete", "pool-destroy"]]);
  });

  test.each([
    ["a live process of this host", () => transientPoolName(liveOtherOwner)],
    ["this process (on another connection)", () => transientPoolName(thisProcessOwner())],
    ["another host", () => transientPoolName({ ...goneOwner, host: `not-${goneOwner.host}` })],
    ["an earlier version (no creator in the name)", () => `${TRANSIENT_POOL_PREFIX}0123456789ab`],
  ])("a transient pool of %s over the directory is used and kept", async (_, name) => {
    const host = new FakeHost({}, [], ["/i/a"]);
    const theirs = name();
    host.pools.set(theirs, "/i");
    expect(await removeHostFile(host, "/i/a")).toBe("removed");
    expect([[...host.pools.keys()], host.mutations]).toEqual([[theirs], ["vol-delete"]]);
  });

  test("only transient pools whose creator and directory are both gone are swept", async () => {
    const host = new FakeHost({}, [], ["/i/a"]);
    const abandoned = transientPoolName(goneOwner);
    const liveOnGoneDirectory = transientPoolName(liveOtherOwner);
    const abandonedInUse = transientPoolName(goneOwner);
    const unknownOnGoneDirectory = `${TRANSIENT_POOL_PREFIX}00000000gone`;
    host.pools.set(abandoned, "/gone");
    host.pools.set(liveOnGoneDirectory, "/gone-live");
    host.pools.set(abandonedInUse, "/j");
    host.pools.set(unknownOnGoneDirectory, "/gone-unknown");
    host.pools.set("someone-elses", "/gone-too");
    const refresh = host.storagePoolRefresh.bind(host);
    host.storagePoolRefresh = async (pool) => {
      if (host.pools.get(pool.name)?.startsWith("/gone")) throw new Error("cannot open directory");
      return refresh(pool);
    };
    expect(await removeHostFile(host, "/i/a")).toBe("removed");
    expect([...host.pools.keys()].sort()).toEqual(
      [liveOnGoneDirectory, abandonedInUse, unknownOnGoneDirectory, "someone-elses"].sort(),
    );
  });

  test("pools destroyed by others between the listing and the read of their XML are skipped, not a restart", async () => {
    const host = new FakeHost({}, [], ["/i/a"]);
    const others = [0, 1, 2, 3].map(() => transientPoolName(liveOtherOwner));
    for (const [i, name] of others.entries()) host.pools.set(name, `/other${i}`);
    const calls: string[] = [];
    const list = host.connectListAllStoragePools.bind(host);
    host.connectListAllStoragePools = async () => {
      calls.push("list");
      return list();
    };
    const read = host.storagePoolGetXMLDesc.bind(host);
    host.storagePoolGetXMLDesc = async (pool: StoragePoolRef) => {
      if (others.includes(pool.name)) {
        // Each of them is destroyed by its creator right after this process listed it.
        host.pools.delete(pool.name);
        throw poolVanished(pool.name);
      }
      return read(pool);
    };
    expect(await removeHostFile(host, "/i/a")).toBe("removed");
    expect([calls, host.pools.size, [...host.files], host.mutations]).toEqual([
      ["list"],
      0,
      [],
      ["pool-create", "vol-delete", "pool-destroy"],
    ]);
  });

  test.each([
    ["deleting the volume", "storageVolDelete"],
    ["looking the volume up", "storageVolLookupByPath"],
  ] as const)(
    "a live process's pool destroyed by it while %s is replaced by a pool of our own, once",
    async (_, call) => {
      const host = new FakeHost({}, [], ["/i/a"]);
      const theirs = transientPoolName(liveOtherOwner);
      host.pools.set(theirs, "/i");
      const refresh = host.storagePoolRefresh.bind(host);
      host.storagePoolRefresh = async (pool) => {
        if (!host.pools.has(pool.name)) throw poolVanished(pool.name);
        return refresh(pool);
      };
      const original = host[call].bind(host) as (arg: string & StorageVolRef) => Promise<unknown>;
      host[call] = async (arg: string & StorageVolRef) => {
        if (host.pools.has(theirs)) {
          host.pools.delete(theirs);
          // A deletion through a pool that is gone names the pool; a lookup just finds no volume by that path.
          if (call === "storageVolDelete") throw poolVanished(theirs);
        }
        return original(arg) as never;
      };
      expect(await removeHostFile(host, "/i/a")).toBe("removed");
      expect([host.pools.size, [...host.files], host.mutations]).toEqual([
        0,
        [],
        ["pool-create", "vol-delete", "pool-destroy"],
      ]);
    },
  );

  test("a pool name carries its creator, and only well-formed names are read as one", () => {
    const owner: OperationOwner = { pid: 4242, start: "987", boot: "0a1b-2c", host: "h.example/x y" };
    expect(transientPoolOwner(transientPoolName(owner))).toEqual(owner);
    expect(transientPoolOwner(transientPoolName({ pid: 7, host: "h" }))).toEqual({ pid: 7, host: "h" });
    expect(
      [
        `${TRANSIENT_POOL_PREFIX}0123456789ab`,
        `${TRANSIENT_POOL_PREFIX}0123456789ab.pid0.hosth`,
        `${TRANSIENT_POOL_PREFIX}0123456789ab.pid12`,
        `${TRANSIENT_POOL_PREFIX}0123456789ab.pid12.host%zz`,
        "images.pid12.hosth",
      ].map(transientPoolOwner),
    ).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  test.each([
    ["reading its XML", "storagePoolGetXMLDesc"],
    ["refreshing it", "storagePoolRefresh"],
  ] as const)(
    "a pool another process destroys between the lookup and %s is looked for again",
    async (_, call) => {
      const host = new FakeHost({}, [], ["/i/a"]);
      const theirs = `${TRANSIENT_POOL_PREFIX}other`;
      host.pools.set(theirs, "/i");
      const original = host[call].bind(host);
      host[call] = async (pool: StoragePoolRef) => {
        if (pool.name === theirs) {
          // The other process destroyed it just after this one listed it.
          host.pools.delete(theirs);
          throw daemonError(
            ErrorCode.NO_STORAGE_POOL,
            `Storage pool not found: no storage pool with matching name '${theirs}'`,
          );
        }
        return original(pool) as never;
      };
      expect(await removeHostFile(host, "/i/a")).toBe("removed");
      expect([host.pools.size, [...host.files], host.mutations]).toEqual([
        0,
        [],
        ["pool-create", "vol-delete", "pool-destroy"],
      ]);
    },
  );

  test("directory names are data in the pool XML", () => {
    const hostile = `/i/<x>&"y'/../z`;
    const xml = transientPoolXml(hostile);
    expect(poolTargetPath(xml)).toBe(hostile);
    const name = /<name>([^<]*)<\/name>/.exec(xml)?.[1] ?? "";
    expect([name.slice(0, TRANSIENT_POOL_PREFIX.length + 12), transientPoolOwner(name)]).toEqual([
      expect.stringMatching(new RegExp(`^${TRANSIENT_POOL_PREFIX}[0-9a-f]{12}$`)),
      thisProcessOwner(),
    ]);
  });
});
