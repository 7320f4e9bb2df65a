import { describe, expect, it } from "vitest";
import type {
  CreateSnapshotRequest,
  DeleteSnapshotRequest,
  SnapshotHost,
} from "../../../provider/dynamic/host";
import { checkSnapshotInputs } from "../../../provider/dynamic/inputs";
import type { SnapshotFacts } from "../../../provider/dynamic/outputs";
import { createSnapshotProvider, PartialCreateError } from "../../../provider/dynamic/snapshot-provider";

const UUID = "6f1c2d9e-1111-4222-8333-944455556666";

function factsFor(name: string, description: string | null): SnapshotFacts {
  return {
    domainUuid: UUID,
    domainName: "web-1",
    snapshotName: name,
    creationTime: "2026-11-22T02:00:00.000Z",
    state: "disk-snapshot",
    parent: null,
    description,
    disks: [{ target: "vda", overlay: `/img/web-1.${name}.qcow2`, pointInTimeImage: "/img/web-1.qcow2" }],
    memoryFile: null,
    quiesced: false,
    quiesceSkippedReason: "no guest agent channel",
    libvirtVersion: "9.0.0",
    hostname: "hv1",
  };
}

/** A host that keeps snapshots in a map; `failCreateAfterMaking` makes create fail once it has made one. */
class FakeHost implements SnapshotHost {
  readonly snapshots = new Map<string, SnapshotFacts>();
  readonly calls: string[] = [];
  failCreateAfterMaking = false;
  hangDelete = false;
  /** Reads of the host throw from the `failReadsFrom`-th on (the first is the probe before a create). */
  failReadsFrom: number | null = null;
  private reads = 0;
  /** `<domain>/<name>` of every delete. */
  readonly deleted: string[] = [];

  async create(request: CreateSnapshotRequest): Promise<SnapshotFacts> {
    this.calls.push(`create ${request.name}`);
    const facts = factsFor(request.name, request.description ?? null);
    this.snapshots.set(request.name, facts);
    if (this.failCreateAfterMaking) throw new Error("verifying the chain failed");
    return facts;
  }
  async get(domain: string, name: string): Promise<SnapshotFacts | null> {
    this.calls.push(`get ${domain} ${name}`);
    this.reads += 1;
    if (this.failReadsFrom !== null && this.reads >= this.failReadsFrom) {
      throw new Error("connection to libvirtd lost");
    }
    return this.snapshots.get(name) ?? null;
  }
  async setDescription(_domain: string, name: string, description: string | null): Promise<SnapshotFacts> {
    this.calls.push(`describe ${name} ${description}`);
    const facts = { ...(this.snapshots.get(name) as SnapshotFacts), description };
    this.snapshots.set(name, facts);
    return facts;
  }
  async delete(request: DeleteSnapshotRequest, signal: AbortSignal): Promise<void> {
    this.calls.push(`delete ${request.name} ${request.strategy} ${request.bandwidth}`);
    this.deleted.push(`${request.domain}/${request.name}`);
    request.onProgress("committing vda");
    if (this.hangDelete) {
      await new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
    }
    this.snapshots.delete(request.name);
  }
}

function setup() {
  const host = new FakeHost();
  const uris: string[] = [];
  const lines: string[] = [];
  const provider = createSnapshotProvider({
    hostFor: (uri) => {
      uris.push(uri);
      return host;
    },
    env: { LIBVIRT_DEFAULT_URI: "qemu:///session" },
    log: (line) => lines.push(line),
  });
  return { host, uris, lines, provider };
}

const checked = (news: Record<string, unknown>) => ({
  ...checkSnapshotInputs(news).inputs,
  __provider: "shim",
});

describe("snapshot provider implementation", () => {
  it("configure: stack config wins over LIBVIRT_DEFAULT_URI, the resource uri over both", async () => {
    const { provider, uris } = setup();
    await provider.create(checked({ domain: "web-1", name: "a" }));
    await provider.configure({
      config: { get: (key) => (key === "libvirt-snapshot:uri" ? "qemu+ssh://hv1/system" : undefined) },
    });
    await provider.create(checked({ domain: "web-1", name: "b" }));
    await provider.create(checked({ domain: "web-1", name: "c", uri: "qemu+tcp://hv2/system" }));
    expect(uris).toEqual(["qemu:///session", "qemu+ssh://hv1/system", "qemu+tcp://hv2/system"]);
  });

  it("create returns the id and the complete outputs", async () => {
    const { provider } = setup();
    const result = await provider.create(checked({ domain: "web-1", name: "a", description: "d" }));
    expect(result.id).toBe(`${UUID}/a`);
    expect(result.outs).toMatchObject({
      schemaVersion: 1,
      description: "d",
      connectionUri: "qemu:///session",
    });
  });

  it("a failure after the snapshot exists is reported as partial state, never orphaned", async () => {
    const { provider, host } = setup();
    host.failCreateAfterMaking = true;
    const error = await provider.create(checked({ domain: "web-1", name: "a" })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PartialCreateError);
    const partial = error as PartialCreateError;
    expect(partial.id).toBe(`${UUID}/a`);
    expect(partial.reasons).toEqual(["verifying the chain failed"]);
    expect(partial.message).toBe(
      "snapshot a of web-1 was created, but the operation failed afterwards: verifying the chain failed; the " +
        "stack records the snapshot: run pulumi refresh to re-read it, and delete the resource to merge it away " +
        "if it is not wanted",
    );
    expect(partial.properties).toMatchObject({ __provider: "shim", snapshotName: "a", schemaVersion: 1 });
  });

  it("a snapshot that existed before a failed create is not claimed", async () => {
    const { provider, host } = setup();
    host.snapshots.set("a", factsFor("a", null));
    host.failCreateAfterMaking = true;
    const error = await provider.create(checked({ domain: "web-1", name: "a" })).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(PartialCreateError);
    expect((error as Error).message).toBe("verifying the chain failed");
  });

  it("read: drift in the description shows; a snapshot gone from the host reads as id ''", async () => {
    const { provider, host } = setup();
    const { id, outs } = await provider.create(checked({ domain: "web-1", name: "a", description: "d" }));
    host.snapshots.set("a", factsFor("a", "edited"));
    expect((await provider.read(id, { ...outs })).props?.description).toBe("edited");
    host.snapshots.delete("a");
    expect(await provider.read(id, { ...outs })).toEqual({ id: "" });
  });

  it("update rewrites the description on the host only when it changed", async () => {
    const { provider, host } = setup();
    const { id, outs } = await provider.create(checked({ domain: "web-1", name: "a", description: "d" }));
    const same = await provider.update(
      id,
      { ...outs },
      checked({ domain: "web-1", name: "a", description: "d", bandwidth: 5 }),
    );
    expect(same.outs.bandwidth).toBe(5);
    const changed = await provider.update(id, { ...outs }, checked({ domain: "web-1", name: "a" }));
    expect(changed.outs.description).toBeNull();
    expect(host.calls.filter((call) => call.startsWith("describe"))).toEqual(["describe a null"]);
  });

  it("delete uses the stored strategy and bandwidth and logs progress", async () => {
    const { provider, host, lines } = setup();
    const { id, outs } = await provider.create(
      checked({ domain: "web-1", name: "a", deleteStrategy: "native", bandwidth: 4096 }),
    );
    await provider.delete(id, { ...outs });
    expect(host.calls.at(-1)).toBe(`delete a native 4096`);
    expect(lines).toEqual([
      "web-1/a: deleting (native, 4096 bytes/s)",
      "web-1/a: committing vda",
      "web-1/a: deleted",
    ]);
  });

  it("delete gives up after timeouts.delete and says which timeout to raise", async () => {
    const { provider, host } = setup();
    const { id, outs } = await provider.create(
      checked({ domain: "web-1", name: "a", timeouts: { delete: 0.05 } }),
    );
    host.hangDelete = true;
    await expect(provider.delete(id, { ...outs })).rejects.toThrow(
      "deleting snapshot web-1/a did not finish within 0.05 s; raise timeouts.delete if the host is slow",
    );
  });

  it("refuses state written by a newer release instead of misreading it", async () => {
    const { provider } = setup();
    const { outs } = await provider.create(checked({ domain: "web-1", name: "a" }));
    await expect(
      provider.diff("x", { ...outs, schemaVersion: 2 }, checked({ domain: "web-1", name: "a" })),
    ).rejects.toThrow(/schemaVersion 2, newer than this package understands/);
  });

  describe("a snapshot that may exist is recorded unconfirmed", () => {
    const inputs = () => checked({ domain: "web-1", name: "a", description: "d" });
    const unread =
      "snapshot a of web-1 may exist on the host, but reading it back failed (connection to libvirtd lost); " +
      "the stack records it as unconfirmed: pulumi refresh or the next pulumi up re-reads it, and deleting " +
      "the resource merges it if it exists";
    /** A create that made the snapshot, failed, and could not read it back. */
    async function failedUnread() {
      const made = setup();
      made.host.failCreateAfterMaking = true;
      made.host.failReadsFrom = 2;
      const error = await made.provider.create(inputs()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PartialCreateError);
      made.host.failCreateAfterMaking = false;
      made.host.failReadsFrom = null;
      return { ...made, partial: error as PartialCreateError };
    }
    /** The outputs of a create of the same inputs that went well. */
    async function confirmedOutputs() {
      return (await setup().provider.create(inputs())).outs;
    }

    it("create: the partial state names the domain as given and holds no facts", async () => {
      const { partial } = await failedUnread();
      expect({
        message: partial.message,
        id: partial.id,
        properties: partial.properties,
        reasons: partial.reasons,
      }).toEqual({
        message: `creating snapshot a of web-1 failed: verifying the chain failed; ${unread}`,
        id: "web-1/a",
        properties: {
          schemaVersion: 1,
          domain: "web-1",
          name: "a",
          description: null,
          memory: false,
          live: false,
          quiesce: "auto",
          disks: null,
          excludeDisks: null,
          overlayDir: null,
          deleteStrategy: "blockcommit",
          bandwidth: null,
          timeouts: { create: null, delete: null },
          uri: null,
          triggers: null,
          adopt: false,
          domainUuid: "web-1",
          domainName: "web-1",
          snapshotName: "a",
          creationTime: "",
          state: "",
          parent: null,
          snapshotDisks: [],
          memoryFile: null,
          quiesced: false,
          quiesceSkippedReason: null,
          libvirtVersion: "",
          hostname: "",
          connectionUri: "qemu:///session",
          unconfirmed: true,
          __provider: "shim",
        },
        reasons: ["verifying the chain failed", unread],
      });
    });

    it("refresh replaces it with the host's facts, or drops it when the snapshot is gone", async () => {
      const { provider, host, partial } = await failedUnread();
      expect(await provider.read(partial.id, partial.properties)).toEqual({
        id: `${UUID}/a`,
        props: await confirmedOutputs(),
      });
      host.snapshots.delete("a");
      expect(await provider.read(partial.id, partial.properties)).toEqual({ id: "" });
    });

    it("destroy merges it through the domain as given", async () => {
      const { provider, host, partial } = await failedUnread();
      await provider.delete(partial.id, partial.properties);
      expect([host.deleted, [...host.snapshots.keys()]]).toEqual([["web-1/a"], []]);
    });

    it("is a change whatever the inputs; update adopts the snapshot, or takes it when it does not exist", async () => {
      const { provider, host, partial } = await failedUnread();
      expect(await provider.diff(partial.id, partial.properties, inputs())).toEqual({
        changes: true,
        replaces: [],
        deleteBeforeReplace: false,
      });
      const confirmed = await confirmedOutputs();
      expect(await provider.update(partial.id, partial.properties, inputs())).toEqual({ outs: confirmed });
      host.snapshots.delete("a");
      host.calls.length = 0;
      expect(await provider.update(partial.id, partial.properties, inputs())).toEqual({ outs: confirmed });
      expect(host.calls).toEqual(["get web-1 a", "create a"]);
    });
  });
});
