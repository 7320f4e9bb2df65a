import { join } from "node:path";
import { expect, test } from "vitest";
import { buildOutputLockDir, withDirLock } from "../../support/dir-lock";
import { run } from "../../support/run";
import { domainExists } from "../../support/virsh";

const repoRoot = join(__dirname, "..", "..", "..");

// `npm run demo` as a user runs it (builds first when the build is missing or stale, hence the long timeout).
// The demo runs the built CLI from dist/, which the Pulumi tests rebuild and pack in parallel test files:
// holding the build-output lock, it never loads a module that a build is rewriting at that moment (and the
// test's timeout leaves room for a build that holds the lock first).
test("npm run demo walks the restore-point cycle (create, change, create, delete with merge, revert, delete) with every data check passing and removes its VM", async () => {
  const result = await withDirLock(buildOutputLockDir(), () =>
    run("bash", [join(repoRoot, "scripts", "demo.sh")], 300_000),
  );
  const lines = result.stdout.split("\n");
  const checks = lines.filter((line) => line.startsWith("data check: "));
  expect(checks.map((line) => line.slice("data check: ".length))).toEqual([
    "vda reads 0xa1 in its first MiB: ok",
    "vda reads 0xb2 in its first MiB: ok",
    "snapshot before-deploy (its point-in-time image) reads 0xa1 in its first MiB: ok",
    "vda reads 0xb2 in its first MiB: ok",
    "snapshot after-deploy (its point-in-time image, now the base) reads 0xb2 in its first MiB: ok",
    "vda reads 0xc3 in its first MiB: ok",
    "vda reads 0xb2 in its first MiB: ok",
    "vda writes to a new overlay on the base image: ok",
    "vda reads 0xb2 in its first MiB: ok",
    "vda's chain is just its base image: ok",
  ]);
  expect(lines).toContainEqual(
    expect.stringMatching(/^demo: 10 passed, 0 failed \(data checks; [\d.]+ s\)$/),
  );
  // Every step ran through the CLI and the final verify found nothing.
  expect(lines).toContainEqual(
    expect.stringMatching(
      /^Domain lvsnap-lab-[0-9a-f]{8}: snapshot metadata, chains and journal are consistent\.$/,
    ),
  );
  const vm = /^--- throwaway VM (\S+) /m.exec(result.stdout)?.[1];
  expect(vm).toMatch(/^lvsnap-lab-[0-9a-f]{8}$/);
  expect(await domainExists(vm ?? "")).toBe(false);
}, 900_000);
