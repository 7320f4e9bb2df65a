import { rm } from "node:fs/promises";
import { join } from "node:path";
import { RunError } from "./run";
import { domainExists, virsh } from "./virsh";

/** Every domain the lab creates is named `${labPrefix}<random hex>`; the sweep removes exactly those. */
export const labPrefix = "lvsnap-lab-";

/** Directory below which each lab domain gets its own image directory (LAB_ROOT overrides). */
export const labRoot = process.env.LAB_ROOT ?? "/var/lib/libvirt/images/lvsnap-lab";

/** The image directory of the lab domain `name`. */
export function labDomainDir(name: string): string {
  if (!name.startsWith(labPrefix) || name.includes("/") || name.includes("..")) {
    throw new Error(`not a lab domain name: ${JSON.stringify(name)}`);
  }
  return join(labRoot, name);
}

function isMissingDomain(error: unknown): boolean {
  return error instanceof RunError && /failed to get domain|Domain not found/i.test(error.stderr);
}

/**
 * Undefines with every metadata flag; a snapshot or checkpoint left by the test would otherwise block it.
 * Quirk: virsh before 5.6 has no --checkpoints-metadata; it is retried without that option.
 */
async function undefineWithMetadata(name: string): Promise<void> {
  const flags = ["--snapshots-metadata", "--checkpoints-metadata", "--nvram", "--managed-save"];
  try {
    await virsh("undefine", ...flags, name);
  } catch (error) {
    if (error instanceof RunError && /doesn't support option --checkpoints-metadata/.test(error.stderr)) {
      await virsh("undefine", ...flags.filter((flag) => flag !== "--checkpoints-metadata"), name);
      return;
    }
    throw error;
  }
}

/**
 * Removes a lab domain completely: destroys it if it runs (which also ends its block jobs), undefines it with
 * snapshot/checkpoint metadata, NVRAM and managed save, and deletes its image directory. Idempotent: a domain
 * or directory that is already gone is fine. Every step is tried; if any failed, throws an AggregateError
 * naming them, after the others ran.
 */
export async function removeLabDomain(name: string): Promise<void> {
  const dir = labDomainDir(name);
  const failures: unknown[] = [];
  const step = async (action: () => Promise<unknown>) => {
    try {
      await action();
    } catch (error) {
      if (!isMissingDomain(error)) failures.push(error);
    }
  };
  await step(async () => {
    if (!(await domainExists(name))) return;
    try {
      await virsh("destroy", name);
    } catch (error) {
      if (!(error instanceof RunError && /domain is not running/i.test(error.stderr))) throw error;
    }
    await undefineWithMetadata(name);
  });
  await step(() => rm(dir, { recursive: true, force: true }));
  if (failures.length > 0) throw new AggregateError(failures, `cleanup of lab domain ${name} failed`);
}
