import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LabDomain, lab } from "../../support/lab";
import {
  PluginCallError,
  PREPARE_TIMEOUT_MS,
  PulumiPlugin,
  secret,
  snapshotUrn,
} from "../../support/pulumi-plugin";
import { labUri, virsh } from "../../support/virsh";

// The Snapshot resource end to end: the real dynamic-provider plugin, the packed package, a real libvirtd.

let plugin: PulumiPlugin;
let provider: string;
let libvirtVersion: string;
let hostname: string;

// Building, packing and installing the package (once per source hash) can take minutes on a busy host.
beforeAll(async () => {
  plugin = await PulumiPlugin.start();
  provider = await plugin.serializedProvider();
  // The URI arrives as a secret, as `pulumi config set --secret libvirt-snapshot:uri` would send it.
  await plugin.configure({ "libvirt-snapshot:uri": secret(labUri) });
  libvirtVersion = /Running against daemon: (\S+)/.exec(await virsh("version", "--daemon"))?.[1] ?? "?";
  hostname = (await virsh("hostname")).trim();
}, PREPARE_TIMEOUT_MS);

afterAll(async () => {
  await plugin?.stop();
});

type Props = Record<string, unknown>;

/** Check then create, as the engine does for a new resource. */
async function up(name: string, news: Props): Promise<{ id: string; inputs: Props; outputs: Props }> {
  const urn = snapshotUrn(name);
  const checked = await plugin.check(urn, {}, { ...news, __provider: provider });
  expect(checked.failures).toEqual([]);
  const created = await plugin.create(urn, checked.inputs);
  return { id: created.id, inputs: checked.inputs, outputs: created.properties };
}

async function creationTimeOf(dom: LabDomain, snapshot: string): Promise<string> {
  const xml = await virsh("snapshot-dumpxml", dom.name, snapshot);
  const seconds = Number(/<creationTime>(\d+)<\/creationTime>/.exec(xml)?.[1]);
  return new Date(seconds * 1000).toISOString();
}

/** Rewrites a snapshot's description behind the provider's back, as `virsh snapshot-edit` would. */
async function editDescriptionOutOfBand(dom: LabDomain, snapshot: string, description: string) {
  const xml = await virsh("snapshot-dumpxml", "--security-info", dom.name, snapshot);
  const file = join(dom.dir, `${snapshot}.redefine.xml`);
  await writeFile(
    file,
    xml.replace(/<description>[^<]*<\/description>/, `<description>${description}</description>`),
  );
  await virsh("snapshot-create", dom.name, file, "--redefine");
}

describe("Snapshot through the plugin", () => {
  it("create, refresh, update, drift, delete: outputs, host state, chains and files", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 64 }], state: "running" });
    const urn = snapshotUrn("pre-deploy");
    const { id, inputs, outputs } = await up("pre-deploy", {
      domain: dom.name,
      name: "pre-deploy",
      description: "before 2.0",
      quiesce: "off",
      triggers: ["app:1", { replicas: 2 }],
      timeouts: { delete: 600 },
    });

    const overlay = (await dom.liveChain("vda"))[0] as string;
    expect(await dom.fileChain("vda")).toEqual([overlay, dom.base("vda")]);
    expect(id).toBe(`${dom.uuid}/pre-deploy`);
    const expected = {
      schemaVersion: 1,
      domain: dom.name,
      name: "pre-deploy",
      description: "before 2.0",
      memory: false,
      live: false,
      quiesce: "off",
      disks: null,
      excludeDisks: null,
      overlayDir: null,
      deleteStrategy: "blockcommit",
      bandwidth: null,
      timeouts: { create: null, delete: 600 },
      uri: null,
      triggers: ["app:1", { replicas: 2 }],
      adopt: false,
      domainUuid: dom.uuid,
      domainName: dom.name,
      snapshotName: "pre-deploy",
      creationTime: await creationTimeOf(dom, "pre-deploy"),
      state: "disk-snapshot",
      parent: null,
      snapshotDisks: [{ target: "vda", overlay, pointInTimeImage: dom.base("vda") }],
      memoryFile: null,
      quiesced: false,
      quiesceSkippedReason: "not quiesced: quiescing was turned off",
      libvirtVersion,
      hostname,
      connectionUri: labUri,
      __provider: provider,
    };
    expect(outputs).toEqual(expected);

    // Refresh: the outputs go through Struct and back unchanged, and nothing differs.
    expect(await plugin.read(urn, id, outputs)).toEqual({ id, properties: expected });
    expect(await plugin.diff(urn, id, outputs, inputs)).toEqual({
      changes: "none",
      replaces: [],
      deleteBeforeReplace: false,
    });

    // A new description is an in-place update that reaches the host.
    const described = { ...inputs, description: "before 2.0 (canary)" };
    expect(await plugin.diff(urn, id, outputs, described)).toEqual({
      changes: "some",
      replaces: [],
      deleteBeforeReplace: false,
    });
    const updated = await plugin.update(urn, id, outputs, described);
    expect(updated.properties).toEqual({ ...expected, description: "before 2.0 (canary)" });
    expect(await virsh("snapshot-dumpxml", dom.name, "pre-deploy")).toContain(
      "<description>before 2.0 (canary)</description>",
    );
    expect((await virsh("snapshot-current", "--name", dom.name)).trim()).toBe("pre-deploy");

    // An edit on the host shows as drift after a refresh, and the next diff wants to put it back.
    await editDescriptionOutOfBand(dom, "pre-deploy", "edited by hand");
    const refreshed = await plugin.read(urn, id, updated.properties);
    expect(refreshed.properties).toEqual({ ...expected, description: "edited by hand" });
    expect((await plugin.diff(urn, id, refreshed.properties, described)).changes).toBe("some");

    // Delete merges the overlay back: chain as before the snapshot, overlay gone, progress in the log.
    await plugin.delete(urn, id, refreshed.properties);
    expect(await dom.snapshotNames()).toEqual([]);
    expect(await dom.liveChain("vda")).toEqual([dom.base("vda")]);
    expect(await dom.fileChain(dom.base("vda"))).toEqual([dom.base("vda")]);
    expect(existsSync(overlay)).toBe(false);
    await plugin.waitForOutput((line) => line === `${dom.name}/pre-deploy: deleted`);
    expect(await plugin.read(urn, id, refreshed.properties)).toEqual({
      id: "",
      properties: { __provider: provider },
    });
  });

  it("delete of a shut-off domain merges the data written after the snapshot into the image below", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 64 }], state: "shutoff" });
    await dom.writePattern("vda", { pattern: 0x11, offset: 0, length: 65536 });
    await dom.start();
    const { id, outputs } = await up("offline", { domain: dom.uuid, name: "offline" });
    const overlay = (await dom.liveChain("vda"))[0] as string;
    await dom.destroy();
    await dom.writePattern(overlay, { pattern: 0x22, offset: 1 << 20, length: 65536 });
    expect(await dom.checkPattern(dom.base("vda"), { pattern: 0x22, offset: 1 << 20, length: 65536 })).toBe(
      false,
    );

    await plugin.delete(snapshotUrn("offline"), id, outputs);
    expect(await dom.liveChain("vda")).toEqual([dom.base("vda")]);
    expect(await dom.fileChain(dom.base("vda"))).toEqual([dom.base("vda")]);
    expect(await dom.checkPattern(dom.base("vda"), { pattern: 0x11, offset: 0, length: 65536 })).toBe(true);
    expect(await dom.checkPattern(dom.base("vda"), { pattern: 0x22, offset: 1 << 20, length: 65536 })).toBe(
      true,
    );
    expect(existsSync(overlay)).toBe(false);
    expect(await dom.state()).toBe("shutoff");
  });

  it("a snapshot deleted out of band reads as gone, and deleting it again succeeds", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 64 }], state: "running" });
    const urn = snapshotUrn("gone");
    const { id, outputs } = await up("gone", { domain: dom.name, name: "gone" });
    await virsh("snapshot-delete", dom.name, "gone");
    expect(await plugin.read(urn, id, outputs)).toEqual({ id: "", properties: { __provider: provider } });
    await plugin.delete(urn, id, outputs);
    expect(await dom.liveChain("vda")).toEqual([dom.base("vda")]);
  });

  it("create is idempotent: a retry after the snapshot was made adopts it", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 64 }], state: "running" });
    const first = await up("again", { domain: dom.name, name: "again" });
    const second = await up("again", { domain: dom.name, name: "again" });
    expect(second).toEqual(first);
    expect(await dom.snapshotNames()).toEqual(["again"]);
    // What the user reads in the log: the quiesce fallback of the first create, the adoption by the second
    // (printed on one stream, in order: once the adoption's line is in, so is everything before it).
    await plugin.waitForOutput((line) => line.startsWith(`${dom.name}/again: a matching snapshot`));
    const lines = plugin.output.filter((line) => line.startsWith(`${dom.name}/again: `));
    expect(lines).toEqual([
      expect.stringMatching(/: not quiesced: the domain has no guest agent channel/),
      `${dom.name}/again: a matching snapshot already exists: adopted it`,
    ]);
  });

  it("a snapshot made by someone else is not taken over unless adopt is set", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 64 }], state: "running" });
    await virsh(
      "snapshot-create-as",
      dom.name,
      "manual",
      "--disk-only",
      "--atomic",
      "--diskspec",
      `vda,snapshot=external,file=${dom.path("vda.manual.qcow2")}`,
    );
    const urn = snapshotUrn("manual");
    const checked = await plugin.check(urn, {}, { domain: dom.name, name: "manual", __provider: provider });
    const refused = await plugin.create(urn, checked.inputs).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PluginCallError);
    expect((refused as PluginCallError).details).toMatch(/set adopt: true to take it over/);
    expect((refused as PluginCallError).initFailure).toBeNull();

    const adopted = await up("manual", { domain: dom.name, name: "manual", adopt: true });
    expect(adopted.outputs).toMatchObject({
      snapshotName: "manual",
      snapshotDisks: [
        { target: "vda", overlay: dom.path("vda.manual.qcow2"), pointInTimeImage: dom.base("vda") },
      ],
    });
  });

  it("a create timeout never orphans a snapshot: nothing is made, or what was made is recorded", async () => {
    // The engine gives up only before the libvirt create call; once it was sent the snapshot is finished and
    // returned. Which side of that call a 1 ms timeout falls on is up to the host, so both are checked.
    const dom = await lab.domain({ disks: [{ sizeMiB: 64 }], state: "running" });
    const urn = snapshotUrn("late");
    const checked = await plugin.check(
      urn,
      {},
      {
        domain: dom.name,
        name: "late",
        timeouts: { create: 0.001 },
        __provider: provider,
      },
    );
    const outcome = await plugin.create(urn, checked.inputs).then(
      (created) => ({ created }),
      (error: unknown) => ({ error }),
    );
    if ("error" in outcome) {
      expect(outcome.error).toBeInstanceOf(PluginCallError);
      const { initFailure, details } = outcome.error as PluginCallError;
      expect([
        details.match(/did not finish within 0.001 s; raise timeouts.create/) !== null,
        initFailure,
      ]).toEqual([true, null]);
      expect(await dom.snapshotNames()).toEqual([]);
      expect(await dom.liveChain("vda")).toEqual([dom.base("vda")]);
      return;
    }
    expect(outcome.created.id).toBe(`${dom.uuid}/late`);
    expect(outcome.created.properties).toMatchObject({ snapshotName: "late", domainUuid: dom.uuid });
    expect(await dom.snapshotNames()).toEqual(["late"]);
    // The recorded state is enough to delete what was made.
    await plugin.delete(urn, outcome.created.id, outcome.created.properties);
    expect(await dom.snapshotNames()).toEqual([]);
    expect(await dom.liveChain("vda")).toEqual([dom.base("vda")]);
  });

  it("eight creates across two domains at once all succeed, each domain with one linear chain", async () => {
    const doms = await Promise.all(
      [1, 2].map(() => lab.domain({ disks: [{ sizeMiB: 64 }], state: "running" })),
    );
    const names = ["s1", "s2", "s3", "s4"];
    const created = await Promise.all(
      doms.flatMap((dom) => names.map((name) => up(`${dom.name}-${name}`, { domain: dom.name, name }))),
    );
    for (const dom of doms) {
      const parents = await dom.snapshotParents();
      expect(Object.keys(parents).sort()).toEqual(names);
      // One chain: exactly one root, and every other snapshot's parent is another snapshot of the domain.
      expect(Object.values(parents).filter((p) => p === null)).toHaveLength(1);
      const chain = await dom.fileChain("vda");
      expect(chain).toHaveLength(5);
      expect(chain.at(-1)).toBe(dom.base("vda"));
      const mine = created.filter((c) => c.outputs.domainUuid === dom.uuid);
      const overlays = mine.map((c) => (c.outputs.snapshotDisks as { overlay: string }[])[0]?.overlay);
      expect([...overlays].sort()).toEqual(chain.slice(0, 4).sort());
    }
    await Promise.all(created.map((c) => plugin.delete(snapshotUrn(c.id), c.id, c.outputs)));
    for (const dom of doms) {
      expect(await dom.snapshotNames()).toEqual([]);
      expect(await dom.fileChain("vda")).toEqual([dom.base("vda")]);
    }
  });
});
