import { describe, expect, it } from "vitest";
import type { SnapshotFacts } from "../../../provider/dynamic/outputs";
import {
  type FakeHost,
  generationTwoFailedOnB,
  setup,
  snapshotEntry,
  UUIDS,
} from "./restore-point-fake-host";

// A snapshot whose create failed and whose read back failed too may exist on the host: the partial state must
// record it (unconfirmed), so that destroying the restore point merges it instead of orphaning it.

/**
 * Makes the reads of `domain`/`name` throw from the `nth` on (the first is the probe before the create), until
 * the returned function is called.
 */
function failReadFrom(host: FakeHost, domain: string, name: string, nth: number): () => void {
  const read = host.get.bind(host);
  let reads = 0;
  host.get = async (d: string, n: string): Promise<SnapshotFacts | null> => {
    if (d === domain && n === name && ++reads >= nth) throw new Error("connection to libvirtd lost");
    return read(d, n);
  };
  return () => {
    host.get = read;
  };
}

const mayExist = (domain: string, name: string) =>
  `${domain}: snapshot ${name} may exist on the host, but reading it back failed (connection to libvirtd ` +
  "lost); the stack records it as unconfirmed: pulumi refresh or the next pulumi up re-reads it, and " +
  "deleting the restore point merges it if it exists";

describe("RestorePoint: a snapshot that may exist is recorded unconfirmed", () => {
  it("retried generation: absent at the probe, create fails after making it, read back throws; destroy merges it", async () => {
    const { host, provider, inputs, id, failed } = await generationTwoFailedOnB();
    host.failCreate = (domain) => (domain === "b" ? "after" : null);
    failReadFrom(host, "b", "rp-2", 2);
    const retry = (await provider
      .update(id, failed.properties, inputs({ consistency: "paused", triggers: ["v2"] }))
      .catch((e: unknown) => e)) as { id: string; properties: Record<string, unknown>; reasons: string[] };
    expect(host.names("b")).toEqual(["rp-1", "rp-2"]);
    const createdAt = expect.any(String);
    // The old triggers stay recorded: the generation is not complete until b's snapshot is confirmed.
    expect(retry.properties).toEqual({
      ...failed.properties,
      generations: [
        {
          number: 1,
          triggers: ["v1"],
          createdAt,
          snapshots: [snapshotEntry("a", "rp-1"), snapshotEntry("b", "rp-1")],
        },
        {
          number: 2,
          triggers: ["v2"],
          createdAt,
          snapshots: [
            snapshotEntry("a", "rp-2"),
            {
              domain: "b",
              domainName: "b",
              domainUuid: UUIDS.b,
              snapshotName: "rp-2",
              creationTime: "",
              disks: [],
              unconfirmed: true,
            },
          ],
        },
      ],
    });
    expect(retry.reasons).toEqual(["b: verification of rp-2 failed", mayExist("b", "rp-2")]);

    host.calls.length = 0;
    await provider.delete(id, retry.properties);
    // Domains merge in parallel: only each domain's own order is fixed (oldest first, under its UUID).
    expect(host.calls.filter((c) => c.includes(UUIDS.b as string))).toEqual([
      `delete ${UUIDS.b}/rp-1 blockcommit undefined`,
      `delete ${UUIDS.b}/rp-2 blockcommit undefined`,
    ]);
    expect([host.names("a"), host.names("b")]).toEqual([[], []]);
  });

  it("refresh replaces an unconfirmed entry with the host's facts, or drops it when the snapshot is gone", async () => {
    const { host, provider, inputs, id, failed } = await generationTwoFailedOnB();
    host.failCreate = (domain) => (domain === "b" ? "after" : null);
    failReadFrom(host, "b", "rp-2", 2);
    const retry = (await provider
      .update(id, failed.properties, inputs({ consistency: "paused", triggers: ["v2"] }))
      .catch((e: unknown) => e)) as { properties: Record<string, unknown> };
    const fresh = setup();
    fresh.host.snapshots
      .get(UUIDS.a as string)
      ?.add("rp-1")
      .add("rp-2");
    fresh.host.snapshots
      .get(UUIDS.b as string)
      ?.add("rp-1")
      .add("rp-2");
    const read = await fresh.provider.read(id, retry.properties);
    expect(read.props?.generations.map((g) => g.snapshots)).toEqual([
      [snapshotEntry("a", "rp-1"), snapshotEntry("b", "rp-1")],
      [snapshotEntry("a", "rp-2"), snapshotEntry("b", "rp-2")],
    ]);
    fresh.host.snapshots.get(UUIDS.b as string)?.delete("rp-2");
    const gone = await fresh.provider.read(id, retry.properties);
    expect(gone.props?.generations.map((g) => g.snapshots)).toEqual([
      [snapshotEntry("a", "rp-1"), snapshotEntry("b", "rp-1")],
      [snapshotEntry("a", "rp-2")],
    ]);
  });

  it("create: the entry names the domain as given when no snapshot of the stack knows its UUID; the next update confirms it", async () => {
    const { host, provider, inputs } = setup();
    host.failCreate = (domain) => (domain === "b" ? "after" : null);
    const readsAgain = failReadFrom(host, "b", "rp-1", 2);
    const failed = (await provider.create(inputs()).catch((e: unknown) => e)) as {
      id: string;
      properties: Record<string, unknown>;
      reasons: string[];
    };
    const unconfirmed = {
      domain: "b",
      domainName: "b",
      domainUuid: "b",
      snapshotName: "rp-1",
      creationTime: "",
      disks: [],
      unconfirmed: true,
    };
    expect([failed.id, failed.properties.generations]).toEqual([
      `rp@${UUIDS.a},b`,
      [
        {
          number: 1,
          triggers: ["v1"],
          createdAt: expect.any(String),
          snapshots: [snapshotEntry("a", "rp-1"), unconfirmed],
        },
      ],
    ]);
    expect(failed.reasons).toEqual(["b: verification of rp-1 failed", mayExist("b", "rp-1")]);

    // An unconfirmed snapshot leaves its generation incomplete: the same inputs are a change to apply.
    expect(await provider.diff(failed.id, failed.properties, inputs())).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    // The daemon answers again and the create adopts the snapshot it made: the generation is complete.
    host.failCreate = null;
    readsAgain();
    const done = await provider.update(failed.id, failed.properties, inputs());
    expect(done.outs.generations.map((g) => g.snapshots)).toEqual([
      [snapshotEntry("a", "rp-1"), snapshotEntry("b", "rp-1")],
    ]);
    expect(done.outs.triggers).toEqual(["v1"]);
  });
});
