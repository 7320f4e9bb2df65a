/**
 * Changing a snapshot's description in place: libvirt keeps the description in the snapshot's metadata only,
 * so the snapshot XML is redefined (REDEFINE) with the new text and everything else as libvirt gave it. No
 * image, chain or guest is touched.
 */
import type { DomainRef, LibvirtApi, SnapshotRef } from "../libvirt/api";
import { ErrorCode, SnapshotCreateFlags, SnapshotXMLFlags } from "../libvirt/flags";
import { parseSnapshotXml } from "../model/snapshot";
import { appendElement, child, parseForEdit, serialize } from "../model/xml";
import { withDomainLock } from "./domain-lock";
import { resolveDomain } from "./domain-ref";
import { EngineError, EngineErrorKind, libvirtCodeOf, libvirtStep } from "./errors";
import { getSnapshot, readCurrentSnapshot, type SnapshotDetails } from "./inspect";
import type { InspectPort } from "./libvirt-port";
import { descriptionProblem } from "./placement";

/** Everything `updateSnapshotDescription` calls. */
export type DescribePort = InspectPort & Pick<LibvirtApi, "domainSnapshotCreateXML">;

/**
 * Sets (null: removes) the description of snapshot `name` of `domain` (name or UUID), under the per-domain
 * lock: reads the snapshot XML, redefines it with only the description changed (keeping it libvirt's current
 * snapshot when it was), and reads it back. Resolves the snapshot as inspection reports it afterwards.
 * Idempotent. A failure leaves the snapshot with either its old or its new description, never anything else
 * changed. Throws EngineError: INVALID_REQUEST (a description libvirt cannot keep exactly, see
 * descriptionProblem), DOMAIN_NOT_FOUND, SNAPSHOT_NOT_FOUND, VERIFY_FAILED (libvirt stored another text),
 * or LIBVIRT.
 */
export async function updateSnapshotDescription(
  port: DescribePort,
  domain: string,
  name: string,
  description: string | null,
): Promise<SnapshotDetails> {
  const problem = description === null ? undefined : descriptionProblem(description);
  if (problem !== undefined) {
    throw new EngineError({
      kind: EngineErrorKind.INVALID_REQUEST,
      domain,
      snapshot: name,
      message: problem,
    });
  }
  const ref = await resolveDomain(port, domain);
  await withDomainLock(ref.uuid, async () => {
    const snapshot = await lookUp(port, ref, name);
    const [xml, current] = await libvirtStep(ref.name, name, "reading the snapshot", () =>
      Promise.all([
        // SECURE includes secrets, so the redefinition keeps them.
        port.domainSnapshotGetXMLDesc(snapshot, SnapshotXMLFlags.SECURE),
        readCurrentSnapshot(port, ref),
      ]),
    );
    // REDEFINE without CURRENT happened to keep the current snapshot on libvirt 9.0, but libvirt documents no
    // such promise; asking for CURRENT exactly when the snapshot was current makes the outcome explicit.
    const flags = SnapshotCreateFlags.REDEFINE | (current === name ? SnapshotCreateFlags.CURRENT : 0);
    await libvirtStep(ref.name, name, "redefining the snapshot", () =>
      port.domainSnapshotCreateXML(ref, withSnapshotDescription(xml, description), flags),
    );
    const stored = parseSnapshotXml(
      await libvirtStep(ref.name, name, "reading the snapshot back", () =>
        port.domainSnapshotGetXMLDesc(snapshot, 0),
      ),
    ).description;
    if (stored !== (description ?? undefined)) {
      throw new EngineError({
        kind: EngineErrorKind.VERIFY_FAILED,
        domain: ref.name,
        snapshot: name,
        message: `snapshot ${name} of domain ${ref.name}: libvirt stored the description ${JSON.stringify(stored ?? null)} instead of ${JSON.stringify(description)}`,
      });
    }
  });
  return getSnapshot(port, ref.uuid, name);
}

/** The snapshot XML with its description replaced in place (null: removed), everything else kept. Pure. */
export function withSnapshotDescription(xml: string, description: string | null): string {
  const root = parseForEdit(xml, "domainsnapshot", "snapshot XML");
  const existing = child(root, "description");
  if (description === null) {
    if (existing !== undefined) root.removeChild(existing);
  } else if (existing !== undefined) {
    existing.textContent = description;
  } else {
    const element = appendElement(root, "description", {}, description);
    // libvirt does not mind the order; people reading the XML expect it right after the name.
    const nameElement = child(root, "name");
    if (nameElement?.nextSibling) root.insertBefore(element, nameElement.nextSibling);
  }
  return serialize(root);
}

async function lookUp(port: DescribePort, ref: DomainRef, name: string): Promise<SnapshotRef> {
  try {
    return await port.domainSnapshotLookupByName(ref, name);
  } catch (e) {
    if (libvirtCodeOf(e) !== ErrorCode.NO_DOMAIN_SNAPSHOT) {
      return libvirtStep(ref.name, name, "looking the snapshot up", () => Promise.reject(e));
    }
    throw new EngineError({
      kind: EngineErrorKind.SNAPSHOT_NOT_FOUND,
      domain: ref.name,
      snapshot: name,
      message: `domain ${ref.name} has no snapshot ${name}`,
      cause: e,
    });
  }
}
