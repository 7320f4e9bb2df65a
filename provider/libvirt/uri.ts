/**
 * libvirt connection URIs, parsed the way libvirt's remote driver parses them
 * (`driver[+transport]://[user@][host][:port]/path[?params]`), in one strict place: every later step (socket
 * choice, ssh argv, TLS credentials, the name sent in CONNECT_OPEN) reads this parsed form, never the string.
 *
 * Facts from libvirt (src/util/viruri.c, src/remote/remote_sockets.c, src/remote/remote_driver.c):
 * - no `+transport` and no host -> unix; no `+transport` with a host -> TLS (libvirt's rule, kept here: an
 *   ssh default would surprise anyone who uses virsh with the same URI);
 * - query parameters are split at `&` (or at `;` when no `&` is left), percent-decoded, matched by name
 *   case-insensitively, the last occurrence wins; booleans are integers (non-zero is true);
 * - the name sent to the daemon is the URI without transport, user, host, port and client-side parameters.
 * Pure: no I/O, no environment access except in `defaultUri`.
 */

import {
  decodeComponent,
  encodePath,
  encodeValue,
  interpretParams,
  parseQuery,
  Transport,
  type UriParams,
} from "./uri-query";

export {
  KnownHostsVerify,
  SocketMode,
  SshProxy,
  Transport,
  type UriParams,
} from "./uri-query";

// A password in the user part (`//user:secret@`, up to the authority's last `@`, as the parser splits it), and
// query parameters named like credentials.
const USERINFO_PASSWORD = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#@:]*):[^/?#]*@/;
const SECRET_PARAMETER = /([?&;](?:password|passwd|pass|secret|token)=)[^&;#]*/gi;

/**
 * The URI with anything that looks like a credential masked as `***`, for outputs, logs and messages. A URI
 * without one is returned unchanged. The user name and `keyfile`/`pkipath` are kept: they say where and as
 * whom, not the secret itself. (The libvirt client accepts no password in a URI; this guards what users type.)
 */
export function redactUri(uri: string): string {
  return uri.replace(USERINFO_PASSWORD, "$1:***@").replace(SECRET_PARAMETER, "$1***");
}

const BRAND = Symbol.for("pulumi-libvirt-snapshot/LibvirtUriError");

/** The part of a URI an error is about, so a message can point at it. */
export type UriPart =
  | "uri"
  | "scheme"
  | "transport"
  | "user"
  | "host"
  | "port"
  | "path"
  | "query"
  | "fragment";

/** A URI this client cannot use. Code 8 (VIR_ERR_INVALID_ARG) is what libvirt reports for the same cases. */
export class LibvirtUriError extends Error {
  declare readonly [BRAND]: true;
  readonly code = 8;
  readonly codeName = "INVALID_ARG";
  /** The URI as given, with any password masked by `redactUri`. */
  readonly uri: string;
  readonly part: UriPart;
  /** The query parameter concerned, if any. */
  readonly param: string | null;

  constructor(uri: string, part: UriPart, message: string, param: string | null = null) {
    super(`invalid libvirt URI ${JSON.stringify(redactUri(uri))}: ${message}`);
    Object.defineProperty(this, BRAND, { value: true });
    this.name = "LibvirtUriError";
    this.uri = redactUri(uri);
    this.part = part;
    this.param = param;
  }
}

/** True for a LibvirtUriError from any loaded copy of this package. */
export function isLibvirtUriError(error: unknown): error is LibvirtUriError {
  return typeof error === "object" && error !== null && (error as { [BRAND]?: unknown })[BRAND] === true;
}

export interface LibvirtUri {
  /** The URI as given. */
  readonly uri: string;
  /** Hypervisor driver (`qemu`); `remote` asks the daemon to pick (an empty name is sent). */
  readonly driver: string;
  readonly transport: Transport;
  /** Decoded user, for ssh only. */
  readonly user?: string;
  /** Decoded host without IPv6 brackets; unset for unix. tcp/tls/ssh default to `localhost`. */
  readonly host?: string;
  readonly port?: number;
  /** Decoded path (`/system`). */
  readonly path: string;
  readonly params: UriParams;
  /** The URI sent in CONNECT_OPEN: the `name` parameter, or the URI reduced to `driver:///path`. */
  readonly daemonName: string;
  /** The URI given to `virt-ssh-helper` on the remote host: the daemon name plus `mode`, as libvirt does. */
  readonly helperUri: string;
}

/** The URI used when none is given: `LIBVIRT_DEFAULT_URI`, else `qemu:///system` (libvirt's order). */
export function defaultUri(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit !== undefined && explicit !== "") return explicit;
  const fromEnv = env.LIBVIRT_DEFAULT_URI;
  return fromEnv !== undefined && fromEnv !== "" ? fromEnv : "qemu:///system";
}

const UNSUPPORTED_TRANSPORTS = new Set(["libssh", "libssh2", "ext"]);

// RFC 3986 characters; libvirt hands URIs to libxml2's strict RFC 3986 parser, which refuses anything else.
const UNRESERVED = "A-Za-z0-9\\-._~";
const SUB_DELIMS = "!$&'()*+,;=";
const PCHAR = new RegExp(`^(?:[${UNRESERVED}${SUB_DELIMS}:@/]|%[0-9A-Fa-f]{2})*$`);
const QUERY_CHARS = new RegExp(`^(?:[${UNRESERVED}${SUB_DELIMS}:@/?]|%[0-9A-Fa-f]{2})*$`);
const USERINFO = new RegExp(`^(?:[${UNRESERVED}${SUB_DELIMS}:]|%[0-9A-Fa-f]{2})*$`);
const REG_NAME = new RegExp(`^(?:[${UNRESERVED}${SUB_DELIMS}]|%[0-9A-Fa-f]{2})*$`);
// What a decoded host or user may be once past the URI grammar: names and addresses, nothing an ssh or DNS
// layer could read as an option, a token or a second word.
const HOST_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$/;
const USER_NAME = /^[A-Za-z0-9_][A-Za-z0-9._@+-]*$/;

/**
 * Parses a libvirt URI. Throws LibvirtUriError naming the offending part and what is supported; never
 * returns a partially checked result.
 */
export function parseLibvirtUri(uri: string): LibvirtUri {
  const fail = (part: UriPart, message: string, param: string | null = null): never => {
    throw new LibvirtUriError(uri, part, message, param);
  };
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri);
  if (!schemeMatch) fail("scheme", "expected driver[+transport]://[user@][host][:port]/path[?params]");
  const scheme = (schemeMatch as RegExpExecArray)[1] as string;
  let rest = uri.slice(scheme.length + 1);

  let fragment: string | undefined;
  const hashAt = rest.indexOf("#");
  if (hashAt >= 0) {
    fragment = rest.slice(hashAt + 1);
    rest = rest.slice(0, hashAt);
    if (!QUERY_CHARS.test(fragment)) fail("fragment", "characters outside RFC 3986 (quote them with %XX)");
  }
  let rawQuery: string | undefined;
  const queryAt = rest.indexOf("?");
  if (queryAt >= 0) {
    rawQuery = rest.slice(queryAt + 1);
    rest = rest.slice(0, queryAt);
    if (!QUERY_CHARS.test(rawQuery)) fail("query", "characters outside RFC 3986 (quote them with %XX)");
  }
  let authority: string | undefined;
  let rawPath = rest;
  if (rest.startsWith("//")) {
    const slashAt = rest.indexOf("/", 2);
    authority = slashAt < 0 ? rest.slice(2) : rest.slice(2, slashAt);
    rawPath = slashAt < 0 ? "" : rest.slice(slashAt);
  }
  if (!PCHAR.test(rawPath)) fail("path", "characters outside RFC 3986 (quote them with %XX)");
  const path = decodeComponent(rawPath, () => fail("path", "percent-encoding is not valid UTF-8"));
  if (path.includes("\u0000")) fail("path", "NUL characters are not allowed");

  const plusAt = scheme.indexOf("+");
  const driver = plusAt < 0 ? scheme : scheme.slice(0, plusAt);
  const transportName = plusAt < 0 ? undefined : scheme.slice(plusAt + 1).toLowerCase();
  if (driver === "") fail("scheme", "the driver name is empty");

  const { user, host, port } = parseAuthority(authority, fail);
  let transport: Transport;
  if (transportName === undefined) {
    transport = host === undefined ? "unix" : "tls";
  } else if (Object.hasOwn(Transport, transportName)) {
    transport = transportName as Transport;
  } else if (UNSUPPORTED_TRANSPORTS.has(transportName)) {
    return fail("transport", `transport '${transportName}' is not supported; use unix, ssh, tcp or tls`);
  } else {
    return fail("transport", `unknown transport '${transportName}'; supported: unix, ssh, tcp, tls`);
  }
  if (transport === "unix" && (host !== undefined || port !== undefined || user !== undefined)) {
    fail("host", "the unix transport connects to a local socket and takes no user, host or port");
  }
  if (user !== undefined && transport !== "ssh") {
    fail("user", `a user applies to the ssh transport only, not to ${transport}`);
  }

  const failQuery = (message: string, param: string | null): never => fail("query", message, param);
  const raw = parseQuery(rawQuery ?? "", failQuery);
  const params = interpretParams(raw, transport, path, failQuery);
  const nameParam = raw.get("name");
  const reduced = `${driver}://${encodePath(path)}${fragment === undefined ? "" : `#${fragment}`}`;
  const daemonName = nameParam ?? (driver === "remote" ? "" : reduced);
  const explicitMode = raw.get("mode");
  const helperUri =
    explicitMode === undefined || nameParam !== undefined
      ? daemonName
      : `${daemonName}${daemonName.includes("?") ? "&" : "?"}mode=${encodeValue(explicitMode)}`;

  return {
    uri,
    driver,
    transport,
    ...(user === undefined ? {} : { user }),
    ...(transport === "unix" ? {} : { host: host ?? "localhost" }),
    ...(port === undefined ? {} : { port }),
    path,
    params,
    daemonName,
    helperUri,
  };
}

function parseAuthority(
  authority: string | undefined,
  fail: (part: UriPart, message: string) => never,
): { user?: string; host?: string; port?: number } {
  if (authority === undefined || authority === "") return {};
  let hostPort = authority;
  let user: string | undefined;
  const atAt = authority.lastIndexOf("@");
  if (atAt >= 0) {
    const rawUser = authority.slice(0, atAt);
    hostPort = authority.slice(atAt + 1);
    if (!USERINFO.test(rawUser)) fail("user", "characters outside RFC 3986 (quote them with %XX)");
    user = decodeComponent(rawUser, () => fail("user", "percent-encoding is not valid UTF-8"));
    if (!USER_NAME.test(user)) fail("user", "a user name may hold letters, digits and . _ @ + - only");
  }
  let rawHost = hostPort;
  let rawPort: string | undefined;
  if (hostPort.startsWith("[")) {
    const close = hostPort.indexOf("]");
    if (close < 0) fail("host", "unterminated IPv6 literal");
    rawHost = hostPort.slice(0, close + 1);
    const after = hostPort.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) fail("host", "unexpected text after the IPv6 literal");
    rawPort = after === "" ? undefined : after.slice(1);
  } else {
    const colonAt = hostPort.lastIndexOf(":");
    if (colonAt >= 0) {
      rawHost = hostPort.slice(0, colonAt);
      rawPort = hostPort.slice(colonAt + 1);
    }
  }
  let host: string | undefined;
  if (rawHost.startsWith("[")) {
    const literal = rawHost.slice(1, -1);
    if (!/^[0-9A-Fa-f:.]+$/.test(literal) || !literal.includes(":")) {
      fail("host", `'${literal}' is not an IPv6 address (zone ids and IPvFuture are not supported)`);
    }
    host = literal;
  } else if (rawHost !== "") {
    if (!REG_NAME.test(rawHost)) fail("host", "characters outside RFC 3986 (quote them with %XX)");
    host = decodeComponent(rawHost, () => fail("host", "percent-encoding is not valid UTF-8"));
    if (!HOST_NAME.test(host)) fail("host", `'${host}' is not a host name or IPv4 address`);
  }
  let port: number | undefined;
  if (rawPort !== undefined && rawPort !== "") {
    if (!/^\d{1,5}$/.test(rawPort) || Number(rawPort) > 65535) {
      fail("port", `'${rawPort}' is not a port number (1-65535)`);
    }
    // libvirt treats port 0 as "not given".
    port = Number(rawPort) === 0 ? undefined : Number(rawPort);
  }
  if (host === undefined && (user !== undefined || port !== undefined)) {
    fail("host", "a user or port needs a host");
  }
  return {
    ...(user === undefined ? {} : { user }),
    ...(host === undefined ? {} : { host }),
    ...(port === undefined ? {} : { port }),
  };
}
