/**
 * Snapshot XML (`virDomainSnapshotGetXMLDesc`) -> typed snapshot, and the `<domainsnapshot>` document sent to
 * `virDomainSnapshotCreateXML`. Pure: no I/O. The XML is built with a DOM, so names, descriptions and paths are
 * data whatever characters they hold.
 */
import { type DiskModel, type DiskSnapshotMode, type ImageSource, parseDomainElement } from "./domain";
import { appendElement, newDocumentRoot, serialize } from "./xml";
import { attr, child, childElements, childText, ModelXmlError, parseRoot, type XmlElement } from "./xml-read";

/** libvirt's `<state>` of a snapshot: the domain state it captured (`disk-snapshot` for disk-only ones). */
export type SnapshotState =
  | "running"
  | "paused"
  | "shutoff"
  | "disk-snapshot"
  | "crashed"
  | "pmsuspended"
  | (string & {});

/** How a snapshot saved guest memory: `no` (disk-only), `external` (a save file), `internal`. */
export type MemorySnapshotMode = "no" | "internal" | "external";

export interface SnapshotDisk {
  /** The disk's target (`vda`), as in `<disk name=...>`. */
  readonly target: string;
  readonly mode: DiskSnapshotMode;
  /** For `external`: the overlay the snapshot created, i.e. the image the disk wrote to after it. */
  readonly overlay?: ImageSource;
  /**
   * For `external`: the image the disk wrote to before the snapshot (the point-in-time image), as recorded in
   * the domain definition libvirt stores inside the snapshot; undefined when that copy lacks the disk.
   */
  readonly imageBefore?: ImageSource;
}

export interface SnapshotModel {
  readonly name: string;
  /** Exactly the text the snapshot was created with; undefined when it has none. */
  readonly description?: string;
  readonly state: SnapshotState;
  /** Seconds since the epoch (libvirt's `<creationTime>`). */
  readonly creationTime: number;
  /** The parent snapshot's name; undefined for a root. */
  readonly parent?: string;
  readonly memory: { readonly mode: MemorySnapshotMode; readonly file?: string };
  readonly disks: readonly SnapshotDisk[];
}

/** Parses a `<domainsnapshot>` document. Throws ModelXmlError on malformed XML or a missing name. */
export function parseSnapshotXml(xml: string): SnapshotModel {
  const root = parseRoot(xml, "domainsnapshot", "snapshot XML");
  const name = childText(root, "name");
  if (name === undefined || name === "") throw new ModelXmlError("snapshot XML: no <name>");
  const description = childText(root, "description");
  const parentEl = child(root, "parent");
  const parent = parentEl === undefined ? undefined : childText(parentEl, "name");
  const memoryEl = child(root, "memory");
  const memoryFile = attr(memoryEl, "file");
  const disksEl = child(root, "disks");
  const embedded = child(root, "domain");
  const before = embedded === undefined ? [] : parseDomainElement(embedded).disks;
  return {
    name,
    ...(description === undefined ? {} : { description }),
    state: (childText(root, "state") ?? "").trim(),
    creationTime: Number(childText(root, "creationTime") ?? Number.NaN),
    ...(parent === undefined ? {} : { parent }),
    memory: {
      mode: (attr(memoryEl, "snapshot") ?? "no") as MemorySnapshotMode,
      ...(memoryFile === undefined ? {} : { file: memoryFile }),
    },
    disks:
      disksEl === undefined ? [] : childElements(disksEl, "disk").map((d) => parseSnapshotDisk(d, before)),
  };
}

function parseSnapshotDisk(el: XmlElement, domainBefore: readonly DiskModel[]): SnapshotDisk {
  const target = attr(el, "name") ?? "";
  const mode = (attr(el, "snapshot") ?? "external") as DiskSnapshotMode;
  const sourceEl = child(el, "source");
  if (sourceEl === undefined) return { target, mode };
  const imageBefore = domainBefore.find((d) => d.target === target)?.chain[0];
  const format = attr(child(el, "driver"), "type");
  const kind = attr(el, "type") ?? "file";
  const path = attr(sourceEl, "file") ?? attr(sourceEl, "dev");
  const overlay: ImageSource = {
    kind,
    ...(path === undefined ? {} : { path }),
    ...(format === undefined ? {} : { format }),
  };
  return { target, mode, overlay, ...(imageBefore === undefined ? {} : { imageBefore }) };
}

/** One disk in a create request: an external overlay at an absolute path, or explicitly left out. */
export type SnapshotCreateDisk =
  | { readonly target: string; readonly mode: "external"; readonly overlayPath: string }
  | { readonly target: string; readonly mode: "no" };

export interface SnapshotCreateSpec {
  readonly name: string;
  readonly description?: string;
  /** Absolute path of the memory state file; undefined for a disk-only snapshot. */
  readonly memoryFile?: string;
  /** Every disk of the domain should be listed, so libvirt applies no default of its own to any of them. */
  readonly disks: readonly SnapshotCreateDisk[];
}

/**
 * Builds the `<domainsnapshot>` for `virDomainSnapshotCreateXML`. Overlays are always qcow2 files. The caller
 * validates names and paths; this function only guarantees that every string arrives as data.
 */
export function buildSnapshotCreateXml(spec: SnapshotCreateSpec): string {
  const root = newDocumentRoot("domainsnapshot");
  appendElement(root, "name", {}, spec.name);
  if (spec.description !== undefined) appendElement(root, "description", {}, spec.description);
  appendElement(
    root,
    "memory",
    spec.memoryFile === undefined ? { snapshot: "no" } : { snapshot: "external", file: spec.memoryFile },
  );
  const disks = appendElement(root, "disks");
  for (const disk of spec.disks) {
    if (disk.mode === "no") {
      appendElement(disks, "disk", { name: disk.target, snapshot: "no" });
      continue;
    }
    const el = appendElement(disks, "disk", { name: disk.target, snapshot: "external", type: "file" });
    appendElement(el, "driver", { type: "qcow2" });
    appendElement(el, "source", { file: disk.overlayPath });
  }
  return serialize(root);
}
