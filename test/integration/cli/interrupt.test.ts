import { stat } from "node:fs/promises";
import net from "node:net";
import { expect, onTestFinished, test } from "vitest";
import { type LabDomain, lab } from "../../support/lab";
import { virsh } from "../../support/virsh";
import { CliProcess, runCli, runCliJson } from "./cli-process";

const MiB = 1024 * 1024;
const DATA = { pattern: 0x44, offset: 0, length: 4 * MiB };
/**
 * 256 KiB/s: merging the 4 MiB of snapshot a takes about 16 s, so the merge is surely still running when the
 * signal lands, even if the CLI's first progress line, the test's reading of it and the signal's delivery are
 * each seconds late on a busy host.
 */
const SLOW = String(256 * 1024);

/**
 * A running domain with snapshots a and b, where a's overlay holds 4 MiB of data: deleting a is a (non-active)
 * commit of vda.a.qcow2 into the base image, slow under SLOW.
 */
async function domainWithSlowMerge(): Promise<{ dom: LabDomain; a: string; b: string; base: string }> {
  const dom = await lab.domain({ state: "shutoff" });
  expect((await runCli("create", dom.name, "a")).code).toBe(0);
  const a = dom.path("vda.a.qcow2");
  await dom.writePattern(a, DATA);
  expect((await runCli("create", dom.name, "b")).code).toBe(0);
  await dom.start();
  const b = dom.path("vda.b.qcow2");
  expect(await dom.liveChain("vda")).toEqual([b, a, dom.base("vda")]);
  return { dom, a, b, base: dom.base("vda") };
}

async function blockJob(dom: LabDomain): Promise<string> {
  return (await virsh("blockjob", dom.name, "vda")).trim();
}

test("Ctrl-C during a slow merge cancels the job: exit 1, chain and snapshots as before, data intact", async () => {
  const { dom, a, b, base } = await domainWithSlowMerge();
  const cli = new CliProcess(["delete", dom.name, "a", "--bandwidth", SLOW]);
  await cli.waitForStderr(/merging a vda: \d+%/);
  cli.kill("SIGINT");
  const run = await cli.done;

  expect(run.code).toBe(1);
  expect(run.stderr).toContain("stopping as soon as it is safe: a merge is cancelled");
  expect(run.stderr).toContain("cancelled by the caller");
  expect(run.stderr).toContain("the chains are consistent");
  expect(run.stderr).toContain("libvirt-snapshot: error: deleting snapshot a of domain");
  // The oracles: libvirt's chain, the files' chain (qemu-img), no job left, both snapshots still there.
  expect(await dom.liveChain("vda")).toEqual([b, a, base]);
  expect(await dom.fileChain("vda")).toEqual([b, a, base]);
  expect(await blockJob(dom)).toBe("No current block job for vda");
  expect(await dom.snapshotParents()).toEqual({ a: null, b: "a" });
  // Read through the chain from the active layer, and from b's point-in-time image.
  expect(await dom.checkPattern(b, DATA)).toBe(true);
  expect(await dom.checkPattern(a, DATA)).toBe(true);
  expect(await runCliJson("verify", dom.name)).toEqual({
    code: 0,
    stderr: "",
    document: {
      ok: true,
      domain: { name: dom.name, uuid: dom.uuid },
      repairs: null,
      findings: [],
      preview: null,
    },
  });

  // Nothing is stuck: the same delete at full speed goes through.
  expect((await runCli("delete", dom.name, "a")).code).toBe(0);
  expect(await dom.fileChain("vda")).toEqual([b, base]);
  expect(await dom.checkPattern(base, DATA)).toBe(true);
});

test("--timeout ends a slow merge: exit 1 saying it timed out, nothing merged, nothing left running", async () => {
  const { dom, a, b, base } = await domainWithSlowMerge();
  const run = await runCli("delete", dom.name, "a", "--bandwidth", SLOW, "--timeout", "1");
  expect(run.code).toBe(1);
  expect(run.stderr).toContain(
    `libvirt-snapshot: error: deleting snapshot a of domain ${dom.name} timed out`,
  );
  expect(run.stderr).toContain("did not finish within 1000 ms");
  expect(await dom.fileChain("vda")).toEqual([b, a, base]);
  expect(await blockJob(dom)).toBe("No current block job for vda");
  expect(await dom.snapshotParents()).toEqual({ a: null, b: "a" });
  expect(await dom.checkPattern(b, DATA)).toBe(true);
});

test("verify --repair finishes a delete whose CLI was killed (SIGKILL) mid-merge", async () => {
  const { dom, a, b, base } = await domainWithSlowMerge();
  const cli = new CliProcess(["delete", dom.name, "a", "--bandwidth", SLOW]);
  await cli.waitForStderr(/merging a vda: \d+%/);
  cli.kill("SIGKILL");
  expect((await cli.done).signal).toBe("SIGKILL");

  const found = await runCliJson("verify", dom.name);
  expect(found.code).toBe(1);
  const document = found.document as { findings: { kind: string }[] };
  // The job may or may not still be running by now (libvirt keeps it going without the killed client).
  const jobs = document.findings.filter((f) => f.kind === "block-job");
  expect(jobs).toEqual(
    jobs.length === 0
      ? []
      : [{ kind: "block-job", disk: "vda", message: "a block job is still running on disk vda" }],
  );
  expect({ ...document, findings: document.findings.filter((f) => f.kind !== "block-job") }).toEqual({
    ok: false,
    domain: { name: dom.name, uuid: dom.uuid },
    repairs: null,
    preview: null,
    findings: [
      {
        kind: "unfinished-operation",
        snapshot: "a",
        message: expect.stringMatching(
          /^an interrupted delete of snapshot a \(started .*\) stopped in phase merging \(disks: vda merging\)$/,
        ),
      },
      {
        kind: "leftover-file",
        file: a,
        snapshot: "a",
        message: `${a} is still on the host; the interrupted delete of a removes it when finished`,
      },
    ],
  });

  const repaired = await runCliJson("verify", "--repair", dom.name);
  expect(repaired).toEqual({
    code: 0,
    stderr: "",
    document: {
      ok: true,
      domain: { name: dom.name, uuid: dom.uuid },
      repairs: [expect.stringMatching(/^finished an interrupted delete of snapshot a of domain /)],
      findings: [],
      preview: null,
    },
  });
  expect(await dom.liveChain("vda")).toEqual([b, base]);
  expect(await dom.fileChain("vda")).toEqual([b, base]);
  expect(await dom.snapshotParents()).toEqual({ b: null });
  expect(await blockJob(dom)).toBe("No current block job for vda");
  await expect(stat(a)).rejects.toThrow("ENOENT");
  expect(await dom.checkPattern(b, DATA)).toBe(true);
  expect(await dom.checkPattern(base, DATA)).toBe(true);
});

test("Ctrl-C while the host does not answer gives up the connection at once (not at the connect deadline)", async () => {
  const sockets: net.Socket[] = [];
  const silent = net.createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => silent.close(() => resolve()));
  });
  const accepted = new Promise((resolve) => silent.once("connection", resolve));
  const port = (silent.address() as net.AddressInfo).port;
  const cli = new CliProcess(["-c", `qemu+tcp://127.0.0.1:${port}/system`, "list", "web1"]);
  await accepted;
  cli.kill("SIGINT");
  const run = await cli.done;
  expect(run.code).toBe(1);
  expect(run.stderr).toContain(
    `tcp connection to qemu+tcp://127.0.0.1:${port}/system failed: aborted by the caller`,
  );
});
