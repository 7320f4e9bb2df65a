import { type ChildProcessByStdio, type SpawnOptions, spawn } from "node:child_process";
import { Duplex, type Readable, type Writable } from "node:stream";
import type { LibvirtUri } from "../uri";
import { LibvirtTransportError, type TransportFailure } from "./errors";
import { type DialOptions, dialStep } from "./socket";
import { classifySshStderr, sshArgv, TUNNEL_READY_MARKER } from "./ssh-command";

/**
 * The ssh transport's processes: spawning the system ssh client, the tunnel stream over its pipes, and ending
 * the child on every path. The argv and the remote command are pure data built in ssh-command.ts.
 */

/** Remote output (shell start-up noise) tolerated before the tunnel marker, in bytes. */
const MAX_PREAMBLE_BYTES = 64 * 1024;
/** The tail of ssh's stderr kept for error messages, in bytes. */
const STDERR_KEEP_BYTES = 4096;
/** How long after the child's exit its pipes may stay open before the tunnel is ended anyway. */
const EXIT_GRACE_MS = 1000;
/** After SIGTERM, how long the ssh child gets before SIGKILL. */
const KILL_GRACE_MS = 2000;

type SshChild = ChildProcessByStdio<Writable, Readable, Readable>;

/**
 * The ssh child's stdout (read) and stdin (write) as one Duplex. Destroying the stream kills the child; the
 * child ending (killed, network gone, remote proxy gone) ends the stream, with an error carrying ssh's stderr
 * when it did not exit cleanly, so that a connection built on it fails its pending calls.
 */
export class SshTunnel extends Duplex {
  readonly ready: Promise<void>;
  /** Process id of the local ssh client, for diagnostics. */
  readonly pid: number | undefined;
  private stderr = "";
  private preamble: Buffer | null = Buffer.alloc(0);
  private exited = false;
  /** The child's end has been handled (by 'close', or by 'exit' plus grace). */
  private ended = false;
  private markReady!: () => void;
  private failReady!: (error: Error) => void;

  constructor(
    private readonly child: SshChild,
    private readonly target: string,
  ) {
    super({ allowHalfOpen: false });
    this.pid = child.pid;
    this.ready = new Promise<void>((resolve, reject) => {
      this.markReady = resolve;
      this.failReady = reject;
    });
    // Until the tunnel is ready its failures reach the dialer through `ready`, not as unheard 'error' events.
    const quiet = (): void => undefined;
    this.on("error", quiet);
    this.ready.then(
      () => this.off("error", quiet),
      () => undefined,
    );
    child.stderr.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-STDERR_KEEP_BYTES);
    });
    child.stdout.on("data", (chunk: Buffer) => this.onStdout(chunk));
    child.stdin.on("error", () => undefined); // EPIPE after the child died: the exit handler reports it
    child.on("error", (error) => this.fail("spawn", `cannot run ssh: ${error.message}`, error));
    // 'close' comes after the exit and after stdout and stderr are drained: the whole story is known. A
    // process that inherited the pipes (an ssh ControlMaster, say) can hold 'close' back, so a failed exit
    // alone also ends the tunnel after a short grace (a clean exit waits for the last bytes).
    child.on("exit", (code, signal) => {
      this.exited = true;
      if (code !== 0) setTimeout(() => this.onClose(code, signal), EXIT_GRACE_MS).unref();
    });
    child.on("close", (code, signal) => this.onClose(code, signal));
  }

  private onStdout(chunk: Buffer): void {
    if (this.preamble !== null) {
      const seen = Buffer.concat([this.preamble, chunk]);
      const at = seen.indexOf(TUNNEL_READY_MARKER);
      if (at < 0) {
        if (seen.length > MAX_PREAMBLE_BYTES) this.fail("closed", "no tunnel marker in the remote output");
        else this.preamble = seen;
        return;
      }
      this.preamble = null;
      this.markReady();
      chunk = seen.subarray(at + TUNNEL_READY_MARKER.length);
      if (chunk.length === 0) return;
    }
    if (!this.push(chunk)) this.child.stdout.pause();
  }

  private onClose(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.ended) return;
    this.ended = true;
    if (this.destroyed) return;
    if (code === 0 && this.preamble === null) {
      this.push(null); // the remote proxy ended cleanly: the daemon closed the connection
      return;
    }
    const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
    const detail = this.stderr.trim();
    this.fail(classifySshStderr(detail), detail === "" ? `ssh ${how}` : `ssh ${how}: ${detail}`);
  }

  private fail(failure: TransportFailure, message: string, cause?: unknown): void {
    const stderr = this.stderr.trim();
    const error = new LibvirtTransportError({
      transport: "ssh",
      target: this.target,
      failure,
      message,
      ...(stderr === "" ? {} : { stderr }),
      cause,
    });
    this.failReady(error);
    this.destroy(error);
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // A failed write (EPIPE) means the child is going away; its 'close' reports why, with ssh's stderr,
    // instead of a bare EPIPE.
    this.child.stdin.write(chunk, () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.child.stdin.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.exited) {
      this.child.kill("SIGTERM");
      const force = setTimeout(() => this.child.kill("SIGKILL"), KILL_GRACE_MS);
      force.unref();
      this.child.once("exit", () => clearTimeout(force));
    }
    this.child.stdin.destroy();
    this.child.stdout.destroy();
    this.child.stderr.destroy();
    callback(error);
  }
}

/**
 * How the ssh child is started: pipes, no shell, and `detached` (its own session and process group, setsid).
 * In a terminal, Ctrl-C sends SIGINT to the whole foreground process group; an ssh child in it would die at
 * once and take the connection with it, so the CLI could not cancel a merge cleanly over that connection.
 * Detached, only this process hears Ctrl-C, and ends the child itself: on close (SshTunnel._destroy) and when
 * it exits (killOnExit). A consequence: ssh has no controlling terminal, so it cannot ask for a password or
 * passphrase on it (use keys, an agent, or SSH_ASKPASS).
 */
export const SSH_SPAWN_OPTIONS = {
  stdio: ["pipe", "pipe", "pipe"],
  shell: false,
  detached: true,
} as const satisfies SpawnOptions;

/** ssh children still running; killed when this process exits (a detached child outlives its parent). */
const liveChildren = new Set<SshChild>();
let exitHookInstalled = false;

function killOnExit(child: SshChild): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers must be synchronous: kill() is. A process killed by a signal skips this, and then the
    // child still ends when its stdin (our end of the pipe) closes, which ends the remote proxy.
    process.on("exit", () => {
      for (const live of liveChildren) live.kill("SIGTERM");
    });
  }
  liveChildren.add(child);
  child.once("exit", () => liveChildren.delete(child));
  child.once("error", () => liveChildren.delete(child));
}

/**
 * Spawns the system ssh client (argv array, never a local shell) and resolves once the remote side prints its
 * ready marker, i.e. login and host-key checks passed and the proxy to the daemon is being started. On
 * failure (host key, authentication, refused port, deadline) the child is killed and the error carries ssh's
 * stderr. The stream's lifetime is the child's.
 */
export async function dialSsh(
  uri: LibvirtUri,
  options: DialOptions,
  hasTty: boolean = process.stdin.isTTY === true,
): Promise<SshTunnel> {
  const host = uri.host ?? "localhost";
  const target = `${uri.user === undefined ? "" : `${uri.user}@`}${host}${uri.port === undefined ? "" : `:${uri.port}`}`;
  const child = spawn(
    uri.params.command ?? "ssh",
    sshArgv(uri, options.connectTimeoutMs, hasTty, options.readonly),
    SSH_SPAWN_OPTIONS,
  );
  killOnExit(child);
  const tunnel = new SshTunnel(child, target);
  await dialStep(
    "ssh",
    target,
    options,
    tunnel.ready,
    () => tunnel.destroy(),
    "ssh did not log in and start the remote proxy",
  );
  return tunnel;
}
