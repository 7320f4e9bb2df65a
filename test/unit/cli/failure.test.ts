import { describe, expect, test } from "vitest";
import { describeFailure, exitCodeFor, formatFailure, UsageError } from "../../../cli/failure";
import { EngineError } from "../../../provider/engine/errors";
import { LibvirtError } from "../../../provider/libvirt/errors";
import { LibvirtTransportError } from "../../../provider/libvirt/transports/errors";

function libvirtError(code: number, message: string): LibvirtError {
  return new LibvirtError({
    kind: "remote",
    code,
    domain: 10,
    level: 2,
    message,
    str1: null,
    str2: null,
    str3: null,
    int1: -1,
    int2: -1,
    procedure: null,
  });
}

describe("failures say what failed, the libvirt code and name, and what to do", () => {
  test("an engine error with a libvirt cause", () => {
    const error = new EngineError({
      kind: "libvirt",
      domain: "web1",
      snapshot: "s1",
      disk: "vda",
      message: "creating snapshot s1 of domain web1 failed on disk vda; nothing was changed",
      cause: libvirtError(67, "unsupported configuration: external snapshot file exists"),
    });
    const failure = describeFailure(error);
    expect(failure).toEqual({
      message:
        "creating snapshot s1 of domain web1 failed on disk vda; nothing was changed [libvirt CONFIG_UNSUPPORTED (67): unsupported configuration: external snapshot file exists]",
      kind: "libvirt",
      libvirtCode: 67,
      libvirtCodeName: "CONFIG_UNSUPPORTED",
      domain: "web1",
      snapshot: "s1",
      disk: "vda",
      hint: "see libvirt's message above; `libvirt-snapshot verify <domain>` shows whether anything was left",
    });
    expect(exitCodeFor(failure)).toBe(1);
    expect(formatFailure(failure).split("\n")).toEqual([
      `libvirt-snapshot: error: ${failure.message}`,
      "  libvirt error: CONFIG_UNSUPPORTED (code 67)",
      `  what to do: ${failure.hint}`,
    ]);
  });

  test("an engine error without a libvirt cause has no code line", () => {
    const failure = describeFailure(
      new EngineError({
        kind: "snapshot-not-found",
        domain: "web1",
        snapshot: "s9",
        message: "domain web1 has no snapshot s9",
      }),
    );
    expect(formatFailure(failure).split("\n")).toEqual([
      "libvirt-snapshot: error: domain web1 has no snapshot s9",
      "  what to do: see the domain's snapshots with `libvirt-snapshot list <domain>`",
    ]);
  });

  test("a timeout and an abort have their own kinds and hints, failed operations (1)", () => {
    const [timeout, aborted] = (["timeout", "aborted"] as const).map((kind) =>
      describeFailure(new EngineError({ kind, domain: "web1", snapshot: "s1", disk: "vda", message: kind })),
    );
    expect([timeout, aborted]).toEqual([
      {
        message: "timeout",
        kind: "timeout",
        domain: "web1",
        snapshot: "s1",
        disk: "vda",
        hint:
          "the merge was cancelled and the chains are consistent; retry with a longer --timeout or, if another " +
          "operation is slow, later",
      },
      {
        message: "aborted",
        kind: "aborted",
        domain: "web1",
        snapshot: "s1",
        disk: "vda",
        hint: "stopped on request; the message says what is left, and running the command again finishes it",
      },
    ]);
    expect([timeout, aborted].map((f) => f && exitCodeFor(f))).toEqual([1, 1]);
  });

  test("an unreachable daemon is a failed operation (1) that points at the daemon and the URI", () => {
    const failure = describeFailure(
      new LibvirtTransportError({
        transport: "unix",
        target: "/var/run/libvirt/libvirt-sock",
        failure: "refused",
        message: "no such socket",
      }),
    );
    expect(failure).toEqual({
      message: "unix connection to /var/run/libvirt/libvirt-sock failed: no such socket",
      kind: "connection",
      libvirtCode: 38,
      libvirtCodeName: "SYSTEM_ERROR",
      hint: "check that libvirtd (or virtqemud) runs on the host and that -c/--connect or LIBVIRT_DEFAULT_URI names it",
    });
    expect(exitCodeFor(failure)).toBe(1);
  });

  test("a usage error exits 2; anything unexpected is reported as a bug, exit 1", () => {
    expect(exitCodeFor(describeFailure(new UsageError("bad")))).toBe(2);
    expect(describeFailure(new TypeError("x is undefined"))).toEqual({
      message: "x is undefined",
      kind: "internal",
      hint: "this is a bug of libvirt-snapshot; please report it with the command",
    });
  });
});
