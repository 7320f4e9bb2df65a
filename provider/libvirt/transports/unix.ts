import { existsSync } from "node:fs";
import os from "node:os";
import type { Duplex } from "node:stream";
import type { LibvirtUri } from "../uri";
import { connectSocket, type DialOptions } from "./socket";

/** Where the system daemons put their sockets. libvirt uses $LOCALSTATEDIR/run, which is /var/run here. */
export const SYSTEM_SOCKET_DIR = "/var/run/libvirt";

/** What socket choice depends on, injectable so the rules can be tested without a daemon. */
export interface SocketEnvironment {
  readonly exists: (path: string) => boolean;
  readonly euid: number;
  readonly env: NodeJS.ProcessEnv;
  readonly homedir: string;
}

/** The real environment of this process. */
export function processSocketEnvironment(): SocketEnvironment {
  return {
    exists: existsSync,
    euid: process.geteuid?.() ?? 0,
    env: process.env,
    homedir: os.homedir(),
  };
}

/**
 * The local daemon socket for a unix URI, by libvirt's rules (src/remote/remote_sockets.c):
 * - an explicit `socket` parameter wins;
 * - `/session` as a non-root user uses the per-user runtime directory ($XDG_RUNTIME_DIR/libvirt, else
 *   $XDG_CACHE_HOME/libvirt, else ~/.cache/libvirt); root gets the system sockets;
 * - mode direct uses the modular daemon's socket (`virtqemud-sock` for qemu), legacy the monolithic
 *   `libvirt-sock`, auto the modular one when it exists and the monolithic one otherwise;
 * - read-only connections use the system `-sock-ro` sockets (the per-user daemon has no read-only socket).
 * Pure apart from `environment.exists`.
 */
export function resolveUnixSocket(uri: LibvirtUri, environment: SocketEnvironment, readonly = false): string {
  if (uri.params.socket !== undefined) return uri.params.socket;
  if (uri.path === "/session" && environment.euid > 0) {
    return pickSocket(uri, userRuntimeDir(environment), "sock", environment.exists);
  }
  return pickSocket(uri, SYSTEM_SOCKET_DIR, readonly ? "sock-ro" : "sock", environment.exists);
}

/** The direct or legacy socket in `dir` by the URI's mode; `exists` decides auto. */
export function pickSocket(
  uri: LibvirtUri,
  dir: string,
  suffix: "sock" | "sock-ro",
  exists: (path: string) => boolean,
): string {
  const { direct, legacy } = socketNames(uri, dir, suffix);
  switch (uri.params.mode) {
    case "direct":
      return direct;
    case "legacy":
      return legacy;
    case "auto":
      return exists(direct) ? direct : legacy;
  }
}

/** The modular (direct) and monolithic (legacy) socket paths of the URI's driver in `dir`. */
export function socketNames(
  uri: LibvirtUri,
  dir: string,
  suffix: "sock" | "sock-ro",
): { direct: string; legacy: string } {
  // The remote driver's own scheme has no modular daemon of its own: virtproxyd serves libvirt-sock.
  const daemon = uri.driver === "remote" ? "libvirt" : `virt${uri.driver}d`;
  return { direct: `${dir}/${daemon}-${suffix}`, legacy: `${dir}/libvirt-${suffix}` };
}

function userRuntimeDir({ env, homedir }: SocketEnvironment): string {
  if (env.XDG_RUNTIME_DIR) return `${env.XDG_RUNTIME_DIR}/libvirt`;
  if (env.XDG_CACHE_HOME) return `${env.XDG_CACHE_HOME}/libvirt`;
  return `${homedir}/.cache/libvirt`;
}

/**
 * Connects to the local daemon socket of a unix URI. Resolves with the connected socket; on failure nothing is
 * left open. Not idempotent: each call is a new connection.
 */
export function dialUnix(
  uri: LibvirtUri,
  options: DialOptions,
  environment: SocketEnvironment = processSocketEnvironment(),
): Promise<Duplex> {
  const path = resolveUnixSocket(uri, environment, options.readonly);
  return connectSocket("unix", path, { path }, options, "the daemon does not accept connections");
}
