/**
 * The query and percent-encoding half of libvirt URI parsing (uri.ts is the other half): libvirt's parameter
 * splitting, the client-side parameters this client understands and for which transports, and the
 * percent codec. Pure.
 */

export const Transport = { unix: "unix", ssh: "ssh", tcp: "tcp", tls: "tls" } as const;
export type Transport = (typeof Transport)[keyof typeof Transport];

/** Which daemon socket to use: modular (`virtqemud-sock`), monolithic (`libvirt-sock`), or auto-detect. */
export const SocketMode = { auto: "auto", legacy: "legacy", direct: "direct" } as const;
export type SocketMode = (typeof SocketMode)[keyof typeof SocketMode];

/** How an ssh tunnel reaches the daemon on the remote host (libvirt's `proxy` parameter). */
export const SshProxy = { auto: "auto", netcat: "netcat", native: "native" } as const;
export type SshProxy = (typeof SshProxy)[keyof typeof SshProxy];

/** ssh host-key policy (libvirt's `known_hosts_verify`): normal = must be known, auto = add if new. */
export const KnownHostsVerify = { normal: "normal", auto: "auto", ignore: "ignore" } as const;
export type KnownHostsVerify = (typeof KnownHostsVerify)[keyof typeof KnownHostsVerify];

/** The client-side parameters of a URI, decoded. Only those that apply to the URI's transport are set. */
export interface UriParams {
  /** unix, ssh: the daemon socket path (an explicit socket makes ssh use netcat, as in libvirt). */
  readonly socket?: string;
  /** unix, ssh: socket choice; default auto. */
  readonly mode: SocketMode;
  /** ssh: private key file (`-i`). */
  readonly keyfile?: string;
  /** ssh: known_hosts file (`UserKnownHostsFile`). */
  readonly knownHosts?: string;
  readonly knownHostsVerify?: KnownHostsVerify;
  /** ssh: never prompt (`BatchMode=yes`). Also forced when this process has no TTY. */
  readonly noTty: boolean;
  /** ssh: the local ssh binary to run instead of `ssh`. */
  readonly command?: string;
  /** ssh: the remote netcat binary; giving it selects the netcat proxy, as in libvirt. */
  readonly netcat?: string;
  readonly proxy: SshProxy;
  /** tls, ssh: skip verifying the server certificate / host key. */
  readonly noVerify: boolean;
  /** tls: directory holding cacert.pem, clientcert.pem, clientkey.pem. */
  readonly pkipath?: string;
}

const PARAM_TRANSPORTS: Readonly<Record<string, readonly Transport[]>> = {
  name: ["unix", "ssh", "tcp", "tls"],
  socket: ["unix", "ssh"],
  mode: ["unix", "ssh"],
  keyfile: ["ssh"],
  known_hosts: ["ssh"],
  known_hosts_verify: ["ssh"],
  no_tty: ["ssh"],
  command: ["ssh"],
  netcat: ["ssh"],
  proxy: ["ssh"],
  no_verify: ["ssh", "tls"],
  pkipath: ["tls"],
};
const SUPPORTED_PARAMS = Object.keys(PARAM_TRANSPORTS).join(", ");
/** libvirt parameters this client knows but does not implement, with the reason given to the user. */
const UNSUPPORTED_PARAMS: Readonly<Record<string, string>> = {
  auth: "SASL/polkit authentication selection is not implemented",
  sshauth: "it applies to libssh/libssh2 transports only",
  tls_priority: "GnuTLS priority strings have no Node.js equivalent",
  no_sanity: "certificate sanity checks cannot be switched off",
  authfile: "credential files are not read",
};

/** Reports a bad parameter (`param` null when the name itself is bad); never returns. */
export type QueryFailure = (message: string, param: string | null) => never;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Quirk: libvirt (viruri.c virURIParseParams) ends a parameter at the next `&`, and only when no `&` is left
 * at the next `;`; so in `a=1;b=2&c=3` the value of `a` is `1;b=2`. Mirrored so a URI means the same here.
 * Returns decoded values by lower-cased name (libvirt matches names case-insensitively; the last one wins).
 */
export function parseQuery(query: string, fail: QueryFailure): Map<string, string> {
  const params = new Map<string, string>();
  let at = 0;
  while (at < query.length) {
    let end = query.indexOf("&", at);
    if (end < 0) end = query.indexOf(";", at);
    if (end < 0) end = query.length;
    const section = query.slice(at, end);
    at = end + 1;
    const eq = section.indexOf("=");
    if (section === "" || eq === 0) continue; // empty sections and "=value" are ignored, as in libvirt
    const rawName = eq < 0 ? section : section.slice(0, eq);
    const rawValue = eq < 0 ? "" : section.slice(eq + 1);
    const name = decodeComponent(rawName, () =>
      fail("a parameter name is not valid UTF-8", null),
    ).toLowerCase();
    const value = decodeComponent(rawValue, () => fail("a parameter value is not valid UTF-8", name));
    params.set(name, value);
  }
  return params;
}

/**
 * Checks the parameters against the transport and turns them into UriParams: unknown or unsupported
 * parameters, parameters of another transport, malformed booleans and enums, unsafe paths (relative or
 * `..` socket paths, ssh file options with characters ssh would expand) and control characters are refused
 * through `fail`.
 */
export function interpretParams(
  raw: Map<string, string>,
  transport: Transport,
  path: string,
  fail: QueryFailure,
): UriParams {
  for (const name of raw.keys()) {
    // Own properties only: `constructor` or `__proto__` must not find Object.prototype's members.
    const reason = Object.hasOwn(UNSUPPORTED_PARAMS, name) ? UNSUPPORTED_PARAMS[name] : undefined;
    if (reason !== undefined) fail(`parameter '${name}' is not supported: ${reason}`, name);
    const allowed = Object.hasOwn(PARAM_TRANSPORTS, name) ? PARAM_TRANSPORTS[name] : undefined;
    if (allowed === undefined) {
      fail(`unknown parameter '${name}'; supported: ${SUPPORTED_PARAMS}`, name);
    } else if (!allowed.includes(transport)) {
      fail(`parameter '${name}' applies to ${allowed.join("/")} only, not to ${transport}`, name);
    }
    if (CONTROL.test(raw.get(name) ?? "")) fail(`parameter '${name}' holds control characters`, name);
  }
  const flag = (name: string): boolean => {
    const value = raw.get(name);
    if (value === undefined) return false;
    if (!/^[+-]?\d+$/.test(value)) fail(`parameter '${name}' must be an integer (0 or 1)`, name);
    return Number(value) !== 0;
  };
  const oneOf = <T extends string>(name: string, values: Record<string, T>, fallback: T): T => {
    const value = raw.get(name);
    if (value === undefined) return fallback;
    const key = value.toLowerCase();
    const found = Object.hasOwn(values, key) ? values[key] : undefined;
    if (found === undefined) {
      fail(`parameter '${name}' must be one of ${Object.keys(values).join(", ")}`, name);
    }
    return found as T;
  };
  const socket = raw.get("socket");
  if (socket !== undefined && !isPlainAbsolutePath(socket)) {
    fail("parameter 'socket' must be an absolute path without '.' or '..' segments", "socket");
  }
  const proxy = oneOf("proxy", SshProxy, "auto");
  const netcat = raw.get("netcat");
  if (netcat !== undefined && proxy === "native") {
    fail("parameter 'netcat' cannot be used with proxy=native (libvirt refuses it too)", "netcat");
  }
  if (socket !== undefined && proxy === "native") {
    fail("parameter 'socket' needs the netcat proxy; virt-ssh-helper picks its own socket", "socket");
  }
  const mode = oneOf("mode", SocketMode, "auto");
  const keyfile = raw.get("keyfile");
  const knownHosts = raw.get("known_hosts");
  for (const [name, value] of [
    ["keyfile", keyfile],
    ["known_hosts", knownHosts],
  ] as const) {
    // ssh expands %-tokens and ${VAR} in file options and splits them at blanks: such paths cannot be data.
    if (value !== undefined && (value === "" || /[%$\s"'\\]/.test(value))) {
      fail(`parameter '${name}' must be a path without %, $, blanks, quotes or backslashes`, name);
    }
  }
  const pkipath = raw.get("pkipath");
  if (pkipath !== undefined && pkipath === "") fail("parameter 'pkipath' is empty", "pkipath");
  const command = raw.get("command");
  if (command !== undefined && command === "") fail("parameter 'command' is empty", "command");
  if (transport === "ssh" && path === "/session" && socket === undefined && netcat !== undefined) {
    fail("ssh to /session runs virt-ssh-helper; netcat needs an explicit 'socket'", "netcat");
  }
  const knownHostsVerify = raw.has("known_hosts_verify")
    ? oneOf("known_hosts_verify", KnownHostsVerify, "normal")
    : undefined;
  return {
    mode,
    proxy,
    noTty: flag("no_tty"),
    noVerify: flag("no_verify"),
    ...(socket === undefined ? {} : { socket }),
    ...(keyfile === undefined ? {} : { keyfile }),
    ...(knownHosts === undefined ? {} : { knownHosts }),
    ...(knownHostsVerify === undefined ? {} : { knownHostsVerify }),
    ...(command === undefined ? {} : { command }),
    ...(netcat === undefined ? {} : { netcat }),
    ...(pkipath === undefined ? {} : { pkipath }),
  };
}

function isPlainAbsolutePath(path: string): boolean {
  return path.startsWith("/") && !path.split("/").some((segment) => segment === "." || segment === "..");
}

/** Percent-decodes a URI component as UTF-8; `onInvalid` is called for byte sequences that are not UTF-8. */
export function decodeComponent(raw: string, onInvalid: () => never): string {
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(raw.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(raw.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(raw[i] as string, "utf8"));
    }
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return onInvalid();
  }
}

/** Re-encodes a decoded path for the daemon name: RFC 3986 path characters stay, the rest becomes %XX. */
export function encodePath(path: string): string {
  return percentEncode(path, /[A-Za-z0-9\-._~!$&'()*+,;=:@/]/);
}

/** Encodes a parameter value: unreserved characters stay (GLib's g_uri_escape_string does the same). */
export function encodeValue(value: string): string {
  return percentEncode(value, /[A-Za-z0-9\-._~]/);
}

function percentEncode(text: string, keep: RegExp): string {
  let out = "";
  for (const char of text) {
    if (keep.test(char)) {
      out += char;
    } else {
      for (const byte of Buffer.from(char, "utf8"))
        out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    }
  }
  return out;
}
