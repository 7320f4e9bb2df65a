import { describe, expect, test } from "vitest";
import {
  HostFileRemover,
  poolTargetPath,
  removeHostFile,
  TRANSIENT_POOL_PREFIX,
  transientPoolXml,
} from "../../../provider/engine/delete-files";
import type { StoragePoolRef } from "../../../provider/libvirt/api";
import { ErrorCode } from "../../../provider/libvirt/flags";
import { daemonError, FakeHost } from "./delete-fakes";

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

  test("a transient pool left by a killed run is adopted and destroyed", async () => {
    const host = new FakeHost({}, [], ["/i/a"]);
    host.pools.set(`${TRANSIENT_POOL_PREFIX}0123456789ab`, "/i");
    expect(await removeHostFile(host, "/i/a")).toBe("removed");
    expect(host.pools.size).toBe(0);
  });

  test("transient pools of this module over directories that are gone are swept; live ones are kept", async () => {
    const host = new FakeHost({}, [], ["/i/a"]);
    host.pools.set(`${TRANSIENT_POOL_PREFIX}00000000gone`, "/gone");
    host.pools.set(`${TRANSIENT_POOL_PREFIX}0000000inuse`, "/j");
    host.pools.set("someone-elses", "/gone-too");
    const refresh = host.storagePoolRefresh.bind(host);
    host.storagePoolRefresh = async (pool) => {
      if (host.pools.get(pool.name)?.startsWith("/gone")) throw new Error("cannot open directory");
      return refresh(pool);
    };
    expect(await removeHostFile(host, "/i/a")).toBe("removed");
    expect([...host.pools.keys()].sort()).toEqual([`${TRANSIENT_POOL_PREFIX}0000000inuse`, "someone-elses"]);
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
    expect(xml).toMatch(new RegExp(`<name>${TRANSIENT_POOL_PREFIX}[0-9a-f]{12}</name>`));
  });
});
