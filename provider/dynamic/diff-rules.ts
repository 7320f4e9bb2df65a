import { isUnknown } from "./inputs";
import { effectiveUri, redactUri } from "./uri";

/**
 * The skeleton of Pulumi's `diff` for the resources made of snapshots (Snapshot in diff.ts, RestorePoint in
 * restore-point-plan.ts): the stored outputs are compared with the checked new inputs property by property,
 * each changed property either replaces the resource or is applied in place, and a replacement deletes first
 * when the new snapshots could collide with the old ones. Each resource supplies its property lists, how its
 * domains compare, which disks its snapshots cover and when a collision is possible. Pure: no I/O.
 *
 * Rules every such resource shares:
 * - An unknown value (the preview sentinel) counts as changed.
 * - Absent and null are the same "not set"; objects compare whatever their key order; `disks` and
 *   `excludeDisks` compare as sets; `timeouts` compares per key, absent meaning null.
 * - A changed replace property whose new value means what the resource already is, is an update in place
 *   with no host action: `uri` set, unset or rewritten so that it resolves to the URI the resource was made
 *   through (the stored `connectionUri`), and `disks` going from unset to exactly the disks its snapshots
 *   cover.
 */

/** Pulumi's answer to `diff`. */
export interface ResourceDiff {
  readonly changes: boolean;
  readonly replaces: string[];
  readonly deleteBeforeReplace: boolean;
}

/** What every resource made of snapshots stores of the options the diff compares in its own way. */
export interface StoredSnapshotOptions {
  readonly disks: readonly string[] | null;
  readonly excludeDisks: readonly string[] | null;
  readonly timeouts: { readonly create: number | null; readonly delete: number | null };
  /** The URI the resource was last reached through, without credentials. */
  readonly connectionUri: string;
}

/** What one resource adds to the skeleton. */
export interface DiffRules<Property extends string> {
  /** Properties whose change makes a new resource, in the order `replaces` lists them. */
  readonly replaceProperties: readonly Property[];
  /** Properties whose change `update` applies in place. */
  readonly updateProperties: readonly Property[];
  /** Properties whose stored value is not the input echoed: whether the new (known) value means the same. */
  readonly sameAs: Partial<Record<Property, (next: unknown) => boolean>>;
  /** The disk targets the resource's snapshots cover, or null when they are not one set. */
  readonly coveredDisks: () => readonly string[] | null;
  /** Whether a replacement could have a snapshot name the old resource holds on the same domain. */
  readonly mayCollide: () => boolean;
  /** Whether `update` has host work to finish though no input changed (a failure part-way left it). */
  readonly unfinished: boolean;
  /** What an unset `uri` means now (the provider default). */
  readonly defaultUri: string;
}

/** JSON with sorted object keys: equal for values that are equal whatever the key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** Absent and null are the same "not set" in inputs and outputs. */
function orNull(value: unknown): unknown {
  return value === undefined ? null : value;
}

function sameDiskSet(old: readonly string[] | null, next: unknown): boolean {
  if (isUnknown(next)) return false;
  const a = old === null ? null : [...old].sort();
  const b = Array.isArray(next) ? [...next].sort() : null;
  return canonicalJson(a) === canonicalJson(b);
}

/** The `timeouts` input in the form outputs store it (both keys, null when absent). */
function timeoutsOf(value: unknown): unknown {
  if (isUnknown(value)) return value;
  const t = (value ?? {}) as Record<string, unknown>;
  return { create: orNull(t.create), delete: orNull(t.delete) };
}

/**
 * Whether a changed `uri` input still names the connection the resource was made through: the effective URI
 * (the input, else the provider default), redacted as outputs store it, equals the stored `connectionUri`.
 */
function sameConnection(connectionUri: string, next: unknown, defaultUri: string): boolean {
  if (isUnknown(next) || (next !== undefined && next !== null && typeof next !== "string")) return false;
  return redactUri(effectiveUri(next, defaultUri)) === connectionUri;
}

/**
 * Compares the stored outputs with the checked new inputs (which may hold unknowns during a preview) under
 * `rules`. `changes` is false only when no property differs and nothing is unfinished; `deleteBeforeReplace`
 * only when something replaces and `rules.mayCollide()`.
 */
export function diffResource<Property extends string>(
  stored: StoredSnapshotOptions,
  news: Record<string, unknown>,
  rules: DiffRules<Property>,
): ResourceDiff {
  const old = stored as unknown as Record<string, unknown>;
  const changed = (property: Property): boolean => {
    const next = news[property];
    if (isUnknown(next)) return true;
    const sameAs = rules.sameAs[property];
    if (sameAs !== undefined) return !sameAs(next);
    switch (property) {
      case "disks":
      case "excludeDisks":
        return !sameDiskSet(stored[property as "disks" | "excludeDisks"], next);
      case "timeouts":
        return canonicalJson(stored.timeouts) !== canonicalJson(timeoutsOf(next));
      default:
        return canonicalJson(orNull(old[property])) !== canonicalJson(orNull(next));
    }
  };
  const sameEffect = (property: Property): boolean => {
    if (property === "uri") return sameConnection(stored.connectionUri, news.uri, rules.defaultUri);
    if (property !== "disks") return false;
    const covered = rules.coveredDisks();
    return (
      stored.disks === null &&
      covered !== null &&
      Array.isArray(news.disks) &&
      sameDiskSet(covered, news.disks)
    );
  };
  const differing = rules.replaceProperties.filter(changed);
  const replaces = differing.filter((property) => !sameEffect(property));
  const updates = [...rules.updateProperties.filter(changed), ...differing.filter(sameEffect)];
  return {
    changes: replaces.length > 0 || updates.length > 0 || rules.unfinished,
    replaces: [...replaces],
    deleteBeforeReplace: replaces.length > 0 && rules.mayCollide(),
  };
}
