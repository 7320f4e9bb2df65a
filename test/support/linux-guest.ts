import { readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { agentCommand, guestExec, waitForAgent } from "./guest-agent";
import { verifyRecordsText } from "./guest-records";
import { LabDomain } from "./lab-domain";
import { RunError, run } from "./run";
import { domainState, virsh } from "./virsh";

/**
 * The lab's Linux test guest: a Debian kernel booted directly (PVH) with an initramfs built by linux-guest/build.sh
 * (busybox, qemu-guest-agent, virtio and ext4 modules). Its data disk vda carries an ext4 filesystem made on
 * the host and is mounted on /data in the guest; a writer there appends checksummed records while tests take
 * snapshots and commit layers, and the host verifies every record afterwards, from the image files.
 */

/** Kernel, initramfs and command line of the built guest (files in the machine-wide cache). */
export interface LinuxGuestBoot {
  kernel: string;
  initrd: string;
  cmdline: string;
}

let build: Promise<LinuxGuestBoot> | undefined;

/**
 * Kernel arguments added to the built guest's command line here (not in build.sh, whose change would force a
 * rebuild of the cached guest on every machine). no_timer_check: at boot Linux checks that timer interrupts
 * arrive within a few jiffies and panics ("IO-APIC + timer doesn't work!") when they do not; a TCG vCPU on an
 * overloaded host can be descheduled through that window, and panic=-1 then ends the domain mid-boot.
 */
const EXTRA_KERNEL_ARGUMENTS = "no_timer_check";

/**
 * The domain type for the Linux test guest: LAB_VIRT_TYPE if set, else "qemu" (TCG) when /dev/kvm is provided
 * by kvm_pvm, else the lab's usual choice.
 * Quirk: kvm_pvm (the build machines' KVM, a shadow-paging implementation) takes about 12 ms per first touch of
 * a guest page, so a Linux kernel spends minutes clearing its BSS; OS-less SeaBIOS guests touch too little
 * memory to notice. TCG boots the guest in about 35 s there.
 */
export async function linuxGuestVirtType(fallback: () => Promise<"kvm" | "qemu">): Promise<"kvm" | "qemu"> {
  if (process.env.LAB_VIRT_TYPE) return fallback();
  const pvm = await stat("/sys/module/kvm_pvm").then(
    () => true,
    () => false,
  );
  return pvm ? "qemu" : fallback();
}

/**
 * Returns the built guest, building it first if this machine has none for the current package versions and
 * scripts (needs root and Debian's package lists; about 15-25 s once, then cached under /var/cache/lvsnap-lab;
 * prints the build time). Runs build.sh at most once per process; concurrent builds are serialized by it.
 */
export function linuxGuestBoot(): Promise<LinuxGuestBoot> {
  build ??= (async () => {
    const script = join(__dirname, "linux-guest", "build.sh");
    const { stdout, stderr } = await run("bash", [script], 300_000);
    if (stderr.includes("linux-guest: built")) process.stderr.write(stderr);
    const dir = stdout.trim().split("\n").at(-1) ?? "";
    const cmdline = `${(await readFile(join(dir, "cmdline"), "utf8")).trim()} ${EXTRA_KERNEL_ARGUMENTS}`;
    return { kernel: join(dir, "vmlinux"), initrd: join(dir, "initrd.img"), cmdline };
  })();
  return build;
}

/**
 * Creates a qcow2 image of `sizeMiB` MiB holding an empty ext4 filesystem: mkfs.ext4 on a raw file, then
 * converted. The raw file is removed; on failure either file may remain in the directory.
 */
export async function createExt4Image(path: string, sizeMiB: number): Promise<void> {
  const raw = `${path}.raw`;
  await writeFile(raw, "");
  await truncate(raw, sizeMiB * 1024 * 1024);
  await run("mkfs.ext4", ["-q", "-F", "-L", "lvsnap-data", raw]);
  await run("qemu-img", ["convert", "-q", "-f", "raw", "-O", "qcow2", raw, path]);
  await rm(raw);
}

/**
 * Reads files out of the ext4 filesystem in `image` (through its whole backing chain) without mounting it:
 * the chain is flattened to a temporary raw file in `scratchDir`, the filesystem is checked with
 * `e2fsck -fn` (a filesystem that was not cleanly unmounted, or is damaged, fails here), and each file is
 * read with debugfs. Returns path -> content (null for a missing file). The temporary file is removed.
 */
export async function readExt4Files(
  image: string,
  scratchDir: string,
  paths: string[],
): Promise<Record<string, string | null>> {
  const raw = join(scratchDir, "lvsnap-readback.raw");
  try {
    await run("qemu-img", ["convert", "-U", "-q", "-O", "raw", image, raw]);
    await run("e2fsck", ["-f", "-n", raw]);
    const files: Record<string, string | null> = {};
    for (const path of paths) {
      const { stdout, stderr } = await run("debugfs", ["-R", `cat ${path}`, raw]);
      files[path] = /File not found/.test(stderr) ? null : stdout;
    }
    return files;
  } finally {
    await rm(raw, { force: true });
  }
}

/** A lab domain running the Linux test guest. */
export class LinuxLabDomain extends LabDomain {
  /**
   * Waits until qemu-ga answers guest-ping through libvirt (default up to 60 s; under KVM the guest is
   * ready within a few seconds). Returns the milliseconds waited. A failure carries the end of the guest's
   * serial console, which says how far the boot got.
   */
  async waitForAgent(timeoutMs = 60_000): Promise<number> {
    try {
      return await waitForAgent(this.name, timeoutMs);
    } catch (error) {
      const consoleText = await readFile(this.path("console.log"), "utf8").catch((e: unknown) => String(e));
      throw new Error(`${(error as Error).message}; its console ended with:\n${consoleText.slice(-4000)}`, {
        cause: error,
      });
    }
  }

  /** Sends an agent command through libvirt and returns its `return` value. */
  agent(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    return agentCommand(this.name, execute, args);
  }

  /** Runs a program in the guest through guest-exec; see guestExec for `timeoutMs`. */
  exec(path: string, args: string[] = [], timeoutMs?: number) {
    return guestExec(this.name, path, args, timeoutMs);
  }

  /** Starts the writer of checksummed records on /data/records. Throws if it was already started. */
  async startWriter(): Promise<void> {
    const result = await this.exec("/bin/lvsnap-writer", ["start"]);
    if (result.exitCode !== 0) throw new Error(`${this.name}: writer did not start: ${result.stdout}`);
  }

  /**
   * Stops the writer, waits until its last record and the count are synced to disk, and returns how many
   * records it wrote.
   */
  async stopWriter(): Promise<number> {
    // The writer's own wait for its loop to end lasts up to 60 s (guest time, slow under TCG on a busy host).
    const result = await this.exec("/bin/lvsnap-writer", ["stop"], 90_000);
    const count = Number(result.stdout.trim());
    if (result.exitCode !== 0 || !Number.isSafeInteger(count)) {
      throw new Error(`${this.name}: writer did not stop cleanly: ${result.stdout}${result.stderr}`);
    }
    return count;
  }

  /**
   * Shuts the guest down through the agent (it stops the writer and unmounts /data first, which alone may
   * take a minute under TCG on a busy host) and waits until the domain is shut off, up to `timeoutMs`. Does
   * nothing if it is already shut off.
   */
  async shutdown(timeoutMs = 150_000): Promise<void> {
    if ((await domainState(this.name)) === "shutoff") return;
    await virsh("shutdown", "--mode", "agent", this.name);
    const started = Date.now();
    while ((await domainState(this.name)) !== "shutoff") {
      if (Date.now() - started > timeoutMs)
        throw new Error(`${this.name} did not shut down in ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /**
   * Shuts the guest down if it runs, then reads the records file from the data disk's current active layer
   * (as the persistent definition names it) and checks every record and that there are `expectedCount`.
   * Throws with the first problem; returns the number of records verified.
   */
  async verifyRecords(expectedCount: number): Promise<number> {
    await this.shutdown();
    const top = (await this.liveChain("vda", true))[0];
    if (!top) throw new Error(`${this.name}: vda has no source`);
    let files: Record<string, string | null>;
    try {
      files = await readExt4Files(top, this.dir, ["/records", "/records.count"]);
    } catch (error) {
      if (error instanceof RunError)
        throw new Error(`${this.name}: data disk unreadable or damaged`, { cause: error });
      throw error;
    }
    const records = files["/records"];
    if (records == null) throw new Error(`${this.name}: no /records on the data disk`);
    const guestCount = Number(files["/records.count"]?.trim());
    if (guestCount !== expectedCount) {
      throw new Error(`${this.name}: the guest recorded ${guestCount} records, ${expectedCount} expected`);
    }
    const verdict = verifyRecordsText(records, expectedCount);
    if (verdict.problem) throw new Error(`${this.name}: ${verdict.problem}`);
    return verdict.records;
  }
}
