/**
 * Benchmark of snapshot creation: twenty disk-only snapshots of a running domain, made
 * - by the engine (`createSnapshot`) over one connection,
 * - by a loop of `virsh snapshot-create-as --disk-only --atomic` (a process and a connection per snapshot),
 * - by the libvirt C library (python3-libvirt, bench/create-snapshots.py) over one connection.
 * Targets: engine / python3-libvirt <= 1.1, engine / virsh <= 0.6 (total time of the twenty).
 *
 * Every variant gets a fresh domain (so chain depths are equal) with explicit overlay paths and no quiesce
 * (`quiesce: "off"`: virsh and the C library do not freeze either). Rounds are interleaved; the ratios are
 * the medians of the per-round ratios (variants of one round ran under the same load on the shared host), the
 * per-snapshot times the medians of the rounds. The engine does more than the others per snapshot, in five
 * round trips (calls of one trip are in flight together): (1) it looks the domain up; (2) under the
 * per-domain lock it reads the domain's state, XML and snapshot list (the XML also tells whether an
 * interrupted operation needs recovery, which would cost more calls); (3) it writes the snapshot's record
 * (name, planned files, quiesce outcome) to the domain metadata; (4) once libvirt confirmed it, the create
 * call; (5) it reads the new snapshot and the domain again and verifies the chains. The record write is the one
 * extra cost inside the daemon: libvirt saves the live and the persistent definition (with fsync).
 *
 *   npx tsx bench/create-snapshots.ts
 *
 * Domains are `lvsnap-tmp-d-bench-<hex>` with their files in their own directory; all are removed at the end,
 * also on failure. The last line of output is one JSON object with the figures.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import { join } from "node:path";
import { createSnapshot } from "../provider/engine/create";
import { LibvirtConnection } from "../provider/libvirt/connection";
import { buildDomainXml } from "../test/support/domain-xml";
import { median } from "./stats";

const SOCKET = process.env.LIBVIRT_SOCK ?? "/var/run/libvirt/libvirt-sock";
const URI = "qemu:///system";
const PYTHON = process.env.BENCH_PYTHON ?? "/usr/bin/python3";
const IMAGES = process.env.BENCH_IMAGES ?? "/var/lib/libvirt/images";
const SNAPSHOTS = 20;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: "utf8", timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(" ")}: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

const virsh = (...args: string[]) => run("virsh", ["-c", URI, ...args]);

interface BenchDomain {
  name: string;
  dir: string;
}

const created: BenchDomain[] = [];

async function newDomain(): Promise<BenchDomain> {
  const name = `lvsnap-tmp-d-bench-${randomBytes(4).toString("hex")}`;
  const dir = join(IMAGES, name);
  created.push({ name, dir });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const base = join(dir, "vda.qcow2");
  await run("qemu-img", ["create", "-q", "-f", "qcow2", base, "64M"]);
  const xmlFile = join(dir, "domain.xml");
  await writeFile(
    xmlFile,
    buildDomainXml({
      name,
      virtType: "qemu",
      memoryMiB: 64,
      guestAgentChannel: false,
      disks: [{ target: "vda", file: base, format: "qcow2", device: "disk", bus: "virtio" }],
    }),
  );
  await virsh("define", xmlFile);
  await virsh("start", name);
  return { name, dir };
}

async function removeDomain(domain: BenchDomain): Promise<void> {
  await virsh("destroy", domain.name).catch(() => undefined);
  await virsh("undefine", domain.name, "--snapshots-metadata").catch(() => undefined);
  await rm(domain.dir, { recursive: true, force: true });
}

function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function engineRound(conn: LibvirtConnection): Promise<number> {
  const dom = await newDomain();
  const start = process.hrtime.bigint();
  for (let i = 0; i < SNAPSHOTS; i++) {
    await createSnapshot(conn, {
      domain: dom.name,
      name: `e${i}`,
      quiesce: "off",
      overlayPaths: { vda: join(dom.dir, `vda.e${i}.qcow2`) },
    });
  }
  const ms = elapsedMs(start);
  await removeDomain(dom);
  return ms;
}

async function virshRound(): Promise<number> {
  const dom = await newDomain();
  const start = process.hrtime.bigint();
  for (let i = 0; i < SNAPSHOTS; i++) {
    const file = join(dom.dir, `vda.v${i}.qcow2`);
    await virsh(
      "snapshot-create-as",
      dom.name,
      `v${i}`,
      "--disk-only",
      "--atomic",
      "--diskspec",
      `vda,file=${file}`,
    );
  }
  const ms = elapsedMs(start);
  await removeDomain(dom);
  return ms;
}

async function pythonRound(): Promise<number> {
  const dom = await newDomain();
  const script = join(__dirname, "create-snapshots.py");
  const out = await run(PYTHON, [script, URI, dom.name, "vda", dom.dir, String(SNAPSHOTS), "p"]);
  const { ms } = JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as { ms: number[] };
  if (ms.length !== SNAPSHOTS) throw new Error(`python made ${ms.length} snapshots`);
  await removeDomain(dom);
  return ms.reduce((a, b) => a + b, 0);
}

async function main(): Promise<void> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(SOCKET);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
  const conn = await LibvirtConnection.open(socket, { name: URI });
  const engine: number[] = [];
  const virshTimes: number[] = [];
  const python: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      engine.push(await engineRound(conn));
      virshTimes.push(await virshRound());
      python.push(await pythonRound());
      console.log(
        `round ${round + 1}/${ROUNDS}: engine ${engine.at(-1)?.toFixed(0)} ms, virsh ${virshTimes.at(-1)?.toFixed(0)} ms, ` +
          `python3-libvirt ${python.at(-1)?.toFixed(0)} ms for ${SNAPSHOTS} snapshots`,
      );
    }
  } finally {
    await conn.close();
    for (const domain of created) await removeDomain(domain);
  }
  const e = median(engine);
  const v = median(virshTimes);
  const p = median(python);
  // Ratios within a round compare variants that ran under the same load; their median is the headline.
  const overPython = median(engine.map((ms, i) => ms / (python[i] as number)));
  const overVirsh = median(engine.map((ms, i) => ms / (virshTimes[i] as number)));
  const figures = {
    snapshots: SNAPSHOTS,
    rounds: ROUNDS,
    engineMsPerSnapshot: round2(e / SNAPSHOTS),
    virshMsPerSnapshot: round2(v / SNAPSHOTS),
    python3LibvirtMsPerSnapshot: round2(p / SNAPSHOTS),
    engineOverPython3Libvirt: round2(overPython),
    engineOverVirsh: round2(overVirsh),
    // What the C library itself reaches against virsh on this host: the floor for engineOverVirsh.
    python3LibvirtOverVirsh: round2(median(python.map((ms, i) => ms / (virshTimes[i] as number)))),
    loadAverage: os.loadavg().map(round2),
    targets: { engineOverPython3Libvirt: 1.1, engineOverVirsh: 0.6 },
    met: overPython <= 1.1 && overVirsh <= 0.6,
  };
  console.log(JSON.stringify(figures));
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
