import { expect, test } from "vitest";
import {
  errorCodeName,
  errorDomainName,
  isLibvirtError,
  LibvirtError,
  localError,
} from "../../../provider/libvirt/errors";
import { ErrorCode } from "../../../provider/libvirt/flags";

test("the code names the engine branches on match libvirt's numbers (docs: notes/libvirt.md)", () => {
  const codes = [8, 9, 42, 55, 67, 72, 74, 80, 83, 84, 86].map((code) => [code, errorCodeName(code)]);
  expect(codes).toEqual([
    [8, "INVALID_ARG"],
    [9, "OPERATION_FAILED"],
    [42, "NO_DOMAIN"],
    [55, "OPERATION_INVALID"],
    [67, "CONFIG_UNSUPPORTED"],
    [72, "NO_DOMAIN_SNAPSHOT"],
    [74, "ARGUMENT_UNSUPPORTED"],
    [80, "NO_DOMAIN_METADATA"],
    [83, "BLOCK_COPY_ACTIVE"],
    [84, "OPERATION_UNSUPPORTED"],
    [86, "AGENT_UNRESPONSIVE"],
  ]);
  expect(Object.values(ErrorCode)).toEqual([...Array(112).keys()]);
});

test("unknown codes and domains get a readable placeholder instead of undefined", () => {
  expect([errorCodeName(4242), errorDomainName(10), errorDomainName(35), errorDomainName(999)]).toEqual([
    "UNKNOWN_4242",
    "QEMU",
    "DOMAIN_SNAPSHOT",
    "UNKNOWN_999",
  ]);
});

test("the brand check works across package copies and rejects look-alikes", () => {
  const error = localError("timeout", ErrorCode.OPERATION_TIMEOUT, "x timed out", "X");
  // What a second copy of the package would create: a different class, the same registered brand symbol.
  const foreign = Object.assign(Object.create(null), {
    [Symbol.for("pulumi-libvirt-snapshot/LibvirtError")]: true,
  });
  expect([
    isLibvirtError(error),
    isLibvirtError(foreign),
    isLibvirtError(new Error("x")),
    isLibvirtError({ code: 42 }),
    isLibvirtError(null),
  ]).toEqual([true, true, false, false, false]);
  expect(error).toBeInstanceOf(LibvirtError);
});

test("a wrapped cause is kept, not flattened", () => {
  const cause = new Error("ECONNRESET");
  const error = localError("closed", ErrorCode.SYSTEM_ERROR, "connection failed", null, cause);
  expect({ cause: error.cause, codeName: error.codeName, domainName: error.domainName }).toEqual({
    cause,
    codeName: "SYSTEM_ERROR",
    domainName: "RPC",
  });
});
