/**
 * Reads and writes the project's element of a domain's `<metadata>` (namespace PROJECT_XML_NAMESPACE). The
 * element is one document shared by every module that keeps state on the domain (snapshot records, the delete
 * journal): callers read it, change their own part with the model's pure editors, and write it back, all under
 * the per-domain lock.
 */
import type { DomainRef } from "../libvirt/api";
import { DomainState } from "../libvirt/api";
import { DomainMetadataType, DomainModificationImpact, ErrorCode } from "../libvirt/flags";
import { PROJECT_XML_NAMESPACE, PROJECT_XML_PREFIX } from "../model/xml-namespace";
import { libvirtCodeOf } from "./errors";
import type { ProjectMetadataPort } from "./libvirt-port";

/**
 * The project's element of the domain (live definition when running), without a namespace prefix, or undefined
 * when the domain has none. Reads only.
 */
export async function readProjectMetadata(
  port: ProjectMetadataPort,
  domain: DomainRef,
): Promise<string | undefined> {
  try {
    return await port.domainGetMetadata(
      domain,
      DomainMetadataType.ELEMENT,
      PROJECT_XML_NAMESPACE,
      DomainModificationImpact.CURRENT,
    );
  } catch (e) {
    if (libvirtCodeOf(e) === ErrorCode.NO_DOMAIN_METADATA) return undefined;
    throw e;
  }
}

/**
 * Replaces the project's element (null removes it) in the live and the persistent definition, so it survives a
 * daemon restart, a destroy and a reboot; a shut-off domain has only the persistent one, a transient domain only
 * the live one. Idempotent. A failure leaves the previous element in place (libvirt writes it whole).
 * `knownState`: the domain's state when the caller has just read it under the per-domain lock (saves a call).
 */
export async function writeProjectMetadata(
  port: ProjectMetadataPort,
  domain: DomainRef,
  xml: string | null,
  knownState?: number,
): Promise<void> {
  const state = knownState ?? (await port.domainGetState(domain)).state;
  const set = (flags: number) =>
    port.domainSetMetadata(
      domain,
      DomainMetadataType.ELEMENT,
      xml,
      PROJECT_XML_PREFIX,
      PROJECT_XML_NAMESPACE,
      flags,
    );
  // CRASHED with QEMU is a kept process (on_crash=preserve): it has a live definition like a running domain.
  if (state === DomainState.SHUTOFF) {
    await set(DomainModificationImpact.CONFIG);
    return;
  }
  try {
    await set(DomainModificationImpact.LIVE | DomainModificationImpact.CONFIG);
  } catch (e) {
    // A transient domain has no persistent definition to write to.
    if (libvirtCodeOf(e) !== ErrorCode.OPERATION_INVALID) throw e;
    await set(DomainModificationImpact.LIVE);
  }
}
