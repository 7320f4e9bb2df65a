import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { generationSuffix, RestorePoint, Snapshot } from "../../../sdk";

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

  it("RestorePoint takes one snapshot per domain, named with a suffix derived from the triggers", async () => {
    const point = new RestorePoint("release", {
      domains: ["web-1", "web-2"],
      triggers: { release: "2.4.0", image: "app:2.4.0" },
      snapshot: { quiesce: "off" },
    });
    const name = await settled(point.snapshotName);
    expect(name).toBe(`release-${generationSuffix({ image: "app:2.4.0", release: "2.4.0" })}`);
    await Promise.all(point.snapshots.map((s) => settled(s.urn)));
    const children = registered.filter((r) => r.name.startsWith("release-web-"));
    expect(children.map((c) => ({ ...c.inputs, __provider: undefined }))).toEqual([
      {
        domain: "web-1",
        name,
        quiesce: "off",
        triggers: { release: "2.4.0", image: "app:2.4.0" },
        __provider: undefined,
      },
      {
        domain: "web-2",
        name,
        quiesce: "off",
        triggers: { release: "2.4.0", image: "app:2.4.0" },
        __provider: undefined,
      },
    ]);
  });

  it("the generation suffix changes with the triggers and ignores key order", () => {
    expect(generationSuffix({ a: 1, b: [2] })).toBe(generationSuffix({ b: [2], a: 1 }));
    expect(generationSuffix({ a: 1 })).not.toBe(generationSuffix({ a: 2 }));
    expect(generationSuffix(["v1"])).toMatch(/^[0-9a-f]{8}$/);
  });
});
