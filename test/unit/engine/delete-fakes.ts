import { LibvirtError } from "../../../provider/libvirt/errors";

/** An error as the daemon would send it: kind `remote`, the given code, level ERROR. */
export function daemonError(code: number, message: string): LibvirtError {
  return new LibvirtError({
    kind: "remote",
    code,
    domain: 10,
    message,
    level: 2,
    str1: null,
    str2: null,
    str3: null,
    int1: -1,
    int2: -1,
    procedure: null,
  });
}
