import { z } from "zod";
import { redactUri, uriProblem } from "./uri";

/**
 * The inputs of a `Snapshot` resource as the plugin receives them, their validation (`check`) and their
 * defaults. Pure: no I/O, so every rule is tested as a table.
 */

/**
 * The value Pulumi puts in place of an input that is not known yet during a preview. It may appear anywhere
 * (a whole object, an array element), and validation must never fail because of it.
 */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** True when the value is Pulumi's unknown sentinel. */
export function isUnknown(value: unknown): boolean {
  return value === UNKNOWN;
}

/** True when the value is, or contains at any depth, the unknown sentinel. */
export function containsUnknown(value: unknown): boolean {
  if (isUnknown(value)) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value !== null && typeof value === "object") return Object.values(value).some(containsUnknown);
  return false;
}

export const QUIESCE_MODES = ["auto", "required", "off"] as const;
export type QuiesceMode = (typeof QUIESCE_MODES)[number];

export const DELETE_STRATEGIES = ["blockcommit", "native"] as const;
export type DeleteStrategy = (typeof DELETE_STRATEGIES)[number];

/** Timeouts in seconds; an absent one takes the default in DEFAULT_TIMEOUTS_SECONDS. */
export interface SnapshotTimeouts {
  readonly create?: number;
  readonly delete?: number;
}

/** Used when `timeouts` does not set a value. A merge of a large overlay can take an hour. */
export const DEFAULT_TIMEOUTS_SECONDS = { create: 300, delete: 3600 } as const;

/**
 * The snapshot options a Snapshot and a RestorePoint share, after `check`: defaults applied, optional values
 * absent (never undefined-valued keys). What each option means is documented once, for users, on
 * `SnapshotOptionArgs` (sdk/snapshot-options.ts); this type adds only what `check` guarantees.
 */
export interface SnapshotOptions {
  readonly description?: string;
  readonly memory: boolean;
  readonly live: boolean;
  readonly quiesce: QuiesceMode;
  readonly disks?: readonly string[];
  readonly excludeDisks?: readonly string[];
  readonly overlayDir?: string;
  readonly deleteStrategy: DeleteStrategy;
  /** Bytes per second for merges on delete; absent means unlimited. */
  readonly bandwidth?: number;
  readonly timeouts?: SnapshotTimeouts;
  readonly uri?: string;
}

/** The inputs of a Snapshot after `check`. */
export interface SnapshotInputs extends SnapshotOptions {
  readonly domain: string;
  readonly name: string;
  readonly triggers?: unknown;
  readonly adopt: boolean;
}

/** The defaults `check` applies to absent inputs. `name` has none here: the SDK sets the logical name. */
export const SNAPSHOT_INPUT_DEFAULTS = {
  memory: false,
  live: false,
  quiesce: "auto",
  deleteStrategy: "blockcommit",
  adopt: false,
} as const satisfies Partial<SnapshotInputs>;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
const DISK_TARGET = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

const diskList = z
  .array(z.string().regex(DISK_TARGET, "not a disk target name"))
  .min(1, "must name at least one disk")
  .refine((list) => new Set(list).size === list.length, "lists a disk twice");

const seconds = z
  .number()
  .positive("must be positive")
  .max(7 * 24 * 3600, "must be at most a week");

/** An absolute directory path without `.` or `..` parts (overlay directories). */
export const absoluteDirectory = z
  .string()
  .refine((s) => s.startsWith("/"), "is not an absolute path")
  .refine((s) => !s.split("/").some((part) => part === ".." || part === "."), "contains '.' or '..'");

/** A libvirt URI the client can parse and that holds no credential (see uriProblem). */
export const libvirtUri = z.string().superRefine((s, ctx) => {
  const problem = uriProblem(s);
  if (problem !== null) ctx.addIssue({ code: "custom", message: problem });
});

const snapshotInputSchema = z
  .object({
    domain: z
      .string()
      .min(1, "must not be empty")
      .refine((s) => !CONTROL_CHARACTERS.test(s), "contains control characters"),
    name: z
      .string()
      .min(1, "must not be empty")
      .max(200, "is longer than 200 characters")
      .refine((s) => !s.includes("/"), "contains '/', which libvirt refuses in snapshot names")
      .refine((s) => !s.startsWith("."), "starts with '.', which libvirt refuses in snapshot names")
      .refine((s) => !CONTROL_CHARACTERS.test(s), "contains control characters"),
    description: z.string().optional(),
    memory: z.boolean(),
    live: z.boolean(),
    quiesce: z.enum(QUIESCE_MODES),
    disks: diskList.optional(),
    excludeDisks: diskList.optional(),
    overlayDir: absoluteDirectory
      .refine((s) => !CONTROL_CHARACTERS.test(s), "contains control characters")
      .optional(),
    deleteStrategy: z.enum(DELETE_STRATEGIES),
    bandwidth: z
      .number()
      .int("must be a whole number of bytes per second")
      .positive("must be positive")
      .max(Number.MAX_SAFE_INTEGER)
      .optional(),
    timeouts: z.object({ create: seconds.optional(), delete: seconds.optional() }).strict().optional(),
    uri: libvirtUri.optional(),
    triggers: z.unknown().optional(),
    adopt: z.boolean(),
  })
  .strict();

/** How to fix a failing property, by top-level property name. */
export const INPUT_FIXES = {
  domain: "set it to the name or UUID of a libvirt domain",
  name: "use a name without '/' that does not start with '.'",
  description: "use a string",
  memory: "use true (disk and memory state) or false (disks only)",
  live: "use a boolean; live applies only with memory: true",
  quiesce: `use one of ${QUIESCE_MODES.join(", ")}`,
  disks: 'list disk targets as in the domain XML, e.g. ["vda"]',
  excludeDisks: 'list disk targets as in the domain XML, e.g. ["vdb"]',
  overlayDir: "use an absolute directory path such as /var/lib/libvirt/images/snapshots",
  deleteStrategy: `use one of ${DELETE_STRATEGIES.join(", ")}`,
  bandwidth: "give the merge speed limit in bytes per second, or leave it out for no limit",
  timeouts: "give { create, delete } in seconds",
  uri: "use a URI such as qemu+ssh://user@host/system; put credentials in the stack config (pulumi config set --secret libvirt-snapshot:uri ...)",
  adopt: "use a boolean",
} as const satisfies Record<string, string>;

/** A validation failure as Pulumi shows it: `property` is a path such as `timeouts.create` or `disks[1]`. */
export interface CheckFailure {
  readonly property: string;
  readonly reason: string;
}

export interface CheckResult {
  readonly inputs: Record<string, unknown>;
  readonly failures: CheckFailure[];
}

/** Formats a zod path the way Pulumi names nested properties: `a.b[2].c`. */
export function propertyPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** The value at `path` in `root`, or undefined where the path leads nowhere. */
function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const part of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

/** Renders a value for a failure message, never showing a credential. */
function describeValue(path: readonly PropertyKey[], value: unknown): string {
  if (path[0] === "uri" && typeof value === "string") return JSON.stringify(redactUri(value));
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/**
 * The check failures for a schema's issues on `inputs`: each names the property path, the value it got (a URI
 * redacted, a long value shortened) and the fix, from `fixes` by top-level property. An issue on a value that
 * holds the preview's unknown sentinel is no failure. Pure.
 */
export function schemaFailures(
  issues: z.ZodError["issues"],
  inputs: Record<string, unknown>,
  fixes: Readonly<Record<string, string>>,
): CheckFailure[] {
  const failures: CheckFailure[] = [];
  for (const issue of issues) {
    const unrecognized = issue.code === "unrecognized_keys";
    const paths = unrecognized ? issue.keys.map((key) => [...issue.path, key]) : [issue.path];
    for (const path of paths) {
      const value = valueAt(inputs, path);
      if (containsUnknown(value)) continue;
      const top = String(path[0] ?? "");
      const fix = unrecognized ? "remove it (no such input)" : (fixes[top] ?? "see the docs");
      const problem = unrecognized ? "unknown property" : value === undefined ? "is required" : issue.message;
      failures.push({
        property: propertyPath(path),
        reason: `${problem} (got ${describeValue(path, value)}); ${fix}`,
      });
    }
  }
  return failures;
}

/** Rules across properties; each is skipped while a value it needs is unknown. */
function crossPropertyFailures(inputs: Record<string, unknown>): CheckFailure[] {
  const failures: CheckFailure[] = [];
  const { memory, live, quiesce, disks, excludeDisks } = inputs;
  if (live === true && memory === false) {
    failures.push({
      property: "live",
      reason:
        "live: true applies only to memory snapshots (got memory: false); set memory: true or remove live",
    });
  }
  if (quiesce === "required" && memory === true) {
    failures.push({
      property: "quiesce",
      reason:
        'quiesce: "required" cannot be combined with memory: true (libvirt quiesces disk-only snapshots); ' +
        'use quiesce: "auto" or "off", or memory: false',
    });
  }
  if (disks !== undefined && excludeDisks !== undefined && !isUnknown(disks) && !isUnknown(excludeDisks)) {
    failures.push({
      property: "excludeDisks",
      reason:
        `disks and excludeDisks cannot both be set (got disks: ${describeValue(["disks"], disks)}, ` +
        `excludeDisks: ${describeValue(["excludeDisks"], excludeDisks)}); keep one of them`,
    });
  }
  return failures;
}

/** Drops keys whose value is undefined, which the plugin cannot serialize. */
export function withoutUndefined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}

/**
 * Pulumi's `check`: applies defaults and validates. Every failure names the property path, the value and
 * the fix. Values that are unknown during a preview (the sentinel, anywhere) never fail. The returned inputs
 * keep every property of `news` other than `__provider` (the plugin adds that back), with defaults filled in.
 * `olds` is not used: validation does not depend on the previous inputs.
 */
export function checkSnapshotInputs(news: Record<string, unknown>): CheckResult {
  const { __provider: _provider, ...given } = news;
  const inputs = { ...SNAPSHOT_INPUT_DEFAULTS, ...withoutUndefined(given) };
  const parsed = snapshotInputSchema.safeParse(inputs);
  const failures = parsed.success ? [] : schemaFailures(parsed.error.issues, inputs, INPUT_FIXES);
  failures.push(...crossPropertyFailures(inputs));
  return { inputs, failures };
}
