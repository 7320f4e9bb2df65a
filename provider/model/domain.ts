/**
 * Domain XML (`virDomainGetXMLDesc`) -> the disks the snapshot engine cares about: what each disk is, whether
 * it can take an external snapshot, its live backing chain (active image first) and any block job running on
 * it. Pure: no I/O.
 */
import { serializeRead } from "./xml";
import { PROJECT_XML_NAMESPACE } from "./xml-namespace";
import {
  attr,
  child,
  childElements,
  childText,
  localName,
  ModelXmlError,
  namespaceUri,
  parseRoot,
  requiredAttr,
  type XmlElement,
} from "./xml-read";

/** libvirt's `<disk type=...>`: where the image lives. Unknown future kinds are kept as given. */
export type DiskSourceKind =
  | "file"
  | "block"
  | "network"
  | "volume"
  | "dir"
  | "nvme"
  | "vhostuser"
  | "vhostvdpa"
  | (string & {});

/** libvirt's `<disk device=...>`. */
export type DiskDevice = "disk" | "cdrom" | "floppy" | "lun" | (string & {});

/** `<disk snapshot=...>` and `<domainsnapshot><disks><disk snapshot=...>`. */
export type DiskSnapshotMode = "no" | "internal" | "external" | "manual";

/** One image of a chain, or the destination of a block job. */
export interface ImageSource {
  readonly kind: DiskSourceKind;
  /** Local path for file (`file`), block (`dev`) and dir (`dir`) sources; undefined for others. */
  readonly path?: string;
  /** Network sources: protocol and name (`nbd`, `export`). */
  readonly protocol?: string;
  readonly name?: string;
  /** Volume sources: storage pool and volume. */
  readonly pool?: string;
  readonly volume?: string;
  /** Image format (`qcow2`, `raw`): `<driver type>` for the active image, `<format type>` below it. */
  readonly format?: string;
  /** libvirt's node index (`index='5'`), present in the live XML of a running domain; usable as `vda[5]`. */
  readonly index?: number;
}

/** A block job as shown by `<mirror>` in the live XML. */
export interface BlockJobMirror {
  /** `copy`, `active-commit`, ... (libvirt's `job` attribute; `copy` when absent, per libvirt). */
  readonly job: string;
  /** True once the job reached READY (`ready='yes'`) and may be pivoted. */
  readonly ready: boolean;
  /** libvirt's raw `ready` attribute (`yes`, `abort`, `pivot`) or undefined while still copying. */
  readonly phase?: string;
  readonly destination?: ImageSource;
}

export interface DiskModel {
  /** Target device name (`vda`), the stable name of a disk in every libvirt call. */
  readonly target: string;
  readonly bus?: string;
  readonly device: DiskDevice;
  readonly readOnly: boolean;
  readonly shareable: boolean;
  readonly transient: boolean;
  /** The disk's own default snapshot mode (`<disk snapshot=...>`), undefined when not set. */
  readonly snapshotPolicy?: DiskSnapshotMode;
  /**
   * The backing chain, active image first, as libvirt knows it. Empty for a disk without a source (an empty
   * cdrom). The inactive XML may list only the active image.
   */
  readonly chain: readonly ImageSource[];
  /**
   * True when libvirt marked the end of the chain (an empty `<backingStore/>`, as in the live XML of a running
   * domain): the chain is then complete. Absent when libvirt may not have listed every layer.
   * Quirk: the XML of a shut-off domain often lists only the active image (libvirt does not probe the chains of
   * inactive domains, and an offline snapshot leaves just the new overlay there); see snapshot-tree.ts for how
   * the rest of the chain is recovered from snapshot metadata.
   */
  readonly chainTerminated?: true;
  readonly mirror?: BlockJobMirror;
}

export interface DomainModel {
  readonly name: string;
  readonly uuid: string;
  readonly disks: readonly DiskModel[];
  /**
   * The project's own element inside `<metadata>` (namespace PROJECT_XML_NAMESPACE) as a standalone document,
   * or undefined when the domain has none. Parse it with `parseProjectMetadata`. Parsed models serialize it
   * when it is first read.
   */
  readonly projectMetadataXml?: string;
}

/** Parses a domain XML document. Throws ModelXmlError on malformed XML or a disk without a target. */
export function parseDomainXml(xml: string): DomainModel {
  return parseDomainElement(parseRoot(xml, "domain", "domain XML"));
}

/** Parses a `<domain>` element (a document's root, or the copy embedded in snapshot XML). */
export function parseDomainElement(root: XmlElement): DomainModel {
  const name = childText(root, "name") ?? "";
  const uuid = (childText(root, "uuid") ?? "").trim().toLowerCase();
  const devices = child(root, "devices");
  const disks = devices === undefined ? [] : childElements(devices, "disk").map((d) => parseDisk(d, name));
  const model = { name: name.trim(), uuid, disks };
  const own = findProjectMetadata(root);
  return own === undefined ? model : withLazyProjectMetadata(model, own);
}

/**
 * `model` with `projectMetadataXml` serialized from `own` on first read, then kept. Serializing the element
 * costs more than reading the disks of the whole domain, and most parsed domains never need it (the copies
 * embedded in snapshot XML, the re-read that verifies an operation). The property is enumerable, so spreads,
 * JSON and deep equality see the string as if it were a plain field. Keeps the parsed tree alive as long as
 * the model (models are short-lived: each operation re-reads the domain).
 */
function withLazyProjectMetadata(
  model: Omit<DomainModel, "projectMetadataXml">,
  own: XmlElement,
): DomainModel {
  let xml: string | undefined;
  return Object.defineProperty(model, "projectMetadataXml", {
    enumerable: true,
    get: () => {
      xml ??= serializeRead(own);
      return xml;
    },
  });
}

function parseDisk(el: XmlElement, domainName: string): DiskModel {
  const targetEl = child(el, "target");
  if (targetEl === undefined) throw new ModelXmlError(`domain ${domainName}: a <disk> has no <target>`);
  const target = requiredAttr(targetEl, "dev", `domain ${domainName} disk`);
  const bus = attr(targetEl, "bus");
  const policy = attr(el, "snapshot");
  const mirrorEl = child(el, "mirror");
  const { chain, terminated } = parseChain(el);
  return {
    target,
    ...(bus === undefined ? {} : { bus }),
    device: attr(el, "device") ?? "disk",
    readOnly: child(el, "readonly") !== undefined,
    shareable: child(el, "shareable") !== undefined,
    transient: child(el, "transient") !== undefined,
    ...(policy === undefined ? {} : { snapshotPolicy: policy as DiskSnapshotMode }),
    chain,
    ...(terminated ? { chainTerminated: true as const } : {}),
    ...(mirrorEl === undefined ? {} : { mirror: parseMirror(mirrorEl) }),
  };
}

/** Walks `<source>` then the nested `<backingStore>` elements; an empty `<backingStore/>` ends the chain. */
function parseChain(diskEl: XmlElement): { chain: ImageSource[]; terminated: boolean } {
  const chain: ImageSource[] = [];
  const active = parseSource(diskEl, attr(child(diskEl, "driver"), "type"));
  if (active === undefined) return { chain, terminated: false };
  chain.push(active);
  let level = child(diskEl, "backingStore");
  while (level !== undefined) {
    const layer = parseSource(level, attr(child(level, "format"), "type"));
    if (layer === undefined) return { chain, terminated: true };
    chain.push(layer);
    level = child(level, "backingStore");
  }
  return { chain, terminated: false };
}

/** The attributes of `<source>` copied as they are onto an ImageSource (network and volume sources). */
const SOURCE_ATTRIBUTES = ["protocol", "name", "pool", "volume"] as const;

/**
 * One image from an element that carries `type=` and a `<source>` child (a disk, a backingStore, a mirror).
 * The index is on `<source index>` for the active image and on `<backingStore index>` below it.
 */
function parseSource(holder: XmlElement, format: string | undefined): ImageSource | undefined {
  const sourceEl = child(holder, "source");
  if (sourceEl === undefined) return undefined;
  const kind = attr(holder, "type") ?? "file";
  const indexText =
    attr(sourceEl, "index") ?? (localName(holder) === "backingStore" ? attr(holder, "index") : undefined);
  const path = attr(sourceEl, "file") ?? attr(sourceEl, "dev") ?? attr(sourceEl, "dir");
  // Fields are set only when present (the model has no `undefined` values), in this order.
  const image: { -readonly [K in keyof ImageSource]: ImageSource[K] } = { kind };
  if (path !== undefined) image.path = path;
  for (const key of SOURCE_ATTRIBUTES) {
    const value = attr(sourceEl, key);
    if (value !== undefined) image[key] = value;
  }
  if (format !== undefined) image.format = format;
  if (indexText !== undefined) image.index = Number(indexText);
  return image;
}

function parseMirror(el: XmlElement): BlockJobMirror {
  const phase = attr(el, "ready");
  const destination = parseSource(el, attr(child(el, "format"), "type") ?? attr(el, "format"));
  return {
    job: attr(el, "job") ?? "copy",
    ready: phase === "yes",
    ...(phase === undefined ? {} : { phase }),
    ...(destination === undefined ? {} : { destination }),
  };
}

/** Finds `<metadata><x:anything xmlns:x=PROJECT_XML_NAMESPACE>` (by namespace URI, whatever the prefix). */
function findProjectMetadata(root: XmlElement): XmlElement | undefined {
  const metadata = child(root, "metadata");
  if (metadata === undefined) return undefined;
  return childElements(metadata).find((el) => namespaceUri(el) === PROJECT_XML_NAMESPACE);
}

/** A one-line, human-readable chain, active first: `vda.s2.qcow2 -> vda.s1.qcow2 -> vda.qcow2`. */
export function describeChain(chain: readonly ImageSource[]): string {
  return chain.length === 0 ? "(no image)" : chain.map(describeImage).join(" -> ");
}

/** A short name for an image in messages: its path, else `protocol:name`, else `pool/volume`. */
export function describeImage(image: ImageSource): string {
  if (image.path !== undefined) return image.path;
  if (image.protocol !== undefined) return `${image.protocol}:${image.name ?? ""}`;
  if (image.pool !== undefined) return `${image.pool}/${image.volume ?? ""}`;
  return `(${image.kind})`;
}
