import { z } from "zod";
import {
  type CheckFailure,
  type CheckResult,
  checkSnapshotInputs,
  isUnknown,
  SNAPSHOT_INPUT_DEFAULTS,
  type SnapshotOptions,
  schemaFailures,
  UNKNOWN,
  withoutUndefined,
} from "./inputs";

/**
 * The inputs of a `RestorePoint` resource, their defaults and their validation (`check`). Pure: no I/O.
 *
 * The options a RestorePoint shares with a Snapshot (description, memory, live, quiesce, disks, excludeDisks,
 * overlayDir, deleteStrategy, bandwidth, timeouts, uri) and each domain are validated by the Snapshot's own
 * `check`, run once per domain on the snapshot the first generation would create there, so both resources
 * accept and refuse exactly the same values. Only what is RestorePoint's own is validated here.
 */

export const CONSISTENCY_MODES = ["crash", "paused"] as const;
/**
 * `crash`: every domain is snapshotted on its own, in parallel; `paused`: every running domain is paused,
 * all are snapshotted, and the ones paused for it are resumed, so all are captured at one instant.
 */
export type ConsistencyMode = (typeof CONSISTENCY_MODES)[number];

/** The most generations a restore point keeps; each is a layer of every disk's backing chain. */
export const MAX_KEEP = 64;

/** The inputs after `check`: defaults applied, optional values absent. */
export interface RestorePointInputs extends SnapshotOptions {
  readonly domains: readonly string[];
  /** Base name of the generations' snapshots (`<name>-<generation number>`). */
  readonly name: string;
  readonly triggers?: unknown;
  readonly keep: number;
  readonly consistency: ConsistencyMode;
}

/** Defaults `check` applies to absent inputs (`name` has none here: the SDK sets the logical name). */
export const RESTORE_POINT_INPUT_DEFAULTS = {
  keep: 1,
  consistency: "crash",
  memory: SNAPSHOT_INPUT_DEFAULTS.memory,
  live: SNAPSHOT_INPUT_DEFAULTS.live,
  quiesce: SNAPSHOT_INPUT_DEFAULTS.quiesce,
  deleteStrategy: SNAPSHOT_INPUT_DEFAULTS.deleteStrategy,
} as const satisfies Partial<RestorePointInputs>;

/** The snapshot name of generation `number` of a restore point named `base`. */
export function generationName(base: string, number: number): string {
  return `${base}-${number}`;
}

/** RestorePoint's own inputs; everything else goes through the Snapshot's check. */
const ownSchema = z.object({
  domains: z
    .array(z.unknown())
    .min(1, "must name at least one domain")
    .refine((list) => new Set(list).size === list.length, "lists a domain twice"),
  keep: z
    .number()
    .int("must be a whole number")
    .min(1, "must be at least 1")
    .max(MAX_KEEP, `must be at most ${MAX_KEEP}`),
  consistency: z.enum(CONSISTENCY_MODES),
});

const OWN_FIXES: Record<string, string> = {
  domains: 'list the names or UUIDs of the domains to snapshot together, e.g. ["web-1", "db-1"]',
  keep: "give how many generations to keep (1 keeps only the newest)",
  consistency: `use one of ${CONSISTENCY_MODES.join(", ")}`,
};

function ownFailures(inputs: Record<string, unknown>): CheckFailure[] {
  const parsed = ownSchema.safeParse(inputs);
  return parsed.success ? [] : schemaFailures(parsed.error.issues, inputs, OWN_FIXES);
}

/** Where a failure of the Snapshot check on domain `index` belongs among the RestorePoint's inputs. */
function restorePointProperty(property: string, index: number): string {
  if (property === "domain") return `domains[${index}]`;
  return property;
}

/**
 * Pulumi's `check` for a RestorePoint: applies defaults and validates; every failure names the property path
 * (`domains[1]`, `timeouts.create`), the value and the fix. Preview-unknown values never fail. The returned
 * inputs keep every given property but `__provider` (the plugin adds it back).
 */
export function checkRestorePointInputs(news: Record<string, unknown>): CheckResult {
  const { __provider: _provider, ...given } = news;
  const inputs: Record<string, unknown> = { ...RESTORE_POINT_INPUT_DEFAULTS, ...withoutUndefined(given) };
  const failures = ownFailures(inputs);

  // The Snapshot check on what generation 1 would be on each domain: same rules, same messages.
  const { domains, keep: _keep, consistency: _consistency, triggers: _triggers, name, ...options } = inputs;
  const snapshotName = typeof name === "string" ? generationName(name, 1) : name;
  const domainList = Array.isArray(domains) ? domains : [isUnknown(domains) ? UNKNOWN : "placeholder"];
  const seen = new Set<string>();
  domainList.forEach((domain, index) => {
    const result = checkSnapshotInputs({ ...options, domain, name: snapshotName, adopt: false });
    for (const failure of result.failures) {
      // A domains value that is not a list is reported above, once.
      if (failure.property === "domain" && !Array.isArray(domains)) continue;
      const property = restorePointProperty(failure.property, index);
      const reason =
        failure.property === "name"
          ? failure.reason.replace(`"${String(snapshotName)}"`, JSON.stringify(name))
          : failure.reason;
      const key = `${property}\n${reason}`;
      if (seen.has(key)) continue;
      seen.add(key);
      failures.push({ property, reason });
    }
  });

  if (given.adopt !== undefined) {
    // A generation's snapshot is adopted only when this package made it (a retry); never someone else's.
    failures.push({
      property: "adopt",
      reason: `unknown property (got ${JSON.stringify(given.adopt) ?? String(given.adopt)}); remove it (no such input)`,
    });
  }
  if (inputs.consistency === "paused" && inputs.quiesce === "required") {
    failures.push({
      property: "quiesce",
      reason:
        'quiesce: "required" cannot be combined with consistency: "paused" (a paused guest\'s agent cannot ' +
        'freeze its file systems); use quiesce: "auto" or "off", or consistency: "crash"',
    });
  }
  return { inputs, failures };
}
