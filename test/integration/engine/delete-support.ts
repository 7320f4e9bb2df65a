/**
 * Shared by the delete and crash integration tests: a lab domain whose every layer holds known data, the
 * expected chains, tree and data after any sequence of deletes, and checks of all of it against independent
 * oracles (virsh for libvirt's view, qemu-io for the data in the files).
 */
import { existsSync } from "node:fs";
import net from "node:net";
import { LibvirtConnection } from "../../../provider/libvirt/connection";
import type { LabDomain } from "../../support/lab-domain";
import { RunError, run } from "../../support/run";
import { labUri, virsh } from "../../support/virsh";

/** A connection to the lab's daemon over its unix socket. Close it in afterAll. */
export async function openLabConnection(): Promise<LibvirtConnection> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(process.env.LIBVIRT_SOCK ?? "/var/run/libvirt/libvirt-sock");
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
  return LibvirtConnection.open(socket, { name: labUri });
}

const KiB = 1024;
const MiB = 1024 * KiB;
/** Every layer writes its own pattern here, so this region shows which layer is the newest one. */
const SHARED = { offset: 0, length: 64 * KiB };
/** Layer k alone writes region k. */
const region = (layer: number) => ({ offset: (layer + 1) * MiB, length: 64 * KiB });
const pattern = (diskIndex: number, layer: number) => 0x10 * (diskIndex + 1) + layer + 1;

export type SnapshotKind = "disk-only" | "memory";

export interface LayeredSpec {
  /** Number of qcow2 disks (vda, vdb, ...). */
  readonly disks: number;
  /** Snapshots s1..sN, each with a new overlay per disk. */
  readonly snapshots: number;
  readonly kind: SnapshotKind;
  /** Extra MiB written at offset 16 MiB into one layer (a large merge). */
  readonly bulkMiB?: number;
  /** The layer that gets the bulk data; default the newest (the overlay of the last snapshot). */
  readonly bulkLayer?: number;
}

/** A lab domain with layers 0 (base) .. N (overlay of sN), each holding its own patterns. */
export class LayeredDomain {
  readonly names: string[];
  readonly targets: string[];
  constructor(
    readonly lab: LabDomain,
    readonly spec: LayeredSpec,
  ) {
    this.names = Array.from({ length: spec.snapshots }, (_, i) => `s${i + 1}`);
    this.targets = lab.disks.map((d) => d.target);
  }

  overlay(target: string, snapshot: string): string {
    return this.lab.path(`${target}.${snapshot}.qcow2`);
  }
  memoryFile(snapshot: string): string {
    return this.lab.path(`${snapshot}.mem`);
  }
  /** Image of layer k of a disk: the base for 0, else the overlay of s<k>. */
  layerImage(target: string, layer: number): string {
    return layer === 0 ? this.lab.base(target) : this.overlay(target, `s${layer}`);
  }

  /**
   * Writes the patterns of every layer and takes the snapshots (the domain must be shut off; memory snapshots
   * start it for the snapshot and destroy it again). Leaves the domain shut off.
   */
  async build(): Promise<void> {
    const { spec } = this;
    await this.writeLayer(0);
    for (const [i, name] of this.names.entries()) {
      const diskspecs = this.targets.flatMap((t) => [
        "--diskspec",
        `${t},snapshot=external,file=${this.overlay(t, name)}`,
      ]);
      if (spec.kind === "memory") {
        await this.lab.start();
        await virsh(
          "snapshot-create-as",
          this.lab.name,
          name,
          "--memspec",
          `file=${this.memoryFile(name)},snapshot=external`,
          ...diskspecs,
        );
        await this.lab.destroy();
      } else {
        await virsh("snapshot-create-as", this.lab.name, name, "--disk-only", ...diskspecs);
      }
      await this.writeLayer(i + 1);
    }
    if (spec.bulkMiB) {
      for (const t of this.targets) {
        await run("qemu-io", [
          "-f",
          "qcow2",
          "-c",
          `write -P 0x5a ${16 * MiB} ${spec.bulkMiB * MiB}`,
          this.layerImage(t, spec.bulkLayer ?? spec.snapshots),
        ]);
      }
    }
  }

  private async writeLayer(layer: number): Promise<void> {
    for (const [d, target] of this.targets.entries()) {
      const image = this.layerImage(target, layer);
      const p = pattern(d, layer);
      await run("qemu-io", [
        "-f",
        "qcow2",
        "-c",
        `write -P ${p} ${SHARED.offset} ${SHARED.length}`,
        "-c",
        `write -P ${p} ${region(layer).offset} ${region(layer).length}`,
        image,
      ]);
    }
  }

  /** Puts the built (shut off) domain in the state a scenario needs. */
  async enter(state: "running" | "paused" | "shutoff"): Promise<void> {
    if (state !== "shutoff") await this.lab.start(state === "paused");
  }
}

/**
 * Reads `image` through its backing chain and checks it holds exactly layers 0..`newest` of disk `diskIndex`:
 * the shared region from the newest layer, each layer's region for layers up to `newest`, zeros above. One
 * qemu-io process (-U: the image may be open in QEMU). Returns the failed checks (empty when all match).
 */
export async function dataMismatches(
  image: string,
  diskIndex: number,
  newest: number,
  layers: number,
): Promise<string[]> {
  const checks: { what: string; command: string }[] = [
    {
      what: "shared region",
      command: `read -P ${pattern(diskIndex, newest)} ${SHARED.offset} ${SHARED.length}`,
    },
  ];
  for (let k = 0; k <= layers; k++) {
    const p = k <= newest ? pattern(diskIndex, k) : 0;
    checks.push({
      what: `region of layer ${k}`,
      command: `read -P ${p} ${region(k).offset} ${region(k).length}`,
    });
  }
  let output: string;
  try {
    output = (
      await run("qemu-io", ["-r", "-U", "-f", "qcow2", ...checks.flatMap((c) => ["-c", c.command]), image])
    ).stdout;
  } catch (e) {
    if (!(e instanceof RunError)) throw e;
    output = e.stdout;
  }
  // qemu-io prints one result per command, in order: a "read" line on success, a verification failure otherwise.
  const results = output.split("\n").filter((l) => /^read |Pattern verification failed/.test(l));
  return checks
    .filter((_, i) => !results[i]?.startsWith("read "))
    .map((c) => `${image}: ${c.what} (${c.command})`);
}

/** What libvirt and the files must show after deleting `deleted` (in any order) from a LayeredDomain. */
export interface ExpectedState {
  /** Per disk, the live chain: overlays of the remaining snapshots, newest first, then the base. */
  readonly chains: Record<string, string[]>;
  /** Remaining snapshot -> its parent after re-parenting. */
  readonly parents: Record<string, string | null>;
  /** Files that must be gone. */
  readonly removed: string[];
}

export function expectedAfter(domain: LayeredDomain, deleted: readonly string[]): ExpectedState {
  const remaining = domain.names.filter((n) => !deleted.includes(n));
  const chains = Object.fromEntries(
    domain.targets.map((t) => [
      t,
      [...remaining.map((n) => domain.overlay(t, n)).reverse(), domain.lab.base(t)],
    ]),
  );
  const parents = Object.fromEntries(
    remaining.map((n) => {
      const older = domain.names.slice(0, domain.names.indexOf(n)).filter((o) => remaining.includes(o));
      return [n, older.at(-1) ?? null];
    }),
  );
  const removed = deleted.flatMap((n) => [
    ...domain.targets.map((t) => domain.overlay(t, n)),
    ...(domain.spec.kind === "memory" ? [domain.memoryFile(n)] : []),
  ]);
  return { chains, parents, removed };
}

/**
 * Everything observable after deletes, as one value to compare with deep equality: live chains, the newest
 * image of the persistent definition, the snapshot tree, leftover files, block jobs, and data mismatches of the
 * active layer and of every remaining snapshot's point in time.
 */
export async function observe(domain: LayeredDomain) {
  const { lab } = domain;
  const running = (await lab.state()) !== "shutoff";
  const persistent = await lab.liveChains(true);
  const persistentTops = Object.fromEntries(domain.targets.map((t) => [t, persistent[t]?.[0]?.file]));
  // A shut-off domain's XML names only the active image; the files then say what the chain is.
  const live = running ? await lab.liveChains() : undefined;
  const libvirtChains =
    live && Object.fromEntries(domain.targets.map((t) => [t, live[t]?.map((i) => i.file)]));
  const chains: Record<string, string[]> = {};
  for (const t of domain.targets) {
    const active = running ? live?.[t]?.[0]?.file : persistentTops[t];
    chains[t] = active === undefined ? [] : await lab.fileChain(active);
  }
  const parents = await lab.snapshotParents();
  const leftovers = [
    ...domain.names.flatMap((n) => domain.targets.map((t) => domain.overlay(t, n))),
    ...domain.names.map((n) => domain.memoryFile(n)),
  ].filter(existsSync);
  const jobs = (await lab.xml()).includes("<mirror");
  const mismatches: string[] = [];
  for (const [d, t] of domain.targets.entries()) {
    const chain = chains[t] ?? [];
    const active = chain[0];
    if (active !== undefined)
      mismatches.push(...(await dataMismatches(active, d, domain.spec.snapshots, domain.spec.snapshots)));
    for (const name of Object.keys(parents)) {
      const position = chain.indexOf(domain.overlay(t, name));
      const pointInTime = chain[position + 1];
      const layer = domain.names.indexOf(name); // s<k> captured layers 0..k-1
      if (position < 0 || pointInTime === undefined)
        mismatches.push(`${name}/${t}: overlay not in the chain`);
      else mismatches.push(...(await dataMismatches(pointInTime, d, layer, domain.spec.snapshots)));
    }
  }
  return { libvirtChains, chains, persistentTops, parents, leftovers, jobs, mismatches };
}

/** The value `observe` must return after deleting `deleted`. */
export function expectedObservation(domain: LayeredDomain, deleted: readonly string[], running: boolean) {
  const expected = expectedAfter(domain, deleted);
  return {
    libvirtChains: running ? expected.chains : undefined,
    chains: expected.chains,
    persistentTops: Object.fromEntries(domain.targets.map((t) => [t, expected.chains[t]?.[0]])),
    parents: expected.parents,
    leftovers: [
      ...domain.names.flatMap((n) => domain.targets.map((t) => domain.overlay(t, n))),
      ...domain.names.map((n) => domain.memoryFile(n)),
    ].filter((f) => !expected.removed.includes(f) && (domain.spec.kind === "memory" || !f.endsWith(".mem"))),
    jobs: false,
    mismatches: [],
  };
}
