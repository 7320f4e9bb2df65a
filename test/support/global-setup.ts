import { execFile } from "node:child_process";
import { labUri } from "./virsh";

/**
 * Vitest global setup of the integration project: fails the run, never skips it (with or without CI=true),
 * when libvirt does not answer, so a run that tested nothing cannot look green.
 */
export default async function setup(): Promise<void> {
  const answer = await new Promise<{ ok: boolean; detail: string }>((resolve) => {
    execFile(
      "virsh",
      ["-c", labUri, "version"],
      { timeout: 30_000, encoding: "utf8" },
      (error, _out, stderr) => {
        resolve({ ok: !error, detail: error ? stderr.trim() || error.message : "" });
      },
    );
  });
  if (!answer.ok) {
    throw new Error(
      `libvirt does not answer on ${labUri} (socket /var/run/libvirt/libvirt-sock): ${answer.detail}\n` +
        "Integration tests need a running libvirtd: run `sudo bash scripts/libvirt-host.sh`, " +
        "or run only the unit tests with `npm run test:unit`.",
    );
  }
}
