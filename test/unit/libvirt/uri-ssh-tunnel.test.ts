import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isLibvirtTransportError } from "../../../provider/libvirt/transports/errors";
import { dialSsh } from "../../../provider/libvirt/transports/ssh";
import { TUNNEL_READY_MARKER } from "../../../provider/libvirt/transports/ssh-command";
import { parseLibvirtUri } from "../../../provider/libvirt/uri";

// The tunnel against stand-ins for the ssh binary (the URI's `command` parameter): no network, no daemon.
let work: string;

function fakeSsh(name: string, body: string): string {
  const file = path.join(work, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

const marker = JSON.stringify(TUNNEL_READY_MARKER).slice(1, -1); // as a printf format: \n stays an escape

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), "lvsnap-uri-ssh-tunnel-"));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function failureOf(command: string, connectTimeoutMs = 5000): Promise<unknown> {
  const uri = parseLibvirtUri(`qemu+ssh://root@h:2222/system?command=${command}`);
  return dialSsh(uri, { connectTimeoutMs }, false).then(
    (stream) => {
      stream.destroy();
      return new Error("dial succeeded");
    },
    (caught: unknown) => caught,
  );
}

describe("Quirk: shell start-up files may print to stdout before the remote command runs", () => {
  it("drops everything up to the ready marker and passes the stream through untouched", async () => {
    const ssh = fakeSsh("chatty-ssh", `printf 'Welcome!\\nlast login: yesterday\\n${marker}'; exec cat`);
    const stream = await dialSsh(parseLibvirtUri(`qemu+ssh://h/system?command=${ssh}`), {
      connectTimeoutMs: 5000,
    });
    const echoed = new Promise<Buffer>((resolve) => {
      let received = Buffer.alloc(0);
      stream.on("data", (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (received.length >= 6) resolve(received);
      });
    });
    stream.write(Buffer.from([0, 0, 0, 28, 1, 2]));
    expect([...(await echoed)]).toEqual([0, 0, 0, 28, 1, 2]);
    stream.destroy();
  });
});

describe("ssh failures become transport errors with ssh's own words", () => {
  it("a login refused by the server", async () => {
    const ssh = fakeSsh("denied-ssh", "echo 'root@h: Permission denied (publickey).' >&2; exit 255");
    const error = await failureOf(ssh);
    expect(
      isLibvirtTransportError(error) && {
        failure: error.failure,
        target: error.target,
        stderr: error.stderr,
        message: error.message,
      },
    ).toEqual({
      failure: "permission",
      target: "root@h:2222",
      stderr: "root@h: Permission denied (publickey).",
      message:
        "ssh connection to root@h:2222 failed: ssh exited with code 255: root@h: Permission denied (publickey).",
    });
  });

  it("an ssh binary that does not exist", async () => {
    const error = await failureOf(path.join(work, "no-such-ssh"));
    expect(isLibvirtTransportError(error) && error.failure).toBe("spawn");
  });

  it("a login that never completes hits the deadline", async () => {
    const error = await failureOf(fakeSsh("stuck-ssh", "exec sleep 30"), 300);
    expect(isLibvirtTransportError(error) && { failure: error.failure, message: error.message }).toEqual({
      failure: "timeout",
      message:
        "ssh connection to root@h:2222 failed: not ready within 300 ms: ssh did not log in and start the remote proxy",
    });
  });

  it("a tunnel that exits cleanly before the marker", async () => {
    const error = await failureOf(fakeSsh("quiet-ssh", "exit 0"));
    expect(isLibvirtTransportError(error) && error.failure).toBe("closed");
  });
});
