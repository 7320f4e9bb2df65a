import { explainTimeout, messageOf, PROBE_TIMEOUT_SECONDS, timeoutSignal } from "./abort";
import { createSnapshotRequest } from "./host";
import { DEFAULT_TIMEOUTS_SECONDS } from "./inputs";
import { type SnapshotFacts, toPlainJson } from "./outputs";
import type { RestorePointHost } from "./restore-point-host";
import { generationName, type RestorePointInputs } from "./restore-point-inputs";
import {
  type Generation,
  type GenerationSnapshot,
  generationSnapshot,
  unconfirmedSnapshot,
} from "./restore-point-outputs";

/**
 * The generation bookkeeping of a `RestorePoint` on the host: taking one generation on every domain (with the
 * pausing of `consistency: paused`), and merging generations away. Both report what exists afterwards and what
 * went wrong instead of rejecting part-way, so the resource methods (restore-point-provider.ts) can record
 * exactly the snapshots that exist. `log` receives progress lines, prefixed with the domain and snapshot.
 */

/** What taking one generation left: the snapshots that exist (in domain order) and what went wrong. */
export interface TakenGeneration {
  readonly generation: Generation;
  readonly errors: readonly string[];
}

/** What merging left: the generations that still exist and what went wrong. */
export interface MergeOutcome {
  readonly remaining: readonly Generation[];
  readonly errors: readonly string[];
}

/**
 * Generation `number` on every domain. `crash`: the domains in parallel, each on its own. `paused`: every
 * running domain is paused first, then all are snapshotted, then those paused here are resumed.
 * Snapshots that did not exist before and exist after a failure are reported as made; one whose create
 * failed and whose read back failed too may exist, and is reported as `unconfirmed` (with an error saying
 * so), never left out. `stored` are the generations the stack records (empty at create): when generation
 * `number` is among them (a retry of an unfinished generation), a snapshot of it that still exists is
 * reported even when its create fails again, so a retry never drops a recorded snapshot that is not gone
 * from the host.
 */
export async function takeGeneration(
  host: RestorePointHost,
  inputs: RestorePointInputs,
  number: number,
  stored: readonly Generation[],
  log: (line: string) => void,
): Promise<TakenGeneration> {
  const name = generationName(inputs.name, number);
  const recorded = stored.find((g) => g.number === number)?.snapshots ?? [];
  const seconds = inputs.timeouts?.create ?? DEFAULT_TIMEOUTS_SECONDS.create;
  // A failure here leaves nothing behind, so it rejects plainly.
  const before = await Promise.all(
    inputs.domains.map((domain) => host.get(domain, name, timeoutSignal(PROBE_TIMEOUT_SECONDS))),
  );
  const signal = timeoutSignal(seconds);
  const createAll = () =>
    Promise.allSettled(
      inputs.domains.map((domain) =>
        host.create(
          createSnapshotRequest(inputs, {
            domain,
            name,
            adopt: false,
            onProgress: (line) => log(`${domain}/${name}: ${line}`),
          }),
          signal,
        ),
      ),
    );

  const errors: string[] = [];
  let results: PromiseSettledResult<SnapshotFacts>[];
  if (inputs.consistency === "paused") {
    const pauses = await Promise.allSettled(inputs.domains.map((domain) => host.pause(domain, signal)));
    const paused = inputs.domains.filter((_, i) => {
      const pause = pauses[i];
      return pause?.status === "fulfilled" && pause.value;
    });
    try {
      const refused = pauses.find((p) => p.status === "rejected");
      results =
        refused === undefined
          ? await createAll()
          : inputs.domains.map(() => ({
              status: "rejected" as const,
              reason: new Error(
                `not taken: consistency "paused" needs every domain paused, and one could not be ` +
                  `(${messageOf(refused.reason)}); make it pausable and run pulumi up again, or set ` +
                  `consistency: "crash" to snapshot each domain on its own`,
              ),
            }));
      if (paused.length > 0) log(`${name}: taken with ${paused.join(", ")} paused`);
    } finally {
      // The timeout of the create may have fired: resuming has a budget of its own.
      const resumed = await Promise.allSettled(
        paused.map((domain) => host.resume(domain, timeoutSignal(PROBE_TIMEOUT_SECONDS))),
      );
      resumed.forEach((outcome, i) => {
        if (outcome.status === "rejected") {
          errors.push(
            `domain ${paused[i]} was paused for the restore point and could not be resumed ` +
              `(${messageOf(outcome.reason)}); resume it with virsh resume`,
          );
        }
      });
    }
  } else {
    results = await createAll();
  }

  // Each domain's outcome carries its own errors, joined in domain order: never in the order reads finish.
  const outcomes = await Promise.all(
    inputs.domains.map(
      async (domain, i): Promise<{ snapshot: GenerationSnapshot | null; errors: string[] }> => {
        const result = results[i];
        if (result?.status === "fulfilled") {
          return { snapshot: generationSnapshot(domain, result.value), errors: [] };
        }
        const error = explainTimeout(
          result?.reason,
          signal,
          `creating snapshot ${name} of ${domain}`,
          "create",
          seconds,
        );
        const failed = `${domain}: ${messageOf(error)}`;
        // A snapshot that existed before is the stack's own when an earlier attempt recorded it (its adopt
        // failed: a domain not paused, a timeout; or it was recorded unconfirmed), and a failed create never
        // removes it, so it is recorded with the facts read before; otherwise it is someone else's (the engine
        // adopts only its own, and then the create succeeds). One that exists only now was made by this call
        // and must be recorded; when that cannot be read, it may exist, and is recorded unconfirmed.
        const existing = before[i];
        if (existing !== null && existing !== undefined) {
          const ours = recorded.some((s) => s.domain === domain && s.snapshotName === name);
          return { snapshot: ours ? generationSnapshot(domain, existing) : null, errors: [failed] };
        }
        try {
          const made = await host.get(domain, name, timeoutSignal(PROBE_TIMEOUT_SECONDS));
          return { snapshot: made === null ? null : generationSnapshot(domain, made), errors: [failed] };
        } catch (readError) {
          const unread =
            `${domain}: snapshot ${name} may exist on the host, but reading it back failed ` +
            `(${messageOf(readError)}); the stack records it as unconfirmed: pulumi refresh or the next ` +
            "pulumi up re-reads it, and deleting the restore point merges it if it exists";
          return { snapshot: unconfirmedSnapshot(domain, name, stored), errors: [failed, unread] };
        }
      },
    ),
  );
  errors.push(...outcomes.flatMap((o) => o.errors));
  const snapshots = outcomes.map((o) => o.snapshot);
  return {
    generation: {
      number,
      triggers: toPlainJson(inputs.triggers),
      createdAt: new Date().toISOString(),
      snapshots: snapshots.filter((s): s is GenerationSnapshot => s !== null),
    },
    errors,
  };
}

/**
 * Merges generations `numbers` away on every domain: per domain one snapshot after the other, oldest first,
 * so every layer's data is copied once (deleting generation g commits its overlay into the image below;
 * newest first would commit each newer layer again into each older one); domains in parallel. A failure
 * stops that domain's sequence; the other domains go on.
 */
export async function mergeGenerations(
  host: RestorePointHost,
  settings: Pick<RestorePointInputs, "deleteStrategy" | "bandwidth" | "timeouts">,
  generations: readonly Generation[],
  numbers: readonly number[],
  log: (line: string) => void,
): Promise<MergeOutcome> {
  const seconds = settings.timeouts?.delete ?? DEFAULT_TIMEOUTS_SECONDS.delete;
  const doomed = generations.filter((g) => numbers.includes(g.number)).sort((a, b) => a.number - b.number);
  const uuids = [...new Set(doomed.flatMap((g) => g.snapshots.map((s) => s.domainUuid)))];
  const merged = new Set<string>();
  const errors: string[] = [];
  await Promise.all(
    uuids.map(async (uuid) => {
      for (const generation of doomed) {
        const snapshot = generation.snapshots.find((s) => s.domainUuid === uuid);
        if (snapshot === undefined) continue;
        const label = `${snapshot.domainName}/${snapshot.snapshotName}`;
        const signal = timeoutSignal(seconds);
        try {
          log(`${label}: merging generation ${generation.number} away`);
          await host.delete(
            {
              domain: uuid,
              name: snapshot.snapshotName,
              strategy: settings.deleteStrategy,
              ...(settings.bandwidth === undefined ? {} : { bandwidth: settings.bandwidth }),
              timeoutMs: seconds * 1000,
              onProgress: (line) => log(`${label}: ${line}`),
            },
            signal,
          );
          merged.add(`${uuid}/${snapshot.snapshotName}`);
          log(`${label}: deleted`);
        } catch (error) {
          const explained = explainTimeout(error, signal, `deleting snapshot ${label}`, "delete", seconds);
          errors.push(`${label}: ${messageOf(explained)}`);
          return;
        }
      }
    }),
  );
  const remaining = generations
    .map((g) => ({
      ...g,
      snapshots: g.snapshots.filter((s) => !merged.has(`${s.domainUuid}/${s.snapshotName}`)),
    }))
    .filter((g) => g.snapshots.length > 0);
  return { remaining, errors };
}
