import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLabDomain, type LinuxLabDomain } from "../support/lab";
import { virsh } from "../support/virsh";

// One Linux guest for the whole file: booting it costs about 35 s under TCG (see linux-guest.ts), and has
// taken 170 s on an overloaded host, so the tests share it, and each one asserts relative to the chain it finds
// rather than assuming a fresh guest.
let dom: LinuxLabDomain;

beforeAll(async () => {
  dom = await createLabDomain({ guest: "linux", disks: [{ sizeMiB: 64 }] });
  const waited = await dom.waitForAgent(420_000);
  process.stdout.write(`linux guest ${dom.name} (${dom.virtType}) answered guest-ping after ${waited} ms\n`);
}, 540_000);

afterAll(async () => {
  await dom?.dispose();
});

async function snapshotDataDisk(
  name: string,
  quiesce: boolean,
): Promise<{ overlay: string; below: string[] }> {
  const below = await dom.liveChain("vda");
  const overlay = dom.path(`vda.${name}.qcow2`);
  await virsh(
    "snapshot-create-as",
    dom.name,
    name,
    "--disk-only",
    "--atomic",
    ...(quiesce ? ["--quiesce"] : []),
    "--diskspec",
    `vda,snapshot=external,file=${overlay}`,
  );
  return { overlay, below };
}

async function recordLines(): Promise<number> {
  const result = await dom.exec("/bin/sh", ["-c", "wc -l < /data/records"]);
  return Number(result.stdout.trim());
}

/**
 * Waits until the writer has more than `count` records (a TCG guest on a busy host writes a few per second,
 * or none for seconds), polling the guest for up to 60 s, and returns how many it has.
 */
async function recordsBeyond(count: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const lines = await recordLines();
    if (lines > count) return lines;
    if (Date.now() - started > 60_000) throw new Error(`the writer wrote no record past ${count} in 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("Linux test guest", () => {
  test("the guest agent answers guest-ping through libvirt", async () => {
    expect(await dom.agent("guest-ping")).toEqual({});
    expect(await dom.state()).toBe("running");
  });

  test("domfsfreeze freezes the data filesystem until domfsthaw", async () => {
    expect(await dom.agent("guest-fsfreeze-status")).toBe("thawed");
    try {
      expect((await virsh("domfsfreeze", dom.name)).trim()).toBe("Froze 1 filesystem(s)");
      expect(await dom.agent("guest-fsfreeze-status")).toBe("frozen");
    } finally {
      await virsh("domfsthaw", dom.name);
    }
    expect(await dom.agent("guest-fsfreeze-status")).toBe("thawed");
  });

  test("a quiesced disk-only snapshot puts an overlay on the data disk and leaves the guest thawed", async () => {
    const { overlay, below } = await snapshotDataDisk("q1", true);
    expect(await dom.liveChain("vda")).toEqual([overlay, ...below]);
    expect(await dom.fileChain(overlay)).toEqual([overlay, ...below]);
    expect(await dom.agent("guest-fsfreeze-status")).toBe("thawed");
  });

  test("an active commit with pivot while the guest writes loses no record", async () => {
    await dom.startWriter();
    await recordsBeyond(0);
    const { overlay, below } = await snapshotDataDisk("w1", true);
    expect(await dom.liveChain("vda")).toEqual([overlay, ...below]);
    // Records written since the snapshot are in the overlay: the commit has data of the writer to merge.
    const beforeCommit = await recordsBeyond(await recordLines());
    // --shallow: commit into the overlay's own backing image only; without it libvirt commits down to the
    // bottom of the chain.
    await virsh("blockcommit", dom.name, "vda", "--active", "--shallow", "--pivot", "--timeout", "120");
    // The writer keeps going after the commit and the pivot (it writes more records than it had before the
    // commit), and the overlay is gone from the chain.
    const afterCommit = await recordsBeyond(beforeCommit);
    expect(await dom.liveChain("vda")).toEqual(below);
    const written = await dom.stopWriter();
    expect(written).toBeGreaterThanOrEqual(afterCommit);
    expect(await dom.verifyRecords(written)).toBe(written);
    // The oracle can fail: one record more than the guest wrote is reported as missing.
    await expect(dom.verifyRecords(written + 1)).rejects.toThrow(
      `recorded ${written} records, ${written + 1} expected`,
    );
    process.stdout.write(
      `writer: ${written} records, ${afterCommit - beforeCommit} of them during or right after the commit\n`,
    );
    expect(await dom.fileChain(below[0] ?? "")).toEqual(below);
  });
});
