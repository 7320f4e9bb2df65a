/**
 * Shared by the revert and preview integration tests: lab domains whose every layer holds its own data (a
 * qemu-io pattern written while the domain is off), and checks of the guest-visible data, chains and files
 * against independent oracles (virsh for libvirt's view, qemu-io and qemu-img for the files).
 */
import { spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import type { LabDomain } from "../../support/lab";
import { virsh } from "../../support/virsh";

/** The region every layer overwrites: what it reads through a chain says which layer is newest there. */
export const REGION = { offset: 0, length: 64 * 1024 };
/** Data of layer k: the base is layer 0, the overlay of the k-th snapshot layer k. */
export const layerPattern = (layer: number) => 0x11 * (layer + 1);

/**
 * Which layer shows in REGION, read through the chain of the file `image`, or (no image) of the file vda
 * writes to now per the persistent definition: what the guest sees.
 */
export async function visibleLayer(dom: LabDomain, image?: string, layers = 6): Promise<number | undefined> {
  image ??= (await persistentSources(dom))[0] ?? "";
  for (let layer = 0; layer < layers; layer++) {
    if (await dom.checkPattern(image, { ...REGION, pattern: layerPattern(layer) })) return layer;
  }
  return undefined;
}

/**
 * Builds `names.length` disk-only snapshots of vda on a shut-off lab domain: base holds layer 0, the overlay
 * of the k-th snapshot layer k ("now" is the last one). Leaves the domain shut off.
 */
export async function diskOnlyLayers(conn: LibvirtConnection, dom: LabDomain, names: readonly string[]) {
  await dom.writePattern("vda", { ...REGION, pattern: layerPattern(0) });
  for (const [i, name] of names.entries()) {
    await createSnapshot(conn, { domain: dom.name, name });
    await dom.writePattern(dom.path(`vda.${name}.qcow2`), { ...REGION, pattern: layerPattern(i + 1) });
  }
}

/**
 * Builds memory snapshots of vda: before each, the domain is off and the active layer gets the next pattern,
 * then it is started (paused when the state says so) and the snapshot taken. The overlay of the last snapshot
 * holds the next layer ("now"); the domain is left running.
 */
export async function memoryLayers(
  conn: LibvirtConnection,
  dom: LabDomain,
  snapshots: readonly { name: string; state: "running" | "paused" }[],
) {
  let active = dom.base("vda");
  for (const [i, snap] of snapshots.entries()) {
    if ((await dom.state()) !== "shutoff") await dom.destroy();
    await dom.writePattern(active, { ...REGION, pattern: layerPattern(i) });
    await dom.start(snap.state === "paused");
    await createSnapshot(conn, { domain: dom.name, name: snap.name, memory: "memory" });
    active = dom.path(`vda.${snap.name}.qcow2`);
  }
  await dom.destroy();
  await dom.writePattern(active, { ...REGION, pattern: layerPattern(snapshots.length) });
  await dom.start();
}

/** `virsh domstate --reason`, e.g. "running (restored)". */
export async function stateWithReason(dom: LabDomain): Promise<string> {
  return (await virsh("domstate", "--reason", dom.name)).trim();
}

/** The file names in the domain's directory, sorted (images, memory files, the lab's domain.xml). */
export async function files(dom: LabDomain): Promise<string[]> {
  return (await readdir(dom.dir)).sort();
}

/** The source file of each disk in the persistent definition. */
export async function persistentSources(dom: LabDomain): Promise<string[]> {
  return (await dom.blockList(true)).filter((e) => e.device === "disk").map((e) => e.source ?? "");
}

/** Runs a child script with `npx tsx` in its own process group; resolves once it died by SIGKILL. */
export async function runKilledChild(args: string[]): Promise<void> {
  const child = spawn("npx", ["tsx", join(__dirname, args[0] ?? ""), ...args.slice(1)], {
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  onTestFinished(() => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  // npx reports the SIGKILL of its child as a failure; the child itself printed nothing on stderr then.
  if (stderr.includes("finished before the chosen point") || /Error/.test(stderr))
    throw new Error(`child failed (${code}): ${stderr}`);
}
