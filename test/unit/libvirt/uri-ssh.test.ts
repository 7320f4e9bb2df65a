import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  classifySshStderr,
  remoteCommand,
  shellQuote,
  sshArgv,
  TUNNEL_READY_MARKER,
} from "../../../provider/libvirt/transports/ssh-command";
import { parseLibvirtUri } from "../../../provider/libvirt/uri";

describe("sshArgv", () => {
  it("builds libvirt's argv plus known_hosts and a connect timeout, host after --", () => {
    const uri = parseLibvirtUri(
      "qemu+ssh://root@127.0.0.1:2222/system?keyfile=/lab/key&known_hosts=/lab/known_hosts&proxy=native",
    );
    expect(sshArgv(uri, 4500, true)).toEqual([
      "-p",
      "2222",
      "-l",
      "root",
      "-i",
      "/lab/key",
      "-T",
      "-e",
      "none",
      "-o",
      "UserKnownHostsFile=/lab/known_hosts",
      "-o",
      "ConnectTimeout=5",
      "--",
      "127.0.0.1",
      remoteCommand(uri),
    ]);
  });

  it("never prompts without a terminal or with no_tty=1, and maps host-key policies", () => {
    const argv = (uri: string, hasTty: boolean) => sshArgv(parseLibvirtUri(uri), 1000, hasTty).slice(0, -3);
    expect([
      argv("qemu+ssh://h/system", false),
      argv("qemu+ssh://h/system?no_tty=1", true),
      argv("qemu+ssh://h/system?no_verify=1", true),
      argv("qemu+ssh://h/system?known_hosts_verify=auto", true),
      argv("qemu+ssh://h/system?known_hosts_verify=ignore", true),
    ]).toEqual([
      ["-T", "-e", "none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=1"],
      ["-T", "-e", "none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=1"],
      ["-T", "-e", "none", "-o", "StrictHostKeyChecking=no", "-o", "ConnectTimeout=1"],
      ["-T", "-e", "none", "-o", "StrictHostKeyChecking=accept-new", "-o", "ConnectTimeout=1"],
      ["-T", "-e", "none", "-o", "StrictHostKeyChecking=no", "-o", "ConnectTimeout=1"],
    ]);
  });
});

describe("shellQuote", () => {
  it.each(["plain", "", "it's", "'", '$(id)`id`;|&<>*?~\n"\\', "a b\tc"])(
    "keeps %j one literal word",
    (text) => {
      const echoed = spawnSync("sh", ["-c", `printf '%s' ${shellQuote(text)}`], { encoding: "utf8" });
      expect(echoed.stdout).toBe(text);
    },
  );
});

/**
 * Runs remoteCommand the way sshd does (the login shell gets the command string via `sh -c`), with fake
 * virt-ssh-helper and nc that print their arguments NUL-separated, and returns what they received.
 */
describe("remoteCommand run by a POSIX login shell", () => {
  let work: string;
  let bin: string;

  const fake = (dir: string, name: string, body: string): void => {
    const file = path.join(dir, name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
  };

  beforeAll(() => {
    work = mkdtempSync(path.join(os.tmpdir(), "lvsnap-uri-ssh-"));
    bin = path.join(work, "bin");
    spawnSync("mkdir", ["-p", bin, path.join(work, "nohelper"), path.join(work, "tools")]);
    // Only the tools the remote command needs: a real virt-ssh-helper elsewhere in PATH must not be found.
    for (const tool of ["sh", "grep"]) {
      const real = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
      symlinkSync(real, path.join(work, "tools", tool));
    }
    fake(bin, "virt-ssh-helper", `printf '%s\\0' virt-ssh-helper "$@"`);
    const nc = `if [ "$#" = 1 ] && [ "$1" = -q ]; then echo "nc: option requires an argument -- q" >&2; exit 1; fi
printf '%s\\0' nc "$@"`;
    fake(bin, "nc", nc);
    fake(path.join(work, "nohelper"), "nc", nc);
    fake(work, "my nc's", nc.replace("printf '%s\\0' nc", "printf '%s\\0' custom-nc"));
  });

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const runRemote = (uri: string, pathDirs: string[], readonly = false): string[] => {
    const result = spawnSync("/bin/sh", ["-c", remoteCommand(parseLibvirtUri(uri), readonly)], {
      cwd: work,
      env: { PATH: [...pathDirs, path.join(work, "tools")].join(":") },
      encoding: "utf8",
    });
    expect(result.stdout.startsWith(TUNNEL_READY_MARKER)).toBe(true);
    return result.stdout.slice(TUNNEL_READY_MARKER.length).split("\0").slice(0, -1);
  };

  it("runs virt-ssh-helper with the daemon URI when it is installed", () => {
    expect(runRemote("qemu+ssh://h/system", [bin])).toEqual(["virt-ssh-helper", "qemu:///system"]);
    expect(runRemote("qemu+ssh://h/system?mode=direct", [bin], true)).toEqual([
      "virt-ssh-helper",
      "-r",
      "qemu:///system?mode=direct",
    ]);
  });

  it("falls back to nc -q0 -U with the mode's socket when virt-ssh-helper is missing", () => {
    const direct = "/var/run/libvirt/virtqemud-sock";
    const auto = existsSync(direct) ? direct : "/var/run/libvirt/libvirt-sock";
    expect([
      runRemote("qemu+ssh://h/system", [path.join(work, "nohelper")]),
      runRemote("qemu+ssh://h/system?mode=legacy", [path.join(work, "nohelper")], true),
      runRemote("qemu+ssh://h/system?proxy=netcat&mode=direct", [bin]),
    ]).toEqual([
      ["nc", "-q0", "-U", auto],
      ["nc", "-q0", "-U", "/var/run/libvirt/libvirt-sock-ro"],
      ["nc", "-q0", "-U", direct],
    ]);
  });

  it("keeps hostile URI parts as data: nothing runs, every byte arrives", () => {
    const hostileName = "'; touch PWNED; echo '$(touch PWNED2)`touch PWNED3`";
    const hostileSocket = "/tmp/a b;$(touch PWNED4)`touch PWNED5`'\"\\";
    expect([
      runRemote(`qemu+ssh://h/system?name=${encodeURIComponent(hostileName)}`, [bin]),
      runRemote(`qemu+ssh://h/system?socket=${encodeURIComponent(hostileSocket)}`, [bin]),
      runRemote(`qemu+ssh://h/system?netcat=${encodeURIComponent(path.join(work, "my nc's"))}&mode=legacy`, [
        bin,
      ]),
      runRemote("qemu+ssh://h/system$(touch%20PWNED6);'x'", [bin]),
    ]).toEqual([
      ["virt-ssh-helper", hostileName],
      ["nc", "-q0", "-U", hostileSocket],
      ["custom-nc", "-q0", "-U", "/var/run/libvirt/libvirt-sock"],
      ["virt-ssh-helper", "qemu:///system$(touch%20PWNED6);'x'"],
    ]);
    expect(readdirSync(work).filter((name) => name.startsWith("PWNED"))).toEqual([]);
  });
});

describe("classifySshStderr", () => {
  it.each([
    ["Host key verification failed.", "host-key"],
    ["@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@", "host-key"],
    ["root@127.0.0.1: Permission denied (publickey).", "permission"],
    ["ssh: connect to host 127.0.0.1 port 1: Connection refused", "refused"],
    ["ssh: connect to host 10.255.255.1 port 22: Connection timed out", "timeout"],
    ["ssh: Could not resolve hostname nowhere.invalid: Name or service not known", "unreachable"],
    ["nc: unix connect failed: No such file or directory", "closed"],
  ])("%s -> %s", (stderr, failure) => {
    expect(classifySshStderr(stderr)).toBe(failure);
  });
});
