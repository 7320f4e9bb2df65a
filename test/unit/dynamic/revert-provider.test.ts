import * as pulumi from "@pulumi/pulumi";
import { describe, expect, test } from "vitest";
import { UNKNOWN } from "../../../provider/dynamic/inputs";
import {
  checkRevertInputs,
  createRevertProvider,
  diffRevert,
  type RevertFacts,
  type RevertHost,
  type RevertInputs,
} from "../../../provider/dynamic/revert-provider";
import { revertResourceProvider } from "../../../sdk/revert";

const UUID = "6f1c2d9e-1111-4222-8333-944455556666";

const facts: RevertFacts = {
  domainUuid: UUID,
  domainName: "web-1",
  revertedAt: "2026-11-22T03:00:00.000Z",
  strategy: "recipe",
  state: "running",
  memoryRestored: true,
  overlays: [{ target: "vda", path: "/img/vda.s1.revert-1.qcow2", backing: "/img/vda.qcow2" }],
  savedAs: "auto-before-revert-20261122T030000000Z",
  discarded: [],
  removedFiles: ["/img/vda.s2.qcow2"],
  notes: [],
};

class FakeHost implements RevertHost {
  readonly calls: string[] = [];
  exists = true;
  hang = false;
  async revert(inputs: RevertInputs, signal: AbortSignal): Promise<RevertFacts> {
    this.calls.push(`revert ${inputs.domain} ${inputs.snapshot} ${inputs.targetState} ${inputs.keepCurrent}`);
    if (this.hang)
      await new Promise((_r, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
    return facts;
  }
  async domain(domain: string) {
    this.calls.push(`domain ${domain}`);
    return this.exists ? { name: "web-1", uuid: UUID } : null;
  }
}

function provider(host = new FakeHost(), uris: string[] = []) {
  const logs: string[] = [];
  const impl = createRevertProvider({
    hostFor: (uri) => {
      uris.push(uri);
      return host;
    },
    env: {},
    log: (line) => logs.push(line),
  });
  return { impl, host, logs, uris };
}

describe("check", () => {
  test("defaults keep the current state and leave newer snapshots alone", () => {
    expect(checkRevertInputs({ domain: "web-1", snapshot: "s1", __provider: "x" })).toEqual({
      inputs: {
        domain: "web-1",
        snapshot: "s1",
        targetState: "snapshot",
        keepCurrent: true,
        discardNewer: false,
      },
      failures: [],
    });
  });

  test.each([
    [
      { snapshot: "a/b" },
      "snapshot",
      'is not a libvirt snapshot name (got "a/b"); give the name of one of the domain\'s snapshots ' +
        "(libvirt snapshot names have no '/' and do not start with '.')",
    ],
    [
      { targetState: "sideways" },
      "targetState",
      'Invalid option: expected one of "snapshot"|"running"|"paused"|"shutoff" (got "sideways"); ' +
        "use one of snapshot, running, paused, shutoff",
    ],
    [
      { discardNewer: true },
      "discardNewer",
      "discardNewer: true cannot be combined with keepCurrent: true (the kept state would be one of the newer " +
        "snapshots); set keepCurrent: false to discard the newer snapshots, or remove discardNewer",
    ],
    [
      { overlayDir: "rel" },
      "overlayDir",
      'is not an absolute path (got "rel"); use an absolute directory path such as ' +
        "/var/lib/libvirt/images/snapshots",
    ],
    [
      { uri: "qemu+ssh://u:pw@h/system" },
      "uri",
      'contains a credential, which would be stored in plain text (got "qemu+ssh://u:***@h/system"); use a URI ' +
        "such as qemu+ssh://user@host/system; put credentials in the stack config " +
        "(pulumi config set --secret libvirt-snapshot:uri ...)",
    ],
    [
      { timeouts: { create: -1 } },
      "timeouts.create",
      "must be positive (got -1); give { create } in seconds",
    ],
    [{ colour: "red" }, "colour", 'unknown property (got "red"); remove it (no such input)'],
    [{ domain: "" }, "domain", 'must not be empty (got ""); set it to the name or UUID of a libvirt domain'],
  ])("%j fails on %s", (extra, property, reason) => {
    expect(checkRevertInputs({ domain: "web-1", snapshot: "s1", ...extra }).failures).toEqual([
      { property, reason },
    ]);
  });

  test("values unknown during a preview never fail", () => {
    expect(checkRevertInputs({ domain: UNKNOWN, snapshot: UNKNOWN, targetState: UNKNOWN }).failures).toEqual(
      [],
    );
  });
});

describe("diff", () => {
  const old = {
    domain: "web-1",
    snapshot: "s1",
    targetState: "snapshot",
    keepCurrent: true,
    discardNewer: false,
    triggers: { incident: 7 },
  };
  test.each([
    [{}, { changes: false, replaces: [], deleteBeforeReplace: false }],
    [{ triggers: { incident: 8 } }, { changes: true, replaces: ["triggers"], deleteBeforeReplace: false }],
    [{ snapshot: "s2" }, { changes: true, replaces: ["snapshot"], deleteBeforeReplace: false }],
    [{ timeouts: { create: 60 } }, { changes: true, replaces: [], deleteBeforeReplace: false }],
  ])("%j: %j", (change, expected) => {
    expect(diffRevert(old, { ...old, ...change })).toEqual(expected);
  });
});

describe("methods", () => {
  test("create reverts once and records inputs and host facts; read, update and delete never revert", async () => {
    const { impl, host, logs, uris } = provider();
    await impl.configure({
      config: { get: (key) => (key === "libvirt-snapshot:uri" ? "qemu+ssh://ops@hv1/system" : undefined) },
    });
    const { inputs } = checkRevertInputs({ domain: "web-1", snapshot: "s1", triggers: ["INC-7"] });
    const created = await impl.create(inputs);
    expect(created).toEqual({
      id: `${UUID}/2026-11-22T03:00:00.000Z`,
      outs: {
        schemaVersion: 1,
        domain: "web-1",
        snapshot: "s1",
        targetState: "snapshot",
        keepCurrent: true,
        discardNewer: false,
        triggers: ["INC-7"],
        connectionUri: "qemu+ssh://ops@hv1/system",
        ...facts,
      },
    });
    const outs = created.outs as unknown as Record<string, unknown>;
    expect(await impl.read(created.id, outs)).toEqual({ id: created.id, props: outs });
    expect(await impl.update(created.id, outs, { ...inputs, timeouts: { create: 60 } })).toEqual({
      outs: { ...outs, timeouts: { create: 60 } },
    });
    await impl.delete(created.id, outs);
    host.exists = false;
    expect(await impl.read(created.id, outs)).toEqual({ id: "" });
    expect(host.calls).toEqual(["revert web-1 s1 snapshot true", `domain ${UUID}`, `domain ${UUID}`]);
    expect(uris.every((u) => u === "qemu+ssh://ops@hv1/system")).toBe(true);
    expect(logs).toEqual([
      "web-1: reverting to snapshot s1",
      "web-1: the Revert resource is removed from the stack; the domain is left as it is",
    ]);
  });

  test("a revert that outlives its timeout is reported as possibly still running", async () => {
    const host = new FakeHost();
    host.hang = true;
    const { impl } = provider(host);
    const { inputs } = checkRevertInputs({ domain: "web-1", snapshot: "s1", timeouts: { create: 0.05 } });
    await expect(impl.create(inputs)).rejects.toThrow(
      "reverting web-1 to snapshot s1 did not finish within 0.05 s; it may still complete on the host",
    );
  });

  test("the shim serializes to a small module that captures nothing", async () => {
    const text = (
      await pulumi.runtime.serializeFunction(() => revertResourceProvider, { allowSecrets: true })
    ).text;
    expect(text).toContain('require("pulumi-libvirt-snapshot").providerImplementations.revert');
    expect(text.length).toBeLessThan(4000);
  });
});
