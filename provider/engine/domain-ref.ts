/**
 * Resolves the domain a caller names, by name or by UUID, into the daemon's reference.
 */
import type { DomainRef } from "../libvirt/api";
import { ErrorCode } from "../libvirt/flags";
import { EngineError, EngineErrorKind, libvirtCodeOf } from "./errors";
import type { DomainReadPort } from "./libvirt-port";

const UUID_PATTERN = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/**
 * Looks the domain up: by UUID when `nameOrUuid` has the form of one, by name otherwise. A missing domain is an
 * EngineError DOMAIN_NOT_FOUND naming what was looked for; other failures are EngineError LIBVIRT. Reads only.
 */
export async function resolveDomain(port: DomainReadPort, nameOrUuid: string): Promise<DomainRef> {
  if (nameOrUuid === "") {
    throw new EngineError({
      kind: EngineErrorKind.INVALID_REQUEST,
      message: "no domain given (name or UUID)",
    });
  }
  const byUuid = UUID_PATTERN.test(nameOrUuid);
  try {
    return byUuid
      ? await port.domainLookupByUUID(nameOrUuid.toLowerCase())
      : await port.domainLookupByName(nameOrUuid);
  } catch (e) {
    const notFound = libvirtCodeOf(e) === ErrorCode.NO_DOMAIN;
    throw new EngineError({
      kind: notFound ? EngineErrorKind.DOMAIN_NOT_FOUND : EngineErrorKind.LIBVIRT,
      domain: nameOrUuid,
      message: notFound
        ? `domain ${nameOrUuid} not found (looked up by ${byUuid ? "UUID" : "name"})`
        : `domain ${nameOrUuid}: lookup failed`,
      cause: e,
    });
  }
}
