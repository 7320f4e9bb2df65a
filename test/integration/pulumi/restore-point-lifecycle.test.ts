import { existsSync } from "node:fs";
import { setTimeout } from "node:timers/promises";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { LifecycleEvent } from "../../../provider/libvirt/api";
import { DomainEventType } from "../../../provider/libvirt/flags";
import { type LabDomain, lab } from "../../support/lab";
import { PluginCallError, PREPARE_TIMEOUT_MS, PulumiPlugin, secret } from "../../support/pulumi-plugin";
import { labUri, virsh } from "../../support/virsh";
import { openLabConnection } from "../engine/delete-support";
import { files } from "../engine/revert-support";

// The RestorePoint resource end to end: the real dynamic-provider plugin, the packed package, a real libvirtd,
// two domains taken together.

let plugin: PulumiPlugin;
let provider: string;

beforeAll(async () => {
  plugin = await PulumiPlugin.start();
  provider = await plugin.serializedProvider("restorePointResourceProvider");
  await plugin.configure({ "libvirt-snapshot:uri": secret(labUri) });
}, PREPARE_TIMEOUT_MS);

afterAll(async () => {
  await plugin?.stop();
});

type Props = Record<string, unknown>;
const urn = (name: string) =>
  `urn:pulumi:test::lvsnap-test::pulumi-nodejs:dynamic/libvirt:RestorePoint::${name}`;
const KiB = 1024;
/** Generation n's layer alone writes region n; nothing else writes there. */
const region = (n: number) => ({ pattern: 0x40 + n, offset: n * 1024 * KiB, length: 64 * KiB });

async function creationTimeOf(dom: LabDomain, snapshot: string): Promise<string> {
  const xml = await virsh("snapshot-dumpxml", dom.name, snapshot);
  return new Date(Number(/<creationTime>(\d+)<\/creationTime>/.exec(xml)?.[1]) * 1000).toISOString();
}

/** What the outputs must say about one domain's snapshot, read from the host independently. */
async function expectedSnapshot(dom: LabDomain, name: string, overlay: string, below: string) {
  return {
    domain: dom.name,
    domainName: dom.name,
    domainUuid: dom.uuid,
    snapshotName: name,
    creationTime: await creationTimeOf(dom, name),
    disks: [{ target: "vda", overlay, pointInTimeImage: below }],
  };
}

test("paused create across two domains, three trigger changes with keep 2, refresh after an out-of-band delete, delete merges everything", async () => {
  const conn = await openLabConnection();
  try {
    const doms = await Promise.all(
      [0, 1].map(() => lab.domain({ disks: [{ sizeMiB: 16 }], state: "running" })),
    );
    const [a, b] = doms as [LabDomain, LabDomain];
    const baseFiles = await Promise.all(doms.map(files));

    // Every suspend and resume of the two domains, in the order libvirt reports them.
    const events: string[] = [];
    const uuids = new Set(doms.map((d) => d.uuid));
    const subscription = await conn.subscribeLifecycleEvents(null, (event: LifecycleEvent) => {
      if (!uuids.has(event.domain.uuid)) return;
      if (event.event === DomainEventType.SUSPENDED) events.push(`suspended ${event.domain.name}`);
      if (event.event === DomainEventType.RESUMED) events.push(`resumed ${event.domain.name}`);
    });

    const news = (release: string): Props => ({
      domains: [a.name, b.uuid],
      name: "rp",
      triggers: [release],
      keep: 2,
      consistency: "paused",
      quiesce: "off",
      __provider: provider,
    });
    const checked = await plugin.check(urn("rp"), {}, news("v1"));
    expect(checked.failures).toEqual([]);
    const created = await plugin.create(urn("rp"), checked.inputs);
    // Events arrive after the calls that caused them: wait (up to a minute, for a busy daemon) for all four
    // before looking.
    for (let waited = 0; events.length < 4 && waited < 600; waited++) await setTimeout(100);
    await subscription.close();

    // Both were paused before either snapshot was taken and either was resumed; both run again.
    expect(events.slice(0, 2).sort()).toEqual([`suspended ${a.name}`, `suspended ${b.name}`].sort());
    expect(events.slice(2).sort()).toEqual([`resumed ${a.name}`, `resumed ${b.name}`].sort());
    expect([await a.state(), await b.state()]).toEqual(["running", "running"]);
    const overlays1 = await Promise.all(doms.map(async (d) => (await d.liveChain("vda"))[0] as string));
    expect(created.id).toBe(`rp@${a.uuid},${b.uuid}`);
    const generation1 = {
      number: 1,
      triggers: ["v1"],
      createdAt: (created.properties.generations as { createdAt: string }[])[0]?.createdAt,
      snapshots: [
        await expectedSnapshot(a, "rp-1", overlays1[0] as string, a.base("vda")),
        { ...(await expectedSnapshot(b, "rp-1", overlays1[1] as string, b.base("vda"))), domain: b.uuid },
      ],
    };
    expect(created.properties).toEqual({
      schemaVersion: 1,
      domains: [a.name, b.uuid],
      name: "rp",
      triggers: ["v1"],
      keep: 2,
      consistency: "paused",
      description: null,
      memory: false,
      live: false,
      quiesce: "off",
      disks: null,
      excludeDisks: null,
      overlayDir: null,
      deleteStrategy: "blockcommit",
      bandwidth: null,
      timeouts: { create: null, delete: null },
      uri: null,
      connectionUri: labUri,
      generations: [generation1],
      __provider: provider,
    });
    expect(await plugin.diff(urn("rp"), created.id, created.properties, checked.inputs)).toEqual({
      changes: "none",
      replaces: [],
      deleteBeforeReplace: false,
    });

    // Shut off, each generation's layer gets its own data; three trigger changes keep the newest two.
    await Promise.all(doms.map((d) => d.destroy()));
    let outputs = created.properties;
    for (const n of [1, 2, 3]) {
      await Promise.all(
        doms.map(async (d) => d.writePattern((await d.liveChain("vda"))[0] as string, region(n))),
      );
      const next = (await plugin.check(urn("rp"), outputs, news(`v${n + 1}`))).inputs;
      expect(await plugin.diff(urn("rp"), created.id, outputs, next)).toEqual({
        changes: "some",
        replaces: [],
        deleteBeforeReplace: false,
      });
      outputs = (await plugin.update(urn("rp"), created.id, outputs, next)).properties;
    }
    const generations = outputs.generations as { number: number; triggers: unknown }[];
    expect(generations.map((g) => [g.number, g.triggers])).toEqual([
      [3, ["v3"]],
      [4, ["v4"]],
    ]);
    for (const dom of doms) {
      expect(await dom.snapshotParents()).toEqual({ "rp-3": null, "rp-4": "rp-3" });
      // qemu-img's view of the files: active (generation 4's overlay) -> generation 3's -> the base image,
      // into which generations 1 and 2 were merged with their data.
      const chain = await dom.fileChain("vda");
      expect(chain).toHaveLength(3);
      expect(chain[2]).toBe(dom.base("vda"));
      expect(await dom.liveChain("vda", true)).toEqual(chain);
      expect(await dom.checkPattern(dom.base("vda"), region(1))).toBe(true);
      expect(await dom.checkPattern(dom.base("vda"), region(2))).toBe(true);
      expect(await dom.checkPattern(dom.base("vda"), region(3))).toBe(false);
      expect(await dom.checkPattern(chain[1] as string, region(3))).toBe(true);
      expect(await dom.checkPattern(chain[0] as string, region(3))).toBe(true);
      expect((await files(dom)).length).toBe((baseFiles[0] as string[]).length + 2);
    }

    // Generation 3 deleted behind the provider's back (libvirt's own delete, on running domains): a refresh
    // drops it, and reports generation 4 as the host now has it, over the image generation 3 was merged into.
    await Promise.all(doms.map((d) => d.start()));
    for (const dom of doms) await virsh("snapshot-delete", dom.name, "rp-3");
    const refreshed = await plugin.read(urn("rp"), created.id, outputs);
    const generation4 = (
      outputs.generations as { snapshots: { disks: { pointInTimeImage: string }[] }[] }[]
    )[1];
    expect(refreshed.properties).toEqual({
      ...outputs,
      generations: [
        {
          ...generation4,
          snapshots: generation4?.snapshots.map((snapshot, i) => ({
            ...snapshot,
            disks: snapshot.disks.map((disk) => ({ ...disk, pointInTimeImage: doms[i]?.base("vda") })),
          })),
        },
      ],
    });

    // Delete merges generation 4 (an active commit of each running domain): one image, no metadata, no files.
    const overlays4 = await Promise.all(doms.map(async (d) => (await d.liveChain("vda"))[0] as string));
    await plugin.delete(urn("rp"), created.id, refreshed.properties);
    for (const [i, dom] of doms.entries()) {
      expect(await dom.snapshotNames()).toEqual([]);
      expect(await dom.liveChain("vda")).toEqual([dom.base("vda")]);
      expect(await dom.fileChain("vda")).toEqual([dom.base("vda")]);
      expect(await dom.liveChain("vda", true)).toEqual([dom.base("vda")]);
      expect(existsSync(overlays4[i] as string)).toBe(false);
      expect(await files(dom)).toEqual(baseFiles[i]);
      expect(await dom.state()).toBe("running");
    }
    await Promise.all(doms.map((d) => d.destroy()));
    for (const dom of doms) {
      for (const n of [1, 2, 3]) expect(await dom.checkPattern(dom.base("vda"), region(n))).toBe(true);
    }
    expect(await plugin.read(urn("rp"), created.id, refreshed.properties)).toEqual({
      id: "",
      properties: { __provider: provider },
    });
  } finally {
    await conn.close();
  }
});

test("a create that fails on one domain records the snapshot made on the other (crash consistency), and delete merges it", async () => {
  const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "running" });
  const missing = `${dom.name}-missing`;
  const checked = await plugin.check(
    urn("partial"),
    {},
    { domains: [dom.name, missing], name: "partial", quiesce: "off", __provider: provider },
  );
  expect(checked.failures).toEqual([]);
  const error = await plugin.create(urn("partial"), checked.inputs).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(PluginCallError);
  const failure = (error as PluginCallError).initFailure;
  const overlay = (await dom.liveChain("vda"))[0] as string;
  expect(failure?.id).toBe(`partial@${dom.uuid}`);
  expect(failure?.reasons).toEqual([expect.stringMatching(new RegExp(`^${missing}: .*not found`))]);
  expect(failure?.properties.generations).toEqual([
    {
      number: 1,
      triggers: null,
      createdAt: expect.any(String),
      snapshots: [await expectedSnapshot(dom, "partial-1", overlay, dom.base("vda"))],
    },
  ]);
  expect(failure?.properties.__provider).toBe(provider);

  await plugin.delete(urn("partial"), failure?.id ?? "", failure?.properties ?? {});
  expect(await dom.snapshotNames()).toEqual([]);
  expect(await dom.fileChain("vda")).toEqual([dom.base("vda")]);
  expect(existsSync(overlay)).toBe(false);
});

test("paused consistency leaves a domain that was already paused paused, and resumes only the one it paused", async () => {
  const [running, paused] = await Promise.all([
    lab.domain({ disks: [{ sizeMiB: 16 }], state: "running" }),
    lab.domain({ disks: [{ sizeMiB: 16 }], state: "paused" }),
  ]);
  const checked = await plugin.check(
    urn("mixed"),
    {},
    {
      domains: [running.name, paused.name],
      name: "mixed",
      consistency: "paused",
      quiesce: "off",
      __provider: provider,
    },
  );
  const created = await plugin.create(urn("mixed"), checked.inputs);
  expect([await running.state(), await paused.state()]).toEqual(["running", "paused"]);
  expect([await running.snapshotNames(), await paused.snapshotNames()]).toEqual([["mixed-1"], ["mixed-1"]]);
  await plugin.waitForOutput((line) => line === `mixed-1: taken with ${running.name} paused`);
  await plugin.delete(urn("mixed"), created.id, created.properties);
  expect([await running.snapshotNames(), await paused.snapshotNames()]).toEqual([[], []]);
  expect([await running.state(), await paused.state()]).toEqual(["running", "paused"]);
});
