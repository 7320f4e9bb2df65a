/**
 * The XML documents a revert sends to libvirt, as pure functions over the XML libvirt gave: the domain
 * definition that writes to the new overlays, the XML a memory state is restored with, and the throwaway
 * definition that makes libvirt create the overlays. Built with the DOM (strings stay data). No I/O.
 */
import type { Element } from "@xmldom/xmldom";
import { type DomainModel, type ImageSource, parseDomainElement } from "../model/domain";
import { buildSnapshotCreateXml } from "../model/snapshot";
import {
  appendElement,
  attr,
  child,
  childElements,
  newDocumentRoot,
  parseForEdit,
  serialize,
} from "../model/xml";
import * as read from "../model/xml-read";

/** One disk of the new branch: the disk `target` writes to the qcow2 file `overlayPath` from now on. */
export interface NewSource {
  readonly target: string;
  readonly overlayPath: string;
}

/**
 * The domain definition that was saved with a snapshot (`<domainsnapshot><domain>`): its disk sources are the
 * snapshot's point-in-time images, with the backing chains libvirt knew then. Undefined when the snapshot XML
 * carries no definition (libvirt always writes one for snapshots it creates). Throws ModelXmlError on bad XML.
 */
export function snapshotDomain(snapshotXml: string): DomainModel | undefined {
  const saved = read.child(read.parseRoot(snapshotXml, "domainsnapshot", "snapshot XML"), "domain");
  return saved === undefined ? undefined : parseDomainElement(saved);
}

/**
 * `domainXml` (a full `<domain>` document) with each listed disk writing to its new overlay: a `file` disk of
 * format qcow2 whose `<source>` is the overlay and whose `<backingStore>` is dropped, so that libvirt reads the
 * chain from the overlay's own header (where libvirt wrote the backing file and its format). Disks not listed
 * stay exactly as they are. Throws ModelXmlError when a listed disk is not in the document.
 */
export function withNewSources(domainXml: string, sources: readonly NewSource[]): string {
  const root = parseForEdit(domainXml, "domain", "domain XML");
  pointDisksAt(root, sources);
  return serialize(root);
}

/**
 * The XML to restore a snapshot's memory state with (`virDomainRestoreFlags`): the definition stored in the
 * save image with the covered disks on their new overlays, and the `<metadata>` of the domain's current
 * persistent definition.
 *
 * Quirk: the definition inside a libvirt save image carries `<backingStore/>` ("this image has no backing")
 * after each disk source. Swapping only the source would make QEMU open the new overlay without its backing
 * file and the guest would see an empty disk; restoring with the unchanged XML would make QEMU write into the
 * snapshot's point-in-time image. So the source is replaced and the `<backingStore>` element removed
 * (shared/notes/libvirt.md, "Memory revert trap").
 *
 * Quirk: the save image also carries the domain `<metadata>` as it was when the memory was saved, and a
 * restore makes that the live definition; the engine's state (snapshot records, preview) would silently go
 * back in time. The persistent definition's `<metadata>` replaces it (none when `persistentXml` has none).
 */
export function restoreXml(
  saveImageXml: string,
  sources: readonly NewSource[],
  persistentXml: string,
): string {
  const root = parseForEdit(saveImageXml, "domain", "save image XML");
  pointDisksAt(root, sources);
  const current = child(parseForEdit(persistentXml, "domain", "domain XML"), "metadata");
  const stale = child(root, "metadata");
  if (stale !== undefined) root.removeChild(stale);
  if (current !== undefined) {
    const doc = root.ownerDocument;
    if (doc === null) throw new Error("restoreXml: element without a document");
    const copy = doc.importNode(current, true);
    const after = child(root, "description") ?? child(root, "title") ?? child(root, "uuid");
    root.insertBefore(copy, after?.nextSibling ?? root.firstChild);
  }
  return serialize(root);
}

function pointDisksAt(root: Element, sources: readonly NewSource[]): void {
  const devices = child(root, "devices");
  const disks = devices === undefined ? [] : childElements(devices, "disk");
  for (const source of sources) {
    const disk = disks.find((d) => attr(child(d, "target"), "dev") === source.target);
    if (disk === undefined) throw new Error(`the domain definition has no disk ${source.target}`);
    const doc = disk.ownerDocument;
    if (doc === null) throw new Error("pointDisksAt: element without a document");
    disk.setAttribute("type", "file");
    for (const el of childElements(disk, "backingStore")) disk.removeChild(el);
    const oldSource = child(disk, "source");
    const newSource = doc.createElement("source");
    newSource.setAttribute("file", source.overlayPath);
    if (oldSource === undefined) disk.insertBefore(newSource, child(disk, "target") ?? null);
    else disk.replaceChild(newSource, oldSource);
    let driver = child(disk, "driver");
    if (driver === undefined) {
      driver = doc.createElement("driver");
      driver.setAttribute("name", "qemu");
      disk.insertBefore(driver, newSource);
    }
    driver.setAttribute("type", "qcow2");
  }
}

/** A disk of the helper definition: `target` opens `image` (the point-in-time image to put an overlay on). */
export interface HelperDisk {
  readonly target: string;
  /** The user's disk's bus, so the target name is valid for it (`sda` on sata). */
  readonly bus?: string;
  readonly image: ImageSource;
  readonly overlayPath: string;
}

/**
 * The definition of a throwaway domain `name` that is never started: its disks open the point-in-time images,
 * so that a disk-only snapshot of it (see `overlayCreateXml`) makes libvirt create the new overlays, backed by
 * those images, through its own storage code. The user's domain never points at a point-in-time image, not
 * even for a moment. Virtualization type, architecture and machine come from the user's domain so libvirt
 * accepts the definition on every host. Only `file` and `block` images can be opened this way.
 */
export function helperDomainXml(userDomainXml: string, name: string, disks: readonly HelperDisk[]): string {
  const user = read.parseRoot(userDomainXml, "domain", "domain XML");
  const osType = read.child(read.child(user, "os") ?? user, "type");
  const root = newDocumentRoot("domain");
  root.setAttribute("type", read.attr(user, "type") ?? "qemu");
  appendElement(root, "name", {}, name);
  appendElement(root, "memory", { unit: "MiB" }, "16");
  const os = appendElement(root, "os");
  appendElement(
    os,
    "type",
    { arch: read.attr(osType, "arch"), machine: read.attr(osType, "machine") },
    "hvm",
  );
  const devices = appendElement(root, "devices");
  for (const disk of disks) {
    const kind = disk.image.kind === "block" ? "block" : "file";
    const el = appendElement(devices, "disk", { type: kind, device: "disk" });
    appendElement(el, "driver", { name: "qemu", type: disk.image.format ?? "qcow2" });
    appendElement(el, "source", kind === "block" ? { dev: disk.image.path } : { file: disk.image.path });
    appendElement(el, "target", { dev: disk.target, bus: disk.bus ?? "virtio" });
  }
  return serialize(root);
}

/** The name of the (never recorded) snapshot of the helper domain that creates the overlays. */
export const OVERLAY_SNAPSHOT_NAME = "overlays";

/** The `<domainsnapshot>` that creates one overlay per helper disk at its explicit path. */
export function overlayCreateXml(disks: readonly HelperDisk[]): string {
  return buildSnapshotCreateXml({
    name: OVERLAY_SNAPSHOT_NAME,
    disks: disks.map((d) => ({ target: d.target, mode: "external" as const, overlayPath: d.overlayPath })),
  });
}

/**
 * A snapshot's XML with the overlays of the listed disks replaced (`<disks><disk name=...><source file=...>`),
 * for a REDEFINE; everything else, the saved definition included, is kept. Throws when a listed disk is not in
 * the snapshot's `<disks>`.
 */
export function withSnapshotOverlays(snapshotXml: string, sources: readonly NewSource[]): string {
  const root = parseForEdit(snapshotXml, "domainsnapshot", "snapshot XML");
  const disks = childElements(child(root, "disks") ?? root, "disk");
  for (const source of sources) {
    const disk = disks.find((d) => attr(d, "name") === source.target);
    const el = disk === undefined ? undefined : child(disk, "source");
    if (disk === undefined || el === undefined)
      throw new Error(`the snapshot has no overlay for disk ${source.target}`);
    disk.setAttribute("type", "file");
    el.setAttribute("file", source.overlayPath);
    for (const name of ["dev", "dir", "index"]) el.removeAttribute(name);
  }
  return serialize(root);
}
