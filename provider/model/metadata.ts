/**
 * The project's own state stored on the domain, inside libvirt's domain `<metadata>` under one XML namespace.
 *
 * Why here and not in the snapshot's `<description>`: libvirt 9.0's snapshot XML has no element for free
 * metadata, and the description belongs to the user and must come back exactly as given. Domain metadata is
 * structured, survives daemon restarts, travels with the domain definition, can be read and written over the
 * same connection (`virDomainGetMetadata` / `virDomainSetMetadata` with type ELEMENT), and is also where the
 * delete journal records its intent, so one document holds everything the project keeps on a host.
 *
 * Document (as `virDomainGetMetadata` returns it, without a prefix; `virDomainGetXMLDesc` shows the same
 * element as `<lvsnap:state xmlns:lvsnap=PROJECT_XML_NAMESPACE>`, see xml-namespace.ts):
 * ```xml
 * <state>
 *   <snapshot name="s1" creation-time="1795313354" quiesced="no" quiesce-note="no guest agent channel"/>
 *   <journal>...</journal>   (other sections: owned by their modules, kept untouched by this one)
 * </state>
 * ```
 * A record is matched to a snapshot by name AND creation time, so a record left behind by a deleted snapshot
 * never describes a later snapshot that reuses the name. Pure: no I/O.
 */
import type { Element } from "@xmldom/xmldom";
import { appendElement, attr, childElements, localName, newDocumentRoot, parseRoot, serialize } from "./xml";

/** The local name of the project's root element inside `<metadata>`. */
export const PROJECT_METADATA_ROOT = "state";

/** What the engine remembers about a snapshot it created. */
export interface SnapshotRecord {
  readonly name: string;
  /** The snapshot's `<creationTime>`, seconds since the epoch. */
  readonly creationTime: number;
  /** Whether guest file systems were frozen (QUIESCE) while the snapshot was taken. */
  readonly quiesced: boolean;
  /** Why the snapshot is not quiesced (for example the guest agent did not answer); absent when quiesced. */
  readonly quiesceNote?: string;
}

export interface ProjectMetadata {
  readonly snapshots: readonly SnapshotRecord[];
}

/** Parses the project's document; undefined (no metadata yet) gives empty metadata. Throws ModelXmlError. */
export function parseProjectMetadata(xml: string | undefined): ProjectMetadata {
  if (xml === undefined || xml.trim() === "") return { snapshots: [] };
  const root = parseRoot(xml, PROJECT_METADATA_ROOT, "project metadata");
  const snapshots = childElements(root, "snapshot").flatMap((el): SnapshotRecord[] => {
    const name = attr(el, "name");
    const creationTime = Number(attr(el, "creation-time"));
    if (name === undefined || !Number.isSafeInteger(creationTime)) return [];
    const note = attr(el, "quiesce-note");
    return [
      {
        name,
        creationTime,
        quiesced: attr(el, "quiesced") === "yes",
        ...(note === undefined ? {} : { quiesceNote: note }),
      },
    ];
  });
  return { snapshots };
}

/** The record describing this very snapshot (same name and creation time), if any. */
export function findSnapshotRecord(
  metadata: ProjectMetadata,
  name: string,
  creationTime: number,
): SnapshotRecord | undefined {
  return metadata.snapshots.find((r) => r.name === name && r.creationTime === creationTime);
}

/**
 * Rewrites the project's document: the new document keeps every child of the old root (in order, including
 * sections this module does not know), then `edit` changes it. The old document may come from
 * `virDomainGetMetadata` (no prefix) or from the domain XML (`lvsnap:` prefix, see DomainModel
 * .projectMetadataXml); the result is always namespace-free XML, ready for
 * `virDomainSetMetadata(..., PROJECT_XML_PREFIX, PROJECT_XML_NAMESPACE, ...)` (see xml-namespace.ts), which
 * puts everything back under the namespace.
 */
export function editProjectMetadata(xml: string | undefined, edit: (root: Element) => void): string {
  const root = newDocumentRoot(PROJECT_METADATA_ROOT);
  if (xml !== undefined && xml.trim() !== "") {
    const old = parseRoot(xml, PROJECT_METADATA_ROOT, "project metadata");
    for (const el of childElements(old)) root.appendChild(plainCopy(root, el));
  }
  edit(root);
  return serialize(root);
}

/** A deep copy of `el` for `parent`'s document without namespaces: local names, plain attributes, text. */
function plainCopy(parent: Element, el: Element): Element {
  const attributes: Record<string, string> = {};
  for (const a of Array.from(el.attributes)) {
    if (a.name !== "xmlns" && !a.name.startsWith("xmlns:")) attributes[a.localName ?? a.name] = a.value;
  }
  const copy = appendElement(parent, localName(el), attributes);
  parent.removeChild(copy);
  for (let n = el.firstChild; n !== null; n = n.nextSibling) {
    if (n.nodeType === n.ELEMENT_NODE) copy.appendChild(plainCopy(copy, n as Element));
    else if (n.nodeType === n.TEXT_NODE || n.nodeType === n.CDATA_SECTION_NODE) {
      copy.appendChild(copy.ownerDocument?.createTextNode(n.nodeValue ?? "") ?? n);
    }
  }
  return copy;
}

/** The document with `record` added, replacing any record of the same snapshot name. */
export function withSnapshotRecord(xml: string | undefined, record: SnapshotRecord): string {
  return editProjectMetadata(xml, (root) => {
    removeRecords(root, record.name);
    appendElement(root, "snapshot", {
      name: record.name,
      "creation-time": String(record.creationTime),
      quiesced: record.quiesced ? "yes" : "no",
      "quiesce-note": record.quiesceNote,
    });
  });
}

/** The document without the record of snapshot `name` (unchanged content when there is none). */
export function withoutSnapshotRecord(xml: string | undefined, name: string): string {
  return editProjectMetadata(xml, (root) => removeRecords(root, name));
}

function removeRecords(root: Element, name: string): void {
  for (const el of childElements(root, "snapshot")) {
    if (attr(el, "name") === name) root.removeChild(el);
  }
}
