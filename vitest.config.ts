import { defineConfig } from "vitest/config";

// Two projects: unit tests need nothing but Node; integration tests drive a real libvirtd and real QEMU
// guests. `npm test` runs both; the global setup of the integration project fails the run, never skips it,
// when libvirt is unreachable.
export default defineConfig({
  test: {
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["./test/support/global-setup.ts"],
          // Only a hang should hit these: on a loaded two-core host a CLI test that normally takes 15 s has taken
          // 47 s (each CLI run starts Node with tsx, each lab domain starts QEMU), so a timeout near two minutes
          // left too little room.
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // Two cores shared with libvirtd and QEMU: more workers only add contention.
          maxWorkers: 2,
        },
      },
    ],
  },
});
