import {
  OutputsSchemaError,
  optionOutputs,
  optionsFromOutputs,
  type SnapshotDiskOutput,
  type SnapshotFacts,
  type SnapshotOptionOutputs,
  toPlainJson,
} from "./outputs";
import type { ConsistencyMode, RestorePointInputs } from "./restore-point-inputs";

/**
 * The outputs of a `RestorePoint` resource: every input echoed (Pulumi hands `diff`, `read`, `update` and
 * `delete` the old outputs), the URI used without credentials, and the generations that exist on the host.
 * Plain JSON only (absent optional values are null). Versioned like the Snapshot's outputs: readers accept
 * every earlier `schemaVersion` and refuse a newer one.
 */

/** The layout written by this version of the package. */
export const RESTORE_POINT_OUTPUTS_SCHEMA_VERSION = 1;

/** One domain's snapshot of a generation. */
export interface GenerationSnapshot {
  /** The domain as given in `domains` (name or UUID). */
  readonly domain: string;
  /** The domain's name on the host. */
  readonly domainName: string;
  readonly domainUuid: string;
  readonly snapshotName: string;
  /** ISO 8601, UTC. */
  readonly creationTime: string;
  /** Per disk: the overlay the snapshot created and the point-in-time image below it. */
  readonly disks: readonly SnapshotDiskOutput[];
  /**
   * Present (true) only on an entry the host's facts do not back: its create failed and reading it back
   * failed too, so the snapshot may exist. `domainName` and `domainUuid` are the ones the stack's other
   * snapshots of the domain record (the domain as given when none does), `creationTime` is "" and `disks` is
   * empty. It is recorded so that nothing is orphaned: delete merges it (a snapshot that is gone counts as
   * merged), read replaces it with the host's facts or drops it, and its generation counts as incomplete, so
   * the next update takes it again. Absent on every other entry. An addition within schema version 1: a
   * package that predates it reads such an entry as a snapshot with no disks, which its read and delete
   * still handle (they need only the domain and the snapshot name).
   */
  readonly unconfirmed?: true;
}

/** One generation: the snapshots taken together for one value of the triggers. */
export interface Generation {
  /** 1 for the one taken at create, one more for each triggers change. */
  readonly number: number;
  /** The triggers value the generation was taken for. */
  readonly triggers: unknown;
  /** When the provider took it, ISO 8601 UTC. */
  readonly createdAt: string;
  /** In the order of `domains`; a snapshot deleted out of band drops out at the next refresh. */
  readonly snapshots: readonly GenerationSnapshot[];
}

/** Schema version 1 of the outputs. */
export interface RestorePointOutputs extends SnapshotOptionOutputs {
  readonly schemaVersion: typeof RESTORE_POINT_OUTPUTS_SCHEMA_VERSION;
  // Inputs, echoed (after defaults); the shared options come from SnapshotOptionOutputs.
  readonly domains: readonly string[];
  readonly name: string;
  readonly triggers: unknown;
  readonly keep: number;
  readonly consistency: ConsistencyMode;
  // From the host.
  /** The URI the last operation used, without credentials. */
  readonly connectionUri: string;
  /** Oldest first. */
  readonly generations: readonly Generation[];
}

/** The entry of one domain's snapshot, from the host's facts. */
export function generationSnapshot(domain: string, facts: SnapshotFacts): GenerationSnapshot {
  return {
    domain,
    domainName: facts.domainName,
    domainUuid: facts.domainUuid,
    snapshotName: facts.snapshotName,
    creationTime: facts.creationTime,
    disks: facts.disks.map((disk) => ({ ...disk })),
  };
}

/**
 * The entry of a snapshot that may exist although its facts could not be read (see `unconfirmed`): the
 * domain's name and UUID are taken from a snapshot of the same domain in `stored` (the generations the stack
 * records), else both are the domain as given, which the host resolves as a name or a UUID. Pure.
 */
export function unconfirmedSnapshot(
  domain: string,
  snapshotName: string,
  stored: readonly Generation[],
): GenerationSnapshot {
  const known = stored.flatMap((g) => g.snapshots).find((s) => s.domain === domain && !s.unconfirmed);
  return {
    domain,
    domainName: known?.domainName ?? domain,
    domainUuid: known?.domainUuid ?? domain,
    snapshotName,
    creationTime: "",
    disks: [],
    unconfirmed: true,
  };
}

/** The snapshots of `generation` the host's facts back (every one but the `unconfirmed`). */
export function confirmedSnapshots(generation: Generation): readonly GenerationSnapshot[] {
  return generation.snapshots.filter((s) => s.unconfirmed !== true);
}

/** The complete outputs from the checked inputs and the generations that exist. */
export function buildRestorePointOutputs(
  inputs: RestorePointInputs,
  generations: readonly Generation[],
  connectionUri: string,
): RestorePointOutputs {
  return {
    schemaVersion: RESTORE_POINT_OUTPUTS_SCHEMA_VERSION,
    domains: [...inputs.domains],
    name: inputs.name,
    triggers: toPlainJson(inputs.triggers),
    keep: inputs.keep,
    consistency: inputs.consistency,
    ...optionOutputs(inputs),
    connectionUri,
    generations: toPlainJson(generations) as Generation[],
  };
}

/** The inputs recorded in outputs, in the shape `check` produces (absent instead of null). */
export function restorePointInputsFromOutputs(outputs: RestorePointOutputs): RestorePointInputs {
  return {
    domains: outputs.domains,
    name: outputs.name,
    ...(outputs.triggers === null ? {} : { triggers: outputs.triggers }),
    keep: outputs.keep,
    consistency: outputs.consistency,
    ...optionsFromOutputs(outputs),
  };
}

/**
 * Reads outputs stored by any version of this package, in the current layout; refuses a newer layout with an
 * error that says to upgrade. Pure; `__provider` is dropped.
 */
export function readRestorePointOutputs(stored: Record<string, unknown>): RestorePointOutputs {
  const version = stored.schemaVersion;
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
    throw new OutputsSchemaError(
      `stored state of this restore point has no valid schemaVersion (got ${JSON.stringify(version)}); ` +
        "it was not written by pulumi-libvirt-snapshot: run `pulumi refresh` or remove it from the stack",
    );
  }
  if (version > RESTORE_POINT_OUTPUTS_SCHEMA_VERSION) {
    throw new OutputsSchemaError(
      `stored state of this restore point has schemaVersion ${version}, newer than this package understands ` +
        `(${RESTORE_POINT_OUTPUTS_SCHEMA_VERSION}); upgrade pulumi-libvirt-snapshot in the program`,
    );
  }
  const { __provider: _provider, ...outputs } = stored;
  return outputs as unknown as RestorePointOutputs;
}

/** The resource id: the base name and the domains' UUIDs, in the order of `domains`. */
export function restorePointId(name: string, domainUuids: readonly string[]): string {
  return `${name}@${domainUuids.join(",")}`;
}
