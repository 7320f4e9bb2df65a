/**
 * Child of transport.test.ts: dials libvirtd over ssh, prints `{"ssh":<pid>}`, and on SIGINT (sent to its whole
 * process group, as a terminal's Ctrl-C is) makes one call over the tunnel, prints `{"afterSigint":<reply>}`
 * and exits without closing the tunnel, so the test can see that the exit ends the ssh child.
 */
import { dial } from "../../../provider/libvirt/transports";
import type { SshTunnel } from "../../../provider/libvirt/transports/ssh";
import { parseLibvirtUri } from "../../../provider/libvirt/uri";
import { authList, sshUri } from "./transport-support";

async function main(): Promise<void> {
  const tunnel = (await dial(parseLibvirtUri(sshUri()), { connectTimeoutMs: 30_000 })) as SshTunnel;
  process.once("SIGINT", () => {
    authList(tunnel).then(
      (reply) => {
        process.stdout.write(`${JSON.stringify({ afterSigint: reply })}\n`);
        process.exit(0);
      },
      (error: unknown) => {
        process.stdout.write(`${JSON.stringify({ afterSigint: String(error) })}\n`);
        process.exit(1);
      },
    );
  });
  process.stdout.write(`${JSON.stringify({ ssh: tunnel.pid })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(2);
});
