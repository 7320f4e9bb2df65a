/**
 * What the Pulumi layer costs on top of the engine, measured through the real dynamic-provider plugin and the
 * packed package (the harness of test/support/pulumi-plugin.ts):
 * - preparing the program folder (0 when cached), plugin start until its port line, and the first call (which
 *   loads the serialized shim and the package),
 * - check and diff round trips (pure; what every `pulumi preview` pays per resource),
 * - create + delete of disk-only snapshots of a running lab domain, one after the other, through the plugin and
 *   the same calls to the engine directly on one connection: the ratio of total wall times is the Pulumi
 *   layer's cost (target <= 1.15),
 * - parallelism across domains: creates issued all at once through the plugin (as `pulumi up --parallel`
 *   does), then deletes all at once, on 4 domains x 5 snapshots against 1 domain x 5 (target wall ratio
 *   <= 1.5; operations on one domain are serialized, on different domains they run in parallel). The same
 *   work is also done by the engine called directly and by the libvirt C library (bench/parallel-rounds.ts),
 *   in the same run, so the ratio can be read against what libvirtd itself allows on the host. The C library
 *   runs twice: with a connection per domain, and with one connection shared by all its threads, the
 *   plugin's layout (one connection per URI); the plugin's ratio over the shared-connection C library's is
 *   the part our stack adds, and the C library's shared over per-domain ratio is the part the channel adds,
 * - the plugin process's peak RSS (VmHWM of /proc/<pid>/status) at the end.
 * Targets are reported (met or not), not asserted: the 2 cores are shared.
 *
 *   npx tsx bench/plugin.ts
 *
 * BENCH_ROUND_TRIPS, BENCH_SNAPSHOTS, BENCH_DOMAINS, BENCH_PARALLEL_SNAPSHOTS and BENCH_PARALLEL_REPEATS
 * override the counts (200, 20, 4, 5, 1; with several repeats the parallel ratios are the medians of the
 * repeats, each repeat running the four ways back to back, the
 * first way rotating by repeat). BENCH_PYTHON names the Python with libvirt
 * (default /usr/bin/python3). Uses throwaway lab domains (`lvsnap-lab-<hex>`) and removes them at the end.
 * The last line of output is one JSON object with the figures, ratios, targets and whether each target is met.
 */
import { readFile } from "node:fs/promises";
import { createSnapshot } from "../provider/engine/create";
import { deleteSnapshot } from "../provider/engine/delete";
import { openConnection } from "../provider/libvirt/open";
import { createLabDomain, type LabDomain } from "../test/support/lab-create";
import { PulumiPlugin, snapshotUrn } from "../test/support/pulumi-plugin";
import { preparePulumiProgram } from "../test/support/pulumi-program";
import { labUri } from "../test/support/virsh";
import {
  cLibraryRunner,
  engineRunner,
  measureParallelism,
  type ParallelFigures,
  type ParallelSummary,
  pluginRunner,
  summarize,
} from "./parallel-rounds";
import { median, roundTo } from "./stats";

const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 200);
const SNAPSHOTS = Number(process.env.BENCH_SNAPSHOTS ?? 20);
const DOMAINS = Number(process.env.BENCH_DOMAINS ?? 4);
const PARALLEL_SNAPSHOTS = Number(process.env.BENCH_PARALLEL_SNAPSHOTS ?? 5);
const PARALLEL_REPEATS = Number(process.env.BENCH_PARALLEL_REPEATS ?? 1);
const PLUGIN_ENGINE_TARGET = 1.15;
const PARALLEL_TARGET = 1.5;

type Props = Record<string, unknown>;

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

async function timed<T>(body: () => Promise<T>): Promise<[T, number]> {
  const start = process.hrtime.bigint();
  const result = await body();
  return [result, Number(process.hrtime.bigint() - start) / 1e6];
}

/** Peak resident set of a process, KiB (VmHWM of /proc/<pid>/status). */
async function peakRssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(match[1]);
}

/** Creates `count` lab domains at once; if any creation fails, removes the ones that were made and rethrows. */
async function createLabDomains(count: number): Promise<LabDomain[]> {
  const results = await Promise.allSettled(
    Array.from({ length: count }, () => createLabDomain({ disks: [{ sizeMiB: 64 }], state: "running" })),
  );
  const made = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = results.find((r) => r.status === "rejected");
  if (failed) {
    await disposeAll(made);
    throw failed.reason;
  }
  return made;
}

/** Disposes every domain, even when some disposals fail; rethrows the first failure. */
async function disposeAll(domains: LabDomain[]): Promise<void> {
  const results = await Promise.allSettled(domains.map((domain) => domain.dispose()));
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

async function main(): Promise<void> {
  const [, prepareMs] = await timed(() => preparePulumiProgram());
  const [plugin, startMs] = await timed(() => PulumiPlugin.start());
  try {
    const domains = await createLabDomains(DOMAINS);
    try {
      await run(plugin, domains, prepareMs, startMs);
    } finally {
      await disposeAll(domains);
    }
  } finally {
    await plugin.stop();
  }
}

async function run(plugin: PulumiPlugin, domains: LabDomain[], prepareMs: number, startMs: number) {
  const domain = domains[0] as LabDomain;
  const provider = await plugin.serializedProvider();
  await plugin.configure({ "libvirt-snapshot:uri": labUri });
  const news: Props = { domain: domain.name, name: "bench", quiesce: "off", __provider: provider };
  const urn = snapshotUrn("bench");
  const [first, firstCallMs] = await timed(() => plugin.check(urn, {}, news));

  const checkMs: number[] = [];
  for (let i = 0; i < ROUND_TRIPS; i++) checkMs.push((await timed(() => plugin.check(urn, {}, news)))[1]);

  // Plugin and engine rounds alternate, so both see the same load on the shared host.
  const createMs: number[] = [];
  const deleteMs: number[] = [];
  const diffMs: number[] = [];
  const engineCreateMs: number[] = [];
  const engineDeleteMs: number[] = [];
  const parallel = {
    plugin: [] as ParallelFigures[],
    engine: [] as ParallelFigures[],
    cLibrary: [] as ParallelFigures[],
    cLibraryShared: [] as ParallelFigures[],
  };
  const connection = await openConnection(labUri);
  try {
    for (let i = 0; i < SNAPSHOTS; i++) {
      const [created, ms] = await timed(() => plugin.create(urn, first.inputs));
      createMs.push(ms);
      if (i === 0) {
        for (let j = 0; j < ROUND_TRIPS; j++) {
          diffMs.push((await timed(() => plugin.diff(urn, created.id, created.properties, first.inputs)))[1]);
        }
      }
      deleteMs.push((await timed(() => plugin.delete(urn, created.id, created.properties)))[1]);
      const request = { domain: domain.name, name: "bench", quiesce: "off" } as const;
      engineCreateMs.push((await timed(() => createSnapshot(connection, request)))[1]);
      engineDeleteMs.push((await timed(() => deleteSnapshot(connection, domain.name, "bench")))[1]);
    }

    // The four ways run back to back in each repeat, so they see about the same load on the shared host;
    // which way runs first rotates by repeat, and odd repeats run D x N before 1 x N, so no way or round
    // always meets the host first.
    const ways = [
      { runner: pluginRunner(plugin, provider), tag: "p", figures: parallel.plugin },
      { runner: engineRunner(connection), tag: "e", figures: parallel.engine },
      { runner: cLibraryRunner("per-domain"), tag: "c", figures: parallel.cLibrary },
      { runner: cLibraryRunner("shared"), tag: "s", figures: parallel.cLibraryShared },
    ];
    for (let repeat = 0; repeat < PARALLEL_REPEATS; repeat++) {
      for (let i = 0; i < ways.length; i++) {
        const way = ways[(repeat + i) % ways.length] as (typeof ways)[number];
        const tag = `${way.tag}${repeat}`;
        way.figures.push(
          await measureParallelism(way.runner, domains, PARALLEL_SNAPSHOTS, tag, repeat % 2 === 1),
        );
      }
    }
  } finally {
    await connection.close();
  }

  const pid = plugin.pid;
  if (pid === undefined) throw new Error("the plugin process has no pid");
  const pluginPeakRssKiB = await peakRssKiB(pid);

  const pluginTotalMs = sum(createMs) + sum(deleteMs);
  const engineTotalMs = sum(engineCreateMs) + sum(engineDeleteMs);
  const pluginEngineRatio = roundTo(pluginTotalMs / engineTotalMs, 3);
  const pluginParallel = summarize(parallel.plugin);
  const engineParallel = summarize(parallel.engine);
  const cLibraryParallel = summarize(parallel.cLibrary);
  const cLibrarySharedParallel = summarize(parallel.cLibraryShared);
  const parallelRatio = pluginParallel.ratio;
  const figures = {
    serializedProviderBytes: provider.length,
    programPrepareMs: Math.round(prepareMs),
    pluginStartMs: Math.round(startMs),
    firstCallMs: Number(firstCallMs.toFixed(1)),
    checkMedianMs: Number(median(checkMs).toFixed(2)),
    diffMedianMs: Number(median(diffMs).toFixed(2)),
    createMedianMs: Number(median(createMs).toFixed(1)),
    deleteMedianMs: Number(median(deleteMs).toFixed(1)),
    engineCreateMedianMs: Number(median(engineCreateMs).toFixed(1)),
    engineDeleteMedianMs: Number(median(engineDeleteMs).toFixed(1)),
    pluginTotalMs: Math.round(pluginTotalMs),
    engineTotalMs: Math.round(engineTotalMs),
    pluginEngineRatio,
    pluginEngineTarget: PLUGIN_ENGINE_TARGET,
    pluginEngineMet: pluginEngineRatio <= PLUGIN_ENGINE_TARGET,
    singleDomainWallMs: pluginParallel.single.wallMs,
    manyDomainsWallMs: pluginParallel.many.wallMs,
    parallelRatio,
    engineParallelRatio: engineParallel.ratio,
    // The C library with a connection per domain, then with one connection shared by its threads.
    cLibraryParallelRatio: cLibraryParallel.ratio,
    cLibrarySharedParallelRatio: cLibrarySharedParallel.ratio,
    // The part of the plugin's ratio that our stack adds to what libvirtd itself allows on this host: against
    // the same channel layout (one shared connection), and against a connection per domain.
    parallelOverCLibraryShared: roundTo(parallelRatio / cLibrarySharedParallel.ratio, 3),
    parallelOverCLibrary: roundTo(parallelRatio / cLibraryParallel.ratio, 3),
    // What sharing one connection costs the C library itself.
    cLibrarySharedOverPerDomain: roundTo(cLibrarySharedParallel.ratio / cLibraryParallel.ratio, 3),
    parallelTarget: PARALLEL_TARGET,
    parallelMet: parallelRatio <= PARALLEL_TARGET,
    parallel: {
      plugin: pluginParallel,
      engine: engineParallel,
      cLibrary: cLibraryParallel,
      cLibraryShared: cLibrarySharedParallel,
    },
    parallelRepeats: PARALLEL_REPEATS,
    pluginPeakRssKiB,
    roundTrips: ROUND_TRIPS,
    snapshots: SNAPSHOTS,
    domains: DOMAINS,
    snapshotsPerDomain: PARALLEL_SNAPSHOTS,
  };
  const met = (ok: boolean) => (ok ? "met" : "NOT met");
  console.log(`program folder (build, pack, install; 0 when reused): ${figures.programPrepareMs} ms`);
  console.log(`plugin start until its port line: ${figures.pluginStartMs} ms`);
  console.log(`first call (loads the shim and the package): ${figures.firstCallMs} ms`);
  console.log(
    `check ${figures.checkMedianMs} ms, diff ${figures.diffMedianMs} ms (median of ${ROUND_TRIPS})`,
  );
  console.log(
    `create ${figures.createMedianMs} ms, delete ${figures.deleteMedianMs} ms (median of ${SNAPSHOTS})`,
  );
  console.log(
    `engine alone: create ${figures.engineCreateMedianMs} ms, delete ${figures.engineDeleteMedianMs} ms`,
  );
  console.log(
    `${SNAPSHOTS} x create + delete: plugin ${figures.pluginTotalMs} ms, engine ${figures.engineTotalMs} ms, ` +
      `ratio ${pluginEngineRatio} (target <= ${PLUGIN_ENGINE_TARGET}: ${met(figures.pluginEngineMet)})`,
  );
  const way = (label: string, summary: ParallelSummary) =>
    `${label}: ${DOMAINS} x ${PARALLEL_SNAPSHOTS} ${summary.many.wallMs} ms ` +
    `(creates ${summary.many.createMs}, deletes ${summary.many.deleteMs}), 1 x ${PARALLEL_SNAPSHOTS} ` +
    `${summary.single.wallMs} ms (creates ${summary.single.createMs}, deletes ${summary.single.deleteMs}), ` +
    `ratio ${summary.ratio}`;
  console.log("concurrent creates then deletes, all of a phase at once:");
  console.log(`  ${way("plugin", pluginParallel)}`);
  console.log(`  ${way("engine alone", engineParallel)}`);
  console.log(`  ${way("libvirt C library, a connection per domain", cLibraryParallel)}`);
  console.log(`  ${way("libvirt C library, one shared connection", cLibrarySharedParallel)}`);
  console.log("  (C library: python3-libvirt, a thread per domain, libvirt's own delete)");
  console.log(
    `  plugin ratio ${parallelRatio} (target <= ${PARALLEL_TARGET}: ${met(figures.parallelMet)}); ` +
      `on this host in this run the C library reaches ${cLibrarySharedParallel.ratio} on one shared ` +
      `connection (plugin / C library ${figures.parallelOverCLibraryShared}) and ${cLibraryParallel.ratio} ` +
      `with a connection per domain (plugin / C library ${figures.parallelOverCLibrary})`,
  );
  console.log(`plugin peak RSS (VmHWM): ${(pluginPeakRssKiB / 1024).toFixed(1)} MiB`);
  console.log(JSON.stringify(figures));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
