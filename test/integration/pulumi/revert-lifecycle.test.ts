import { afterAll, beforeAll, expect, test } from "vitest";
import { lab } from "../../support/lab";
import { PREPARE_TIMEOUT_MS, PulumiPlugin, secret } from "../../support/pulumi-plugin";
import { labUri } from "../../support/virsh";
import { openLabConnection } from "../engine/delete-support";
import { diskOnlyLayers, files, persistentSources, visibleLayer } from "../engine/revert-support";

// The Revert resource end to end: the real dynamic-provider plugin, the packed package, a real libvirtd.

let plugin: PulumiPlugin;
let provider: string;

beforeAll(async () => {
  plugin = await PulumiPlugin.start();
  provider = await plugin.serializedProvider("revertResourceProvider");
  await plugin.configure({ "libvirt-snapshot:uri": secret(labUri) });
}, PREPARE_TIMEOUT_MS);

afterAll(async () => {
  await plugin?.stop();
});

const urn = (name: string) => `urn:pulumi:test::lvsnap-test::pulumi-nodejs:dynamic/libvirt:Revert::${name}`;

test("create reverts (keeping the current state), a trigger change replaces, refresh and delete leave the host alone", async () => {
  const conn = await openLabConnection();
  try {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn, dom, ["s1", "s2"]);
    const news = {
      domain: dom.name,
      snapshot: "s1",
      targetState: "running",
      triggers: ["INC-1"],
      __provider: provider,
    };
    const checked = await plugin.check(urn("rollback"), {}, news);
    expect(checked.failures).toEqual([]);
    const created = await plugin.create(urn("rollback"), checked.inputs);
    const out = created.properties;
    expect([out.strategy, out.state, out.memoryRestored, out.connectionUri, out.domainName]).toEqual([
      "recipe",
      "running",
      false,
      labUri,
      dom.name,
    ]);
    expect(out.savedAs).toMatch(/^auto-before-revert-/);
    expect(out.overlays).toEqual([
      { target: "vda", path: dom.path("vda.s1.revert-1.qcow2"), backing: dom.base("vda") },
    ]);
    expect(await visibleLayer(dom)).toBe(0);
    expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1", [String(out.savedAs)]: "s2" });

    const same = await plugin.diff(urn("rollback"), created.id, out, checked.inputs);
    const again = await plugin.diff(urn("rollback"), created.id, out, {
      ...checked.inputs,
      triggers: ["INC-2"],
    });
    expect([same.changes, again.changes, again.replaces]).toEqual(["none", "some", ["triggers"]]);

    const host = async () => [
      await files(dom),
      await persistentSources(dom),
      await dom.snapshotParents(),
      await dom.state(),
    ];
    const before = await host();
    expect(await plugin.read(urn("rollback"), created.id, out)).toEqual({ id: created.id, properties: out });
    await plugin.delete(urn("rollback"), created.id, out);
    expect(await host()).toEqual(before);
  } finally {
    await conn.close();
  }
});
