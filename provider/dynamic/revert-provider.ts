import { z } from "zod";
import { resolveDomain } from "../engine/domain-ref";
import { EngineErrorKind, isEngineError } from "../engine/errors";
import { type RevertResult, revertSnapshot } from "../engine/revert";
import type { RevertTargetState } from "../engine/revert-plan";
import type { ConnectionCache } from "./connections";
import { canonicalJson } from "./diff-rules";
import {
  absoluteDirectory,
  type CheckResult,
  INPUT_FIXES,
  libvirtUri,
  schemaFailures,
  withoutUndefined,
} from "./inputs";
import { toPlainJson } from "./outputs";
import { effectiveUri, providerDefaultUri, redactUri, URI_CONFIG_KEY } from "./uri";

/**
 * The `Revert` resource's methods, in the shape of Pulumi's `dynamic.ResourceProvider`: creating the resource
 * reverts a domain to a snapshot (the break-glass step of a runbook, kept in code and review), and a change of
 * `triggers`, `snapshot` or any other revert input replaces it, which reverts again. Deleting it changes
 * nothing on the host: a revert is an event, not an object; to undo one, revert to the snapshot it kept
 * (`savedAs`, with `keepCurrent`, the default).
 *
 * Failure contract, per method:
 * - create: not idempotent (each call starts a new branch from the snapshot). A failure rejects plainly; what
 *   the host was left with is in the engine's message (the kept snapshot's name included), nothing is
 *   recorded in the stack. The timeout (`timeouts.create`, default 600 s) gives up waiting; the engine call in
 *   flight is not interrupted and finishes or fails on the host.
 * - read: never changes the host; `{ id: "" }` when the domain is gone, else the recorded outputs.
 * - update: only `timeouts` changes in place; nothing is sent to the host.
 * - delete: nothing is sent to the host.
 */

/** Layout version of the stored outputs; readers accept every earlier version. */
export const REVERT_OUTPUTS_SCHEMA_VERSION = 1;

const TARGET_STATES = ["snapshot", "running", "paused", "shutoff"] as const;
const DEFAULT_CREATE_TIMEOUT_SECONDS = 600;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

const text = z
  .string()
  .min(1, "must not be empty")
  .refine((s) => !CONTROL_CHARACTERS.test(s), "contains control characters");

const revertInputSchema = z
  .object({
    domain: text,
    snapshot: text.refine((s) => !s.includes("/") && !s.startsWith("."), "is not a libvirt snapshot name"),
    targetState: z.enum(TARGET_STATES),
    keepCurrent: z.boolean(),
    discardNewer: z.boolean(),
    overlayDir: absoluteDirectory.optional(),
    timeouts: z
      .object({
        create: z
          .number()
          .positive("must be positive")
          .max(24 * 3600, "must be at most a day")
          .optional(),
      })
      .strict()
      .optional(),
    uri: libvirtUri.optional(),
    triggers: z.unknown().optional(),
  })
  .strict();

export type RevertInputs = z.infer<typeof revertInputSchema>;

/** Applied to absent inputs by `check`. keepCurrent defaults to true: a break-glass revert stays undoable. */
export const REVERT_INPUT_DEFAULTS = {
  targetState: "snapshot",
  keepCurrent: true,
  discardNewer: false,
} as const;

/** Inputs whose change means a new revert (replacement); `timeouts` alone changes in place. */
export const REVERT_REPLACE_PROPERTIES = [
  "domain",
  "snapshot",
  "targetState",
  "keepCurrent",
  "discardNewer",
  "overlayDir",
  "uri",
  "triggers",
] as const;

/** What the host did, as stored in the outputs. */
export interface RevertFacts {
  readonly domainUuid: string;
  readonly domainName: string;
  /** ISO 8601, UTC. */
  readonly revertedAt: string;
  readonly strategy: "native" | "recipe";
  readonly state: "running" | "paused" | "shutoff";
  readonly memoryRestored: boolean;
  readonly overlays: readonly { readonly target: string; readonly path: string; readonly backing: string }[];
  readonly savedAs: string | null;
  readonly discarded: readonly string[];
  readonly removedFiles: readonly string[];
  readonly notes: readonly string[];
}

export type RevertOutputs = { readonly schemaVersion: number } & Omit<RevertInputs, "triggers"> & {
    readonly triggers: unknown;
    readonly connectionUri: string;
  } & RevertFacts;

/** The host operations the Revert resource needs; unit tests substitute a fake. */
export interface RevertHost {
  revert(inputs: RevertInputs, signal: AbortSignal): Promise<RevertFacts>;
  /** The domain's identity, or null when it does not exist. */
  domain(domain: string, signal: AbortSignal): Promise<{ name: string; uuid: string } | null>;
}

/** Gives up waiting when `signal` aborts (the operation itself runs on). */
function raceAbort<T>(operation: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    operation.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The engine behind a RevertHost: every URI's operations go through the plugin's cached connection. */
export function engineRevertHostFactory(connections: ConnectionCache): (uri: string) => RevertHost {
  return (uri) => ({
    async revert(inputs, signal) {
      const work = (async () => {
        const connection = await connections.get(uri);
        const result = await revertSnapshot(connection, inputs.domain, inputs.snapshot, {
          targetState: inputs.targetState as RevertTargetState,
          keepCurrent: inputs.keepCurrent,
          discardNewer: inputs.discardNewer,
          ...(inputs.overlayDir === undefined ? {} : { overlayDir: inputs.overlayDir }),
        });
        return factsOf(result, new Date());
      })();
      return raceAbort(work, signal);
    },
    async domain(domain, signal) {
      const work = (async () => {
        try {
          const ref = await resolveDomain(await connections.get(uri), domain);
          return { name: ref.name, uuid: ref.uuid };
        } catch (error) {
          if (isEngineError(error) && error.kind === EngineErrorKind.DOMAIN_NOT_FOUND) return null;
          throw error;
        }
      })();
      return raceAbort(work, signal);
    },
  });
}

/** The facts stored for an engine result. Pure. */
export function factsOf(result: RevertResult, at: Date): RevertFacts {
  return {
    domainUuid: result.domain.uuid,
    domainName: result.domain.name,
    revertedAt: at.toISOString(),
    strategy: result.strategy,
    state: result.state,
    memoryRestored: result.memoryRestored,
    overlays: result.overlays.map((o) => ({ ...o })),
    savedAs: result.savedAs ?? null,
    discarded: [...result.discarded],
    removedFiles: [...result.removedFiles],
    notes: [...result.notes],
  };
}

/** How to fix a failing Revert input, by top-level property name. */
const REVERT_FIXES: Record<string, string> = {
  domain: INPUT_FIXES.domain,
  snapshot:
    "give the name of one of the domain's snapshots (libvirt snapshot names have no '/' and do not start with '.')",
  targetState: `use one of ${TARGET_STATES.join(", ")}`,
  keepCurrent: "use a boolean",
  discardNewer: "use a boolean",
  overlayDir: INPUT_FIXES.overlayDir,
  timeouts: "give { create } in seconds",
  uri: INPUT_FIXES.uri,
};

/**
 * Pulumi's `check` for a Revert: defaults, then validation; every failure names the property path, the value
 * and the fix, and preview-unknown values never fail. Pure.
 */
export function checkRevertInputs(news: Record<string, unknown>): CheckResult {
  const { __provider: _provider, ...given } = news;
  const inputs: Record<string, unknown> = { ...REVERT_INPUT_DEFAULTS, ...withoutUndefined(given) };
  const parsed = revertInputSchema.safeParse(inputs);
  const failures = parsed.success ? [] : schemaFailures(parsed.error.issues, inputs, REVERT_FIXES);
  if (inputs.keepCurrent === true && inputs.discardNewer === true) {
    failures.push({
      property: "discardNewer",
      reason:
        "discardNewer: true cannot be combined with keepCurrent: true (the kept state would be one of the newer " +
        "snapshots); set keepCurrent: false to discard the newer snapshots, or remove discardNewer",
    });
  }
  return { inputs, failures };
}

/** Pulumi's `diff`: any revert input replaces (a new revert); `timeouts` alone updates in place. Pure. */
export function diffRevert(olds: Record<string, unknown>, news: Record<string, unknown>) {
  const same = (key: string) => canonicalJson(olds[key] ?? null) === canonicalJson(news[key] ?? null);
  const replaces = REVERT_REPLACE_PROPERTIES.filter((key) => !same(key));
  return {
    changes: replaces.length > 0 || !same("timeouts"),
    replaces: [...replaces],
    deleteBeforeReplace: false,
  };
}

function outputsOf(inputs: RevertInputs, facts: RevertFacts, connectionUri: string): RevertOutputs {
  const { triggers, ...rest } = inputs;
  return {
    schemaVersion: REVERT_OUTPUTS_SCHEMA_VERSION,
    ...rest,
    triggers: toPlainJson(triggers),
    connectionUri,
    ...facts,
  };
}

/** Reads stored outputs of any earlier layout; refuses a newer one with a message that says to upgrade. */
export function readRevertOutputs(stored: Record<string, unknown>): RevertOutputs {
  const version = stored.schemaVersion;
  if (typeof version !== "number" || version < 1 || version > REVERT_OUTPUTS_SCHEMA_VERSION) {
    throw new Error(
      `stored state of this Revert has schemaVersion ${JSON.stringify(version)}, which this package does not ` +
        `understand (it writes ${REVERT_OUTPUTS_SCHEMA_VERSION}); upgrade pulumi-libvirt-snapshot in the program`,
    );
  }
  const { __provider: _provider, ...outputs } = stored;
  return outputs as unknown as RevertOutputs;
}

export interface RevertProviderOptions {
  readonly hostFor: (uri: string) => RevertHost;
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: (line: string) => void;
}

type Props = Record<string, unknown>;

/** Builds the implementation that `providerImplementations.revert` exposes to the serialized shim. */
export function createRevertProvider(options: RevertProviderOptions) {
  const log = options.log ?? ((line: string) => console.log(line));
  let defaultUri = providerDefaultUri(undefined, options.env ?? process.env);
  const uriOf = (uri: string | null | undefined) => effectiveUri(uri, defaultUri);
  const seconds = (inputs: { timeouts?: { create?: number } | null }) =>
    inputs.timeouts?.create ?? DEFAULT_CREATE_TIMEOUT_SECONDS;

  return {
    async configure(request: { config: { get(key: string): string | undefined } }) {
      // Read synchronously, before any await: the plugin may call other methods before this settles.
      defaultUri = providerDefaultUri(request.config.get(URI_CONFIG_KEY), options.env ?? process.env);
    },
    async check(_olds: Props, news: Props) {
      return checkRevertInputs(news);
    },
    async diff(_id: string, olds: Props, news: Props) {
      return diffRevert(olds, news);
    },
    async create(props: Props) {
      const inputs = props as unknown as RevertInputs;
      const uri = uriOf(inputs.uri);
      const limit = seconds(inputs);
      log(`${inputs.domain}: reverting to snapshot ${inputs.snapshot}`);
      const facts = await options
        .hostFor(uri)
        .revert(inputs, AbortSignal.timeout(limit * 1000))
        .catch((error: unknown) => {
          if (!(error instanceof DOMException && error.name === "TimeoutError")) throw error;
          throw new Error(
            `reverting ${inputs.domain} to snapshot ${inputs.snapshot} did not finish within ${limit} s; it may still complete on the host (check the domain before retrying); raise timeouts.create if the host is slow`,
            { cause: error },
          );
        });
      for (const note of facts.notes) log(`${facts.domainName}: ${note}`);
      const outs = outputsOf(inputs, facts, redactUri(uri));
      return { id: `${facts.domainUuid}/${facts.revertedAt}`, outs };
    },
    async read(id: string, props: Props) {
      const old = readRevertOutputs(props);
      const found = await options
        .hostFor(uriOf(old.uri))
        .domain(old.domainUuid, AbortSignal.timeout(seconds(old) * 1000));
      return found === null ? { id: "" } : { id, props: { ...old, domainName: found.name } };
    },
    async update(_id: string, olds: Props, news: Props) {
      const old = readRevertOutputs(olds);
      const next = news as unknown as RevertInputs;
      return { outs: { ...old, timeouts: next.timeouts ?? null } as unknown as RevertOutputs };
    },
    async delete(_id: string, props: Props) {
      const old = readRevertOutputs(props);
      log(`${old.domainName}: the Revert resource is removed from the stack; the domain is left as it is`);
    },
  };
}

export type RevertProviderImplementation = ReturnType<typeof createRevertProvider>;
