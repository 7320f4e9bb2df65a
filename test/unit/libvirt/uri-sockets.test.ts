import { describe, expect, it } from "vitest";
import { locateTlsCredentials, SYSTEM_PKI } from "../../../provider/libvirt/transports/tls";
import { resolveUnixSocket, type SocketEnvironment } from "../../../provider/libvirt/transports/unix";
import { parseLibvirtUri } from "../../../provider/libvirt/uri";

function environment(existing: string[], euid: number, env: NodeJS.ProcessEnv = {}): SocketEnvironment {
  return { exists: (path) => existing.includes(path), euid, env, homedir: "/home/op" };
}

const run = "/var/run/libvirt";

// Each row: URI, files that exist, euid, env, read-only, expected socket.
const sockets: [string, string[], number, NodeJS.ProcessEnv, boolean, string][] = [
  ["qemu:///system", [`${run}/virtqemud-sock`], 0, {}, false, `${run}/virtqemud-sock`],
  ["qemu:///system", [], 0, {}, false, `${run}/libvirt-sock`],
  ["qemu:///system", [`${run}/virtqemud-sock`], 0, {}, true, `${run}/libvirt-sock-ro`],
  ["qemu:///system", [`${run}/virtqemud-sock-ro`], 0, {}, true, `${run}/virtqemud-sock-ro`],
  ["qemu:///system?mode=legacy", [`${run}/virtqemud-sock`], 0, {}, false, `${run}/libvirt-sock`],
  ["qemu:///system?mode=direct", [], 0, {}, false, `${run}/virtqemud-sock`],
  ["lxc:///system?mode=direct", [], 0, {}, false, `${run}/virtlxcd-sock`],
  ["remote:///system?mode=direct", [], 0, {}, false, `${run}/libvirt-sock`],
  ["qemu:///system?socket=/srv/sock", [`${run}/virtqemud-sock`], 0, {}, true, "/srv/sock"],
  // The per-user daemon: runtime dir, then cache dir, then ~/.cache; root gets the system sockets.
  [
    "qemu:///session",
    [],
    1000,
    { XDG_RUNTIME_DIR: "/run/user/1000" },
    false,
    "/run/user/1000/libvirt/libvirt-sock",
  ],
  [
    "qemu:///session",
    ["/run/user/1000/libvirt/virtqemud-sock"],
    1000,
    { XDG_RUNTIME_DIR: "/run/user/1000" },
    true,
    "/run/user/1000/libvirt/virtqemud-sock",
  ],
  ["qemu:///session", [], 1000, { XDG_CACHE_HOME: "/c" }, false, "/c/libvirt/libvirt-sock"],
  ["qemu:///session", [], 1000, {}, false, "/home/op/.cache/libvirt/libvirt-sock"],
  ["qemu:///session", [], 0, { XDG_RUNTIME_DIR: "/run/user/0" }, false, `${run}/libvirt-sock`],
];

describe("resolveUnixSocket", () => {
  it.each(sockets)("%s with %j as uid %i %j ro=%s", (uri, existing, euid, env, readonly, expected) => {
    expect(resolveUnixSocket(parseLibvirtUri(uri), environment(existing, euid, env), readonly)).toBe(
      expected,
    );
  });
});

describe("locateTlsCredentials", () => {
  const user = "/home/op/.pki/libvirt";
  const exists = (files: string[]) => (path: string) => files.includes(path);

  it("uses an explicit pkipath whether or not its files exist", () => {
    expect(locateTlsCredentials("/lab/pki", 1000, "/home/op", exists([]))).toEqual({
      ca: "/lab/pki/cacert.pem",
      crl: "/lab/pki/cacrl.pem",
      cert: "/lab/pki/clientcert.pem",
      key: "/lab/pki/clientkey.pem",
    });
  });

  it("uses the system layout for root, even when ~/.pki/libvirt exists", () => {
    const files = [`${user}/cacert.pem`, `${user}/clientcert.pem`, `${user}/clientkey.pem`];
    expect(locateTlsCredentials(undefined, 0, "/home/op", exists(files))).toEqual(SYSTEM_PKI);
  });

  it("uses a user's own files where present, the certificate and key only as a pair", () => {
    expect(
      locateTlsCredentials(
        undefined,
        1000,
        "/home/op",
        exists([`${user}/cacert.pem`, `${user}/clientcert.pem`]),
      ),
    ).toEqual({ ...SYSTEM_PKI, ca: `${user}/cacert.pem` });
    expect(
      locateTlsCredentials(
        undefined,
        1000,
        "/home/op",
        exists([`${user}/clientcert.pem`, `${user}/clientkey.pem`, `${user}/cacrl.pem`]),
      ),
    ).toEqual({
      ca: SYSTEM_PKI.ca,
      crl: `${user}/cacrl.pem`,
      cert: `${user}/clientcert.pem`,
      key: `${user}/clientkey.pem`,
    });
  });
});
