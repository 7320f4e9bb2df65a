/**
 * What the Pulumi layer costs on top of the engine, measured through the real dynamic-provider plugin and the
 * packed package (the harness of test/support/pulumi-plugin.ts):
 * - preparing the program folder (0 when cached), plugin start until its port line, and the first call (which loads the serialized shim and the package),
 * - check and diff round trips (pure; what every `pulumi preview` pays per resource),
 * - create + delete of a disk-only snapshot of a running lab domain, through the plugin, and the same calls
 *   to the engine directly on one connection (the difference is the Pulumi layer's cost).
 * Figures are medians; no targets are asserted (the 2 cores are shared).
 *
 *   npx tsx bench/plugin.ts
 *
 * Uses one throwaway lab domain (`lvsnap-lab-<hex>`) and removes it at the end. The last line of output is one
 * JSON object with the figures.
 */
import { createSnapshot } from "../provider/engine/create";
import { deleteSnapshot } from "../provider/engine/delete";
import { openConnection } from "../provider/libvirt/open";
import { createLabDomain } from "../test/support/lab-create";
import { PulumiPlugin, snapshotUrn } from "../test/support/pulumi-plugin";
import { preparePulumiProgram } from "../test/support/pulumi-program";
import { labUri } from "../test/support/virsh";

const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 200);
const SNAPSHOTS = Number(process.env.BENCH_SNAPSHOTS ?? 10);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function timed<T>(body: () => Promise<T>): Promise<[T, number]> {
  const start = process.hrtime.bigint();
  const result = await body();
  return [result, Number(process.hrtime.bigint() - start) / 1e6];
}

async function main(): Promise<void> {
  const [, prepareMs] = await timed(() => preparePulumiProgram());
  const [plugin, startMs] = await timed(() => PulumiPlugin.start());
  const domain = await createLabDomain({ disks: [{ sizeMiB: 64 }], state: "running" });
  try {
    const provider = await plugin.serializedProvider();
    await plugin.configure({ "libvirt-snapshot:uri": labUri });
    const news = { domain: domain.name, name: "bench", quiesce: "off", __provider: provider };
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
    const connection = await openConnection(labUri);
    try {
      for (let i = 0; i < SNAPSHOTS; i++) {
        const [created, ms] = await timed(() => plugin.create(urn, first.inputs));
        createMs.push(ms);
        if (i === 0) {
          for (let j = 0; j < ROUND_TRIPS; j++) {
            diffMs.push(
              (await timed(() => plugin.diff(urn, created.id, created.properties, first.inputs)))[1],
            );
          }
        }
        deleteMs.push((await timed(() => plugin.delete(urn, created.id, created.properties)))[1]);
        const request = { domain: domain.name, name: "bench", quiesce: "off" } as const;
        engineCreateMs.push((await timed(() => createSnapshot(connection, request)))[1]);
        engineDeleteMs.push((await timed(() => deleteSnapshot(connection, domain.name, "bench")))[1]);
      }
    } finally {
      await connection.close();
    }

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
      roundTrips: ROUND_TRIPS,
      snapshots: SNAPSHOTS,
    };
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
    console.log(JSON.stringify(figures));
  } finally {
    await domain.dispose();
    await plugin.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
