import { describe, expect, test } from "vitest";
import { type HostImagePort, readHostImages } from "../../../cli/host-images";
import type { DomainRef, StoragePoolRef } from "../../../provider/libvirt/api";
import { LibvirtError } from "../../../provider/libvirt/errors";

function remoteError(code: number, message: string): LibvirtError {
  return new LibvirtError({
    kind: "remote",
    code,
    domain: 18,
    message,
    level: 2,
    str1: null,
    str2: null,
    str3: null,
    int1: -1,
    int2: -1,
    procedure: null,
  });
}

const domain: DomainRef = { name: "web1", uuid: "6e26ce1c-3e69-4e4e-ada5-7495e0519381", id: 1 };

/** A host with files (path -> allocation) and pools (name -> directory); records every call. */
function fakeHost(options: {
  files: Record<string, number>;
  pools?: Record<string, string>;
  refuseCreate?: boolean;
}) {
  const calls: string[] = [];
  const pools = new Map(Object.entries(options.pools ?? {}));
  const port: HostImagePort = {
    connectListAllStoragePools: async () => {
      calls.push("list pools");
      return [...pools.keys()].map((name): StoragePoolRef => ({ name, uuid: name }));
    },
    storagePoolGetXMLDesc: async (pool) =>
      `<pool type='dir'><target><path>${pools.get(pool.name)}</path></target></pool>`,
    storagePoolCreateXML: async (xml) => {
      if (options.refuseCreate) throw remoteError(55, "read only access prevents virStoragePoolCreateXML");
      const name = /<name>([^<]+)<\/name>/.exec(xml)?.[1] ?? "";
      const path = /<path>([^<]+)<\/path>/.exec(xml)?.[1] ?? "";
      calls.push(`create pool for ${path}`);
      pools.set(name, path);
      return { name, uuid: name };
    },
    storagePoolDestroy: async (pool) => {
      calls.push(`destroy pool for ${pools.get(pool.name)}`);
      pools.delete(pool.name);
    },
    storagePoolRefresh: async (pool) => {
      calls.push(`refresh ${pool.name}`);
    },
    storageVolLookupByPath: async (path) => {
      if (!(path in options.files)) throw remoteError(50, `no storage vol with matching path '${path}'`);
      return { pool: "", name: path, key: path };
    },
    storageVolGetInfo: async (volume) => ({
      type: 0,
      capacity: 64n << 20n,
      allocation: BigInt(options.files[volume.key] ?? 0),
    }),
    domainGetBlockInfo: async (_domain, disk) => {
      calls.push(`block info ${disk}`);
      return { capacity: 64n << 20n, allocation: 4096n, physical: 8192n };
    },
  };
  return { port, calls, pools };
}

describe("reading overlay sizes through libvirt's storage API", () => {
  test("an existing pool over the directory is refreshed and used, and left alone", async () => {
    const host = fakeHost({ files: { "/img/a.qcow2": 1000 }, pools: { default: "/img" } });
    expect(await readHostImages(host.port, ["/img/a.qcow2", "/img/gone.qcow2", "/img/a.qcow2"])).toEqual(
      new Map([
        ["/img/a.qcow2", { kind: "present", allocationBytes: 1000, capacityBytes: 64 * 1024 * 1024 }],
        ["/img/gone.qcow2", { kind: "missing" }],
      ]),
    );
    expect(host.calls).toEqual(["list pools", "refresh default"]);
  });

  test("without one, a transient pool per directory is made for the lookup and destroyed right after", async () => {
    const host = fakeHost({ files: { "/a/x.qcow2": 1, "/b/y.qcow2": 2 } });
    const sizes = await readHostImages(host.port, ["/a/x.qcow2", "/b/y.qcow2"]);
    expect([...sizes.values()].map((s) => (s.kind === "present" ? s.allocationBytes : s.kind))).toEqual([
      1, 2,
    ]);
    expect(host.calls).toEqual([
      "list pools",
      "create pool for /a",
      "destroy pool for /a",
      "list pools",
      "create pool for /b",
      "destroy pool for /b",
    ]);
    expect(host.pools.size).toBe(0);
  });

  test("a pool another process destroys between the lookup and the refresh: looked for again, sizes read", async () => {
    const host = fakeHost({ files: { "/img/a.qcow2": 1000 }, pools: { "lvsnap-files-other": "/img" } });
    const refresh = host.port.storagePoolRefresh;
    host.port.storagePoolRefresh = async (pool) => {
      if (pool.name !== "lvsnap-files-other") return refresh(pool);
      host.pools.delete(pool.name);
      throw remoteError(
        49,
        "Storage pool not found: no storage pool with matching name 'lvsnap-files-other'",
      );
    };
    expect(await readHostImages(host.port, ["/img/a.qcow2"])).toEqual(
      new Map([
        ["/img/a.qcow2", { kind: "present", allocationBytes: 1000, capacityBytes: 64 * 1024 * 1024 }],
      ]),
    );
    expect([host.calls, host.pools.size]).toEqual([
      ["list pools", "list pools", "create pool for /img", "destroy pool for /img"],
      0,
    ]);
  });

  test("when pools are refused (read-only connection): unknown with libvirt's reason, block info for active layers", async () => {
    const host = fakeHost({ files: { "/img/a.qcow2": 1, "/img/b.qcow2": 2 }, refuseCreate: true });
    const sizes = await readHostImages(
      host.port,
      ["/img/a.qcow2", "/img/b.qcow2"],
      new Map([["/img/b.qcow2", { domain, disk: "vda" }]]),
    );
    expect(sizes).toEqual(
      new Map([
        [
          "/img/a.qcow2",
          {
            kind: "unknown",
            reason: "read only access prevents virStoragePoolCreateXML [libvirt OPERATION_INVALID (55)]",
          },
        ],
        ["/img/b.qcow2", { kind: "present", allocationBytes: 4096, capacityBytes: 64 * 1024 * 1024 }],
      ]),
    );
    expect(host.calls).toEqual(["list pools", "list pools", "block info vda"]);
  });
});
