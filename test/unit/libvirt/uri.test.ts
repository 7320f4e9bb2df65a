import { describe, expect, it } from "vitest";
import { openConnection } from "../../../provider/libvirt/open";
import { dial } from "../../../provider/libvirt/transports";
import {
  defaultUri,
  isLibvirtUriError,
  type LibvirtUri,
  type LibvirtUriError,
  parseLibvirtUri,
  redactUri,
  type UriPart,
} from "../../../provider/libvirt/uri";

const base = { mode: "auto", proxy: "auto", noTty: false, noVerify: false } as const;

type Expected = Omit<LibvirtUri, "uri" | "params"> & { params?: Partial<LibvirtUri["params"]> };

// Each row: the URI and the whole parsed value (minus `uri`, which is always the input).
const accepted: [string, Expected][] = [
  [
    "qemu:///system",
    {
      driver: "qemu",
      transport: "unix",
      path: "/system",
      daemonName: "qemu:///system",
      helperUri: "qemu:///system",
    },
  ],
  [
    "qemu:///session",
    {
      driver: "qemu",
      transport: "unix",
      path: "/session",
      daemonName: "qemu:///session",
      helperUri: "qemu:///session",
    },
  ],
  [
    "qemu+unix:///system?socket=/run/libvirt/virtqemud-sock",
    {
      driver: "qemu",
      transport: "unix",
      path: "/system",
      daemonName: "qemu:///system",
      helperUri: "qemu:///system",
      params: { socket: "/run/libvirt/virtqemud-sock" },
    },
  ],
  [
    "qemu+unix:///system?mode=direct",
    {
      driver: "qemu",
      transport: "unix",
      path: "/system",
      daemonName: "qemu:///system",
      helperUri: "qemu:///system?mode=direct",
      params: { mode: "direct" },
    },
  ],
  [
    "qemu://hv1.example.com/system",
    {
      driver: "qemu",
      transport: "tls",
      host: "hv1.example.com",
      path: "/system",
      daemonName: "qemu:///system",
      helperUri: "qemu:///system",
    },
  ],
  [
    "qemu+tls://127.0.0.1/system?pkipath=/home/op/pki&no_verify=1",
    {
      driver: "qemu",
      transport: "tls",
      host: "127.0.0.1",
      path: "/system",
      daemonName: "qemu:///system",
      helperUri: "qemu:///system",
      params: { pkipath: "/home/op/pki", noVerify: true },
    },
  ],
  [
    "qemu+tcp://127.0.0.1:16510/system",
    {
      driver: "qemu",
      transport: "tcp",
      host: "127.0.0.1",
      port: 16510,
      path: "/system",
      daemonName: "qemu:///system",
      helperUri: "qemu:///system",
    },
  ],
  [
    "qemu+tcp:///system",
    {
      driver: "qemu",
      transport: "tcp",
      host: "localhost",
      path: "/system",
      daemonName: "qemu:///system",
      helperUri: "qemu:///system",
    },
  ],
  [
    "QEMU+TCP://[::1]:16509/system",
    {
      driver: "QEMU",
      transport: "tcp",
      host: "::1",
      port: 16509,
      path: "/system",
      daemonName: "QEMU:///system",
      helperUri: "QEMU:///system",
    },
  ],
  [
    "qemu+ssh://root@127.0.0.1:2222/system?keyfile=/lab/key&known_hosts=/lab/known_hosts",
    {
      driver: "qemu",
      transport: "ssh",
      user: "root",
      host: "127.0.0.1",
      port: 2222,
      path: "/system",
      daemonName: "qemu:///system",
      helperUri: "qemu:///system",
      params: { keyfile: "/lab/key", knownHosts: "/lab/known_hosts" },
    },
  ],
  [
    "qemu+ssh://ops%2Badmin@[2001:db8::7]/system?no_tty=1&no_verify=1&netcat=/usr/bin/nc&command=/opt/ssh",
    {
      driver: "qemu",
      transport: "ssh",
      user: "ops+admin",
      host: "2001:db8::7",
      path: "/system",
      daemonName: "qemu:///system",
      helperUri: "qemu:///system",
      params: { noTty: true, noVerify: true, netcat: "/usr/bin/nc", command: "/opt/ssh" },
    },
  ],
  [
    "qemu+ssh://h/system?proxy=native&known_hosts_verify=auto&mode=legacy",
    {
      driver: "qemu",
      transport: "ssh",
      host: "h",
      path: "/system",
      daemonName: "qemu:///system",
      helperUri: "qemu:///system?mode=legacy",
      params: { proxy: "native", knownHostsVerify: "auto", mode: "legacy" },
    },
  ],
  [
    "qemu+ssh://h/system?name=qemu:///embed%3Froot%3D/x",
    {
      driver: "qemu",
      transport: "ssh",
      host: "h",
      path: "/system",
      daemonName: "qemu:///embed?root=/x",
      helperUri: "qemu:///embed?root=/x",
    },
  ],
  [
    "remote+tcp://h/",
    { driver: "remote", transport: "tcp", host: "h", path: "/", daemonName: "", helperUri: "" },
  ],
  // Percent-encoding: decoded for us, re-encoded in the daemon name.
  [
    "qemu:///sys%20tem",
    {
      driver: "qemu",
      transport: "unix",
      path: "/sys tem",
      daemonName: "qemu:///sys%20tem",
      helperUri: "qemu:///sys%20tem",
    },
  ],
  // Shell metacharacters allowed by RFC 3986 stay data in the path ...
  [
    "qemu+ssh://h/system$(reboot);'x'",
    {
      driver: "qemu",
      transport: "ssh",
      host: "h",
      path: "/system$(reboot);'x'",
      daemonName: "qemu:///system$(reboot);'x'",
      helperUri: "qemu:///system$(reboot);'x'",
    },
  ],
  // ... and in a decoded socket path (which the ssh transport quotes for the remote shell).
  [
    "qemu+ssh://h/system?socket=/tmp/a%20b%3B$(id)%60x%60",
    {
      driver: "qemu",
      transport: "ssh",
      host: "h",
      path: "/system",
      daemonName: "qemu:///system",
      helperUri: "qemu:///system",
      params: { socket: "/tmp/a b;$(id)`x`" },
    },
  ],
  // Names are case-insensitive, the last occurrence wins, empty sections are skipped.
  [
    "qemu+tls://h/system?NO_VERIFY=1&&no_verify=0",
    {
      driver: "qemu",
      transport: "tls",
      host: "h",
      path: "/system",
      daemonName: "qemu:///system",
      helperUri: "qemu:///system",
    },
  ],
];

describe("parseLibvirtUri accepts", () => {
  it.each(accepted)("%s", (uri, expected) => {
    const { params, ...rest } = expected;
    expect(parseLibvirtUri(uri)).toEqual({ uri, ...rest, params: { ...base, ...params } });
  });
});

describe("Quirk: libvirt ends a parameter at the next '&', and only when no '&' is left at the next ';'", () => {
  it("reads pkipath=/a;b&no_verify=1 as pkipath '/a;b', and pkipath=/a;no_verify=1 as two parameters", () => {
    const params = (uri: string) => parseLibvirtUri(uri).params;
    expect([
      params("qemu+tls://h/system?pkipath=/a;b&no_verify=1"),
      params("qemu+tls://h/system?pkipath=/a;no_verify=1"),
    ]).toEqual([
      { ...base, pkipath: "/a;b", noVerify: true },
      { ...base, pkipath: "/a", noVerify: true },
    ]);
  });
});

// Each row: URI, the part blamed, the parameter blamed, and a phrase the message must hold.
const refused: [string, UriPart, string | null, string][] = [
  ["/var/run/libvirt/libvirt-sock", "scheme", null, "expected driver[+transport]://"],
  ["qemu+libssh2://h/system", "transport", null, "'libssh2' is not supported; use unix, ssh, tcp or tls"],
  ["qemu+libssh://h/system", "transport", null, "'libssh' is not supported"],
  ["qemu+ext:///system?command=/bin/x", "transport", null, "'ext' is not supported"],
  ["qemu+carrier-pigeon://h/system", "transport", null, "unknown transport 'carrier-pigeon'"],
  ["qemu+unix://h/system", "host", null, "takes no user, host or port"],
  ["qemu+tcp://root@h/system", "user", null, "applies to the ssh transport only"],
  ["qemu+ssh://h/sys tem", "path", null, "outside RFC 3986"],
  ['qemu+ssh://h/system"', "path", null, "outside RFC 3986"],
  ["qemu+ssh://h/system\nreboot", "path", null, "outside RFC 3986"],
  ["qemu+ssh://h/`reboot`", "path", null, "outside RFC 3986"],
  ["qemu+ssh://h/system?socket=/a b", "query", null, "outside RFC 3986"],
  ["qemu+ssh://a;b/system", "host", null, "not a host name"],
  ["qemu+ssh://$(reboot)/system", "host", null, "not a host name"],
  ["qemu+ssh://-oProxyCommand=x/system", "host", null, "not a host name"],
  ["qemu+ssh://%2DoProxyCommand%3Dx/system", "host", null, "not a host name"],
  ["qemu+ssh://h%0Ax/system", "host", null, "not a host name"],
  ["qemu+ssh://[::1/system", "host", null, "unterminated IPv6"],
  ["qemu+ssh://[fe80::1%25eth0]/system", "host", null, "zone ids"],
  ["qemu+ssh://it's@h/system", "user", null, "letters, digits"],
  ["qemu+ssh://a%0Ab@h/system", "user", null, "letters, digits"],
  ["qemu+tcp://h:99999/system", "port", null, "not a port number"],
  ["qemu+tcp://h:22x/system", "port", null, "not a port number"],
  ["qemu+tcp://:16509/system", "host", null, "needs a host"],
  ["qemu:///system?socket=../../etc/shadow", "query", "socket", "absolute path"],
  ["qemu:///system?socket=/var/run/libvirt/../../../tmp/evil", "query", "socket", "'..' segments"],
  ["qemu:///system?socket=/tmp/a%0Ab", "query", "socket", "control characters"],
  ["qemu:///system?name=qemu:///system%0A", "query", "name", "control characters"],
  ["qemu+ssh://h/system?keyfile=/k%20ey", "query", "keyfile", "without %, $, blanks"],
  ["qemu+ssh://h/system?known_hosts=$%7BHOME%7D/kh", "query", "known_hosts", "without %, $, blanks"],
  ["qemu+ssh://h/system?keyfile=%25d/id", "query", "keyfile", "without %, $, blanks"],
  ["qemu+tls://h/system?no_verify=yes", "query", "no_verify", "must be an integer"],
  ["qemu+tls://h/system?no_verify", "query", "no_verify", "must be an integer"],
  ["qemu:///system?mode=modular", "query", "mode", "must be one of auto, legacy, direct"],
  ["qemu+tcp://h/system?mode=direct", "query", "mode", "applies to unix/ssh only, not to tcp"],
  ["qemu+tcp://h/system?pkipath=/p", "query", "pkipath", "applies to tls only"],
  ["qemu+tls://h/system?keyfile=/k", "query", "keyfile", "applies to ssh only"],
  ["qemu+ssh://h/system?auth=sasl", "query", "auth", "not supported"],
  ["qemu+tls://h/system?tls_priority=NORMAL", "query", "tls_priority", "not supported"],
  ["qemu+ssh://h/system?frobnicate=1", "query", "frobnicate", "unknown parameter 'frobnicate'; supported:"],
  ["qemu+ssh://h/system?proxy=native&netcat=nc", "query", "netcat", "proxy=native"],
  ["qemu+ssh://h/session?netcat=nc", "query", "netcat", "needs an explicit 'socket'"],
  ["qemu+ssh://h/system?x=%FF", "query", "x", "not valid UTF-8"],
  // Names inherited from Object.prototype are neither transports, parameters nor values.
  ["qemu+constructor://h/system", "transport", null, "unknown transport 'constructor'"],
  ["qemu+tostring://h/system", "transport", null, "unknown transport 'tostring'"],
  ["qemu:///system?mode=constructor", "query", "mode", "must be one of auto, legacy, direct"],
  ["qemu:///system?mode=__proto__", "query", "mode", "must be one of auto, legacy, direct"],
  ["qemu+ssh://h/system?proxy=hasOwnProperty", "query", "proxy", "must be one of auto, netcat, native"],
  ["qemu:///system?constructor=1", "query", "constructor", "unknown parameter 'constructor'; supported:"],
  ["qemu:///system?__proto__=1", "query", "__proto__", "unknown parameter '__proto__'; supported:"],
];

describe("parseLibvirtUri refuses", () => {
  it.each(refused)("%j", (uri, part, param, phrase) => {
    let caught: unknown;
    try {
      parseLibvirtUri(uri);
    } catch (error) {
      caught = error;
    }
    expect(isLibvirtUriError(caught)).toBe(true);
    const error = caught as LibvirtUriError;
    expect({
      name: error.name,
      code: error.code,
      uri: error.uri,
      part: error.part,
      param: error.param,
    }).toEqual({ name: "LibvirtUriError", code: 8, uri, part, param });
    expect(error.message).toContain(phrase);
    expect(error.message).toContain(JSON.stringify(uri));
  });
});

describe("defaultUri", () => {
  it("prefers the explicit argument, then LIBVIRT_DEFAULT_URI, then qemu:///system", () => {
    const env = { LIBVIRT_DEFAULT_URI: "qemu+tcp://h/system" };
    expect([
      defaultUri("qemu:///session", env),
      defaultUri(undefined, env),
      defaultUri(undefined, {}),
    ]).toEqual(["qemu:///session", "qemu+tcp://h/system", "qemu:///system"]);
  });

  it("treats empty strings as unset", () => {
    expect(defaultUri("", { LIBVIRT_DEFAULT_URI: "" })).toBe("qemu:///system");
  });
});

describe("isLibvirtUriError", () => {
  it("recognises the brand, not the class", () => {
    const foreign = Object.defineProperty(
      new Error("x"),
      Symbol.for("pulumi-libvirt-snapshot/LibvirtUriError"),
      {
        value: true,
      },
    );
    expect([isLibvirtUriError(foreign), isLibvirtUriError(new Error("x")), isLibvirtUriError(null)]).toEqual([
      true,
      false,
      false,
    ]);
  });
});

describe("dial", () => {
  it("rejects a URI whose transport it does not know instead of resolving with nothing", async () => {
    const forged = {
      ...parseLibvirtUri("qemu:///system"),
      transport: "constructor",
    } as unknown as LibvirtUri;
    let caught: unknown;
    try {
      await dial(forged, { connectTimeoutMs: 1000 });
    } catch (error) {
      caught = error;
    }
    expect(isLibvirtUriError(caught)).toBe(true);
    const error = caught as LibvirtUriError;
    expect({ part: error.part, message: error.message }).toEqual({
      part: "transport",
      message: `invalid libvirt URI "qemu:///system": unknown transport 'constructor'`,
    });
  });
});

describe("no password reaches an error", () => {
  const withPasswords = [
    "qemu+ssh://admin:hunter2@hv1/system",
    "qemu+ssh://admin:hun@ter2@hv1/system",
    "qemu+tcp://admin:hunter2@hv1:16509/system",
    "qemu+tls://hv1/system?password=hunter2",
    "qemu+ssh://hv1/system?keyfile=/k&token=hunter2",
    "qemu+carrier-pigeon://admin:hunter2@hv1/system",
  ];

  it.each(withPasswords)("parseLibvirtUri(%j)", (uri) => {
    let caught: unknown;
    try {
      parseLibvirtUri(uri);
    } catch (error) {
      caught = error;
    }
    expect(isLibvirtUriError(caught)).toBe(true);
    const error = caught as LibvirtUriError;
    expect(error.uri).toBe(redactUri(uri));
    expect(JSON.stringify({ ...error, message: error.message, stack: error.stack })).not.toMatch(
      /hunter|ter2/,
    );
  });

  it.each(withPasswords)("openConnection(%j)", async (uri) => {
    let caught: unknown;
    try {
      await openConnection(uri, { connectTimeoutMs: 1000 });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(Error);
    const error = caught as Error;
    expect(JSON.stringify({ ...error, message: error.message, stack: error.stack })).not.toMatch(
      /hunter|ter2/,
    );
  });

  it("redactUri masks a password up to the authority's last '@' and credential-like parameters", () => {
    expect(withPasswords.map(redactUri)).toEqual([
      "qemu+ssh://admin:***@hv1/system",
      "qemu+ssh://admin:***@hv1/system",
      "qemu+tcp://admin:***@hv1:16509/system",
      "qemu+tls://hv1/system?password=***",
      "qemu+ssh://hv1/system?keyfile=/k&token=***",
      "qemu+carrier-pigeon://admin:***@hv1/system",
    ]);
  });
});
