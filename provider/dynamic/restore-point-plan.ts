import { canonicalJson, type DiffRules, diffResource, type ResourceDiff } from "./diff-rules";
import { isUnknown } from "./inputs";
import type { RestorePointInputs } from "./restore-point-inputs";
import { confirmedSnapshots, type RestorePointOutputs } from "./restore-point-outputs";

/**
 * The pure decisions of a `RestorePoint`: which generations to take and merge, and Pulumi's `diff` (the RestorePoint's
 * rules for the shared skeleton in diff-rules.ts). No I/O; tested as tables.
 */

/** What an update or a create does with the generations, in this order. */
export interface GenerationPlan {
  /** The number of the generation to take (or to complete) on every domain, or null. */
  readonly create: number | null;
  /** Generations to merge away after that, oldest first. */
  readonly merge: readonly number[];
}

/** A generation as planning sees it. */
export interface GenerationSummary {
  readonly number: number;
  readonly triggers: unknown;
  /** Whether it has a snapshot on every domain (false after a failure part-way, or an out-of-band delete). */
  readonly complete: boolean;
}

/**
 * From the generations that exist, whether to take one for `take.triggers` (null: none), and how many to
 * keep. A newest generation that is incomplete and was taken for the same triggers is completed under its
 * own number (a retry after a failure part-way adopts what the failed attempt made); otherwise the new one
 * is one more than the highest. Everything beyond `keep` (at least 1), oldest first, is merged; the
 * generation just taken never is.
 */
export function planGenerations(
  existing: readonly GenerationSummary[],
  keep: number,
  take: { readonly triggers: unknown } | null,
): GenerationPlan {
  const sorted = [...existing].sort((a, b) => a.number - b.number);
  const newest = sorted.at(-1);
  const numbers = sorted.map((g) => g.number);
  let create: number | null = null;
  if (take !== null) {
    const completes =
      newest !== undefined &&
      !newest.complete &&
      canonicalJson(newest.triggers ?? null) === canonicalJson(take.triggers ?? null);
    create = completes ? newest.number : (newest?.number ?? 0) + 1;
  }
  const after = create === null || numbers.includes(create) ? numbers : [...numbers, create];
  const surplus = Math.max(0, after.length - Math.max(1, keep));
  return { create, merge: after.slice(0, surplus) };
}

/**
 * Whether the newest generation lacks a snapshot on some domain, or records one unconfirmed (update then
 * completes it).
 */
export function newestIncomplete(outputs: Pick<RestorePointOutputs, "domains" | "generations">): boolean {
  const newest = [...outputs.generations].sort((a, b) => a.number - b.number).at(-1);
  return newest !== undefined && confirmedSnapshots(newest).length < outputs.domains.length;
}

/** More generations exist than `keep` allows (a merge failed part-way). */
function hasSurplus(outputs: Pick<RestorePointOutputs, "keep" | "generations">): boolean {
  return outputs.generations.length > outputs.keep;
}

/** Pulumi's answer to `diff`. */
export type RestorePointDiff = ResourceDiff;

/**
 * Changes that need new snapshots from scratch: facts of every generation on the host. As for a Snapshot,
 * `uri` resolving to the stored `connectionUri`, and `disks` going from unset to exactly the disks every
 * snapshot covers, are updates in place instead.
 */
export const RESTORE_POINT_REPLACE_PROPERTIES = [
  "domains",
  "name",
  "uri",
  "memory",
  "disks",
  "excludeDisks",
] as const;

/**
 * Changes applied by `update`: `triggers` takes a new generation, `keep` merges the surplus, and the rest
 * only steer later operations (description, quiesce, consistency, live and overlayDir apply to generations
 * taken from then on; deleteStrategy, bandwidth and timeouts to later merges), so they change no snapshot on
 * the host.
 */
export const RESTORE_POINT_UPDATE_PROPERTIES = [
  "triggers",
  "keep",
  "consistency",
  "description",
  "quiesce",
  "live",
  "overlayDir",
  "deleteStrategy",
  "bandwidth",
  "timeouts",
] as const;

/** Every way the stored restore point knows each of its domains: the input, the host's name and UUID. */
function knownDomains(old: RestorePointOutputs): Set<string>[] {
  return old.domains.map((domain) => {
    const names = new Set([domain, domain.toLowerCase()]);
    for (const generation of old.generations) {
      for (const snapshot of generation.snapshots) {
        if (snapshot.domain !== domain) continue;
        names.add(snapshot.domainName);
        names.add(snapshot.domainUuid.toLowerCase());
      }
    }
    return names;
  });
}

/** Which stored domain `value` names (by the input used, the host's name or its UUID in any case), or -1. */
function matchDomain(known: readonly Set<string>[], value: unknown): number {
  if (typeof value !== "string") return -1;
  return known.findIndex((names) => names.has(value) || names.has(value.toLowerCase()));
}

/** The same domains, in any order, each named by input, name or UUID: switching between them replaces nothing. */
function sameDomains(old: RestorePointOutputs, next: unknown): boolean {
  if (!Array.isArray(next) || next.length !== old.domains.length) return false;
  const known = knownDomains(old);
  const matched = new Set(next.map((value) => matchDomain(known, value)));
  return !matched.has(-1) && matched.size === old.domains.length;
}

/** Whether any new domain may be one of the old ones (unknowns may be). */
function sharesDomain(old: RestorePointOutputs, next: unknown): boolean {
  if (!Array.isArray(next)) return true;
  const known = knownDomains(old);
  return next.some((value) => isUnknown(value) || matchDomain(known, value) !== -1);
}

/**
 * The disk targets every confirmed snapshot of every generation covers, or null when they differ (or there is
 * none); an unconfirmed one has no known disks.
 */
function coveredDisks(old: RestorePointOutputs): readonly string[] | null {
  const targets = old.generations.flatMap((g) =>
    confirmedSnapshots(g).map((s) => s.disks.map((d) => d.target).sort()),
  );
  const [first] = targets;
  if (first === undefined || targets.some((t) => canonicalJson(t) !== canonicalJson(first))) return null;
  return first;
}

type RestorePointProperty =
  | (typeof RESTORE_POINT_REPLACE_PROPERTIES)[number]
  | (typeof RESTORE_POINT_UPDATE_PROPERTIES)[number];

/**
 * Compares the stored outputs with the checked new inputs (unknowns during a preview count as changed).
 * An incomplete newest generation, or more generations than `keep` (left by a failed merge), is a change
 * too: `update` completes the generation and merges the surplus. Replacement deletes first when the new
 * restore point's snapshot names could collide with the old ones: the same base name on a domain they share
 * (or a name or domain not known yet), as for a Snapshot. `defaultUri` is what an unset `uri` means now.
 */
export function diffRestorePoint(
  old: RestorePointOutputs,
  news: Partial<Record<keyof RestorePointInputs, unknown>>,
  defaultUri: string,
): RestorePointDiff {
  const record = news as Record<string, unknown>;
  const rules: DiffRules<RestorePointProperty> = {
    replaceProperties: RESTORE_POINT_REPLACE_PROPERTIES,
    updateProperties: RESTORE_POINT_UPDATE_PROPERTIES,
    sameAs: { domains: (next) => sameDomains(old, next) },
    coveredDisks: () => coveredDisks(old),
    mayCollide: () =>
      (isUnknown(record.name) || record.name === old.name) && sharesDomain(old, record.domains),
    unfinished: newestIncomplete(old) || hasSurplus(old),
    defaultUri,
  };
  return diffResource(old, record, rules);
}
