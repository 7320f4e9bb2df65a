import { randomBytes } from "node:crypto";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildDomainXml, type DiskSpec } from "./domain-xml";
import { labDomainDir, labPrefix, labRoot, removeLabDomain } from "./lab-cleanup";
import { type ExtraDiskKind, type LabDisk, LabDomain, type LabExtraDisk } from "./lab-domain";
import { createExt4Image, LinuxLabDomain, linuxGuestBoot, linuxGuestVirtType } from "./linux-guest";
import { createImage } from "./qemu-tools";
import { virsh } from "./virsh";

/**
 * Creation of lab domains, usable outside Vitest (benchmarks, scripts): OS-less SeaBIOS guests with 64 MiB RAM
 * or the Linux test guest, KVM when the host allows it, TCG otherwise; their disks are files in a directory of
 * their own. Tests use lab.ts, which ties each domain to the test that made it.
 */

export type { ExtraDiskKind, LabDisk, LabExtraDisk };
export { LabDomain, LinuxLabDomain, labPrefix, labRoot };

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
  /**
   * "linux": boot the Linux test guest (see linux-guest.ts) with 256 MiB RAM and the agent channel; vda then
   * holds an ext4 filesystem that the guest mounts on /data, and its serial console goes to
   * `<dir>/console.log`. Omitted: an OS-less SeaBIOS guest.
   */
  guest?: "linux";
}

/** Options that make a Linux test guest. */
export type LinuxLabDomainOptions = LabDomainOptions & { guest: "linux" };

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

async function prepareDisks(dir: string, options: LabDomainOptions) {
  const disks: LabDisk[] = [];
  const extraDisks: LabExtraDisk[] = [];
  const specs: DiskSpec[] = [];
  for (const [index, disk] of (options.disks ?? [{ sizeMiB: 64 }]).entries()) {
    const target = `vd${diskLetter(index)}`;
    const base = join(dir, `${target}.qcow2`);
    if (index === 0 && options.guest === "linux") await createExt4Image(base, disk.sizeMiB);
    else await createImage(base, "qcow2", disk.sizeMiB);
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
export function createLabDomain(options: LinuxLabDomainOptions, name?: string): Promise<LinuxLabDomain>;
export function createLabDomain(options?: LabDomainOptions, name?: string): Promise<LabDomain>;
export async function createLabDomain(
  options: LabDomainOptions = {},
  name = newLabName(),
): Promise<LabDomain> {
  const dir = labDomainDir(name);
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const linux = options.guest === "linux";
    const virtType = linux ? await linuxGuestVirtType(labVirtType) : await labVirtType();
    const { disks, extraDisks, specs } = await prepareDisks(dir, options);
    const xmlFile = join(dir, "domain.xml");
    const xml = buildDomainXml({
      name,
      virtType,
      memoryMiB: linux ? 256 : 64,
      disks: specs,
      guestAgentChannel: linux || (options.guestAgentChannel ?? false),
      ...(linux ? { kernelBoot: await linuxGuestBoot(), consoleLog: join(dir, "console.log") } : {}),
    });
    await writeFile(xmlFile, xml);
    await virsh("define", xmlFile);
    const uuid = (await virsh("domuuid", name)).trim();
    const domain = new (linux ? LinuxLabDomain : LabDomain)(name, uuid, dir, virtType, disks, extraDisks);
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
export function withLabDomain<T>(
  options: LinuxLabDomainOptions,
  body: (domain: LinuxLabDomain) => Promise<T>,
): Promise<T>;
export function withLabDomain<T>(
  options: LabDomainOptions,
  body: (domain: LabDomain) => Promise<T>,
): Promise<T>;
export async function withLabDomain<T>(
  options: LabDomainOptions,
  body: ((domain: LinuxLabDomain) => Promise<T>) | ((domain: LabDomain) => Promise<T>),
): Promise<T> {
  const domain = await createLabDomain(options);
  try {
    // The overloads pair a Linux body with Linux options, which is what createLabDomain returns for them.
    return await (body as (domain: LabDomain) => Promise<T>)(domain);
  } finally {
    await domain.dispose();
  }
}
