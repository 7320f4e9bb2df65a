import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { canonicalJson } from "../provider/dynamic/diff";
import { Snapshot, type SnapshotArgs } from "./snapshot";

/** Arguments of a `RestorePoint`. */
export interface RestorePointArgs {
  /** The domains (VMs) to snapshot together, by name or UUID. Each gets its own `Snapshot`. */
  readonly domains: readonly pulumi.Input<string>[];
  /**
   * What the restore point protects, e.g. the release being deployed: when any value changes, a new restore
   * point is taken and the previous one merged away.
   */
  readonly triggers: pulumi.Input<unknown[]> | pulumi.Inputs;
  /** Snapshot name on each domain (before the generation suffix); default: the resource's name. */
  readonly name?: string;
  /**
   * Keep the previous restore point until the new one exists (default true): the snapshot names then end in
   * `-<8 hex>` derived from the triggers, so the new snapshots do not collide with the old ones. With false,
   * the name is fixed and the old snapshots are merged away before the new ones are taken.
   */
  readonly keepPreviousUntilReplaced?: boolean;
  /** Options of every snapshot (description, memory, quiesce, overlayDir, deleteStrategy, timeouts, uri, ...). */
  readonly snapshot?: Omit<SnapshotArgs, "domain" | "name" | "triggers">;
}

/** The generation suffix of a restore point: 8 hex digits of a hash of the triggers (key order ignored). */
export function generationSuffix(triggers: unknown): string {
  return createHash("sha256").update(canonicalJson(triggers)).digest("hex").slice(0, 8);
}

/**
 * A restore point across one or more VMs: one external `Snapshot` per domain, taken together, replaced
 * together when the triggers change. Order the deploy it protects after it with `{ dependsOn: restorePoint }`
 * (a component's dependents wait for all of its snapshots). Type token
 * `libvirt-snapshot:index:RestorePoint`.
 */
export class RestorePoint extends pulumi.ComponentResource {
  /** The snapshots, in the order of `domains`. */
  readonly snapshots: Snapshot[];
  /** The snapshot name used on every domain (with the generation suffix, when enabled). */
  readonly snapshotName: pulumi.Output<string>;

  constructor(name: string, args: RestorePointArgs, opts?: pulumi.ComponentResourceOptions) {
    super("libvirt-snapshot:index:RestorePoint", name, {}, opts);
    const base = args.name ?? name;
    this.snapshotName =
      args.keepPreviousUntilReplaced === false
        ? pulumi.output(base)
        : pulumi.output(args.triggers).apply((triggers) => `${base}-${generationSuffix(triggers)}`);
    this.snapshots = args.domains.map(
      (domain, index) =>
        new Snapshot(
          // Plain domain names make stable child names; computed ones fall back to the position.
          `${name}-${typeof domain === "string" ? domain : index}`,
          { ...args.snapshot, domain, name: this.snapshotName, triggers: args.triggers },
          { parent: this },
        ),
    );
    this.registerOutputs({ snapshotName: this.snapshotName });
  }
}
