import { canonicalJson } from "./diff-rules";
import { createSnapshotRequest } from "./host";
import { DEFAULT_TIMEOUTS_SECONDS } from "./inputs";
import { type SnapshotFacts, toPlainJson } from "./outputs";
import type { RestorePointHost, RestorePointHostFactory } from "./restore-point-host";
import { checkRestorePointInputs, generationName, type RestorePointInputs } from "./restore-point-inputs";
import {
  buildRestorePointOutputs,
  type Generation,
  type GenerationSnapshot,
  generationSnapshot,
  type RestorePointOutputs,
  readRestorePointOutputs,
  restorePointId,
  restorePointInputsFromOutputs,
} from "./restore-point-outputs";
import { diffRestorePoint, newestIncomplete, planGenerations } from "./restore-point-plan";
import {
  explainTimeout,
  PartialCreateError,
  PROBE_TIMEOUT_SECONDS,
  type ProviderConfig,
  timeoutSignal,
} from "./snapshot-provider";
import { effectiveUri, providerDefaultUri, redactUri, URI_CONFIG_KEY } from "./uri";

/**
 * The `RestorePoint` resource's methods, in the shape of Pulumi's `dynamic.ResourceProvider`: generations of
 * snapshots of several domains taken together (`<name>-<number>` on every domain), a new generation for each
 * change of `triggers`, at most `keep` of them, merged away oldest first.
 *
 * Failure contract, per method:
 * - create: takes generation 1 on every domain. A failure with no snapshot made rejects plainly; a failure
 *   after some were made rejects with a `PartialCreateError` whose outputs list exactly the snapshots that
 *   exist, so Pulumi records them (nothing is orphaned). Idempotent: the names are deterministic and the
 *   engine adopts a snapshot it made for the same request; a snapshot of that name it did not make is refused
 *   and never recorded.
 * - update: takes the next generation when the triggers changed, then merges the generations beyond `keep`.
 *   A failure rejects with a `PartialCreateError` whose outputs list the generations that exist then (a retry
 *   reuses the same generation number and adopts what was made); merges are not started when taking the new
 *   generation failed.
 * - read: re-reads every snapshot; those gone drop out, and `{ id: "" }` when none is left.
 * - delete: merges every generation on every domain; already gone counts as merged. A failure rejects after
 *   the other domains were finished; a retry merges what is left.
 * - consistency `paused`: the domains this call paused are resumed on every path, also after failures and
 *   timeouts (with a budget of their own); a domain that cannot be resumed is named in the error.
 */

type Props = Record<string, unknown>;

export interface RestorePointProviderOptions {
  readonly hostFor: RestorePointHostFactory;
  /** Where `LIBVIRT_DEFAULT_URI` is read from at configure time. */
  readonly env?: NodeJS.ProcessEnv;
  /** Progress lines; the plugin's console output is shown to the user. */
  readonly log?: (line: string) => void;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** What taking one generation left: the snapshots that exist (in domain order) and what went wrong. */
interface TakenGeneration {
  readonly generation: Generation;
  readonly errors: readonly string[];
}

/** What merging left: the generations that still exist and what went wrong. */
interface MergeOutcome {
  readonly remaining: readonly Generation[];
  readonly errors: readonly string[];
}

/** Builds the implementation that `providerImplementations.restorePoint` exposes to the serialized shim. */
export function createRestorePointProvider(options: RestorePointProviderOptions) {
  const log = options.log ?? ((line: string) => console.log(line));
  let defaultUri = providerDefaultUri(undefined, options.env ?? process.env);
  const uriOf = (uri: string | null | undefined) => effectiveUri(uri, defaultUri);

  /**
   * Generation `number` on every domain. `crash`: the domains in parallel, each on its own. `paused`: every
   * running domain is paused first, then all are snapshotted, then those paused here are resumed.
   * Snapshots that did not exist before and exist after a failure are reported as made.
   */
  async function takeGeneration(
    host: RestorePointHost,
    inputs: RestorePointInputs,
    number: number,
  ): Promise<TakenGeneration> {
    const name = generationName(inputs.name, number);
    const seconds = inputs.timeouts?.create ?? DEFAULT_TIMEOUTS_SECONDS.create;
    // A failure here leaves nothing behind, so it rejects plainly.
    const existedBefore = await Promise.all(
      inputs.domains.map(
        async (domain) => (await host.get(domain, name, timeoutSignal(PROBE_TIMEOUT_SECONDS))) !== null,
      ),
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
                  `not taken: not every domain could be paused (${messageOf(refused.reason)})`,
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

    const snapshots = await Promise.all(
      inputs.domains.map(async (domain, i): Promise<GenerationSnapshot | null> => {
        const result = results[i];
        if (result?.status === "fulfilled") {
          return generationSnapshot(domain, result.value);
        }
        const error = explainTimeout(
          result?.reason,
          signal,
          `creating snapshot ${name} of ${domain}`,
          "create",
          seconds,
        );
        errors.push(`${domain}: ${messageOf(error)}`);
        // A snapshot that existed before is someone else's (the engine adopts only its own, and then the
        // create succeeds); one that exists only now was made by this call and must be recorded.
        if (existedBefore[i]) return null;
        const made = await host.get(domain, name, timeoutSignal(PROBE_TIMEOUT_SECONDS)).catch(() => null);
        return made === null ? null : generationSnapshot(domain, made);
      }),
    );
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
  async function mergeGenerations(
    host: RestorePointHost,
    settings: Pick<RestorePointInputs, "deleteStrategy" | "bandwidth" | "timeouts">,
    generations: readonly Generation[],
    numbers: readonly number[],
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

  /** The rejection that records what exists (Pulumi stores `properties` as the resource's outputs). */
  function partial(
    what: string,
    id: string,
    outs: RestorePointOutputs,
    provider: unknown,
    errors: readonly string[],
  ) {
    return new PartialCreateError(
      `${what} failed; the stack records the generations that exist: ${errors.join("; ")}`,
      id,
      { ...outs, __provider: provider },
      [...errors],
    );
  }

  return {
    async configure(request: { config: ProviderConfig }) {
      // Read synchronously, before any await: the plugin may call other methods before this promise settles.
      defaultUri = providerDefaultUri(request.config.get(URI_CONFIG_KEY), options.env ?? process.env);
    },

    async check(_olds: Props, news: Props) {
      return checkRestorePointInputs(news);
    },

    async diff(_id: string, olds: Props, news: Props) {
      return diffRestorePoint(readRestorePointOutputs(olds), news, defaultUri);
    },

    async create(props: Props) {
      const inputs = props as unknown as RestorePointInputs;
      const uri = uriOf(inputs.uri);
      const host = options.hostFor(uri);
      const number = planGenerations([], inputs.keep, { triggers: inputs.triggers }).create ?? 1;
      const { generation, errors } = await takeGeneration(host, inputs, number);
      const generations = generation.snapshots.length > 0 ? [generation] : [];
      const outs = buildRestorePointOutputs(inputs, generations, redactUri(uri));
      const id = restorePointId(
        inputs.name,
        generation.snapshots.map((s) => s.domainUuid),
      );
      if (errors.length === 0) return { id, outs };
      const what = `restore point ${inputs.name} (generation ${number})`;
      if (generations.length === 0) throw new Error(`${what}: nothing was created: ${errors.join("; ")}`);
      throw partial(what, id, outs, props.__provider, errors);
    },

    async read(id: string, props: Props) {
      const old = readRestorePointOutputs(props);
      const uri = uriOf(old.uri);
      const host = options.hostFor(uri);
      const seconds = old.timeouts.create ?? DEFAULT_TIMEOUTS_SECONDS.create;
      const signal = timeoutSignal(seconds);
      const generations = await Promise.all(
        old.generations.map(async (g) => {
          const snapshots = await Promise.all(
            g.snapshots.map(async (s) => {
              const facts = await host.get(s.domainUuid, s.snapshotName, signal).catch((error: unknown) => {
                throw explainTimeout(error, signal, `reading restore point ${old.name}`, "create", seconds);
              });
              return facts === null ? null : generationSnapshot(s.domain, facts);
            }),
          );
          return { ...g, snapshots: snapshots.filter((s): s is GenerationSnapshot => s !== null) };
        }),
      );
      const left = generations.filter((g) => g.snapshots.length > 0);
      if (left.length === 0) return { id: "" };
      return {
        id,
        props: buildRestorePointOutputs(restorePointInputsFromOutputs(old), left, redactUri(uri)),
      };
    },

    async update(id: string, olds: Props, news: Props) {
      const old = readRestorePointOutputs(olds);
      const next = news as unknown as RestorePointInputs;
      const uri = uriOf(next.uri);
      const host = options.hostFor(uri);
      const newTriggers = canonicalJson(old.triggers) !== canonicalJson(toPlainJson(next.triggers));
      const summaries = old.generations.map((g) => ({
        number: g.number,
        triggers: g.triggers,
        complete: g.snapshots.length === next.domains.length,
      }));
      const take = newTriggers || newestIncomplete(old) ? { triggers: toPlainJson(next.triggers) } : null;
      const plan = planGenerations(summaries, next.keep, take);
      let generations: readonly Generation[] = old.generations;
      const outputs = () => buildRestorePointOutputs(next, generations, redactUri(uri));
      if (plan.create !== null) {
        const number = plan.create;
        const taken = await takeGeneration(host, next, number);
        generations = [...generations.filter((g) => g.number !== number)];
        if (taken.generation.snapshots.length > 0) generations = [...generations, taken.generation];
        if (taken.errors.length > 0) {
          // Until the generation exists on every domain, the old triggers stay recorded: the next update
          // sees the change again and completes the generation under the same number.
          const complete = taken.generation.snapshots.length === next.domains.length;
          const outs = { ...outputs(), triggers: complete ? toPlainJson(next.triggers) : old.triggers };
          const what = `generation ${number} of restore point ${next.name}`;
          throw partial(what, id, outs, news.__provider, taken.errors);
        }
      }
      if (plan.merge.length > 0) {
        const merged = await mergeGenerations(host, next, generations, plan.merge);
        generations = merged.remaining;
        if (merged.errors.length > 0) {
          const what = `merging generations ${plan.merge.join(", ")} of restore point ${next.name}`;
          throw partial(what, id, outputs(), news.__provider, merged.errors);
        }
      }
      return { outs: outputs() };
    },

    async delete(_id: string, props: Props) {
      const old = readRestorePointOutputs(props);
      const settings = restorePointInputsFromOutputs(old);
      const host = options.hostFor(uriOf(old.uri));
      const numbers = old.generations.map((g) => g.number);
      const { errors } = await mergeGenerations(host, settings, old.generations, numbers);
      if (errors.length > 0) {
        throw new Error(
          `deleting restore point ${old.name} failed; delete again to merge what is left: ${errors.join("; ")}`,
        );
      }
    },
  };
}

export type RestorePointProviderImplementation = ReturnType<typeof createRestorePointProvider>;
