import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { buildOutputLockDir, withDirLock } from "./dir-lock";

/**
 * A throwaway Pulumi program folder with this package installed the way users install it: `npm run build`,
 * `npm pack`, then `npm install` of the tarball (plus @pulumi/pulumi) from the npm cache. The dynamic-provider
 * plugin runs with that folder as its working directory, so the serialized shims resolve the packed package,
 * exactly as in a real deployment.
 *
 * Built once per content hash of the package's sources and kept in os.tmpdir(): later test files and runs
 * reuse it. A lock directory serializes concurrent test files; a crashed builder's lock expires. Building and
 * packing hold the checkout's build-output lock, so they never rewrite dist/ under a reader of it (the demo).
 */

const REPO_ROOT = resolve(__dirname, "../..");
const SOURCE_ROOTS = ["provider", "sdk", "cli"];
const SOURCE_FILES = ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json"];
const PROGRAM_PREFIX = "lvsnap-pulumi-program-";
const PRUNE_AFTER_MS = 60 * 60_000;
const COMMAND_TIMEOUT_MS = 5 * 60_000;

export interface PulumiProgram {
  /** The program folder: the plugin's working directory. */
  readonly dir: string;
  /** `require` resolving from the program folder (its node_modules). */
  readonly require: NodeJS.Require;
  /** The packed tarball that was installed. */
  readonly tarball: string;
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listFiles(path);
    return entry.isFile() && entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Hash of everything that goes into the packed package, so a changed source means a new program folder. */
function sourceHash(): string {
  const files = [
    ...SOURCE_ROOTS.flatMap((root) => listFiles(join(REPO_ROOT, root))),
    ...SOURCE_FILES.map((file) => join(REPO_ROOT, file)),
  ].sort();
  const hash = createHash("sha256");
  for (const file of files) {
    hash.update(relative(REPO_ROOT, file)).update("\0").update(readFileSync(file)).update("\0");
  }
  return hash.digest("hex").slice(0, 16);
}

/** Runs npm with the repository's Node (the test's own process.execPath) first on PATH; argv, never a shell. */
function npm(args: string[], cwd: string): Promise<string> {
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` };
  return new Promise((resolvePromise, reject) => {
    execFile(
      "npm",
      args,
      { cwd, env, timeout: COMMAND_TIMEOUT_MS, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        if (error)
          reject(
            new Error(`npm ${args.join(" ")} failed in ${cwd}:\n${stdout}\n${stderr}`, { cause: error }),
          );
        else resolvePromise(stdout);
      },
    );
  });
}

/** Removes program folders of earlier sources that nobody used for an hour (each holds ~100 MB). */
async function pruneOldPrograms(keep: string): Promise<void> {
  const now = Date.now();
  for (const entry of await readdir(tmpdir())) {
    const path = join(tmpdir(), entry);
    if (!entry.startsWith(PROGRAM_PREFIX) || entry.endsWith(".lock") || path === keep) continue;
    if (existsSync(`${path}.lock`)) continue;
    const { mtimeMs } = await stat(path).catch(() => ({ mtimeMs: now }));
    if (now - mtimeMs > PRUNE_AFTER_MS) await rm(path, { recursive: true, force: true });
  }
}

async function build(dir: string): Promise<string> {
  await pruneOldPrograms(dir);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const packed = await withDirLock(buildOutputLockDir(), async () => {
    await npm(["run", "build"], REPO_ROOT);
    return JSON.parse(await npm(["pack", "--json", "--pack-destination", dir], REPO_ROOT)) as {
      filename: string;
    }[];
  });
  const tarball = packed[0]?.filename;
  if (tarball === undefined) throw new Error("npm pack reported no tarball");
  const pulumiVersion = (
    JSON.parse(await readFile(join(REPO_ROOT, "node_modules/@pulumi/pulumi/package.json"), "utf8")) as {
      version: string;
    }
  ).version;
  await writeFile(
    join(dir, "package.json"),
    `${JSON.stringify(
      {
        name: "lvsnap-pulumi-test-program",
        private: true,
        dependencies: { "@pulumi/pulumi": pulumiVersion, "pulumi-libvirt-snapshot": `file:./${tarball}` },
      },
      null,
      2,
    )}\n`,
  );
  await npm(
    ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
    dir,
  );
  await writeFile(join(dir, ".ready"), tarball);
  return tarball;
}

let prepared: Promise<PulumiProgram> | undefined;

/**
 * The program folder for the current sources: built (build, pack, install) on first use, reused afterwards,
 * also across test files and runs. Rejects with npm's output when the build or the install fails.
 */
export function preparePulumiProgram(): Promise<PulumiProgram> {
  prepared ??= (async () => {
    const dir = join(tmpdir(), `${PROGRAM_PREFIX}${sourceHash()}`);
    const readyFile = join(dir, ".ready");
    const tarball = existsSync(readyFile)
      ? readFileSync(readyFile, "utf8")
      : await withDirLock(`${dir}.lock`, async () =>
          existsSync(readyFile) ? readFileSync(readyFile, "utf8") : build(dir),
        );
    // Marks the folder as in use, so that pruning by a run of other sources leaves it alone.
    const now = new Date();
    await utimes(dir, now, now);
    // A symlinked package (npm link, file: of a folder) would be serialized by value: not what users get.
    if (!lstatSync(join(dir, "node_modules", "pulumi-libvirt-snapshot")).isDirectory()) {
      throw new Error(`${dir}: pulumi-libvirt-snapshot is not installed as a plain directory`);
    }
    return { dir, tarball: join(dir, tarball), require: createRequire(join(dir, "package.json")) };
  })();
  return prepared;
}
