import { isUnknown, type SnapshotInputs } from "./inputs";
import type { SnapshotOutputs } from "./outputs";
import { effectiveUri, redactUri } from "./uri";

/**
 * Pulumi's `diff` for a `Snapshot`: which input changes replace the snapshot, which are applied in place,
 * and when the replacement must wait for the old snapshot to be deleted. Pure: no I/O, tested as a table.
 *
 * - Replace: domain, name, memory, the disk selection (disks/excludeDisks, as sets), uri, triggers. These
 *   are facts of the snapshot on the host, or (triggers) the user's explicit wish for a new one.
 * - Update in place: description (rewritten on the host), deleteStrategy, bandwidth, timeouts (used by later
 *   operations), quiesce, adopt, live and overlayDir (they only steer a create, so changing them later has no
 *   effect on the host and must not destroy a restore point).
 * - A replace property whose new value means what the snapshot already is, is an update in place with no host
 *   action: `uri` set, unset or rewritten so that it resolves to the URI the snapshot was made through (the
 *   stored `connectionUri`), and `disks` going from unset to a list of exactly the disks the snapshot covers.
 * - deleteBeforeReplace when the replacement would have the same snapshot name on the same domain: libvirt
 *   refuses a second snapshot of that name, so the old one is merged away first. This includes a
 *   triggers-only change with a fixed name; a program that wants the old restore point kept until the new
 *   one exists derives the name from what the triggers hold (then the name changes too).
 */

export interface SnapshotDiff {
  readonly changes: boolean;
  readonly replaces: string[];
  readonly deleteBeforeReplace: boolean;
}

export const REPLACE_PROPERTIES = [
  "domain",
  "name",
  "memory",
  "disks",
  "excludeDisks",
  "uri",
  "triggers",
] as const;

export const UPDATE_PROPERTIES = [
  "description",
  "deleteStrategy",
  "bandwidth",
  "timeouts",
  "quiesce",
  "adopt",
  "live",
  "overlayDir",
] as const;

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

export function sameDiskSet(old: readonly string[] | null, next: unknown): boolean {
  if (isUnknown(next)) return false;
  const a = old === null ? null : [...old].sort();
  const b = Array.isArray(next) ? [...next].sort() : null;
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * The same domain: the same input, or the new input names the domain the snapshot was taken of (its name
 * or its UUID, whichever the old input used), so switching between name and UUID replaces nothing.
 */
function sameDomain(old: SnapshotOutputs, next: unknown): boolean {
  if (isUnknown(next) || typeof next !== "string") return false;
  if (next === old.domain || next === old.domainName) return true;
  return next.toLowerCase() === old.domainUuid.toLowerCase();
}

/**
 * Whether a changed `uri` input still names the connection the resource was made through: the effective URI
 * (the input, else the provider default), redacted as outputs store it, equals the stored `connectionUri`.
 */
export function sameConnection(connectionUri: string, next: unknown, defaultUri: string): boolean {
  if (isUnknown(next) || (next !== undefined && next !== null && typeof next !== "string")) return false;
  return redactUri(effectiveUri(next, defaultUri)) === connectionUri;
}

/**
 * Whether `disks` going from unset (`old` null) to the list `next` keeps the selection: the list names
 * exactly the disks the snapshots cover (`covered`, null when that is not one set).
 */
export function sameCoveredDisks(
  old: readonly string[] | null,
  next: unknown,
  covered: readonly string[] | null,
): boolean {
  return old === null && covered !== null && Array.isArray(next) && sameDiskSet(covered, next);
}

export function timeoutsOf(value: unknown): unknown {
  if (isUnknown(value)) return value;
  const t = (value ?? {}) as Record<string, unknown>;
  return { create: orNull(t.create), delete: orNull(t.delete) };
}

function changed(old: SnapshotOutputs, news: Record<string, unknown>, property: string): boolean {
  const next = news[property];
  if (isUnknown(next)) return true;
  switch (property) {
    case "domain":
      return !sameDomain(old, next);
    case "disks":
    case "excludeDisks":
      return !sameDiskSet(old[property], next);
    case "timeouts":
      return canonicalJson(old.timeouts) !== canonicalJson(timeoutsOf(next));
    default:
      return canonicalJson(orNull(old[property as keyof SnapshotOutputs])) !== canonicalJson(orNull(next));
  }
}

/** A changed replace property whose new value means what the snapshot already is (see the module doc). */
function sameEffect(
  old: SnapshotOutputs,
  news: Record<string, unknown>,
  property: string,
  defaultUri: string,
): boolean {
  if (property === "uri") return sameConnection(old.connectionUri, news.uri, defaultUri);
  if (property === "disks") {
    return sameCoveredDisks(
      old.disks,
      news.disks,
      old.snapshotDisks.map((disk) => disk.target),
    );
  }
  return false;
}

/**
 * Compares the stored outputs with the checked new inputs (which may hold unknowns during a preview: an
 * unknown value counts as changed). `defaultUri` is what an unset `uri` means now (the provider default).
 * `changes` is false only when nothing differs.
 */
export function diffSnapshot(
  old: SnapshotOutputs,
  news: Partial<Record<keyof SnapshotInputs, unknown>>,
  defaultUri: string,
): SnapshotDiff {
  const record = news as Record<string, unknown>;
  const differing = REPLACE_PROPERTIES.filter((property) => changed(old, record, property));
  const replaces = differing.filter((property) => !sameEffect(old, record, property, defaultUri));
  const updates = [
    ...UPDATE_PROPERTIES.filter((property) => changed(old, record, property)),
    ...differing.filter((property) => sameEffect(old, record, property, defaultUri)),
  ];
  const collides =
    replaces.length > 0 &&
    !isUnknown(record.name) &&
    record.name === old.name &&
    sameDomain(old, record.domain);
  // While the name or the domain is unknown a collision cannot be ruled out: delete first, to be safe.
  const mayCollide = replaces.length > 0 && (isUnknown(record.name) || isUnknown(record.domain));
  return {
    changes: replaces.length > 0 || updates.length > 0,
    replaces: [...replaces],
    deleteBeforeReplace: collides || mayCollide,
  };
}
