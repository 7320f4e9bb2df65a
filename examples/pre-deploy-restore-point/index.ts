import * as pulumi from "@pulumi/pulumi";
import { RestorePoint } from "pulumi-libvirt-snapshot";

/**
 * Restore points of an application's two VMs, taken together right before each release.
 *
 *   pulumi config set release 2.4.0
 *   pulumi config set --secret libvirt-snapshot:uri qemu+ssh://deploy@hv1.example.com/system
 *   pulumi up
 *
 * Each new `release` takes a new generation of snapshots (`pre-deploy-<n>`) on both VMs, paused together so
 * that the web server and its database are captured at the same instant, before the release itself is
 * rolled out (dependsOn). The last three generations are kept; older ones are merged back into the VMs'
 * disks (blockcommit), oldest first. `pulumi destroy` merges them all.
 */

const config = new pulumi.Config();
const release = config.require("release");
const domains = [config.get("web") ?? "web-1", config.get("db") ?? "db-1"];

const restorePoint = new RestorePoint("pre-deploy", {
  domains,
  triggers: [release],
  keep: 3,
  consistency: "paused",
  description: `restore point before release ${release}`,
  // A paused guest cannot freeze its file systems; the pause itself makes the two VMs consistent together.
  quiesce: "off",
  // Merging a large overlay back can take long: allow an hour per merge, at most 200 MiB/s.
  timeouts: { delete: 3600 },
  bandwidth: 200 * 1024 * 1024,
});

/** Stands for whatever rolls the release out to the VMs (a remote command, a configuration run, ...). */
class Release extends pulumi.ComponentResource {
  constructor(
    name: string,
    args: { domains: string[]; version: string },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("example:deploy:Release", name, args, opts);
    this.registerOutputs({ domains: args.domains, version: args.version });
  }
}

new Release("app", { domains, version: release }, { dependsOn: [restorePoint] });

/** Per generation, oldest first: its number, the release it protects and the snapshot on each VM. */
export const generations = restorePoint.generations.apply((list) =>
  list.map((g) => ({
    number: g.number,
    release: g.triggers,
    snapshots: g.snapshots.map((s) => `${s.domainName}/${s.snapshotName}`),
  })),
);
