import { isAbsolute, join } from "node:path";
import { removeLabDomain } from "./lab-cleanup";
import {
  backingChain,
  type ChainImage,
  checkPattern,
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

/** Extra disks, each with the property that snapshot code must handle. */
export type ExtraDiskKind = "shareable" | "readonly" | "cdrom";

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

/**
 * A lab domain, with oracles (qemu-img, qemu-io, virsh) bound to it.
 *
 * Which image an oracle reads is explicit: `checkPattern` takes an image path and reads through that file's
 * backing chain; `checkActive` takes a disk target and reads what the disk reads now (its active layer per
 * libvirt, through the chain). `writePattern` accepts a target as shorthand for its base image, which is
 * where layers are seeded before any snapshot exists.
 */
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
  /**
   * Whether the range reads back as the pattern through the backing chain of the image file `imagePath`
   * (absolute). A disk target is refused: it names no single image (checkActive reads what the disk reads
   * now, `checkPattern(dom.base(target))` its base image).
   */
  checkPattern(imagePath: string, range: PatternRange): Promise<boolean> {
    if (!isAbsolute(imagePath)) {
      return Promise.reject(
        new Error(
          `checkPattern takes an image path, not ${JSON.stringify(imagePath)}: use checkActive(target) for ` +
            "what the disk reads now, or checkPattern(dom.base(target)) for its base image",
        ),
      );
    }
    return checkPattern(imagePath, range);
  }
  /**
   * Whether the range reads back as the pattern on disk `target` as the domain sees it now: through the chain
   * from its active layer (libvirt's live definition, or the persistent one when shut off).
   */
  async checkActive(target: string, range: PatternRange): Promise<boolean> {
    const top = (await this.liveChain(target))[0];
    if (top === undefined) throw new Error(`${this.name}: disk ${target} has no source`);
    return checkPattern(top, range);
  }
  /** Removes the domain, its metadata and its directory. Idempotent; see removeLabDomain. */
  dispose(): Promise<void> {
    return removeLabDomain(this.name);
  }
}
