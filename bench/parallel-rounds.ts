/**
 * The parallelism rounds of bench/plugin.ts: the same work (every create issued at once, then every delete at
 * once, on D domains x N disk-only snapshots) done three ways, so a ratio D x N over 1 x N can be told apart by
 * layer:
 * - through the Pulumi dynamic-provider plugin (one connection per URI in the plugin process),
 * - by the engine called directly (`createSnapshot` / `deleteSnapshot` under Promise.all, one connection),
 * - by the libvirt C library (python3-libvirt, bench/parallel-baseline.py: a thread per domain,
 *   snapshotCreateXML DISK_ONLY|ATOMIC, then libvirt's own delete of each snapshot), the floor of what libvirtd
 *   on this host allows; with a connection per domain, or with one connection shared by every thread, which
 *   is the plugin's layout (so a difference between the two is the channel's, not our stack's).
 * In the first two the per-domain lock serializes one domain's operations, but create and delete take it only
 * after their domain lookup round trip, so the order is the order the lookups come back, not call order; the
 * C library's threads do one domain's operations one after the other in name order.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { createSnapshot } from "../provider/engine/create";
import { deleteSnapshot } from "../provider/engine/delete";
import type { LibvirtConnection } from "../provider/libvirt/connection";
import type { LabDomain } from "../test/support/lab-create";
import { type PulumiPlugin, snapshotUrn } from "../test/support/pulumi-plugin";
import { labUri } from "../test/support/virsh";
import { median, roundTo } from "./stats";

const PYTHON = process.env.BENCH_PYTHON ?? "/usr/bin/python3";
const CHILD_TIMEOUT_MS = 10 * 60_000;

/** Wall clock of one round, ms: both phases, the creates, the deletes. */
export interface RoundTimes {
  readonly wallMs: number;
  readonly createMs: number;
  readonly deleteMs: number;
}

/** One way of doing a round: `tag` makes the snapshot names of the round unique (letters and digits). */
export type RoundRunner = (
  domains: readonly LabDomain[],
  perDomain: number,
  tag: string,
) => Promise<RoundTimes>;

function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Times `create` then `remove`, each phase as a whole; `beforeDelete` runs between them, off the clock. */
async function twoPhases(
  create: () => Promise<void>,
  remove: () => Promise<void>,
  beforeDelete: () => void = () => {},
): Promise<RoundTimes> {
  const start = now();
  await create();
  const created = now();
  beforeDelete();
  const middle = now();
  await remove();
  const end = now();
  return { wallMs: created - start + (end - middle), createMs: created - start, deleteMs: end - middle };
}

/** Snapshot names of a round, per domain in creation order. */
function snapshotNames(perDomain: number, tag: string): string[] {
  return Array.from({ length: perDomain }, (_, i) => `${tag}s${i}`);
}

/** Through the plugin: Create and Delete requests, all of a phase in flight at once (as `pulumi up` issues). */
export function pluginRunner(plugin: PulumiPlugin, provider: string): RoundRunner {
  return async (domains, perDomain, tag) => {
    const resources: { urn: string; inputs: Record<string, unknown> }[] = [];
    for (const domain of domains) {
      for (const name of snapshotNames(perDomain, tag)) {
        const urn = snapshotUrn(`${domain.name}-${name}`);
        const news = { domain: domain.name, name, quiesce: "off", __provider: provider };
        resources.push({ urn, inputs: (await plugin.check(urn, {}, news)).inputs });
      }
    }
    let created: { urn: string; id: string; properties: Record<string, unknown> }[] = [];
    return twoPhases(
      async () => {
        created = await Promise.all(
          resources.map(async (r) => ({ urn: r.urn, ...(await plugin.create(r.urn, r.inputs)) })),
        );
      },
      async () => {
        await Promise.all(created.map((c) => plugin.delete(c.urn, c.id, c.properties)));
      },
    );
  };
}

/**
 * The engine without the plugin: the same calls the plugin makes, on one connection. `beforeDelete` runs
 * between the phases (e.g. to count only the delete phase's calls).
 */
export function engineRunner(connection: LibvirtConnection, beforeDelete?: () => void): RoundRunner {
  return (domains, perDomain, tag) => {
    const pairs = domains.flatMap((domain) =>
      snapshotNames(perDomain, tag).map((name) => ({ domain: domain.name, name })),
    );
    return twoPhases(
      async () => {
        await Promise.all(pairs.map((p) => createSnapshot(connection, { ...p, quiesce: "off" })));
      },
      async () => {
        await Promise.all(pairs.map((p) => deleteSnapshot(connection, p.domain, p.name)));
      },
      beforeDelete,
    );
  };
}

/** How the C library's threads reach libvirtd: a connection each, or one connection they all share. */
export type CLibraryConnections = "per-domain" | "shared";

/** The libvirt C library through bench/parallel-baseline.py; every lab domain's first disk. */
export function cLibraryRunner(connections: CLibraryConnections): RoundRunner {
  return (domains, perDomain, tag) => runBaseline(domains, perDomain, tag, connections);
}

async function runBaseline(
  domains: readonly LabDomain[],
  perDomain: number,
  tag: string,
  connections: CLibraryConnections,
): Promise<RoundTimes> {
  const spec = domains.map((d) => ({ name: d.name, target: d.disks[0]?.target ?? "vda", dir: d.dir }));
  const script = join(__dirname, "parallel-baseline.py");
  const args = [script, labUri, JSON.stringify(spec), String(perDomain), `${tag}s`, connections];
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(PYTHON, args, { encoding: "utf8", timeout: CHILD_TIMEOUT_MS }, (error, out, err) => {
      if (error) reject(new Error(`bench/parallel-baseline.py failed: ${err || error.message}`));
      else resolve(out);
    });
  });
  const times = JSON.parse(stdout.trim().split("\n").at(-1) ?? "null") as RoundTimes | null;
  if (times === null || typeof times.wallMs !== "number") {
    throw new Error(`bench/parallel-baseline.py printed no figures: ${stdout}`);
  }
  return times;
}

/** 1 x N and D x N wall times of one way, and their ratio. */
export interface ParallelFigures {
  readonly single: RoundTimes;
  readonly many: RoundTimes;
  /** many.wallMs / single.wallMs. */
  readonly ratio: number;
}

/**
 * Runs 1 x N on the first domain and D x N on all of them, with one runner; `manyFirst` runs D x N first (so
 * repeats can alternate which round meets a fresher host); `tag` keeps the names of this call's snapshots
 * apart from every other call's.
 */
export async function measureParallelism(
  runner: RoundRunner,
  domains: readonly LabDomain[],
  perDomain: number,
  tag: string,
  manyFirst = false,
): Promise<ParallelFigures> {
  const first = domains[0];
  if (first === undefined) throw new Error("measureParallelism needs at least one domain");
  const runSingle = () => runner([first], perDomain, `${tag}a`);
  const runMany = () => runner(domains, perDomain, `${tag}b`);
  const many = manyFirst ? await runMany() : undefined;
  const single = await runSingle();
  const manyTimes = many ?? (await runMany());
  return { single, many: manyTimes, ratio: manyTimes.wallMs / single.wallMs };
}

/** One way's figures over the repeats, rounded for the report: medians of the repeats, ms. */
export interface ParallelSummary {
  readonly ratio: number;
  /** The ratio of each repeat, in order. */
  readonly ratios: number[];
  readonly single: RoundTimes;
  readonly many: RoundTimes;
}

function medianTimes(times: readonly RoundTimes[]): RoundTimes {
  return {
    wallMs: Math.round(median(times.map((t) => t.wallMs))),
    createMs: Math.round(median(times.map((t) => t.createMs))),
    deleteMs: Math.round(median(times.map((t) => t.deleteMs))),
  };
}

/** Medians over the repeats of one way (at least one). */
export function summarize(repeats: readonly ParallelFigures[]): ParallelSummary {
  if (repeats.length === 0) throw new Error("summarize needs at least one repeat");
  return {
    ratio: roundTo(median(repeats.map((r) => r.ratio)), 3),
    ratios: repeats.map((r) => roundTo(r.ratio, 3)),
    single: medianTimes(repeats.map((r) => r.single)),
    many: medianTimes(repeats.map((r) => r.many)),
  };
}
