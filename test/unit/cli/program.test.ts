import { describe, expect, test } from "vitest";
import { createRequest } from "../../../cli/commands/create";
import { deleteOptions } from "../../../cli/commands/delete";
import { revertOptions } from "../../../cli/commands/revert";
import { ExitCode } from "../../../cli/failure";
import { runCli } from "../../../cli/main";
import { parseCommandLine } from "../../../cli/program";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    output: { writeOut: (s: string) => out.push(s), writeErr: (s: string) => err.push(s) },
  };
}

/** Runs the CLI without a host: every test here fails before a connection would be needed. */
async function run(args: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCli(args, {
    stdout: { write: (s: string) => stdout.push(s) },
    stderr: { write: (s: string) => stderr.push(s) },
    signal: new AbortController().signal,
  });
  return { code, stdout: stdout.join(""), stderr: stderr.join("") };
}

describe("usage errors exit 2 and run nothing", () => {
  test.each([
    [["lis", "web1"], "unknown command 'lis'"],
    [[], "Usage: libvirt-snapshot"],
    [["list"], "missing required argument 'domain'"],
    [["create", "web1", "s1", "--quiesce", "maybe"], "Allowed choices are auto, required, off"],
    [["create", "web1", "s1", "--live"], "--live needs --memory"],
    [["create", "web1", "s1", "--disk", "vda", "--exclude-disk", "vdb"], "cannot be used with option"],
    [["delete", "web1", "s1", "--bandwidth", "1.5"], "positive whole number of bytes per second"],
    [["delete", "web1", "s1", "--bandwidth", "-3"], "positive whole number"],
    [["delete", "web1", "s1", "--timeout", "0"], "positive number of seconds"],
    [["delete", "web1", "s1", "--strategy", "rsync"], "Allowed choices are blockcommit, native"],
    [["verify", "web1", "--fix"], "unknown option '--fix'"],
    [["revert", "web1", "s1", "--state", "crashed"], "Allowed choices are running, paused, shutoff"],
    [["commit", "web1", "s1"], "too many arguments for 'commit'"],
    [["undo"], "missing required argument 'domain'"],
  ])("%j", async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(ExitCode.USAGE);
    expect(result.stderr).toContain(message);
  });

  test("with --json the usage error is one JSON document on stdout, and stderr stays empty", async () => {
    const result = await run(["--json", "delete", "web1", "s1", "--bandwidth", "fast"]);
    expect(result).toEqual({ code: 2, stdout: expect.any(String), stderr: "" });
    expect(JSON.parse(result.stdout)).toEqual({
      ok: false,
      error: {
        message:
          "option '--bandwidth <bytes-per-second>' argument 'fast' is invalid. expected a positive whole number of bytes per second",
        kind: "usage",
        hint: "see `libvirt-snapshot <command> --help`",
      },
    });
  });

  test("with --json and no command: a JSON usage error, not the help text", async () => {
    expect(await run(["--json"])).toEqual({
      code: 2,
      stdout: `${JSON.stringify(
        {
          ok: false,
          error: {
            message: "no command given",
            kind: "usage",
            hint: "see `libvirt-snapshot <command> --help`",
          },
        },
        null,
        2,
      )}\n`,
      stderr: "",
    });
  });

  test("a malformed URI is a usage error, reported before anything is sent", async () => {
    const result = await run(["-c", "qemu+ftp://host/system", "list", "web1"]);
    expect(result.code).toBe(ExitCode.USAGE);
    expect(result.stderr).toMatch(
      /^libvirt-snapshot: error: invalid libvirt URI "qemu\+ftp:\/\/host\/system"/,
    );
    expect(result.stderr).toContain("libvirt error: INVALID_ARG (code 8)");
    expect(result.stderr).toContain("what to do: give a libvirt URI");
  });
});

describe("help exits 0", () => {
  test.each([
    ["--help"],
    ["list", "--help"],
    ["create", "--help"],
    ["delete", "--help"],
    ["verify", "--help"],
  ])("%j", async (...args) => {
    const result = await run(args);
    expect(result.code).toBe(ExitCode.OK);
    expect(result.stdout).toContain("Usage: libvirt-snapshot");
    expect(result.stderr).toBe("");
  });

  test("the top-level help documents the exit codes and the default URI", async () => {
    const { stdout } = await run(["--help"]);
    expect(stdout).toContain(
      "Exit codes: 0 done, 1 the operation failed (or verify found a problem), 2 usage error.",
    );
    expect(stdout).toContain("LIBVIRT_DEFAULT_URI, then qemu:///system");
  });
});

describe("parsing into invocations", () => {
  async function invocation(args: string[]) {
    const c = capture();
    const parsed = await parseCommandLine(args, c.output);
    expect(c.err).toEqual([]);
    return parsed;
  }

  test("global options are accepted before and after the command", async () => {
    for (const args of [
      ["-c", "qemu:///session", "--json", "list", "web1"],
      ["list", "web1", "--connect", "qemu:///session", "--json"],
    ]) {
      expect(await invocation(args)).toEqual({
        kind: "run",
        invocation: { command: "list", domain: "web1" },
        connect: "qemu:///session",
        json: true,
      });
    }
  });

  test("without -c the URI is left to openConnection (LIBVIRT_DEFAULT_URI, then qemu:///system)", async () => {
    expect(await invocation(["verify", "web1", "--repair"])).toEqual({
      kind: "run",
      invocation: { command: "verify", domain: "web1", repair: true },
      json: false,
    });
  });

  test("create: defaults, and every option with repeatable --disk in order", async () => {
    expect(await invocation(["create", "web1", "s1"])).toEqual({
      kind: "run",
      invocation: {
        command: "create",
        domain: "web1",
        name: "s1",
        options: { memory: false, live: false, quiesce: "auto", disk: [], excludeDisk: [] },
      },
      json: false,
    });
    const hostile = "<release & 'rollback'> $(rm -rf /)";
    expect(
      await invocation([
        "create",
        "web1",
        "s1",
        "--memory",
        "--live",
        "--quiesce",
        "required",
        "--disk",
        "vdb",
        "--disk",
        "vda",
        "--description",
        hostile,
        "--overlay-dir",
        "/srv/overlays",
      ]),
    ).toEqual({
      kind: "run",
      invocation: {
        command: "create",
        domain: "web1",
        name: "s1",
        options: {
          memory: true,
          live: true,
          quiesce: "required",
          disk: ["vdb", "vda"],
          excludeDisk: [],
          description: hostile,
          overlayDir: "/srv/overlays",
        },
      },
      json: false,
    });
  });

  test("delete: strategy default, bandwidth and timeout as numbers", async () => {
    expect(await invocation(["delete", "web1", "s1", "--bandwidth", "1048576", "--timeout", "2.5"])).toEqual({
      kind: "run",
      invocation: {
        command: "delete",
        domain: "web1",
        name: "s1",
        options: { strategy: "blockcommit", bandwidth: 1048576, timeout: 2.5 },
      },
      json: false,
    });
  });

  test("revert: the target state and both switches", async () => {
    expect(await invocation(["revert", "web1", "s1"])).toEqual({
      kind: "run",
      invocation: {
        command: "revert",
        domain: "web1",
        name: "s1",
        options: { keepCurrent: false, discardNewer: false },
      },
      json: false,
    });
    expect(
      await invocation(["revert", "web1", "s1", "--state", "paused", "--keep-current", "--discard-newer"]),
    ).toEqual({
      kind: "run",
      invocation: {
        command: "revert",
        domain: "web1",
        name: "s1",
        options: { state: "paused", keepCurrent: true, discardNewer: true },
      },
      json: false,
    });
    expect(revertOptions({ state: "shutoff", keepCurrent: true, discardNewer: false })).toEqual({
      targetState: "shutoff",
      keepCurrent: true,
      discardNewer: false,
    });
  });

  test("preview, commit and undo", async () => {
    expect(await invocation(["preview", "web1", "s1", "--state", "running"])).toEqual({
      kind: "run",
      invocation: { command: "preview", domain: "web1", name: "s1", state: "running" },
      json: false,
    });
    expect(await invocation(["commit", "web1", "--json"])).toEqual({
      kind: "run",
      invocation: { command: "commit", domain: "web1" },
      json: true,
    });
    expect(await invocation(["undo", "web1"])).toEqual({
      kind: "run",
      invocation: { command: "undo", domain: "web1" },
      json: false,
    });
  });

  test("create options map to the engine request", () => {
    expect(
      createRequest("web1", "s1", {
        memory: true,
        live: true,
        quiesce: "off",
        disk: ["vda", "vdb"],
        excludeDisk: [],
        description: "<release & 'rollback'>",
        overlayDir: "/srv/overlays",
      }),
    ).toEqual({
      domain: "web1",
      name: "s1",
      memory: "memory-live",
      quiesce: "off",
      disks: { include: ["vda", "vdb"] },
      description: "<release & 'rollback'>",
      overlayDir: "/srv/overlays",
    });
    expect(
      createRequest("web1", "s1", {
        memory: false,
        live: false,
        quiesce: "auto",
        disk: [],
        excludeDisk: ["vdc"],
      }),
    ).toEqual({
      domain: "web1",
      name: "s1",
      memory: "disk-only",
      quiesce: "auto",
      disks: { exclude: ["vdc"] },
    });
  });

  test("delete options: bytes per second as given, seconds to milliseconds, the signal passed on", () => {
    const signal = new AbortController().signal;
    const onProgress = () => undefined;
    expect(
      deleteOptions({ strategy: "blockcommit", bandwidth: 1048576, timeout: 2.5 }, signal, onProgress),
    ).toEqual({
      strategy: "blockcommit",
      bandwidthBytesPerSecond: 1048576,
      timeoutMs: 2500,
      onProgress,
      signal,
    });
    expect(deleteOptions({ strategy: "native" }, signal, onProgress)).toEqual({
      strategy: "native",
      onProgress,
      signal,
    });
  });
});
