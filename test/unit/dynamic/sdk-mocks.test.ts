import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { RestorePoint, Snapshot } from "../../../sdk";

// Wiring of the SDK classes under Pulumi's mocks: type tokens, inputs sent to the engine, the serialized
// provider. The provider itself is replaced by the mocks; its behaviour is tested through the real plugin.

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
const registered: Registered[] = [];

beforeAll(() => {
  pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registered.push({ type: args.type, name: args.name, inputs: args.inputs });
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: (args) => args.inputs,
    },
    "lvsnap-test",
    "test",
    false,
  );
});

function settled<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}

describe("SDK resources under mocks", () => {
  it("Snapshot registers the dynamic type with its logical name as default snapshot name and the shim", async () => {
    const snapshot = new Snapshot("pre-deploy", { domain: "web-1", triggers: ["v1"] });
    await settled(snapshot.urn);
    const entry = registered.find((r) => r.name === "pre-deploy");
    expect(entry?.type).toBe("pulumi-nodejs:dynamic/libvirt:Snapshot");
    const { __provider, ...inputs } = entry?.inputs ?? {};
    expect(inputs).toEqual({ domain: "web-1", name: "pre-deploy", triggers: ["v1"] });
    expect(__provider).toMatch(/require\("pulumi-libvirt-snapshot"\)\.providerImplementations\.snapshot/);
  });

  it("RestorePoint registers the dynamic type with its logical name as default base name and the shim", async () => {
    const point = new RestorePoint("release", {
      domains: ["web-1", "web-2"],
      triggers: { release: "2.4.0" },
      keep: 3,
      consistency: "paused",
      quiesce: "off",
    });
    await settled(point.urn);
    const entry = registered.find((r) => r.name === "release");
    expect(entry?.type).toBe("pulumi-nodejs:dynamic/libvirt:RestorePoint");
    const { __provider, ...inputs } = entry?.inputs ?? {};
    expect(inputs).toEqual({
      domains: ["web-1", "web-2"],
      name: "release",
      triggers: { release: "2.4.0" },
      keep: 3,
      consistency: "paused",
      quiesce: "off",
    });
    expect(__provider).toMatch(/require\("pulumi-libvirt-snapshot"\)\.providerImplementations\.restorePoint/);
  });
});
