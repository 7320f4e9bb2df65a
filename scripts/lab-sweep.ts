/**
 * Removes what killed test runs left behind: every libvirt domain whose name starts with the lab prefix
 * (destroyed, undefined with its snapshot metadata), the lab's image root with everything in it, and the
 * transient `lvsnap-files-*` storage pools the engine makes to remove files, when a killed run left them
 * (destroying a transient pool keeps its files). Touches nothing else: not other domains or pools, not the
 * Linux guest build cache. Do not run it while lab tests (or anything else using this package on the same
 * host) are running: their pools would go with the leftovers.
 *
 *   npm run lab:sweep
 */
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { TRANSIENT_POOL_PREFIX } from "../provider/engine/delete-files";
import { labPrefix, labRoot, removeLabDomain } from "../test/support/lab-cleanup";
import { labUri, virsh } from "../test/support/virsh";

async function main(): Promise<number> {
  let failures = 0;
  const names = (await virsh("list", "--all", "--name")).split("\n").map((line) => line.trim());
  for (const name of names.filter((candidate) => candidate.startsWith(labPrefix))) {
    try {
      await removeLabDomain(name);
      console.log(`removed domain ${name} and ${join(labRoot, name)}`);
    } catch (error) {
      failures++;
      console.error(`could not remove domain ${name}:`, error);
    }
  }
  const pools = (await virsh("pool-list", "--transient", "--name")).split("\n").map((line) => line.trim());
  for (const pool of pools.filter((candidate) => candidate.startsWith(TRANSIENT_POOL_PREFIX))) {
    try {
      await virsh("pool-destroy", pool);
      console.log(`destroyed transient pool ${pool}`);
    } catch (error) {
      failures++;
      console.error(`could not destroy transient pool ${pool}:`, error);
    }
  }
  const entries = await readdir(labRoot).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [];
    throw error;
  });
  for (const entry of entries) {
    await rm(join(labRoot, entry), { recursive: true, force: true });
    console.log(`removed ${join(labRoot, entry)}`);
  }
  await rm(labRoot, { recursive: true, force: true });
  console.log(
    `lab sweep on ${labUri}: done${failures > 0 ? `, ${failures} domain(s) or pool(s) could not be removed` : ""}`,
  );
  return failures > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
