import { access } from "node:fs/promises";
import { describe, expect, test } from "vitest";
import { type LabDomain, lab, withLabDomain } from "../support/lab";
import { domainExists, virsh } from "../support/virsh";

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function expectGone(domain: { name: string; dir: string }): Promise<void> {
  expect(await domainExists(domain.name)).toBe(false);
  expect(await exists(domain.dir)).toBe(false);
}

describe("lab smoke", () => {
  let fromFixture: LabDomain | undefined;

  test("an external disk-only snapshot of a running lab domain puts an overlay on top of the base", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 64 }, { sizeMiB: 64 }], state: "running" });
    fromFixture = dom;
    expect(await dom.state()).toBe("running");
    const vda = dom.base("vda");
    const vdb = dom.base("vdb");
    const overlayA = dom.path("vda.s1.qcow2");
    const overlayB = dom.path("vdb.s1.qcow2");
    await virsh(
      "snapshot-create-as",
      dom.name,
      "s1",
      "--disk-only",
      "--atomic",
      "--diskspec",
      `vda,snapshot=external,file=${overlayA}`,
      "--diskspec",
      `vdb,snapshot=external,file=${overlayB}`,
    );
    expect(await dom.fileChain(overlayA)).toEqual([overlayA, vda]);
    expect(await dom.fileChain(overlayB)).toEqual([overlayB, vdb]);
    expect(await dom.liveChains()).toEqual({
      vda: [
        { file: overlayA, format: "qcow2" },
        { file: vda, format: "qcow2" },
      ],
      vdb: [
        { file: overlayB, format: "qcow2" },
        { file: vdb, format: "qcow2" },
      ],
    });
    expect(await dom.snapshotParents()).toEqual({ s1: null });
  });

  test("the fixture removed the previous test's domain and files", async () => {
    if (!fromFixture) throw new Error("the previous test did not run");
    await expectGone(fromFixture);
  });

  let thrownIn: LabDomain | undefined;

  test.fails("a test that throws after creating a lab domain (expected to fail)", async () => {
    thrownIn = await lab.domain({ state: "paused" });
    throw new Error("thrown on purpose, after the domain was created");
  });

  test("cleanup ran for the test that threw", async () => {
    if (!thrownIn) throw new Error("the throwing test did not create its domain");
    await expectGone(thrownIn);
  });

  test("withLabDomain removes the domain when its body throws", async () => {
    let inner: LabDomain | undefined;
    await expect(
      withLabDomain({ state: "shutoff", extraDisks: ["shareable", "readonly", "cdrom"] }, async (dom) => {
        inner = dom;
        expect(await dom.state()).toBe("shutoff");
        expect(await dom.blockList(true)).toEqual([
          { type: "file", device: "disk", target: "vda", source: dom.base("vda") },
          { type: "file", device: "disk", target: "vdb", source: dom.base("vdb") },
          { type: "file", device: "disk", target: "vdc", source: dom.base("vdc") },
          { type: "file", device: "cdrom", target: "sda", source: dom.base("sda") },
        ]);
        throw new Error("body failed");
      }),
    ).rejects.toThrow("body failed");
    if (!inner) throw new Error("the body did not run");
    await expectGone(inner);
  });
});
