import * as pulumi from "@pulumi/pulumi";

/**
 * The implementation of the Revert methods, loaded from the package installed in the program's folder when a
 * method is called (see provider-shim.ts for why the provider object is a thin, serialized shim). Not
 * exported, and it names the package literally, so serialization captures nothing of this module.
 */
function revertImplementation() {
  return require("pulumi-libvirt-snapshot").providerImplementations.revert;
}

/** The shim of the `Revert` resource (`pulumi-nodejs:dynamic/libvirt:Revert`). Exported for tests. */
export const revertResourceProvider: pulumi.dynamic.ResourceProvider = {
  configure: async (req) => revertImplementation().configure(req),
  check: async (olds, news) => revertImplementation().check(olds, news),
  diff: async (id, olds, news) => revertImplementation().diff(id, olds, news),
  create: async (inputs) => revertImplementation().create(inputs),
  read: async (id, props) => revertImplementation().read(id, props),
  update: async (id, olds, news) => revertImplementation().update(id, olds, news),
  delete: async (id, props) => revertImplementation().delete(id, props),
};

/** The state a Revert leaves the domain in: `snapshot` (default) is the state the snapshot recorded. */
export type RevertTargetState = "snapshot" | "running" | "paused" | "shutoff";

/** Arguments of a `Revert`. Changing any of them except `timeouts` reverts again. */
export interface RevertArgs {
  /** The domain (VM) to revert: its name or UUID. */
  readonly domain: pulumi.Input<string>;
  /** The snapshot to go back to (for example `restorePoint.snapshotName`). */
  readonly snapshot: pulumi.Input<string>;
  /** Default `snapshot`: running or paused as the snapshot was (memory snapshots resume where they were). */
  readonly targetState?: pulumi.Input<RevertTargetState>;
  /**
   * Keep the state from before the revert as snapshot `auto-before-revert-<UTC time>` (output `savedAs`), so
   * the revert can itself be undone. Default true.
   */
  readonly keepCurrent?: pulumi.Input<boolean>;
  /** Delete the snapshots taken after the target, with their files (never merged). Needs keepCurrent: false. */
  readonly discardNewer?: pulumi.Input<boolean>;
  /** Absolute directory for the new overlays; default: beside the snapshot's overlays. */
  readonly overlayDir?: pulumi.Input<string>;
  /** Seconds to wait for the revert (default 600); changed in place. */
  readonly timeouts?: pulumi.Input<{ create?: pulumi.Input<number> }>;
  /** libvirt URI of the host; default as for `Snapshot` (stack config, LIBVIRT_DEFAULT_URI, qemu:///system). */
  readonly uri?: pulumi.Input<string>;
  /** Any values; when they change, the domain is reverted again (for example an incident number). */
  readonly triggers?: pulumi.Input<unknown[]> | pulumi.Inputs;
}

/** Output-only properties, filled in from the host. */
const OUTPUT_PROPERTIES = [
  "schemaVersion",
  "connectionUri",
  "domainUuid",
  "domainName",
  "revertedAt",
  "strategy",
  "state",
  "memoryRestored",
  "overlays",
  "savedAs",
  "discarded",
  "removedFiles",
  "notes",
] as const;

/**
 * Reverts a libvirt domain to one of its external snapshots when created, and again whenever its inputs
 * change (a replacement). Deleting it leaves the domain as it is. Meant for break-glass changes reviewed like
 * any other code: add the resource to roll a VM back, remove it once the incident is over. Type token
 * `pulumi-nodejs:dynamic/libvirt:Revert`.
 */
export class Revert extends pulumi.dynamic.Resource {
  declare readonly domain: pulumi.Output<string>;
  declare readonly snapshot: pulumi.Output<string>;
  declare readonly targetState: pulumi.Output<RevertTargetState>;
  declare readonly keepCurrent: pulumi.Output<boolean>;
  declare readonly discardNewer: pulumi.Output<boolean>;
  declare readonly overlayDir: pulumi.Output<string | undefined>;
  declare readonly uri: pulumi.Output<string | undefined>;
  declare readonly triggers: pulumi.Output<unknown>;
  declare readonly schemaVersion: pulumi.Output<number>;
  /** The URI used, without credentials. */
  declare readonly connectionUri: pulumi.Output<string>;
  declare readonly domainUuid: pulumi.Output<string>;
  declare readonly domainName: pulumi.Output<string>;
  /** When the revert finished, ISO 8601 UTC. */
  declare readonly revertedAt: pulumi.Output<string>;
  /** `native` (libvirt >= 9.9 reverted) or `recipe` (this package did, on older libvirt). */
  declare readonly strategy: pulumi.Output<"native" | "recipe">;
  /** The state the domain was left in. */
  declare readonly state: pulumi.Output<"running" | "paused" | "shutoff">;
  /** True when the guest resumed from the snapshot's saved memory. */
  declare readonly memoryRestored: pulumi.Output<boolean>;
  /** Per disk: the new overlay the domain writes to and its backing (the snapshot's point-in-time image). */
  declare readonly overlays: pulumi.Output<{ target: string; path: string; backing: string }[]>;
  /** The snapshot that keeps the state from before the revert (keepCurrent), else null. */
  declare readonly savedAs: pulumi.Output<string | null>;
  declare readonly discarded: pulumi.Output<string[]>;
  declare readonly removedFiles: pulumi.Output<string[]>;
  declare readonly notes: pulumi.Output<string[]>;

  constructor(name: string, args: RevertArgs, opts?: pulumi.CustomResourceOptions) {
    const outputs = Object.fromEntries(OUTPUT_PROPERTIES.map((key) => [key, undefined]));
    super(revertResourceProvider, name, { ...outputs, ...args }, opts, "libvirt", "Revert");
  }
}
