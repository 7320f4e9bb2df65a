/**
 * The restore-point walk of `npm run demo` (start it through scripts/demo.sh, which installs, builds and checks
 * the host first). On a throwaway VM made by the test lab it drives the built `libvirt-snapshot` CLI:
 * a restore point, a change ("the deploy"), a second restore point, delete of the first with merge, a bad change,
 * revert to the second, delete of the second with merge (back to a single image); it prints the snapshot tree
 * and checks the disk's data with qemu-io after each step, verifies, then removes the VM (`--keep` leaves it).
 *
 * The VM stays shut off, so data can be written and read with qemu-io between the steps; the engine starts it
 * paused for the merges, as libvirt's own offline delete does. Exit 0 when every step and check passed; the
 * last line says how many data checks passed and failed.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createLabDomain } from "../test/support/lab-create";
import type { LabDomain } from "../test/support/lab-domain";
import { labUri } from "../test/support/virsh";

const cli = join(__dirname, "..", "dist", "cli", "main.js");
const keep = process.argv.includes("--keep");
const MiB = 1024 * 1024;
/** The range of the disk the demo writes and checks: the first MiB of vda. */
const RANGE = { offset: 0, length: MiB };
const ORIGINAL = 0xa1;
const DEPLOYED = 0xb2;
const BROKEN = 0xc3;

let passed = 0;
let failed = 0;

function step(title: string): void {
  process.stdout.write(`\n--- ${title}\n`);
}

/** Runs the built CLI with `args`, its output going to ours; resolves its exit code. */
function runCli(args: readonly string[]): Promise<number> {
  process.stdout.write(
    `$ libvirt-snapshot ${args.map((a) => (/^[\w.,:/=+-]+$/.test(a) ? a : JSON.stringify(a))).join(" ")}\n`,
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, "-c", labUri, ...args], { stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

async function cliStep(args: readonly string[]): Promise<void> {
  const code = await runCli(args);
  if (code !== 0) throw new Error(`libvirt-snapshot ${args.join(" ")} exited with ${code}`);
}

/** Checks that vda, read through its whole chain from `image` (default: the active layer), holds `pattern`. */
async function dataCheck(domain: LabDomain, what: string, pattern: number, image?: string): Promise<void> {
  const top = image ?? (await domain.liveChain("vda"))[0];
  if (top === undefined) throw new Error("vda has no active layer");
  const ok = await domain.checkPattern(top, { pattern, ...RANGE });
  if (ok) passed++;
  else failed++;
  const hex = `0x${pattern.toString(16)}`;
  process.stdout.write(`data check: ${what} reads ${hex} in its first MiB: ${ok ? "ok" : "FAILED"}\n`);
}

async function walk(domain: LabDomain): Promise<void> {
  const name = domain.name;
  step(`throwaway VM ${name} (shut off, one 64 MiB qcow2 disk, vda)`);
  await domain.writePattern("vda", { pattern: ORIGINAL, ...RANGE });
  await dataCheck(domain, "vda", ORIGINAL);

  step("restore point before the deploy");
  await cliStep(["create", name, "before-deploy", "--description", "known good state"]);
  await cliStep(["list", name]);

  step("the deploy changes the data (qemu-io writes into the active layer, the new overlay)");
  await writeActive(domain, DEPLOYED);
  await dataCheck(domain, "vda", DEPLOYED);
  await dataCheck(domain, "snapshot before-deploy (its point-in-time image)", ORIGINAL, domain.base("vda"));

  step("restore point after the deploy");
  await cliStep(["create", name, "after-deploy"]);
  await cliStep(["list", name]);

  step("the deploy is good: delete before-deploy, merging its overlay into the base image (blockcommit)");
  await cliStep(["delete", name, "before-deploy"]);
  await cliStep(["list", name]);
  await dataCheck(domain, "vda", DEPLOYED);
  await dataCheck(
    domain,
    "snapshot after-deploy (its point-in-time image, now the base)",
    DEPLOYED,
    domain.base("vda"),
  );
  await cliStep(["verify", name]);

  step("a bad change");
  await writeActive(domain, BROKEN);
  await dataCheck(domain, "vda", BROKEN);

  step("revert to after-deploy: the disk gets a new overlay on the snapshot's point-in-time image");
  await cliStep(["revert", name, "after-deploy"]);
  await cliStep(["list", name]);
  await dataCheck(domain, "vda", DEPLOYED);
  const chain = await domain.fileChain("vda");
  const onBase = chain.length === 2 && chain[1] === domain.base("vda");
  if (onBase) passed++;
  else failed++;
  process.stdout.write(
    `data check: vda writes to a new overlay on the base image: ${onBase ? "ok" : `FAILED (${chain.join(" <- ")})`}\n`,
  );

  step("all good again: delete after-deploy, merging the active overlay down into the base image");
  await cliStep(["delete", name, "after-deploy"]);
  await cliStep(["list", name]);
  await dataCheck(domain, "vda", DEPLOYED);
  const final = await domain.fileChain("vda");
  const baseOnly = final.length === 1 && final[0] === domain.base("vda");
  if (baseOnly) passed++;
  else failed++;
  process.stdout.write(
    `data check: vda's chain is just its base image: ${baseOnly ? "ok" : `FAILED (${final.join(" <- ")})`}\n`,
  );
  await cliStep(["verify", name]);
}

/** Writes `pattern` into the first MiB of vda's active layer (the domain is shut off). */
async function writeActive(domain: LabDomain, pattern: number): Promise<void> {
  const active = (await domain.liveChain("vda"))[0];
  if (active === undefined) throw new Error("vda has no active layer");
  await domain.writePattern(active, { pattern, ...RANGE });
}

async function main(): Promise<number> {
  const started = Date.now();
  const domain = await createLabDomain({ state: "shutoff" });
  let error: unknown;
  try {
    await walk(domain);
  } catch (e) {
    error = e;
  } finally {
    if (keep)
      process.stdout.write(
        `\nkept VM ${domain.name} (files in ${domain.dir}); remove it with npm run lab:sweep\n`,
      );
    else await domain.dispose();
  }
  if (error !== undefined) {
    process.stderr.write(`demo: step failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(`\ndemo: ${passed} passed, ${failed} failed (data checks; ${seconds} s)\n`);
  return error === undefined && failed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`demo: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
