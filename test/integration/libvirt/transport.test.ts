import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  dial,
  isLibvirtTransportError,
  type LibvirtTransportError,
} from "../../../provider/libvirt/transports";
import type { SshTunnel } from "../../../provider/libvirt/transports/ssh";
import { parseLibvirtUri } from "../../../provider/libvirt/uri";
import {
  AUTH_NONE_REPLY,
  authList,
  closedPort,
  lab,
  requireLab,
  silentServer,
  sshUri,
  twoAuthListsInOneTick,
} from "./transport-support";

// Byte-level: each transport must deliver a stream on which libvirtd answers a hand-built AUTH_LIST call.
// An ssh login (key exchange, virt-ssh-helper) takes seconds of CPU on a busy host: the deadline only bounds a
// failing test.
const CONNECT_TIMEOUT_MS = 30_000;
const open: Duplex[] = [];
let scratch: string;

async function dialUri(uri: string, connectTimeoutMs = CONNECT_TIMEOUT_MS): Promise<Duplex> {
  const stream = await dial(parseLibvirtUri(uri), { connectTimeoutMs });
  open.push(stream);
  return stream;
}

async function dialFailure(
  uri: string,
  connectTimeoutMs = CONNECT_TIMEOUT_MS,
): Promise<LibvirtTransportError> {
  const error = await dialUri(uri, connectTimeoutMs).then(
    () => new Error(`dial of ${uri} succeeded`),
    (caught: unknown) => caught,
  );
  if (!isLibvirtTransportError(error)) throw error;
  return error;
}

const summary = (error: LibvirtTransportError) => ({
  transport: error.transport,
  target: error.target,
  failure: error.failure,
});

beforeAll(() => {
  requireLab();
  scratch = mkdtempSync(path.join(os.tmpdir(), "lvsnap-transport-"));
});
afterEach(() => {
  for (const stream of open.splice(0)) stream.destroy();
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("each transport reaches libvirtd", () => {
  it.each([
    ["unix, default socket", "qemu:///system"],
    ["unix, explicit read-only socket", "qemu+unix:///system?socket=/var/run/libvirt/libvirt-sock-ro"],
    ["tcp on 127.0.0.1", "qemu+tcp://127.0.0.1/system"],
    ["tls with the system PKI paths", "qemu+tls://127.0.0.1/system"],
    ["tls by host name with pkipath", `qemu+tls://localhost/system?pkipath=${lab}/pki-client`],
    ["ssh through virt-ssh-helper", sshUri()],
    ["ssh through netcat", sshUri("&proxy=netcat&mode=legacy")],
  ])("%s: %s", async (_label, uri) => {
    const stream = await dialUri(uri);
    expect(await authList(stream)).toEqual(AUTH_NONE_REPLY);
  });
});

describe("Quirk: libvirtd sends one confirmation byte inside TLS before any RPC traffic", () => {
  it("a bare TLS client with the lab PKI receives exactly \\x01 unasked", async () => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port: 16514,
      ca: readFileSync(path.join(lab, "pki-client/cacert.pem")),
      cert: readFileSync(path.join(lab, "pki-client/clientcert.pem")),
      key: readFileSync(path.join(lab, "pki-client/clientkey.pem")),
    });
    try {
      const first = await new Promise<Buffer>((resolve, reject) => {
        socket.once("data", resolve);
        socket.once("error", reject);
      });
      expect([...first]).toEqual([1]);
    } finally {
      socket.destroy();
    }
  });

  it("the dialled TLS stream has consumed it: the first bytes are the RPC reply", async () => {
    expect(await authList(await dialUri("qemu+tls://127.0.0.1/system"))).toEqual(AUTH_NONE_REPLY);
  });
});

describe("Quirk: libvirtd stalls on the second of two RPC messages in one TLS record", () => {
  it.each([
    ["tls", "qemu+tls://127.0.0.1/system"],
    ["tcp (never affected)", "qemu+tcp://127.0.0.1/system"],
  ])("%s: two calls written in one tick are both answered", async (_label, uri) => {
    expect(await twoAuthListsInOneTick(await dialUri(uri))).toEqual([1, 2]);
  });
});

describe("failures are clear and fast, never a hang", () => {
  it("tls: a peer that accepts and says nothing times out", async () => {
    const server = await silentServer();
    try {
      const error = await dialFailure(`qemu+tls://127.0.0.1:${server.port}/system`, 800);
      expect(summary(error)).toEqual({
        transport: "tls",
        target: `127.0.0.1:${server.port}`,
        failure: "timeout",
      });
      expect(error.message).toContain("not ready within 800 ms");
    } finally {
      await server.close();
    }
  });

  it("tcp, tls and ssh: a refused port", async () => {
    const port = await closedPort();
    const tcp = await dialFailure(`qemu+tcp://127.0.0.1:${port}/system`);
    const tls = await dialFailure(`qemu+tls://127.0.0.1:${port}/system`);
    const ssh = await dialFailure(`qemu+ssh://root@127.0.0.1:${port}/system?no_tty=1`);
    expect([summary(tcp), summary(tls), summary(ssh)]).toEqual([
      { transport: "tcp", target: `127.0.0.1:${port}`, failure: "refused" },
      { transport: "tls", target: `127.0.0.1:${port}`, failure: "refused" },
      { transport: "ssh", target: `root@127.0.0.1:${port}`, failure: "refused" },
    ]);
    expect(ssh.stderr).toContain("Connection refused");
  });

  it("unix: a missing socket", async () => {
    const missing = path.join(scratch, "no-such-sock");
    const error = await dialFailure(`qemu+unix:///system?socket=${missing}`);
    expect(summary(error)).toEqual({ transport: "unix", target: missing, failure: "refused" });
  });

  it("ssh: an unknown host key without no_verify", async () => {
    const empty = path.join(scratch, "empty_known_hosts");
    writeFileSync(empty, "");
    const uri = `qemu+ssh://root@127.0.0.1:2222/system?keyfile=${lab}/ssh/client_key&known_hosts=${empty}`;
    const error = await dialFailure(uri);
    expect(summary(error)).toEqual({ transport: "ssh", target: "root@127.0.0.1:2222", failure: "host-key" });
    expect(error.stderr).toContain("Host key verification failed");
  });

  it("ssh: an unknown host key is accepted with no_verify=1", async () => {
    const empty = path.join(scratch, "empty_known_hosts_2");
    writeFileSync(empty, "");
    const uri = `qemu+ssh://root@127.0.0.1:2222/system?keyfile=${lab}/ssh/client_key&known_hosts=${empty}&no_verify=1`;
    expect(await authList(await dialUri(uri))).toEqual(AUTH_NONE_REPLY);
  });

  it("ssh: a user the key does not log in", async () => {
    const error = await dialFailure(sshUri("", undefined, "nobody"));
    expect(summary(error)).toEqual({
      transport: "ssh",
      target: "nobody@127.0.0.1:2222",
      failure: "permission",
    });
    expect(error.stderr).toContain("Permission denied");
  });
});

/**
 * Polls `condition` every 100 ms until it holds, for up to 30 s (a process ending or starting on a busy host);
 * returns whether it held.
 */
async function waitFor(condition: () => boolean): Promise<boolean> {
  for (const started = Date.now(); Date.now() - started < 30_000; ) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return condition();
}

/** ssh processes that are children of this test process. */
function sshChildren(): string[] {
  const out = execFileSync("ps", ["--ppid", String(process.pid), "-o", "pid=,comm="], { encoding: "utf8" });
  return out
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.endsWith(" ssh"));
}

describe("aborting a dial", () => {
  it("an already aborted signal fails at once", async () => {
    const error = await dial(parseLibvirtUri("qemu+tcp://127.0.0.1/system"), {
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      signal: AbortSignal.abort(new Error("changed my mind")),
    }).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(
      isLibvirtTransportError(error) && { failure: error.failure, cause: (error.cause as Error).message },
    ).toEqual({
      failure: "aborted",
      cause: "changed my mind",
    });
  });

  it("aborting an ssh login kills the ssh child", async () => {
    // A peer that never sends its ssh banner: the login cannot finish before the abort, however the host is
    // scheduled, and the ssh child surely runs when the abort comes.
    const server = await silentServer();
    try {
      const earlier = new Set(sshChildren()); // an earlier test's ssh may still be on its way out
      const controller = new AbortController();
      const dialing = dial(parseLibvirtUri(`qemu+ssh://root@127.0.0.1:${server.port}/system?no_tty=1`), {
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        signal: controller.signal,
      });
      let ours: string | undefined;
      await waitFor(() => {
        ours = sshChildren().find((child) => !earlier.has(child));
        return ours !== undefined;
      });
      controller.abort();
      const error = await dialing.then(
        () => null,
        (caught: unknown) => caught,
      );
      expect([ours !== undefined, isLibvirtTransportError(error) && error.failure]).toEqual([
        true,
        "aborted",
      ]);
      expect(await waitFor(() => !sshChildren().includes(ours ?? ""))).toBe(true);
    } finally {
      await server.close();
    }
  });
});

describe("a dead ssh tunnel ends the stream", () => {
  it("killing the ssh process errors and closes the stream", async () => {
    const stream = (await dialUri(sshUri())) as SshTunnel;
    expect(await authList(stream)).toEqual(AUTH_NONE_REPLY);
    const ended = new Promise<unknown>((resolve) => {
      let failure: unknown = null;
      stream.on("error", (error) => {
        failure = error;
      });
      stream.on("close", () => resolve(failure));
    });
    process.kill(stream.pid as number, "SIGKILL");
    const error = await ended;
    expect(isLibvirtTransportError(error) && summary(error)).toEqual({
      transport: "ssh",
      target: "root@127.0.0.1:2222",
      failure: "closed",
    });
    expect((error as Error).message).toContain("ssh was killed by SIGKILL");
  });
});

/** Whether process `pid` still exists (children are reaped by Node, so an ended one is gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function gone(pid: number): Promise<boolean> {
  return waitFor(() => !alive(pid));
}

describe("the ssh child and Ctrl-C", () => {
  it("ssh runs in its own session and process group; closing the tunnel kills it", async () => {
    const stream = (await dialUri(sshUri())) as SshTunnel;
    const pid = stream.pid as number;
    const [sid, pgid] = execFileSync("ps", ["-o", "sid=,pgid=", "-p", String(pid)], { encoding: "utf8" })
      .trim()
      .split(/\s+/)
      .map(Number);
    expect([sid, pgid]).toEqual([pid, pid]);
    expect(await authList(stream)).toEqual(AUTH_NONE_REPLY);
    stream.destroy();
    expect(await gone(pid)).toBe(true);
  });

  it("SIGINT to the caller's process group spares ssh: the tunnel still answers; the caller's exit ends ssh", async () => {
    // Node itself with tsx as a loader, not `npx tsx`: the wrappers npx and tsx put in the group would take
    // the SIGINT too and end early, which is not what is tested.
    const child = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "ssh-sigint-child.ts")], {
      cwd: path.join(__dirname, "../../.."),
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const lines = createInterface({ input: child.stdout });
    const events: Record<string, unknown>[] = [];
    // 'close', not 'exit': the exit can be reported before the last lines the child printed are read.
    const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        lines.on("line", (line) => {
          if (!line.startsWith("{")) return;
          events.push(JSON.parse(line) as Record<string, unknown>);
          // The whole group, as a terminal does on Ctrl-C.
          if (events.length === 1) process.kill(-(child.pid as number), "SIGINT");
          else resolve();
        });
        exited.then(() => reject(new Error(`child ended early: ${stderr}`)));
      });
      await exited;
      const sshPid = events[0]?.ssh as number;
      expect(events[1]).toEqual({ afterSigint: AUTH_NONE_REPLY });
      expect(await gone(sshPid)).toBe(true);
    } finally {
      if (child.exitCode === null && child.signalCode === null)
        process.kill(-(child.pid as number), "SIGKILL");
    }
  });
});
