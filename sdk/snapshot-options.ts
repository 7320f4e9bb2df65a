import * as pulumi from "@pulumi/pulumi";
import type { DeleteStrategy, QuiesceMode } from "../provider/dynamic/inputs";

export type { DeleteStrategy, QuiesceMode };

/**
 * The arguments a `Snapshot` and a `RestorePoint` share: how each snapshot is taken and how it is merged
 * away. On a RestorePoint they apply to the snapshot of every domain in every generation. "Replaces" marks
 * arguments whose change takes new snapshots from scratch; every other change is applied in place. The
 * provider's `check` validates them once for both resources (provider/dynamic/inputs.ts).
 */
export interface SnapshotOptionArgs {
  /**
   * Free text stored with the snapshot on the host. A Snapshot's description is rewritten in place; a
   * RestorePoint stores it with each generation taken from then on (older generations keep theirs).
   */
  readonly description?: pulumi.Input<string>;
  /** Also save the guest's memory state to a file (an external memory snapshot). Default false. Replaces. */
  readonly memory?: pulumi.Input<boolean>;
  /**
   * With memory: keep the guest running while memory is saved (libvirt's LIVE flag). Default false. Only
   * affects snapshots taken from then on.
   */
  readonly live?: pulumi.Input<boolean>;
  /**
   * Freeze guest filesystems through the guest agent: `auto` (default) tries and records why it could not in
   * `quiesceSkippedReason`; `required` fails without it; `off` never tries. Only affects snapshots taken from
   * then on.
   */
  readonly quiesce?: pulumi.Input<QuiesceMode>;
  /**
   * Disk targets to include (default: every disk that can be snapshotted). Replaces, except when set where it
   * was unset to exactly the disks every snapshot covers.
   */
  readonly disks?: pulumi.Input<pulumi.Input<string>[]>;
  /** Disk targets to leave out; not together with `disks`. Replaces. */
  readonly excludeDisks?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * Absolute directory for the overlays and memory file (default: beside each disk image). Only affects
   * snapshots taken from then on.
   */
  readonly overlayDir?: pulumi.Input<string>;
  /** How deletion merges: `blockcommit` (default, driven by this package) or `native` (libvirt >= 9.0). */
  readonly deleteStrategy?: pulumi.Input<DeleteStrategy>;
  /** Speed limit of each merge, in bytes per second. Default: unlimited. */
  readonly bandwidth?: pulumi.Input<number>;
  /**
   * Seconds: `create` (default 300) bounds taking the snapshots, and also reads and updates; `delete` (default
   * 3600) bounds deleting each snapshot, all its disks' merges together: on expiry the running merge is
   * cancelled, the disk chain stays consistent and the delete fails (delete again to finish it).
   */
  readonly timeouts?: pulumi.Input<{ create?: pulumi.Input<number>; delete?: pulumi.Input<number> }>;
  /**
   * libvirt URI of the host; default: stack config `libvirt-snapshot:uri`, else `LIBVIRT_DEFAULT_URI`, else
   * `qemu:///system`. Must not hold a password (it is stored in state): put one in the stack config as a
   * secret. Replaces when the URI it resolves to changes (setting or unsetting it while the URI in use stays the
   * same does not).
   */
  readonly uri?: pulumi.Input<string>;
}

/**
 * The outputs a `Snapshot` and a `RestorePoint` share: the options echoed after defaults (null where unset).
 * Only declarations: the base class adds no behaviour to Pulumi's dynamic resource.
 */
export abstract class SnapshotOptionsResource extends pulumi.dynamic.Resource {
  declare readonly description: pulumi.Output<string | null>;
  declare readonly memory: pulumi.Output<boolean>;
  declare readonly live: pulumi.Output<boolean>;
  declare readonly quiesce: pulumi.Output<QuiesceMode>;
  declare readonly disks: pulumi.Output<string[] | null>;
  declare readonly excludeDisks: pulumi.Output<string[] | null>;
  declare readonly overlayDir: pulumi.Output<string | null>;
  declare readonly deleteStrategy: pulumi.Output<DeleteStrategy>;
  declare readonly bandwidth: pulumi.Output<number | null>;
  declare readonly timeouts: pulumi.Output<{ create: number | null; delete: number | null }>;
  declare readonly uri: pulumi.Output<string | null>;
}
