import { randomBytes } from "node:crypto";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { onTestFinished } from "vitest";
import { buildDomainXml, type DiskSpec } from "./domain-xml";
import { labDomainDir, labPrefix, labRoot, removeLabDomain } from "./lab-cleanup";
import {
  backingChain,
  type ChainImage,
  checkPattern,
  createImage,
  type ImageFormat,
  type PatternRange,
  writePattern,
} from "./qemu-tools";
import {
  type BlockListEntry,
  blockList,
  type DomainState,
  domainState,
  domainXml,
  liveChains,
  snapshotNames,
  snapshotParents,
  snapshotTreeText,
  virsh,
} from "./virsh";

/**
 * The test lab: one call makes a throwaway libvirt domain for a test, and removes it (domain, metadata, files)
 * when the test finishes, passed or failed. Domains are OS-less SeaBIOS guests with 64 MiB RAM, KVM when the
 * host allows it, TCG otherwise; their disks are qcow2 files in a directory of their own.
 */

export { labPrefix, labRoot };

/** Extra disks, each with the property that snapshot code must handle. */
export type ExtraDiskKind = "shareable" | "readonly" | "cdrom";

/** What `lab.domain()` builds. Sizes are MiB. */
export interface LabDomainOptions {
  /** qcow2 disks vda, vdb, ... (default: one of 64 MiB). */
  disks?: { sizeMiB: number }[];
  /** Raw extra disks after the qcow2 ones: virtio shareable/readonly disks, a SATA cdrom. */
  extraDisks?: (ExtraDiskKind | { kind: ExtraDiskKind; snapshot?: "no" | "external" })[];
  /** State the domain is left in (default "running"). */
  state?: "running" | "paused" | "shutoff";
  /** Adds the virtio-serial channel org.qemu.guest_agent.0 (no agent answers in an OS-less guest). */
  guestAgentChannel?: boolean;
}

/** A qcow2 disk the lab created: its target and the base image it was defined with. */
export interface LabDisk {
  target: string;
  base: string;
  format: ImageFormat;
}

/** An extra disk: its kind, target and file. */
export interface LabExtraDisk extends LabDisk {
  kind: ExtraDiskKind;
}

let virtTypeDecision: Promise<"kvm" | "qemu"> | undefined;

/**
 * The domain type for lab domains, decided once per process: LAB_VIRT_TYPE ("kvm" or "qemu") if set, else
 * "kvm" when libvirt offers KVM domains and /dev/kvm is group read-write (QEMU runs as libvirt-qemu, group kvm;
 * scripts/libvirt-host.sh sets that up), else "qemu" (TCG).
 */
export function labVirtType(): Promise<"kvm" | "qemu"> {
  virtTypeDecision ??= (async () => {
    const forced = process.env.LAB_VIRT_TYPE;
    if (forced === "kvm" || forced === "qemu") return forced;
    if (forced) throw new Error(`LAB_VIRT_TYPE must be "kvm" or "qemu", got ${JSON.stringify(forced)}`);
    try {
      const device = await stat("/dev/kvm");
      if ((device.mode & 0o060) !== 0o060) return "qemu";
      await virsh("domcapabilities", "--virttype", "kvm");
      return "kvm";
    } catch {
      return "qemu";
    }
  })();
  return virtTypeDecision;
}

function diskLetter(index: number): string {
  if (index >= 26) throw new RangeError("the lab supports at most 26 virtio disks");
  return String.fromCharCode("a".charCodeAt(0) + index);
}

/** A lab domain, with oracles (qemu-img, qemu-io, virsh) bound to it. */
export class LabDomain {
  constructor(
    readonly name: string,
    readonly uuid: string,
    /** Image directory of this domain; put overlays and memory files here. */
    readonly dir: string,
    readonly virtType: "kvm" | "qemu",
    readonly disks: readonly LabDisk[],
    readonly extraDisks: readonly LabExtraDisk[],
  ) {}

  /** Path `<dir>/<fileName>`, for overlay and memory files of snapshots. */
  path(fileName: string): string {
    if (fileName.includes("/")) throw new Error(`not a plain file name: ${JSON.stringify(fileName)}`);
    return join(this.dir, fileName);
  }

  /** The base image of a disk target (as created; not the current active layer). */
  base(target: string): string {
    const disk = [...this.disks, ...this.extraDisks].find((candidate) => candidate.target === target);
    if (!disk) throw new Error(`${this.name} has no disk ${target}`);
    return disk.base;
  }

  private image(targetOrPath: string): string {
    return isAbsolute(targetOrPath) ? targetOrPath : this.base(targetOrPath);
  }

  state(): Promise<DomainState> {
    return domainState(this.name);
  }
  async start(paused = false): Promise<void> {
    await (paused ? virsh("start", "--paused", this.name) : virsh("start", this.name));
  }
  async destroy(): Promise<void> {
    await virsh("destroy", this.name);
  }
  async suspend(): Promise<void> {
    await virsh("suspend", this.name);
  }
  async resume(): Promise<void> {
    await virsh("resume", this.name);
  }
  /** `virsh dumpxml` (live, or the persistent definition with `inactive`). */
  xml(inactive = false): Promise<string> {
    return domainXml(this.name, inactive);
  }
  blockList(inactive = false): Promise<BlockListEntry[]> {
    return blockList(this.name, inactive);
  }
  /** Every disk's chain as libvirt records it (target -> images, active first). */
  liveChains(inactive = false): Promise<Record<string, ChainImage[]>> {
    return liveChains(this.name, inactive);
  }
  /** The chain of one disk as libvirt records it, as file paths, active first. */
  async liveChain(target: string, inactive = false): Promise<string[]> {
    const chain = (await this.liveChains(inactive))[target];
    if (!chain) throw new Error(`${this.name} has no disk ${target}`);
    return chain.map((image) => image.file);
  }
  /** The chain qemu-img reads from the files, starting at a target's active layer (per libvirt) or a path. */
  async fileChain(targetOrPath: string): Promise<string[]> {
    const top = isAbsolute(targetOrPath) ? targetOrPath : (await this.liveChain(targetOrPath))[0];
    if (!top) throw new Error(`${this.name}: disk ${targetOrPath} has no source`);
    return (await backingChain(top)).map((image) => image.file);
  }
  snapshotNames(): Promise<string[]> {
    return snapshotNames(this.name);
  }
  /** Snapshot name -> parent name (null for a root), as virsh reports it. */
  snapshotParents(): Promise<Record<string, string | null>> {
    return snapshotParents(this.name);
  }
  snapshotTree(): Promise<string> {
    return snapshotTreeText(this.name);
  }
  /** Writes a pattern into an image (a target's base image, or a path). The domain must not be using it. */
  writePattern(targetOrPath: string, range: PatternRange): Promise<void> {
    return writePattern(this.image(targetOrPath), range);
  }
  /** Whether the range reads back as the pattern through the image's backing chain. */
  checkPattern(targetOrPath: string, range: PatternRange): Promise<boolean> {
    return checkPattern(this.image(targetOrPath), range);
  }
  /** Removes the domain, its metadata and its directory. Idempotent; see removeLabDomain. */
  dispose(): Promise<void> {
    return removeLabDomain(this.name);
  }
}

async function prepareDisks(dir: string, options: LabDomainOptions) {
  const disks: LabDisk[] = [];
  const extraDisks: LabExtraDisk[] = [];
  const specs: DiskSpec[] = [];
  for (const [index, disk] of (options.disks ?? [{ sizeMiB: 64 }]).entries()) {
    const target = `vd${diskLetter(index)}`;
    const base = join(dir, `${target}.qcow2`);
    await createImage(base, "qcow2", disk.sizeMiB);
    disks.push({ target, base, format: "qcow2" });
    specs.push({ target, file: base, format: "qcow2", device: "disk", bus: "virtio" });
  }
  let virtioIndex = disks.length;
  for (const extra of options.extraDisks ?? []) {
    const { kind, snapshot } = typeof extra === "string" ? { kind: extra, snapshot: undefined } : extra;
    const target = kind === "cdrom" ? "sda" : `vd${diskLetter(virtioIndex++)}`;
    const base = join(dir, `${target}.${kind}.raw`);
    await createImage(base, "raw", 1);
    extraDisks.push({ kind, target, base, format: "raw" });
    specs.push({
      target,
      file: base,
      format: "raw",
      device: kind === "cdrom" ? "cdrom" : "disk",
      bus: kind === "cdrom" ? "sata" : "virtio",
      shareable: kind === "shareable",
      readonly: kind !== "shareable",
      ...(snapshot ? { snapshot } : {}),
    });
  }
  return { disks, extraDisks, specs };
}

/**
 * Creates a lab domain and leaves it in `options.state`. Not tied to a test: the caller must `dispose()` it
 * (prefer `lab.domain()` in tests). On failure, removes whatever it had created, then rethrows.
 */
export async function createLabDomain(
  options: LabDomainOptions = {},
  name = newLabName(),
): Promise<LabDomain> {
  const dir = labDomainDir(name);
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const virtType = await labVirtType();
    const { disks, extraDisks, specs } = await prepareDisks(dir, options);
    const xmlFile = join(dir, "domain.xml");
    const xml = buildDomainXml({
      name,
      virtType,
      memoryMiB: 64,
      disks: specs,
      guestAgentChannel: options.guestAgentChannel ?? false,
    });
    await writeFile(xmlFile, xml);
    await virsh("define", xmlFile);
    const uuid = (await virsh("domuuid", name)).trim();
    const domain = new LabDomain(name, uuid, dir, virtType, disks, extraDisks);
    const state = options.state ?? "running";
    if (state !== "shutoff") await domain.start(state === "paused");
    return domain;
  } catch (error) {
    await removeLabDomain(name).catch(() => undefined);
    throw error;
  }
}

/** A fresh `lvsnap-lab-<8 hex>` name. */
export function newLabName(): string {
  return `${labPrefix}${randomBytes(4).toString("hex")}`;
}

/**
 * Runs `body` with a fresh lab domain and removes the domain afterwards, whether `body` resolved or threw.
 * Resolves with body's result; rejects with body's error (or the cleanup error if only cleanup failed).
 */
export async function withLabDomain<T>(
  options: LabDomainOptions,
  body: (domain: LabDomain) => Promise<T>,
): Promise<T> {
  const domain = await createLabDomain(options);
  try {
    return await body(domain);
  } finally {
    await domain.dispose();
  }
}

/** The lab, for use inside Vitest tests. */
export const lab = {
  /**
   * Creates a lab domain owned by the running test: it is removed when the test finishes, whether it passed,
   * failed or threw (cleanup is registered before anything is created). Must be called inside a test.
   */
  async domain(options: LabDomainOptions = {}): Promise<LabDomain> {
    const name = newLabName();
    onTestFinished(() => removeLabDomain(name));
    return createLabDomain(options, name);
  },
};
