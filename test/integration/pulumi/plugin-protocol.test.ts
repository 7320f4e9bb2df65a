import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PluginCallError, PREPARE_TIMEOUT_MS, PulumiPlugin, snapshotUrn } from "../../support/pulumi-plugin";
import { run } from "../../support/run";
import { labUri } from "../../support/virsh";

// check, diff and the serialized provider through the real dynamic-provider plugin: no host operation.
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

let plugin: PulumiPlugin;
let provider: string;

// Building, packing and installing the package (once per source hash) can take minutes on a busy host.
beforeAll(async () => {
  plugin = await PulumiPlugin.start();
  provider = await plugin.serializedProvider();
  // A plain (non-secret) stack config URI where nothing listens: operations without their own `uri` fail
  // there, which shows which URI they used.
  await plugin.configure({ "libvirt-snapshot:uri": "qemu+tcp://127.0.0.1:1/system" });
}, PREPARE_TIMEOUT_MS);

afterAll(async () => {
  await plugin?.stop();
});

describe("serialized Snapshot provider", () => {
  it("is a small shim that captures no connection, module or native function", () => {
    expect(provider.length).toBeLessThan(4096);
    expect(provider).not.toMatch(/\[native code\]|Socket|LibvirtConnection|__awaiter/);
    // The only module it reaches is the package, by name, at call time.
    expect(provider.match(/require\([^)]*\)/g)).toEqual(['require("pulumi-libvirt-snapshot")']);
  });

  it("is the same text on every serialization (stable __provider, one cached provider per plugin)", async () => {
    expect(await plugin.serializedProvider()).toBe(provider);
  });
});

describe("check through the plugin", () => {
  it("returns defaulted inputs with __provider, and failures with property paths", async () => {
    const urn = snapshotUrn("bad");
    const result = await plugin.check(
      urn,
      {},
      {
        domain: "web-1",
        name: "a/b",
        timeouts: { create: -5 },
        __provider: provider,
      },
    );
    expect(result.failures).toEqual([
      {
        property: "name",
        reason:
          "contains '/', which libvirt refuses in snapshot names (got \"a/b\"); use a name without '/' that does not start with '.'",
      },
      {
        property: "timeouts.create",
        reason: "must be positive (got -5); give { create, delete } in seconds",
      },
    ]);
    expect(result.inputs).toEqual({
      domain: "web-1",
      name: "a/b",
      timeouts: { create: -5 },
      memory: false,
      live: false,
      quiesce: "auto",
      deleteStrategy: "blockcommit",
      adopt: false,
      __provider: provider,
    });
  });

  it("never fails on preview unknowns, wherever they are", async () => {
    const news = {
      domain: UNKNOWN,
      name: "pre",
      disks: ["vda", UNKNOWN],
      timeouts: UNKNOWN,
      triggers: [UNKNOWN],
      memory: UNKNOWN,
      __provider: provider,
    };
    expect((await plugin.check(snapshotUrn("pre"), {}, news)).failures).toEqual([]);
  });
});

const storedOutputs = {
  schemaVersion: 1,
  domain: "web-1",
  name: "pre",
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
  triggers: ["v1"],
  adopt: false,
  domainUuid: "6f1c2d9e-1111-4222-8333-944455556666",
  domainName: "web-1",
  snapshotName: "pre",
  creationTime: "2026-11-22T02:00:00.000Z",
  state: "disk-snapshot",
  parent: null,
  snapshotDisks: [],
  memoryFile: null,
  quiesced: false,
  quiesceSkippedReason: null,
  libvirtVersion: "9.0.0",
  hostname: "hv1",
  connectionUri: "qemu:///system",
};

describe("diff through the plugin", () => {
  const outputs = storedOutputs;
  const inputs = {
    domain: "web-1",
    name: "pre",
    memory: false,
    live: false,
    quiesce: "auto",
    deleteStrategy: "blockcommit",
    adopt: false,
    triggers: ["v1"],
  };
  const cases: [string, Record<string, unknown>, unknown][] = [
    ["no change", {}, { changes: "none", replaces: [], deleteBeforeReplace: false }],
    ["description", { description: "x" }, { changes: "some", replaces: [], deleteBeforeReplace: false }],
    [
      "triggers, same name",
      { triggers: ["v2"] },
      { changes: "some", replaces: ["triggers"], deleteBeforeReplace: true },
    ],
    ["new name", { name: "pre-2" }, { changes: "some", replaces: ["name"], deleteBeforeReplace: false }],
  ];
  it.each(cases)("%s", async (_label, change, expected) => {
    const id = `${outputs.domainUuid}/pre`;
    const result = await plugin.diff(
      snapshotUrn("pre"),
      id,
      { ...outputs, __provider: provider },
      {
        ...inputs,
        ...change,
        __provider: provider,
      },
    );
    expect(result).toEqual(expected);
  });
});

describe("configure through the plugin", () => {
  const state = (uri: string | null) => ({
    ...storedOutputs,
    domainUuid: "00000000-0000-4000-8000-00000000beef",
    uri,
    __provider: provider,
  });

  it("operations use the stack config URI when the resource sets none", async () => {
    const error = await plugin.read(snapshotUrn("pre"), "x/pre", state(null)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PluginCallError);
    expect((error as PluginCallError).details).toMatch(/127\.0\.0\.1:1/);
  });

  it("the resource's own uri wins over the stack config", async () => {
    // No such domain on the lab's daemon: refresh reports the snapshot gone.
    expect(await plugin.read(snapshotUrn("pre"), "x/pre", state(labUri))).toEqual({
      id: "",
      properties: { __provider: provider },
    });
  });
});

describe("examples", () => {
  it("the pre-deploy restore point program type-checks against the packed package", async () => {
    const dir = join(plugin.program.dir, "example-pre-deploy");
    await mkdir(dir, { recursive: true });
    await copyFile(
      join(__dirname, "../../../examples/pre-deploy-restore-point/index.ts"),
      join(dir, "index.ts"),
    );
    const tsconfig = {
      compilerOptions: {
        strict: true,
        target: "ES2023",
        module: "nodenext",
        moduleResolution: "nodenext",
        noEmit: true,
        skipLibCheck: true,
        types: [],
      },
      files: ["index.ts"],
    };
    await writeFile(join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
    const tsc = require.resolve("typescript/bin/tsc");
    const result = await run(process.execPath, [tsc, "-p", join(dir, "tsconfig.json")], 120_000);
    expect(result.stdout).toBe("");
  });
});
