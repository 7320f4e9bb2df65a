/**
 * What the host-wide reference scan of a delete (provider/engine/delete-references.ts: list every domain of the
 * host, read the others' definitions, and the snapshots of those not running) costs in the parallelism rounds
 * of bench/plugin.ts. The
 * engine deletes 1 x N and D x N snapshots, all of a phase at once on one connection, twice per repeat:
 * as it is, and with `connectListAllDomains` answering no domains (so the scan reads nothing and keeps no
 * file; harmless here, where no other domain uses the lab domains' files). A measurement tool, not a
 * proposal to skip the scan: it shows where the delete phase's time goes. A delete starts its scan as soon as
 * it holds its domain lock, so the scan's wait overlaps the delete's own reads and planning: the difference
 * between the two ways is what is left of it on the delete's path.
 *
 * libvirt's virConnectListAllDomains locks every domain object of the host in turn (virDomainObjListFilter in
 * src/conf/virdomainobjlist.c), so the call waits for whichever domain holds its lock longest at that moment,
 * including domains of other users; the calls made per procedure are printed to show the scan's share.
 * Concurrent deletes share a scan that started after they took their domain lock: `connectListAllDomains`
 * counts the scans made for the `deletes` of a way.
 *
 *   npx tsx bench/delete-scan.ts
 *
 * BENCH_DOMAINS, BENCH_PARALLEL_SNAPSHOTS and BENCH_REPEATS override the counts (4, 5, 3). Lab domains are
 * removed at the end. The last line of output is one JSON object (delete-phase wall times in ms, medians).
 */
import type { LibvirtApi } from "../provider/libvirt/api";
import type { LibvirtConnection } from "../provider/libvirt/connection";
import { openConnection } from "../provider/libvirt/open";
import { createLabDomain, type LabDomain } from "../test/support/lab-create";
import { labUri } from "../test/support/virsh";
import { engineRunner, type RoundTimes, summarize } from "./parallel-rounds";

const DOMAINS = Number(process.env.BENCH_DOMAINS ?? 4);
const PER_DOMAIN = Number(process.env.BENCH_PARALLEL_SNAPSHOTS ?? 5);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);

/**
 * The connection, counting the calls made through it per method, and timing each list of all domains (ms),
 * while `phase.counting` is true (only the delete phase's calls are the scan's figures).
 */
function counted(
  connection: LibvirtConnection,
  counts: Map<string, number>,
  listMs: number[],
  phase: { counting: boolean },
): LibvirtConnection {
  return new Proxy(connection, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function" || typeof property !== "string") return value;
      return (...args: unknown[]) => {
        if (!phase.counting) return value.apply(target, args);
        counts.set(property, (counts.get(property) ?? 0) + 1);
        if (property !== "connectListAllDomains") return value.apply(target, args);
        const started = performance.now();
        return Promise.resolve(value.apply(target, args)).finally(() =>
          listMs.push(performance.now() - started),
        );
      };
    },
  });
}

/** The connection with a host that seems to have no domains to list (the scan then reads nothing). */
function withoutScan(connection: LibvirtConnection): LibvirtConnection {
  const none: LibvirtApi["connectListAllDomains"] = async () => [];
  return new Proxy(connection, {
    get: (target, property, receiver) =>
      property === "connectListAllDomains" ? none : Reflect.get(target, property, receiver),
  });
}

async function main(): Promise<void> {
  const domains: LabDomain[] = [];
  const connection = await openConnection(labUri);
  try {
    for (let i = 0; i < DOMAINS; i++) {
      domains.push(await createLabDomain({ disks: [{ sizeMiB: 64 }], state: "running" }));
    }
    const ways = [
      { name: "withScan", tag: "s", scan: true },
      { name: "withoutScan", tag: "n", scan: false },
    ].map((way) => ({
      ...way,
      counts: new Map<string, number>(),
      listMs: [] as number[],
      rounds: [] as ReturnType<typeof figures>[],
    }));
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      for (const way of ways) {
        // Counting starts between the phases of each round, so the creates' calls stay out of the figures.
        const phase = { counting: false };
        const base = counted(connection, way.counts, way.listMs, phase);
        const run = engineRunner(way.scan ? base : withoutScan(base), () => {
          phase.counting = true;
        });
        const single = await run(domains.slice(0, 1), PER_DOMAIN, `${way.tag}${repeat}a`);
        phase.counting = false;
        const many = await run(domains, PER_DOMAIN, `${way.tag}${repeat}b`);
        phase.counting = false;
        way.rounds.push(figures(single, many));
        console.log(
          `${way.name} repeat ${repeat + 1}: deletes 1 x ${PER_DOMAIN} ${Math.round(single.deleteMs)} ms, ` +
            `${DOMAINS} x ${PER_DOMAIN} ${Math.round(many.deleteMs)} ms`,
        );
      }
    }
    const report = Object.fromEntries(
      ways.map((way) => {
        const summary = summarize(way.rounds);
        return [
          way.name,
          {
            singleDeleteMs: summary.single.deleteMs,
            manyDeleteMs: summary.many.deleteMs,
            listAllDomainsMs: spread(way.listMs),
            calls: Object.fromEntries([...way.counts].sort((a, b) => b[1] - a[1])),
          },
        ];
      }),
    );
    console.log(
      JSON.stringify({
        domains: DOMAINS,
        snapshotsPerDomain: PER_DOMAIN,
        repeats: REPEATS,
        deletes: REPEATS * (PER_DOMAIN + DOMAINS * PER_DOMAIN),
        ...report,
      }),
    );
  } finally {
    await connection.close();
    await Promise.allSettled(domains.map((domain) => domain.dispose()));
  }
}

/** Mean and largest of `ms` (0 when empty), rounded to 0.01 ms. */
function spread(ms: readonly number[]) {
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    mean: round(ms.length === 0 ? 0 : ms.reduce((a, b) => a + b, 0) / ms.length),
    max: round(Math.max(0, ...ms)),
  };
}

/** One repeat as `summarize` takes it; the ratio is of the delete phases. */
function figures(single: RoundTimes, many: RoundTimes) {
  return { single, many, ratio: many.deleteMs / single.deleteMs };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
