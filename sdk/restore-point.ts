import type * as pulumi from "@pulumi/pulumi";
import type { ConsistencyMode } from "../provider/dynamic/restore-point-inputs";
import type { Generation, GenerationSnapshot } from "../provider/dynamic/restore-point-outputs";
import { type SnapshotOptionArgs, SnapshotOptionsResource } from "./snapshot-options";

export type { ConsistencyMode, Generation, GenerationSnapshot };

/**
 * The implementation of the RestorePoint methods, loaded from the package installed in the program's folder
 * when a method is called (see provider-shim.ts for why the provider object is a thin, serialized shim). Not
 * exported, and it names the package literally, so serialization captures nothing of this module.
 */
function restorePointImplementation() {
  return require("pulumi-libvirt-snapshot").providerImplementations.restorePoint;
}

/** The shim of the `RestorePoint` resource (`pulumi-nodejs:dynamic/libvirt:RestorePoint`). Exported for tests. */
export const restorePointResourceProvider: pulumi.dynamic.ResourceProvider = {
  configure: async (req) => restorePointImplementation().configure(req),
  check: async (olds, news) => restorePointImplementation().check(olds, news),
  diff: async (id, olds, news) => restorePointImplementation().diff(id, olds, news),
  create: async (inputs) => restorePointImplementation().create(inputs),
  read: async (id, props) => restorePointImplementation().read(id, props),
  update: async (id, olds, news) => restorePointImplementation().update(id, olds, news),
  delete: async (id, props) => restorePointImplementation().delete(id, props),
};

/**
 * Arguments of a `RestorePoint`: its own, and the options it shares with a Snapshot (SnapshotOptionArgs),
 * which apply to every domain's snapshot. "Replaces" marks inputs whose change takes a new restore point from
 * scratch (the old generations are merged away); every other change is applied in place.
 */
export interface RestorePointArgs extends SnapshotOptionArgs {
  /** The domains (VMs) to snapshot together, by name or UUID. Replaces (reordering, or name <-> UUID, does not). */
  readonly domains: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * What the restore point protects, e.g. the release being deployed: when any value changes, a new
   * generation is taken on every domain, and generations beyond `keep` are merged away, oldest first.
   */
  readonly triggers?: pulumi.Input<unknown[]> | pulumi.Inputs;
  /** How many generations to keep (1 to 64). Default 1: only the newest. */
  readonly keep?: pulumi.Input<number>;
  /**
   * `crash` (default): each domain is snapshotted on its own, in parallel. `paused`: every running domain is
   * paused, all are snapshotted, and they are resumed, so every VM is captured at the same instant; domains
   * that were already paused stay paused.
   */
  readonly consistency?: pulumi.Input<ConsistencyMode>;
  /** Base of the snapshot names, `<name>-<generation number>`; default the resource's name. Replaces. */
  readonly name?: pulumi.Input<string>;
}

/** Output-only properties, filled in from the host. */
const OUTPUT_PROPERTIES = ["schemaVersion", "connectionUri", "generations"] as const;

/**
 * Restore points of one or more domains taken together: generation 1 when created, a new generation on
 * every domain whenever `triggers` change, at most `keep` generations (older ones merged back with
 * blockcommit), everything merged away when deleted. Order the deploy it protects after it with
 * `{ dependsOn: restorePoint }`. Type token `pulumi-nodejs:dynamic/libvirt:RestorePoint`.
 */
export class RestorePoint extends SnapshotOptionsResource {
  declare readonly domains: pulumi.Output<string[]>;
  declare readonly name: pulumi.Output<string>;
  declare readonly triggers: pulumi.Output<unknown>;
  declare readonly keep: pulumi.Output<number>;
  declare readonly consistency: pulumi.Output<ConsistencyMode>;
  /** Layout version of the stored outputs. */
  declare readonly schemaVersion: pulumi.Output<number>;
  /** The URI used, without credentials. */
  declare readonly connectionUri: pulumi.Output<string>;
  /**
   * The generations that exist, oldest first, each with its snapshot on every domain. A snapshot whose create
   * failed and could not be read back either may exist: it is listed with `unconfirmed: true`, an empty
   * `creationTime`, no `disks`, and the domain's name and UUID as the stack knew them (the domain as given when
   * it knew none), so it is never orphaned. `pulumi refresh` replaces it with the host's facts or drops it, its
   * generation counts as incomplete (the next `pulumi up` takes or adopts it again), and deleting the restore
   * point merges it if it exists. Every other entry has no `unconfirmed` field.
   */
  declare readonly generations: pulumi.Output<Generation[]>;

  constructor(name: string, args: RestorePointArgs, opts?: pulumi.CustomResourceOptions) {
    const outputs = Object.fromEntries(OUTPUT_PROPERTIES.map((key) => [key, undefined]));
    super(
      restorePointResourceProvider,
      name,
      { ...outputs, ...args, name: args.name ?? name },
      opts,
      "libvirt",
      "RestorePoint",
    );
  }
}
