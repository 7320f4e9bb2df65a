import { DOMParser, type Element, XMLSerializer } from "@xmldom/xmldom";
import type { CreatePort } from "../../../provider/engine/libvirt-port";
import type { RecoveryPort } from "../../../provider/engine/recover";
import type { DomainRef, DomainStateInfo, SnapshotRef } from "../../../provider/libvirt/api";
import { DomainState } from "../../../provider/libvirt/api";
import { LibvirtError } from "../../../provider/libvirt/errors";
import { ErrorCode, SnapshotCreateFlags } from "../../../provider/libvirt/flags";
import { PROJECT_XML_NAMESPACE } from "../../../provider/model/xml-namespace";

/** A daemon-side error as the real client would raise it. */
export function libvirtError(code: number, message: string): LibvirtError {
  return new LibvirtError({
    kind: "remote",
    code,
    domain: 10,
    message,
    level: 2,
    str1: null,
    str2: null,
    str3: null,
    int1: 0,
    int2: 0,
    procedure: null,
  });
}

/**
 * A small in-memory libvirt for one domain, enough for create and inspect: it records every call, applies a
 * successful external snapshot to the domain XML the way libvirt does (the overlay becomes the source, the old
 * image its backingStore), and fails calls on demand. Independent of the engine's own model code.
 */
export class FakeLibvirt implements CreatePort, RecoveryPort {
  readonly calls: string[] = [];
  readonly ref: DomainRef;
  state: number = DomainState.RUNNING;
  metadata: string | undefined;
  /** Return an error to make this create call fail (flags as passed). */
  failCreate: (flags: number, xml: string) => LibvirtError | undefined = () => undefined;
  private readonly snapshots: { name: string; xml: string }[] = [];
  private clock = 1_800_000_000;
  // Only recovery makes these calls, and only for a delete journal or a revert record, which this fake's
  // metadata never holds unless a test puts one there.
  connectListAllStoragePools = recoveryOnly("connectListAllStoragePools");
  domainBlockCommit = recoveryOnly("domainBlockCommit");
  domainBlockJobAbort = recoveryOnly("domainBlockJobAbort");
  domainCreateWithFlags = recoveryOnly("domainCreateWithFlags");
  domainDefineXMLFlags = recoveryOnly("domainDefineXMLFlags");
  domainGetBlockJobInfo = recoveryOnly("domainGetBlockJobInfo");
  domainRestoreFlags = recoveryOnly("domainRestoreFlags");
  domainSaveImageGetXMLDesc = recoveryOnly("domainSaveImageGetXMLDesc");
  domainSnapshotDelete = recoveryOnly("domainSnapshotDelete");
  domainUndefineFlags = recoveryOnly("domainUndefineFlags");
  storagePoolCreateXML = recoveryOnly("storagePoolCreateXML");
  storagePoolDestroy = recoveryOnly("storagePoolDestroy");
  storagePoolGetXMLDesc = recoveryOnly("storagePoolGetXMLDesc");
  storagePoolRefresh = recoveryOnly("storagePoolRefresh");
  storageVolDelete = recoveryOnly("storageVolDelete");
  storageVolLookupByPath = recoveryOnly("storageVolLookupByPath");
  subscribeBlockJobEvents = recoveryOnly("subscribeBlockJobEvents");

  constructor(
    private domainXml: string,
    uuid = "e05f0791-0f7f-464c-b062-3987d0676449",
  ) {
    const name = /<name>([^<]*)<\/name>/.exec(domainXml)?.[1] ?? "";
    this.ref = { name, uuid, id: 1 };
  }

  // A method, not a property like the others: subclasses override it.
  async domainDestroyFlags(_domain: DomainRef, _flags: number): Promise<void> {
    recoveryOnly("domainDestroyFlags")();
  }

  xml(): string {
    return this.domainXml;
  }

  private record(call: string): void {
    this.calls.push(call);
  }

  /** The host has this one domain: no other domain uses its files. */
  async connectListAllDomains(): Promise<DomainRef[]> {
    this.record("connectListAllDomains");
    return [this.ref];
  }
  async domainLookupByName(name: string): Promise<DomainRef> {
    this.record("domainLookupByName");
    if (name !== this.ref.name)
      throw libvirtError(ErrorCode.NO_DOMAIN, `Domain not found: no domain with matching name '${name}'`);
    return this.ref;
  }
  async domainLookupByUUID(uuid: string): Promise<DomainRef> {
    this.record("domainLookupByUUID");
    if (uuid !== this.ref.uuid) throw libvirtError(ErrorCode.NO_DOMAIN, "Domain not found");
    return this.ref;
  }
  async domainGetState(): Promise<DomainStateInfo> {
    this.record("domainGetState");
    return { state: this.state as DomainStateInfo["state"], reason: 1 };
  }
  /** Like libvirt, the domain XML shows the project metadata under its namespace, with the prefix. */
  async domainGetXMLDesc(): Promise<string> {
    this.record("domainGetXMLDesc");
    if (this.metadata === undefined) return this.domainXml;
    const doc = new DOMParser().parseFromString(this.domainXml, "text/xml");
    const meta = new DOMParser().parseFromString(this.metadata, "text/xml").documentElement as Element;
    const holder = doc.createElement("metadata");
    holder.appendChild(namespaced(doc, meta));
    const root = doc.documentElement as Element;
    root.insertBefore(holder, root.getElementsByTagName("devices")[0] ?? null);
    return new XMLSerializer().serializeToString(doc);
  }
  async domainListAllSnapshots(domain: DomainRef): Promise<SnapshotRef[]> {
    this.record("domainListAllSnapshots");
    return this.snapshots.map((s) => ({ name: s.name, domain }));
  }
  async domainSnapshotLookupByName(domain: DomainRef, name: string): Promise<SnapshotRef> {
    this.record("domainSnapshotLookupByName");
    if (!this.snapshots.some((s) => s.name === name))
      throw libvirtError(ErrorCode.NO_DOMAIN_SNAPSHOT, "no snapshot");
    return { name, domain };
  }
  async domainSnapshotGetXMLDesc(snapshot: SnapshotRef): Promise<string> {
    this.record("domainSnapshotGetXMLDesc");
    const found = this.snapshots.find((s) => s.name === snapshot.name);
    if (found === undefined) throw libvirtError(ErrorCode.NO_DOMAIN_SNAPSHOT, "no snapshot");
    return found.xml;
  }
  /** The newest snapshot is current, as after every create. */
  async domainSnapshotCurrent(domain: DomainRef): Promise<SnapshotRef> {
    this.record("domainSnapshotCurrent");
    const newest = this.snapshots.at(-1);
    if (newest === undefined) throw libvirtError(ErrorCode.NO_DOMAIN_SNAPSHOT, "no current snapshot");
    return { name: newest.name, domain };
  }
  async domainGetMetadata(): Promise<string> {
    this.record("domainGetMetadata");
    if (this.metadata === undefined) throw libvirtError(ErrorCode.NO_DOMAIN_METADATA, "metadata not found");
    return this.metadata;
  }
  async domainSetMetadata(_d: DomainRef, _type: number, metadata: string | null): Promise<void> {
    this.record("domainSetMetadata");
    this.metadata = metadata ?? undefined;
  }

  async domainSnapshotCreateXML(domain: DomainRef, xml: string, flags: number): Promise<SnapshotRef> {
    this.record(`domainSnapshotCreateXML${flags & SnapshotCreateFlags.QUIESCE ? "+QUIESCE" : ""}`);
    const failure = this.failCreate(flags, xml);
    if (failure !== undefined) throw failure;
    const request = new DOMParser().parseFromString(xml, "text/xml").documentElement as Element;
    const name = request.getElementsByTagName("name")[0]?.textContent ?? "";
    if (this.snapshots.some((s) => s.name === name)) throw libvirtError(ErrorCode.OPERATION_FAILED, "exists");
    const doc = new DOMParser().parseFromString(this.domainXml, "text/xml");
    const disks = Array.from(doc.getElementsByTagName("disk"));
    for (const spec of Array.from(request.getElementsByTagName("disk"))) {
      if (spec.getAttribute("snapshot") !== "external") continue;
      const file = spec.getElementsByTagName("source")[0]?.getAttribute("file") ?? "";
      const disk = disks.find(
        (d) => d.getElementsByTagName("target")[0]?.getAttribute("dev") === spec.getAttribute("name"),
      );
      if (disk === undefined) throw libvirtError(ErrorCode.INVALID_ARG, "no such disk");
      pushOverlay(disk, file);
    }
    this.domainXml = new XMLSerializer().serializeToString(doc);
    const parent = this.snapshots.at(-1)?.name;
    const stored = xml.replace(
      "</name>",
      `</name><state>running</state>${parent ? `<parent><name>${parent}</name></parent>` : ""}<creationTime>${this.clock++}</creationTime>`,
    );
    this.snapshots.push({ name, xml: stored });
    return { name, domain };
  }
}

/** A copy of `el` (and its element children) in the project namespace with the `lvsnap` prefix. */
function namespaced(doc: NonNullable<Element["ownerDocument"]>, el: Element): Element {
  const copy = doc.createElementNS(PROJECT_XML_NAMESPACE, `lvsnap:${el.localName}`);
  for (const a of Array.from(el.attributes)) copy.setAttribute(a.name, a.value);
  for (const c of Array.from(el.childNodes)) {
    copy.appendChild(c.nodeType === c.ELEMENT_NODE ? namespaced(doc, c as Element) : doc.importNode(c, true));
  }
  return copy;
}

/** The overlay becomes the disk's source; the previous source and format move one level down. */
function pushOverlay(disk: Element, overlay: string): void {
  const doc = disk.ownerDocument as NonNullable<Element["ownerDocument"]>;
  const source = disk.getElementsByTagName("source")[0] as Element;
  const driver = disk.getElementsByTagName("driver")[0];
  const oldBacking = Array.from(disk.childNodes).find((n) => n.nodeName === "backingStore");
  const backing = doc.createElement("backingStore");
  backing.setAttribute("type", "file");
  const format = doc.createElement("format");
  format.setAttribute("type", driver?.getAttribute("type") ?? "raw");
  backing.appendChild(format);
  const oldSource = doc.createElement("source");
  oldSource.setAttribute("file", source.getAttribute("file") ?? "");
  backing.appendChild(oldSource);
  if (oldBacking !== undefined) {
    disk.removeChild(oldBacking);
    backing.appendChild(oldBacking);
  }
  disk.insertBefore(backing, source.nextSibling);
  source.setAttribute("file", overlay);
  source.removeAttribute("index");
  driver?.setAttribute("type", "qcow2");
}

function recoveryOnly(call: string): (..._args: unknown[]) => never {
  return () => {
    throw new Error(`FakeLibvirt does not model ${call} (only recovery calls it)`);
  };
}
