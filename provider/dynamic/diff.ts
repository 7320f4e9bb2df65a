import { type DiffRules, diffResource, type ResourceDiff } from "./diff-rules";
import { isUnknown, type SnapshotInputs } from "./inputs";
import type { SnapshotOutputs } from "./outputs";

/**
 * Pulumi's `diff` for a `Snapshot`: which input changes replace the snapshot, which are applied in place,
 * and when the replacement must wait for the old snapshot to be deleted. The comparison and classification
 * are the shared skeleton of diff-rules.ts; this module holds the Snapshot's rules. Pure: no I/O, tested as
 * a table.
 *
 * - Replace: domain, name, memory, the disk selection (disks/excludeDisks, as sets), uri, triggers. These
 *   are facts of the snapshot on the host, or (triggers) the user's explicit wish for a new one.
 * - Update in place: description (rewritten on the host), deleteStrategy, bandwidth, timeouts (used by later
 *   operations), quiesce, adopt, live and overlayDir (they only steer a create, so changing them later has no
 *   effect on the host and must not destroy a restore point).
 * - `uri` resolving to the stored `connectionUri`, and `disks` going from unset to exactly the disks the
 *   snapshot covers, are updates in place with no host action (see diff-rules.ts).
 * - deleteBeforeReplace when the replacement would have the same snapshot name on the same domain: libvirt
 *   refuses a second snapshot of that name, so the old one is merged away first. This includes a
 *   triggers-only change with a fixed name; a program that wants the old restore point kept until the new
 *   one exists derives the name from what the triggers hold (then the name changes too).
 */

export type SnapshotDiff = ResourceDiff;

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

type SnapshotProperty = (typeof REPLACE_PROPERTIES)[number] | (typeof UPDATE_PROPERTIES)[number];

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
  const rules: DiffRules<SnapshotProperty> = {
    replaceProperties: REPLACE_PROPERTIES,
    updateProperties: UPDATE_PROPERTIES,
    sameAs: { domain: (next) => sameDomain(old, next) },
    coveredDisks: () => old.snapshotDisks.map((disk) => disk.target),
    mayCollide: () =>
      // While the name or the domain is unknown a collision cannot be ruled out: delete first, to be safe.
      isUnknown(record.name) ||
      isUnknown(record.domain) ||
      (record.name === old.name && sameDomain(old, record.domain)),
    unfinished: false,
    defaultUri,
  };
  return diffResource(old, record, rules);
}
