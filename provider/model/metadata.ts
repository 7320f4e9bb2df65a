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
 *   <snapshot name="s1" quiesced="no" quiesce-note="no guest agent channel">
 *     <overlay disk="vda" path="/var/lib/libvirt/images/vda.s1.qcow2"/>
 *     <memory path="/var/lib/libvirt/images/d.s1.mem"/>   (memory snapshots only)
 *   </snapshot>
 *   <journal>...</journal>   (other sections: owned by their modules, kept untouched by this one)
 * </state>
 * ```
 * A record is written BEFORE its snapshot exists (create.ts), so it cannot carry the creation time; it is
 * matched to a snapshot by name AND the files the snapshot created (every disk's overlay and the memory file,
 * see `snapshotFilesKey`). A record left behind by a failed create or a deleted snapshot therefore never
 * describes a later snapshot of that name with other files. Records of earlier versions (a `creation-time`
 * attribute, no files) match no snapshot. Pure: no I/O.
 */
import type { Element } from "@xmldom/xmldom";
import { appendCopy, appendElement, newDocumentRoot, serialize, serializeRead } from "./xml";
import { attr, childElements, localName, parseRoot, type XmlElement } from "./xml-read";

/** The local name of the project's root element inside `<metadata>`. */
export const PROJECT_METADATA_ROOT = "state";

/** One overlay a snapshot created: the disk (target name, `vda`) and the overlay's absolute path. */
export interface SnapshotOverlayFile {
  readonly disk: string;
  readonly path: string;
}

/**
 * The files a snapshot created, which together identify it among snapshots of the same name: a snapshot made
 * again under that name gets new files (the engine never reuses a path that exists, libvirt refuses one).
 */
export interface SnapshotFiles {
  /** One entry per disk in the snapshot, in any order. */
  readonly overlays: readonly SnapshotOverlayFile[];
  /** The memory state file of a memory snapshot. */
  readonly memoryFile?: string;
}

/** What the engine remembers about a snapshot it created (or is about to create). */
export interface SnapshotRecord {
  readonly name: string;
  /** The files the snapshot creates; the record describes only the snapshot with exactly these. */
  readonly files: SnapshotFiles;
  /** Whether guest file systems were frozen (QUIESCE) while the snapshot was taken. */
  readonly quiesced: boolean;
  /** Why the snapshot is not quiesced (for example the guest agent did not answer); absent when quiesced. */
  readonly quiesceNote?: string;
}

export interface ProjectMetadata {
  readonly snapshots: readonly SnapshotRecord[];
}

/**
 * A stable text fingerprint of `files`: equal for the same overlays (in any order) and memory file, different
 * as soon as one path or disk differs. Compare fingerprints, never the lists themselves.
 */
export function snapshotFilesKey(files: SnapshotFiles): string {
  const overlays = files.overlays
    .map((o) => [o.disk, o.path] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify({ overlays, memory: files.memoryFile ?? null });
}

/**
 * Parses the project's document; undefined (no metadata yet) gives empty metadata. Records without files
 * (older versions, or damaged) are left out: they cannot be matched to a snapshot. Throws ModelXmlError.
 */
export function parseProjectMetadata(xml: string | undefined): ProjectMetadata {
  if (xml === undefined || xml.trim() === "") return { snapshots: [] };
  const root = parseRoot(xml, PROJECT_METADATA_ROOT, "project metadata");
  const snapshots = childElements(root, "snapshot").flatMap((el): SnapshotRecord[] => {
    const name = attr(el, "name");
    const files = recordFiles(el);
    if (name === undefined || files === undefined) return [];
    const note = attr(el, "quiesce-note");
    return [
      {
        name,
        files,
        quiesced: attr(el, "quiesced") === "yes",
        ...(note === undefined ? {} : { quiesceNote: note }),
      },
    ];
  });
  return { snapshots };
}

/** The files of a `<snapshot>` record; undefined when it names none or an entry lacks its attributes. */
function recordFiles(el: XmlElement): SnapshotFiles | undefined {
  const overlays: SnapshotOverlayFile[] = [];
  for (const overlay of childElements(el, "overlay")) {
    const disk = attr(overlay, "disk");
    const path = attr(overlay, "path");
    if (disk === undefined || path === undefined) return undefined;
    overlays.push({ disk, path });
  }
  const memories = childElements(el, "memory");
  const memoryFile = memories.length === 0 ? undefined : attr(memories[0] as XmlElement, "path");
  if (memories.length > 1 || (memories.length === 1 && memoryFile === undefined)) return undefined;
  if (overlays.length === 0 && memoryFile === undefined) return undefined;
  return { overlays, ...(memoryFile === undefined ? {} : { memoryFile }) };
}

/** The record describing this very snapshot (same name and the same files, see `snapshotFilesKey`), if any. */
export function findSnapshotRecord(
  metadata: ProjectMetadata,
  name: string,
  files: SnapshotFiles,
): SnapshotRecord | undefined {
  const key = snapshotFilesKey(files);
  return metadata.snapshots.find((r) => r.name === name && snapshotFilesKey(r.files) === key);
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
  for (const el of sections(xml)) appendCopy(root, el, "drop");
  edit(root);
  return serialize(root);
}

/** The child elements of the project's document (none without one), in order. Throws ModelXmlError. */
function sections(xml: string | undefined): XmlElement[] {
  if (xml === undefined || xml.trim() === "") return [];
  return childElements(parseRoot(xml, PROJECT_METADATA_ROOT, "project metadata"));
}

/**
 * The document with `record` added, replacing any record of the same snapshot name (whatever its files):
 * what `editProjectMetadata` gives for that edit. The sections kept are written straight from the read tree
 * (`serializeRead`) instead of being copied into a DOM, since every create rewrites the whole document and it
 * grows with each snapshot; the new record is built with the DOM like any other edit.
 */
export function withSnapshotRecord(xml: string | undefined, record: SnapshotRecord): string {
  const el = appendElement(newDocumentRoot(PROJECT_METADATA_ROOT), "snapshot", {
    name: record.name,
    quiesced: record.quiesced ? "yes" : "no",
    "quiesce-note": record.quiesceNote,
  });
  for (const overlay of record.files.overlays) {
    appendElement(el, "overlay", { disk: overlay.disk, path: overlay.path });
  }
  if (record.files.memoryFile !== undefined) appendElement(el, "memory", { path: record.files.memoryFile });
  return withoutRecords(xml, record.name, serialize(el));
}

/** The document without the record of snapshot `name` (unchanged content when there is none). */
export function withoutSnapshotRecord(xml: string | undefined, name: string): string {
  return withoutRecords(xml, name, "");
}

/**
 * The sections of `xml` but the records of snapshot `name` (found as `parseProjectMetadata` finds records),
 * then `appended` (serialized elements).
 */
function withoutRecords(xml: string | undefined, name: string, appended: string): string {
  const kept = sections(xml)
    .filter((el) => localName(el) !== "snapshot" || attr(el, "name") !== name)
    .map((el) => serializeRead(el, "drop"));
  const content = kept.join("") + appended;
  return content === ""
    ? `<${PROJECT_METADATA_ROOT}/>`
    : `<${PROJECT_METADATA_ROOT}>${content}</${PROJECT_METADATA_ROOT}>`;
}
