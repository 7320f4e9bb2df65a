import { explainTimeout, timeoutSignal } from "./abort";
import { canonicalJson } from "./diff-rules";
import { DEFAULT_TIMEOUTS_SECONDS } from "./inputs";
import { toPlainJson } from "./outputs";
import { mergeGenerations, takeGeneration } from "./restore-point-generations";
import type { RestorePointHostFactory } from "./restore-point-host";
import { checkRestorePointInputs, type RestorePointInputs } from "./restore-point-inputs";
import {
  buildRestorePointOutputs,
  confirmedSnapshots,
  type Generation,
  type GenerationSnapshot,
  generationSnapshot,
  type RestorePointOutputs,
  readRestorePointOutputs,
  restorePointId,
  restorePointInputsFromOutputs,
} from "./restore-point-outputs";
import { diffRestorePoint, newestIncomplete, planGenerations } from "./restore-point-plan";
import { PartialCreateError, type ProviderConfig } from "./snapshot-provider";
import { effectiveUri, providerDefaultUri, redactUri, URI_CONFIG_KEY } from "./uri";

/**
 * The `RestorePoint` resource's methods, in the shape of Pulumi's `dynamic.ResourceProvider`: generations of
 * snapshots of several domains taken together (`<name>-<number>` on every domain), a new generation for each
 * change of `triggers`, at most `keep` of them, merged away oldest first.
 *
 * Failure contract, per method:
 * - create: takes generation 1 on every domain. A failure with no snapshot made rejects plainly; a failure
 *   after some were made rejects with a `PartialCreateError` whose outputs list exactly the snapshots that
 *   exist, so Pulumi records them (nothing is orphaned). A snapshot whose create failed and whose read back
 *   failed too may exist: it is listed as `unconfirmed` (and named in the error), never left out.
 *   Idempotent: the names are deterministic and the engine adopts a snapshot it made for the same request; a
 *   snapshot of that name it did not make is refused and never recorded.
 * - update: takes the next generation when the triggers changed, then merges the generations beyond `keep`.
 *   A failure rejects with a `PartialCreateError` whose outputs list the generations that exist then (a retry
 *   reuses the same generation number, adopts what was made, and keeps recording what the earlier attempt
 *   recorded while it exists on the host, also when its adopt fails again); merges are not started when taking
 *   the new generation failed.
 * - read: re-reads every snapshot (an unconfirmed one is confirmed by the host's facts); those gone drop out,
 *   and `{ id: "" }` when none is left.
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

/** Builds the implementation that `providerImplementations.restorePoint` exposes to the serialized shim. */
export function createRestorePointProvider(options: RestorePointProviderOptions) {
  const log = options.log ?? ((line: string) => console.log(line));
  let defaultUri = providerDefaultUri(undefined, options.env ?? process.env);
  const uriOf = (uri: string | null | undefined) => effectiveUri(uri, defaultUri);

  /** The rejection that records what exists (Pulumi stores `properties` as the resource's outputs). */
  function partial(
    what: string,
    id: string,
    outs: RestorePointOutputs,
    provider: unknown,
    errors: readonly string[],
  ) {
    return new PartialCreateError(
      `${what} failed; the stack records the generations that exist, and the next pulumi up completes or ` +
        `merges what is left once the cause is fixed: ${errors.join("; ")}`,
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
      const { generation, errors } = await takeGeneration(host, inputs, number, [], log);
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
        complete: confirmedSnapshots(g).length === next.domains.length,
      }));
      const take = newTriggers || newestIncomplete(old) ? { triggers: toPlainJson(next.triggers) } : null;
      const plan = planGenerations(summaries, next.keep, take);
      let generations: readonly Generation[] = old.generations;
      const outputs = () => buildRestorePointOutputs(next, generations, redactUri(uri));
      if (plan.create !== null) {
        const number = plan.create;
        const taken = await takeGeneration(host, next, number, generations, log);
        generations = [...generations.filter((g) => g.number !== number)];
        if (taken.generation.snapshots.length > 0) generations = [...generations, taken.generation];
        if (taken.errors.length > 0) {
          // Until the generation exists on every domain, the old triggers stay recorded: the next update
          // sees the change again and completes the generation under the same number.
          const complete = confirmedSnapshots(taken.generation).length === next.domains.length;
          const outs = { ...outputs(), triggers: complete ? toPlainJson(next.triggers) : old.triggers };
          const what = `generation ${number} of restore point ${next.name}`;
          throw partial(what, id, outs, news.__provider, taken.errors);
        }
      }
      if (plan.merge.length > 0) {
        const merged = await mergeGenerations(host, next, generations, plan.merge, log);
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
      const { errors } = await mergeGenerations(host, settings, old.generations, numbers, log);
      if (errors.length > 0) {
        throw new Error(
          `deleting restore point ${old.name} failed; delete again to merge what is left: ${errors.join("; ")}`,
        );
      }
    },
  };
}

export type RestorePointProviderImplementation = ReturnType<typeof createRestorePointProvider>;
