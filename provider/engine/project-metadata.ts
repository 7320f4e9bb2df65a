/**
 * Reads and writes the project's element of a domain's `<metadata>` (namespace PROJECT_XML_NAMESPACE). The
 * element is one document shared by every module that keeps state on the domain (snapshot records, the delete
 * journal): callers read it, change their own part with the model's pure editors, and write it back, all under
 * the per-domain lock.
 *
 * Every write stamps the root with `owner`, the writing process (operation-owner.ts): the per-domain lock
 * excludes only operations of one process, so recovery reads the stamp to tell a record left by a process that
 * has gone from one that a live process on this host is still working on.
 */
import type { DomainRef } from "../libvirt/api";
import { DomainState } from "../libvirt/api";
import { DomainMetadataType, DomainModificationImpact, ErrorCode } from "../libvirt/flags";
import { PROJECT_METADATA_ROOT } from "../model/metadata";
import { parseForEdit, serialize } from "../model/xml";
import { PROJECT_XML_NAMESPACE, PROJECT_XML_PREFIX } from "../model/xml-namespace";
import { attr, parseRoot } from "../model/xml-read";
import { libvirtCodeOf } from "./errors";
import type { ProjectMetadataPort } from "./libvirt-port";
import { ownerStamp } from "./operation-owner";

/** The root attribute naming the process that wrote the document last (operation-owner.ts's stamp). */
const OWNER_ATTRIBUTE = "owner";

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
 * the live one. The root is stamped with this process as its owner (whatever `owner` the caller's document
 * had). Idempotent. A failure leaves the previous element in place (libvirt writes it whole).
 * `knownState`: the domain's state when the caller has just read it under the per-domain lock (saves a call).
 */
export async function writeProjectMetadata(
  port: ProjectMetadataPort,
  domain: DomainRef,
  xml: string | null,
  knownState?: number,
): Promise<void> {
  const state = knownState ?? (await port.domainGetState(domain)).state;
  const stamped = xml === null ? null : withOwnerStamp(xml);
  const set = (flags: number) =>
    port.domainSetMetadata(
      domain,
      DomainMetadataType.ELEMENT,
      stamped,
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

/** `xml` (a namespace-free project document) with its root's owner set to this process. Pure but for the stamp. */
function withOwnerStamp(xml: string): string {
  const root = parseForEdit(xml, PROJECT_METADATA_ROOT, "project metadata");
  root.setAttribute(OWNER_ATTRIBUTE, ownerStamp());
  return serialize(root);
}

/**
 * The owner stamp of a project metadata document (as `readProjectMetadata` returns it, or DomainModel
 * .projectMetadataXml), or undefined when there is no document or no stamp (written by an earlier version).
 * Throws ModelXmlError when the document is malformed. Pure.
 */
export function projectMetadataOwner(xml: string | undefined): string | undefined {
  if (xml === undefined || xml.trim() === "") return undefined;
  return attr(parseRoot(xml, PROJECT_METADATA_ROOT, "project metadata"), OWNER_ATTRIBUTE);
}
