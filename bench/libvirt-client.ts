/**
 * Benchmark of the libvirt protocol client against the libvirt C library (python3-libvirt, run as a child
 * process by bench/libvirt-client.py) on the same daemon socket:
 * - 2000 sequential `domainGetXMLDesc` calls (target: ours / C <= 1.2 per call),
 * - 2000 calls in flight on one connection vs the C library's sequential rate (target: >= 3x),
 * - open + close of a connection (target: ours / C <= 1.2),
 * - the client's peak RSS.
 * Each figure is the median of interleaved rounds, so both sides see the same load on the shared host; the
 * sequential figures also give each client's own CPU time per call, which other load on the host disturbs less
 * than wall-clock time.
 *
 *   npx tsx bench/libvirt-client.ts
 *
 * Defines a throwaway shut-off lab domain (`lvsnap-lab-<hex>`, so `npm run lab:sweep` removes it after a killed
 * run) and removes it at the end. The last line of
 * output is one JSON object with the figures and ratios.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { join } from "node:path";
import { LibvirtConnection } from "../provider/libvirt/connection";
import { labPrefix, removeLabDomain } from "../test/support/lab-cleanup";
import { median } from "./stats";

const SOCKET = process.env.LIBVIRT_SOCK ?? "/var/run/libvirt/libvirt-sock";
const URI = "qemu:///system";
const PYTHON = process.env.BENCH_PYTHON ?? "/usr/bin/python3";
const CALLS = 2000;
const OPENS = 200;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP = 200;

function connectSocket(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(SOCKET);
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

async function open(): Promise<LibvirtConnection> {
  return LibvirtConnection.open(await connectSocket(), { name: URI });
}

function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

interface CFigures {
  seqUsPerCall: number;
  seqCpuUsPerCall: number;
  openCloseMs: number;
}

function runC(domain: string): Promise<CFigures> {
  const script = join(__dirname, "libvirt-client.py");
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [script, URI, domain, String(CALLS), String(OPENS)], (error, stdout, stderr) => {
      if (error) reject(new Error(`${PYTHON} ${script} failed: ${stderr || error.message}`));
      else resolve(JSON.parse(stdout) as CFigures);
    });
  });
}

async function main(): Promise<void> {
  const name = `${labPrefix}${randomBytes(4).toString("hex")}`;
  const admin = await open();
  const domain = await admin.domainDefineXMLFlags(
    `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>` +
      "<os><type arch='x86_64'>hvm</type></os></domain>",
    0,
  );
  const figures = { cSeqUs: [] as number[], cSeqCpuUs: [] as number[], cOpenMs: [] as number[] };
  const ours = {
    seqUs: [] as number[],
    seqCpuUs: [] as number[],
    inflightUs: [] as number[],
    openMs: [] as number[],
  };
  try {
    const connection = await open();
    for (let i = 0; i < WARMUP; i++) await connection.domainGetXMLDesc(domain, 0);
    for (let round = 0; round < ROUNDS; round++) {
      const c = await runC(name);
      figures.cSeqUs.push(c.seqUsPerCall);
      figures.cSeqCpuUs.push(c.seqCpuUsPerCall);
      figures.cOpenMs.push(c.openCloseMs);

      let start = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      for (let i = 0; i < CALLS; i++) await connection.domainGetXMLDesc(domain, 0);
      ours.seqUs.push((elapsedMs(start) * 1000) / CALLS);
      const used = process.cpuUsage(cpu);
      ours.seqCpuUs.push((used.user + used.system) / CALLS);

      start = process.hrtime.bigint();
      await Promise.all(Array.from({ length: CALLS }, () => connection.domainGetXMLDesc(domain, 0)));
      ours.inflightUs.push((elapsedMs(start) * 1000) / CALLS);

      start = process.hrtime.bigint();
      for (let i = 0; i < OPENS; i++) await (await open()).close();
      ours.openMs.push(elapsedMs(start) / OPENS);
      process.stdout.write(
        `round ${round + 1}: seq C ${c.seqUsPerCall.toFixed(1)} us (cpu ${c.seqCpuUsPerCall.toFixed(1)}), ` +
          `ours ${ours.seqUs.at(-1)?.toFixed(1)} us (cpu ${ours.seqCpuUs.at(-1)?.toFixed(1)}); ` +
          `ours in flight ${ours.inflightUs.at(-1)?.toFixed(1)} us/call; ` +
          `open+close C ${c.openCloseMs.toFixed(3)} ms, ours ${ours.openMs.at(-1)?.toFixed(3)} ms\n`,
      );
    }
    await connection.close();
  } finally {
    await admin.close();
    await removeLabDomain(name);
  }
  const cSeqUs = median(figures.cSeqUs);
  const seqUs = median(ours.seqUs);
  const inflightUs = median(ours.inflightUs);
  const cOpenMs = median(figures.cOpenMs);
  const openMs = median(ours.openMs);
  const result = {
    calls: CALLS,
    rounds: ROUNDS,
    cSeqUsPerCall: round(cSeqUs),
    oursSeqUsPerCall: round(seqUs),
    seqRatioOursOverC: round(seqUs / cSeqUs),
    cSeqCpuUsPerCall: round(median(figures.cSeqCpuUs)),
    oursSeqCpuUsPerCall: round(median(ours.seqCpuUs)),
    oursInflightUsPerCall: round(inflightUs),
    inflightThroughputOverCSeq: round(cSeqUs / inflightUs),
    cOpenCloseMs: round(cOpenMs),
    oursOpenCloseMs: round(openMs),
    openCloseRatioOursOverC: round(openMs / cOpenMs),
    peakRssMiB: round(process.resourceUsage().maxRSS / 1024),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
