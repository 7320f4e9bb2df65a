import * as pulumi from "@pulumi/pulumi";
import { Snapshot } from "pulumi-libvirt-snapshot";

/**
 * A restore point taken right before each release of an application that runs in a libvirt VM.
 *
 *   pulumi config set domain web-1
 *   pulumi config set release 2.4.0
 *   pulumi config set --secret libvirt-snapshot:uri qemu+ssh://deploy@hv1.example.com/system
 *   pulumi up
 *
 * Each new `release` replaces the snapshot: the previous restore point is merged back into the VM's disk
 * (blockcommit) and a new one is taken, before the release itself is rolled out (dependsOn). To keep the old
 * restore point until the new one exists, put the release into the snapshot's name instead.
 */

const config = new pulumi.Config();
const domain = config.require("domain");
const release = config.require("release");

const restorePoint = new Snapshot("pre-deploy", {
  domain,
  description: `restore point before release ${release}`,
  triggers: [release],
  // Freeze guest file systems when the guest agent answers; otherwise say why in quiesceSkippedReason.
  quiesce: "auto",
  // Merging a large overlay back can take long: allow an hour, at most 200 MiB/s.
  timeouts: { delete: 3600 },
  bandwidth: 200 * 1024 * 1024,
});

/** Stands for whatever rolls the release out to the VM (a remote command, a configuration run, ...). */
class Release extends pulumi.ComponentResource {
  constructor(
    name: string,
    args: { domain: string; version: string },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("example:deploy:Release", name, args, opts);
    this.registerOutputs({ domain: args.domain, version: args.version });
  }
}

new Release("app", { domain, version: release }, { dependsOn: [restorePoint] });

export const restorePointName = restorePoint.snapshotName;
export const restorePointTakenAt = restorePoint.creationTime;
export const restorePointDisks = restorePoint.snapshotDisks;
export const quiesced = restorePoint.quiesced;
export const notQuiescedBecause = restorePoint.quiesceSkippedReason;
