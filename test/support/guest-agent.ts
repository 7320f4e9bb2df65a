import { RunError } from "./run";
import { virsh } from "./virsh";

/**
 * The guest agent through libvirt (`virsh qemu-agent-command`), as tests and the Linux test guest use it.
 * Every call goes guest <- qemu-ga <- libvirt, so a success also proves libvirt's agent channel works.
 */

/**
 * Sends one agent command and returns its `return` value. Throws RunError when libvirt reports an error
 * (no channel: code 74, no agent answering: 86) or the agent does not answer within `timeoutSeconds`.
 */
export async function agentCommand(
  domain: string,
  execute: string,
  args?: Record<string, unknown>,
  timeoutSeconds = 10,
): Promise<unknown> {
  const command = JSON.stringify(args ? { execute, arguments: args } : { execute });
  const reply = await virsh("qemu-agent-command", domain, "--timeout", String(timeoutSeconds), command);
  return (JSON.parse(reply) as { return: unknown }).return;
}

/**
 * Waits until the agent answers guest-ping, polling every 200 ms, and returns the milliseconds waited.
 * Throws after `timeoutMs` with the last error seen, or at once when the domain stopped running (a guest that
 * powered off or crashed never answers).
 */
export async function waitForAgent(domain: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  let lastError: unknown;
  while (Date.now() - started < timeoutMs) {
    try {
      await agentCommand(domain, "guest-ping", undefined, 2);
      return Date.now() - started;
    } catch (error) {
      if (!(error instanceof RunError)) throw error;
      if (/domain is not running/.test(error.stderr)) {
        throw new Error(`${domain} stopped running before its guest agent answered`, { cause: error });
      }
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`guest agent of ${domain} did not answer guest-ping within ${timeoutMs} ms`, {
    cause: lastError,
  });
}

/** What a program run through guest-exec ended with. */
export interface GuestExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

interface GuestExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  "out-data"?: string;
  "err-data"?: string;
}

/**
 * Runs `path args...` in the guest (guest-exec with captured output) and waits for it to end, up to
 * `timeoutMs`. Resolves with its exit code and output (also when non-zero); throws when the agent fails or
 * the program is still running at the deadline (it is then left running in the guest).
 */
export async function guestExec(
  domain: string,
  path: string,
  args: string[] = [],
  timeoutMs = 30_000,
): Promise<GuestExecResult> {
  const { pid } = (await agentCommand(domain, "guest-exec", { path, arg: args, "capture-output": true })) as {
    pid: number;
  };
  const started = Date.now();
  for (;;) {
    const status = (await agentCommand(domain, "guest-exec-status", { pid })) as GuestExecStatus;
    if (status.exited) {
      const decode = (data?: string) => Buffer.from(data ?? "", "base64").toString("utf8");
      return {
        exitCode: status.exitcode ?? 128 + (status.signal ?? 0),
        stdout: decode(status["out-data"]),
        stderr: decode(status["err-data"]),
      };
    }
    if (Date.now() - started > timeoutMs)
      throw new Error(`${path} ${args.join(" ")} still runs in ${domain}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
