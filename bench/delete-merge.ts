/**
 * Benchmark of merging a snapshot away: an overlay holding 256 MiB of data, the active layer of a running
 * domain, merged into its backing image
 * - by the engine (`deleteSnapshot`, strategy blockcommit: active commit, READY, pivot, metadata, file removal),
 * - by `virsh snapshot-delete` (libvirt's own merge, the same active commit; a process and a connection),
 * - by `qemu-img commit` of the same chain, offline (no domain),
 * and, as the disk's limit, a plain `dd` with direct I/O writing the same amount.
 * Targets: engine / virsh <= 1.0, engine / qemu-img <= 1.3 (time of one merge).
 *
 * Rounds are interleaved; ratios are the medians of the per-round ratios (the variants of one round ran under
 * the same load on the shared host), times the medians of the rounds. The engine does more than virsh per
 * delete: it looks for an unfinished journal, reads the domain and every snapshot before and after, writes its
 * journal before each step, verifies the chains and libvirt's tree, and removes the merged file through a
 * storage pool.
 *
 *   npx tsx bench/delete-merge.ts          (BENCH_ROUNDS=5, BENCH_DATA_MIB=256)
 *
 * Domains are `lvsnap-tmp-e-bench-<hex>` with their files in their own directory; all are removed at the end,
 * also on failure. The last line of output is one JSON object with the figures.
 */
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { deleteSnapshot } from "../provider/engine/delete";
import { openLabConnection } from "../test/integration/engine/delete-support";
import { buildDomainXml } from "../test/support/domain-xml";
import { run } from "../test/support/run";
import { median } from "./stats";

const URI = "qemu:///system";
const IMAGES = process.env.BENCH_IMAGES ?? "/var/lib/libvirt/images";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const DATA_MIB = Number(process.env.BENCH_DATA_MIB ?? 256);

const virsh = (...args: string[]) => run("virsh", ["-c", URI, ...args], 300_000);

interface Chain {
  readonly name: string;
  readonly dir: string;
  readonly base: string;
  readonly overlay: string;
}

const created: Chain[] = [];

/** A directory with base <- overlay, the overlay holding DATA_MIB of data; a domain too unless `offline`. */
async function newChain(offline: boolean): Promise<Chain> {
  const name = `lvsnap-tmp-e-bench-${randomBytes(4).toString("hex")}`;
  const dir = join(IMAGES, name);
  const chain = { name, dir, base: join(dir, "vda.qcow2"), overlay: join(dir, "vda.s1.qcow2") };
  created.push(chain);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await run("qemu-img", ["create", "-q", "-f", "qcow2", chain.base, `${DATA_MIB + 64}M`]);
  if (offline) {
    await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", chain.base, "-F", "qcow2", chain.overlay]);
  } else {
    const xmlFile = join(dir, "domain.xml");
    const disk = {
      target: "vda",
      file: chain.base,
      format: "qcow2" as const,
      device: "disk" as const,
      bus: "virtio" as const,
    };
    await writeFile(
      xmlFile,
      buildDomainXml({ name, virtType: "qemu", memoryMiB: 64, guestAgentChannel: false, disks: [disk] }),
    );
    await virsh("define", xmlFile);
    await virsh(
      "snapshot-create-as",
      name,
      "s1",
      "--disk-only",
      "--diskspec",
      `vda,snapshot=external,file=${chain.overlay}`,
    );
  }
  await run("qemu-io", ["-f", "qcow2", "-c", `write -P 0x5a 0 ${DATA_MIB}M`, chain.overlay], 300_000);
  if (!offline) await virsh("start", name);
  return chain;
}

async function removeChain(chain: Chain): Promise<void> {
  await virsh("destroy", chain.name).catch(() => undefined);
  await virsh("undefine", chain.name, "--snapshots-metadata").catch(() => undefined);
  await rm(chain.dir, { recursive: true, force: true });
}

async function seconds(action: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await action();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** The base must hold the data afterwards, read through nothing but itself. */
async function checkMerged(chain: Chain): Promise<void> {
  await run("qemu-io", ["-r", "-U", "-f", "qcow2", "-c", `read -P 0x5a 0 ${DATA_MIB}M`, chain.base], 300_000);
}

async function main(): Promise<void> {
  const conn = await openLabConnection();
  const times = {
    engine: [] as number[],
    virsh: [] as number[],
    qemuImg: [] as number[],
    dd: [] as number[],
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const ours = await newChain(false);
      times.engine.push(await seconds(() => deleteSnapshot(conn, ours.name, "s1")));
      await checkMerged(ours);
      await removeChain(ours);

      const theirs = await newChain(false);
      times.virsh.push(await seconds(() => virsh("snapshot-delete", theirs.name, "s1")));
      await checkMerged(theirs);
      await removeChain(theirs);

      const offline = await newChain(true);
      times.qemuImg.push(await seconds(() => run("qemu-img", ["commit", "-q", offline.overlay], 300_000)));
      await checkMerged(offline);

      const target = join(offline.dir, "dd.raw");
      const count = String(DATA_MIB / 4);
      times.dd.push(
        await seconds(() =>
          run("dd", ["if=/dev/zero", `of=${target}`, "bs=4M", `count=${count}`, "oflag=direct"]),
        ),
      );
      await removeChain(offline);
      console.log(
        `round ${round + 1}: engine ${times.engine[round]?.toFixed(3)} s, virsh ${times.virsh[round]?.toFixed(3)} s, ` +
          `qemu-img ${times.qemuImg[round]?.toFixed(3)} s, dd ${times.dd[round]?.toFixed(3)} s`,
      );
    }
  } finally {
    for (const chain of created) await removeChain(chain);
    await conn.close();
  }
  const ratio = (a: number[], b: number[]) => median(a.map((value, i) => value / (b[i] ?? Number.NaN)));
  const mibPerSecond = (values: number[]) => Number((DATA_MIB / median(values)).toFixed(1));
  const figures = {
    dataMiB: DATA_MIB,
    rounds: ROUNDS,
    seconds: {
      engine: Number(median(times.engine).toFixed(3)),
      virsh: Number(median(times.virsh).toFixed(3)),
      qemuImg: Number(median(times.qemuImg).toFixed(3)),
      dd: Number(median(times.dd).toFixed(3)),
    },
    mibPerSecond: {
      engine: mibPerSecond(times.engine),
      virsh: mibPerSecond(times.virsh),
      qemuImg: mibPerSecond(times.qemuImg),
      dd: mibPerSecond(times.dd),
    },
    engineOverVirsh: Number(ratio(times.engine, times.virsh).toFixed(3)),
    engineOverQemuImg: Number(ratio(times.engine, times.qemuImg).toFixed(3)),
    // How far libvirt's own live merge is from the offline one: the part of the gap the engine cannot close.
    virshOverQemuImg: Number(ratio(times.virsh, times.qemuImg).toFixed(3)),
    targets: { engineOverVirsh: 1.0, engineOverQemuImg: 1.3 },
  };
  console.log(
    `engine/virsh ${figures.engineOverVirsh} (target <= 1.0), engine/qemu-img ${figures.engineOverQemuImg} ` +
      `(target <= 1.3), virsh/qemu-img ${figures.virshOverQemuImg}`,
  );
  console.log(JSON.stringify(figures));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
