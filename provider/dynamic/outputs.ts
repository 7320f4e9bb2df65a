import type { DeleteStrategy, QuiesceMode, SnapshotInputs, SnapshotOptions } from "./inputs";

/**
 * The outputs of a `Snapshot` resource: every input echoed (Pulumi hands `diff`, `read`, `update` and
 * `delete` the old outputs, not the old inputs), plus what the host says about the snapshot. Plain JSON only:
 * no undefined (absent optional values are null), no BigInt, no Date; never a credential.
 *
 * Versioned: `schemaVersion` says which layout wrote them, and `readSnapshotOutputs` accepts every earlier
 * version, so a new release of the package never forces a replacement of existing snapshots.
 */

/** The layout written by this version of the package. */
export const SNAPSHOT_OUTPUTS_SCHEMA_VERSION = 1;

/** One disk of the snapshot. */
export interface SnapshotDiskOutput {
  /** The disk target (`vda`). */
  readonly target: string;
  /** The qcow2 overlay the snapshot created: the file the domain wrote to after the snapshot. */
  readonly overlay: string;
  /** The image below the overlay: it holds the disk as it was at the snapshot. */
  readonly pointInTimeImage: string | null;
}

/** What the host reports about a snapshot; produced by the engine adapter, stored under these names. */
export interface SnapshotFacts {
  readonly domainUuid: string;
  readonly domainName: string;
  readonly snapshotName: string;
  /** ISO 8601, UTC. */
  readonly creationTime: string;
  /** libvirt's `<state>`: the domain state the snapshot captured (`disk-snapshot` for disk-only ones). */
  readonly state: string;
  readonly parent: string | null;
  /** The description as stored on the host (null when it has none): `read` reports drift through it. */
  readonly description: string | null;
  readonly disks: readonly SnapshotDiskOutput[];
  readonly memoryFile: string | null;
  readonly quiesced: boolean;
  /** Why the snapshot is not quiesced, in the engine's words (null when it is quiesced). */
  readonly quiesceSkippedReason: string | null;
  /** libvirt daemon version, `major.minor.micro`. */
  readonly libvirtVersion: string;
  readonly hostname: string;
}

/** The shared snapshot options as outputs record them (null where the input was absent). */
export interface SnapshotOptionOutputs {
  readonly description: string | null;
  readonly memory: boolean;
  readonly live: boolean;
  readonly quiesce: QuiesceMode;
  readonly disks: readonly string[] | null;
  readonly excludeDisks: readonly string[] | null;
  readonly overlayDir: string | null;
  readonly deleteStrategy: DeleteStrategy;
  readonly bandwidth: number | null;
  readonly timeouts: { readonly create: number | null; readonly delete: number | null };
  readonly uri: string | null;
}

/**
 * Schema version 1 of the outputs: the inputs echoed (after defaults; the shared options as
 * SnapshotOptionOutputs, the description as the host holds it), and the host's facts, the disks under the
 * name `snapshotDisks`.
 */
export interface SnapshotOutputs extends SnapshotOptionOutputs, Omit<SnapshotFacts, "description" | "disks"> {
  readonly schemaVersion: typeof SNAPSHOT_OUTPUTS_SCHEMA_VERSION;
  readonly domain: string;
  readonly name: string;
  readonly triggers: unknown;
  readonly adopt: boolean;
  readonly snapshotDisks: readonly SnapshotDiskOutput[];
  /** The URI the last operation used, without credentials. */
  readonly connectionUri: string;
  /**
   * Present (true) only on outputs the host's facts do not back: the create failed and reading the snapshot
   * back failed too, so it may exist (a create that timed out in the client while libvirtd finished it). The
   * inputs are echoed as usual; `domainUuid` and `domainName` are the domain as given (the host resolves it as
   * a name or a UUID), `creationTime`, `state`, `libvirtVersion` and `hostname` are "", `snapshotDisks` is
   * empty and the other facts are null or false. It is recorded so that nothing is orphaned: read replaces it
   * with the host's facts or drops it, delete merges it (a snapshot that is gone counts as deleted), and diff
   * reports a change, so the next update adopts or takes it. Absent on every other outputs. An addition within
   * schema version 1: a package that predates it reads such outputs as a snapshot with no disks, which its
   * read and delete still handle (they need only the domain and the snapshot name).
   */
  readonly unconfirmed?: true;
}

/** The resource id: `<domain UUID>/<snapshot name>` (libvirt refuses `/` in snapshot names). */
export function snapshotId(facts: Pick<SnapshotFacts, "domainUuid" | "snapshotName">): string {
  return `${facts.domainUuid}/${facts.snapshotName}`;
}

/**
 * Deep copy through JSON with `undefined` members dropped and array holes as null: what Pulumi's Struct
 * conversion can carry. Triggers are user data and may hold anything a program can pass.
 */
export function toPlainJson(value: unknown): unknown {
  if (value === undefined) return null;
  return JSON.parse(JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? v.toString() : v)));
}

/** Builds the complete outputs from the checked inputs and the host's facts. */
export function buildSnapshotOutputs(
  inputs: SnapshotInputs,
  facts: SnapshotFacts,
  connectionUri: string,
): SnapshotOutputs {
  return {
    schemaVersion: SNAPSHOT_OUTPUTS_SCHEMA_VERSION,
    domain: inputs.domain,
    name: inputs.name,
    ...optionOutputs(inputs),
    // The description the host holds, so that `read` reports drift.
    description: facts.description,
    triggers: toPlainJson(inputs.triggers),
    adopt: inputs.adopt,
    domainUuid: facts.domainUuid,
    domainName: facts.domainName,
    snapshotName: facts.snapshotName,
    creationTime: facts.creationTime,
    state: facts.state,
    parent: facts.parent,
    snapshotDisks: facts.disks.map((disk) => ({ ...disk })),
    memoryFile: facts.memoryFile,
    quiesced: facts.quiesced,
    quiesceSkippedReason: facts.quiesceSkippedReason,
    libvirtVersion: facts.libvirtVersion,
    hostname: facts.hostname,
    connectionUri,
  };
}

/**
 * The outputs of snapshot `inputs.name` of `inputs.domain` that may exist although its facts could not be read
 * (see `unconfirmed`). Pure.
 */
export function unconfirmedSnapshotOutputs(inputs: SnapshotInputs, connectionUri: string): SnapshotOutputs {
  const unknownFacts: SnapshotFacts = {
    domainUuid: inputs.domain,
    domainName: inputs.domain,
    snapshotName: inputs.name,
    creationTime: "",
    state: "",
    parent: null,
    description: null,
    disks: [],
    memoryFile: null,
    quiesced: false,
    quiesceSkippedReason: null,
    libvirtVersion: "",
    hostname: "",
  };
  return { ...buildSnapshotOutputs(inputs, unknownFacts, connectionUri), unconfirmed: true };
}

/** The shared snapshot options in the form outputs record them (null where the input was absent). Pure. */
export function optionOutputs(options: SnapshotOptions): SnapshotOptionOutputs {
  return {
    description: options.description ?? null,
    memory: options.memory,
    live: options.live,
    quiesce: options.quiesce,
    disks: options.disks ? [...options.disks] : null,
    excludeDisks: options.excludeDisks ? [...options.excludeDisks] : null,
    overlayDir: options.overlayDir ?? null,
    deleteStrategy: options.deleteStrategy,
    bandwidth: options.bandwidth ?? null,
    timeouts: { create: options.timeouts?.create ?? null, delete: options.timeouts?.delete ?? null },
    uri: options.uri ?? null,
  };
}

/** The shared snapshot options recorded in outputs, in the shape `check` produces (absent instead of null). */
export function optionsFromOutputs(outputs: SnapshotOptionOutputs): SnapshotOptions {
  const timeouts = {
    ...(outputs.timeouts.create === null ? {} : { create: outputs.timeouts.create }),
    ...(outputs.timeouts.delete === null ? {} : { delete: outputs.timeouts.delete }),
  };
  return {
    ...(outputs.description === null ? {} : { description: outputs.description }),
    memory: outputs.memory,
    live: outputs.live,
    quiesce: outputs.quiesce,
    ...(outputs.disks === null ? {} : { disks: outputs.disks }),
    ...(outputs.excludeDisks === null ? {} : { excludeDisks: outputs.excludeDisks }),
    ...(outputs.overlayDir === null ? {} : { overlayDir: outputs.overlayDir }),
    deleteStrategy: outputs.deleteStrategy,
    ...(outputs.bandwidth === null ? {} : { bandwidth: outputs.bandwidth }),
    ...(Object.keys(timeouts).length === 0 ? {} : { timeouts }),
    ...(outputs.uri === null ? {} : { uri: outputs.uri }),
  };
}

/** The inputs recorded in outputs, in the shape `check` produces (absent instead of null). */
export function inputsFromOutputs(outputs: SnapshotOutputs): SnapshotInputs {
  return {
    domain: outputs.domain,
    name: outputs.name,
    ...optionsFromOutputs(outputs),
    ...(outputs.triggers === null ? {} : { triggers: outputs.triggers }),
    adopt: outputs.adopt,
  };
}

export class OutputsSchemaError extends Error {
  override readonly name = "OutputsSchemaError";
}

/**
 * Reads outputs stored by any version of this package and returns them in the current layout. Outputs
 * written by a newer version are refused with an error that says to upgrade, never misread.
 * Idempotent and pure; `__provider` and other foreign keys are ignored.
 */
export function readSnapshotOutputs(stored: Record<string, unknown>): SnapshotOutputs {
  const version = stored.schemaVersion;
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
    throw new OutputsSchemaError(
      `stored state of this snapshot has no valid schemaVersion (got ${JSON.stringify(version)}); ` +
        "it was not written by pulumi-libvirt-snapshot: run `pulumi refresh` or remove it from the stack",
    );
  }
  if (version > SNAPSHOT_OUTPUTS_SCHEMA_VERSION) {
    throw new OutputsSchemaError(
      `stored state of this snapshot has schemaVersion ${version}, newer than this package understands ` +
        `(${SNAPSHOT_OUTPUTS_SCHEMA_VERSION}); upgrade pulumi-libvirt-snapshot in the program`,
    );
  }
  // Version 1 is the first layout; upgrades from older layouts are chained here as they appear.
  const { __provider: _provider, ...outputs } = stored;
  return outputs as unknown as SnapshotOutputs;
}

/** The host facts recorded in outputs, for operations that change inputs only. */
export function factsFromOutputs(outputs: SnapshotOutputs): SnapshotFacts {
  return {
    domainUuid: outputs.domainUuid,
    domainName: outputs.domainName,
    snapshotName: outputs.snapshotName,
    creationTime: outputs.creationTime,
    state: outputs.state,
    parent: outputs.parent,
    description: outputs.description,
    disks: outputs.snapshotDisks,
    memoryFile: outputs.memoryFile,
    quiesced: outputs.quiesced,
    quiesceSkippedReason: outputs.quiesceSkippedReason,
    libvirtVersion: outputs.libvirtVersion,
    hostname: outputs.hostname,
  };
}
