import type { LibvirtUri } from "../uri";
import type { TransportFailure } from "./errors";
import { SYSTEM_SOCKET_DIR, socketNames } from "./unix";

/**
 * What the ssh transport runs, as pure data: the local ssh client's argv, the remote command it asks the
 * login shell to run, and what ssh's stderr says went wrong. No I/O (ssh.ts spawns and supervises the child).
 */

/**
 * Quirk: a remote account's shell start-up files may print to stdout before our command runs, which would
 * corrupt the protocol stream (a classic libvirt-over-ssh failure). The remote command therefore prints this
 * marker right before it execs the proxy; everything up to and including it is discarded, and its arrival
 * proves that login and the remote shell worked.
 */
export const TUNNEL_READY_MARKER = "\n--lvsnap-tunnel-ready--\n";

/** Quotes a string for a POSIX shell: it stays one word, and no character in it is interpreted. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command the remote login shell runs, the way libvirt builds it (virNetClientSSHHelperCommand): wrapped in
 * `sh -c` so it does not depend on the login shell, with every URI-derived part single-quoted twice (once for
 * the login shell, once for `sh -c`), so hostile URI parts stay data.
 * - proxy native: `virt-ssh-helper <uri>` (it finds the right daemon socket on the remote side);
 * - proxy netcat: `nc -U <socket>` (with `-q0` where nc needs it to exit on EOF);
 * - proxy auto (the default): virt-ssh-helper when installed, else netcat.
 * The netcat socket is the `socket` parameter, else by `mode`: direct = the modular daemon's socket, legacy =
 * libvirt-sock, auto = the modular one if it exists on the remote host.
 */
export function remoteCommand(uri: LibvirtUri, readonly = false): string {
  const { params } = uri;
  let proxy = params.proxy;
  if (params.socket !== undefined || (proxy === "auto" && params.netcat !== undefined)) proxy = "netcat";
  else if (proxy === "auto" && uri.path === "/session") proxy = "native";
  const helper = `exec virt-ssh-helper ${readonly ? "-r " : ""}${shellQuote(uri.helperUri)}`;
  const nc = shellQuote(params.netcat ?? "nc");
  const { direct, legacy } = socketNames(uri, SYSTEM_SOCKET_DIR, readonly ? "sock-ro" : "sock");
  let chooseSocket: string;
  if (params.socket !== undefined) chooseSocket = `SOCK=${shellQuote(params.socket)}`;
  else if (params.mode === "direct") chooseSocket = `SOCK=${shellQuote(direct)}`;
  else if (params.mode === "legacy") chooseSocket = `SOCK=${shellQuote(legacy)}`;
  else {
    chooseSocket = `if test -S ${shellQuote(direct)}; then SOCK=${shellQuote(direct)}; else SOCK=${shellQuote(legacy)}; fi`;
  }
  const netcat = [
    `if ${nc} -q 2>&1 | grep 'requires an argument' >/dev/null 2>&1; then ARG=-q0; else ARG=; fi`,
    chooseSocket,
    `exec ${nc} $ARG -U "$SOCK"`,
  ].join("; ");
  let body: string;
  if (proxy === "native") body = helper;
  else if (proxy === "netcat") body = netcat;
  else body = `if command -v virt-ssh-helper >/dev/null 2>&1; then ${helper}; fi; ${netcat}`;
  const script = `printf '%s' ${shellQuote(TUNNEL_READY_MARKER)}; ${body}`;
  return `sh -c ${shellQuote(script)}`;
}

/**
 * The argv of the local ssh client (without the binary), libvirt's (virNetSocketNewConnectSSH) plus host-key
 * file, host-key policy and connect timeout: `-p port`, `-l user`, `-i keyfile`, `-T -e none`,
 * `BatchMode=yes` when `no_tty=1` or this process has no terminal (never prompt), `StrictHostKeyChecking=no`
 * for `no_verify=1`, `--` before the host so it can never be read as an option.
 */
export function sshArgv(
  uri: LibvirtUri,
  connectTimeoutMs: number,
  hasTty: boolean,
  readonly = false,
): string[] {
  const { params } = uri;
  const argv: string[] = [];
  if (uri.port !== undefined) argv.push("-p", String(uri.port));
  if (uri.user !== undefined) argv.push("-l", uri.user);
  if (params.keyfile !== undefined) argv.push("-i", params.keyfile);
  argv.push("-T", "-e", "none");
  if (params.noTty || !hasTty) argv.push("-o", "BatchMode=yes");
  if (params.noVerify || params.knownHostsVerify === "ignore") argv.push("-o", "StrictHostKeyChecking=no");
  else if (params.knownHostsVerify === "auto") argv.push("-o", "StrictHostKeyChecking=accept-new");
  if (params.knownHosts !== undefined) argv.push("-o", `UserKnownHostsFile=${params.knownHosts}`);
  argv.push("-o", `ConnectTimeout=${Math.max(1, Math.ceil(connectTimeoutMs / 1000))}`);
  argv.push("--", uri.host ?? "localhost", remoteCommand(uri, readonly));
  return argv;
}

const STDERR_FAILURES: [RegExp, TransportFailure][] = [
  [
    /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|host key .* (is not known|mismatch)/i,
    "host-key",
  ],
  [/Permission denied|Too many authentication failures|no more authentication methods/i, "permission"],
  [/Connection refused/i, "refused"],
  [/Connection timed out|Operation timed out/i, "timeout"],
  [
    /Could not resolve hostname|Name or service not known|No route to host|Network is unreachable/i,
    "unreachable",
  ],
];

/** Classifies ssh's stderr; anything unrecognised is a closed tunnel. */
export function classifySshStderr(stderr: string): TransportFailure {
  return STDERR_FAILURES.find(([pattern]) => pattern.test(stderr))?.[1] ?? "closed";
}
