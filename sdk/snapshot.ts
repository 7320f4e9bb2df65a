import type * as pulumi from "@pulumi/pulumi";
import type { SnapshotDiskOutput } from "../provider/dynamic/outputs";
import { snapshotResourceProvider } from "./provider-shim";
import {
  type DeleteStrategy,
  type QuiesceMode,
  type SnapshotOptionArgs,
  SnapshotOptionsResource,
} from "./snapshot-options";

export type { DeleteStrategy, QuiesceMode, SnapshotDiskOutput };

/**
 * Arguments of a `Snapshot`: its own, and the options it shares with a RestorePoint (SnapshotOptionArgs).
 * Changing a property marked "replaces" takes a new snapshot and merges the old.
 */
export interface SnapshotArgs extends SnapshotOptionArgs {
  /** The domain (VM) to snapshot: its name or UUID. Replaces (switching between name and UUID does not). */
  readonly domain: pulumi.Input<string>;
  /** The snapshot's name on the host; defaults to the resource's name. Replaces. */
  readonly name?: pulumi.Input<string>;
  /**
   * Any values; when they change, a new snapshot is taken and the old one merged away. With the same snapshot
   * name (the default) the old one is deleted first; derive `name` from the trigger values to keep the old
   * snapshot until the new one exists.
   */
  readonly triggers?: pulumi.Input<unknown[]> | pulumi.Inputs;
  /** Take over an existing snapshot of this name on the domain instead of failing. Only affects creation. */
  readonly adopt?: pulumi.Input<boolean>;
}

/** Output-only properties, filled in from the host. */
const OUTPUT_PROPERTIES = [
  "schemaVersion",
  "domainUuid",
  "domainName",
  "snapshotName",
  "creationTime",
  "state",
  "parent",
  "snapshotDisks",
  "memoryFile",
  "quiesced",
  "quiesceSkippedReason",
  "libvirtVersion",
  "hostname",
  "connectionUri",
] as const;

/**
 * An external snapshot of a libvirt domain: each selected disk gets a qcow2 overlay, and the image below it
 * keeps the disk as it was. Deleting the resource merges the overlay back (blockcommit), so the domain keeps
 * every write made since. Type token `pulumi-nodejs:dynamic/libvirt:Snapshot`.
 *
 * When a create fails and the snapshot cannot be read back either (say the call timed out while libvirtd
 * finished it), the snapshot may exist: the stack records it as unconfirmed (an `unconfirmed: true` output,
 * the domain as given for `domainUuid` and `domainName`, no disks and empty host facts), so it is never
 * orphaned. `pulumi refresh` replaces it with the host's facts or drops it, the next `pulumi up` adopts or
 * takes it, and deleting the resource merges it if it exists.
 */
export class Snapshot extends SnapshotOptionsResource {
  declare readonly domain: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;
  declare readonly triggers: pulumi.Output<unknown>;
  declare readonly adopt: pulumi.Output<boolean>;
  /** Layout version of the stored outputs. */
  declare readonly schemaVersion: pulumi.Output<number>;
  declare readonly domainUuid: pulumi.Output<string>;
  declare readonly domainName: pulumi.Output<string>;
  declare readonly snapshotName: pulumi.Output<string>;
  /** ISO 8601, UTC. */
  declare readonly creationTime: pulumi.Output<string>;
  /** libvirt's snapshot `<state>`: `disk-snapshot`, `running`, `paused`, `shutoff`, ... */
  declare readonly state: pulumi.Output<string>;
  /** Name of the parent snapshot, null for a root. */
  declare readonly parent: pulumi.Output<string | null>;
  /** Per disk: the overlay created and the point-in-time image below it. */
  declare readonly snapshotDisks: pulumi.Output<SnapshotDiskOutput[]>;
  declare readonly memoryFile: pulumi.Output<string | null>;
  declare readonly quiesced: pulumi.Output<boolean>;
  /** Why the snapshot is not quiesced; null when it is or when quiesce is `off`. */
  declare readonly quiesceSkippedReason: pulumi.Output<string | null>;
  declare readonly libvirtVersion: pulumi.Output<string>;
  declare readonly hostname: pulumi.Output<string>;
  /** The URI used, without credentials. */
  declare readonly connectionUri: pulumi.Output<string>;

  constructor(name: string, args: SnapshotArgs, opts?: pulumi.CustomResourceOptions) {
    const outputs = Object.fromEntries(OUTPUT_PROPERTIES.map((key) => [key, undefined]));
    super(
      snapshotResourceProvider,
      name,
      { ...outputs, ...args, name: args.name ?? name },
      opts,
      "libvirt",
      "Snapshot",
    );
  }
}
