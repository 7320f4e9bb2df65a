import type { DomainRef, SnapshotRef, StoragePoolRef, StorageVolRef } from "./api";
import type { XdrReader, XdrWriter } from "./xdr";

/**
 * XDR encodings of the object references of libvirt's remote protocol (`remote_nonnull_domain`,
 * `remote_nonnull_domain_snapshot`, `remote_nonnull_storage_pool`, `remote_nonnull_storage_vol`) and of
 * `remote_uuid`. No I/O.
 */

/** VIR_UUID_BUFLEN. */
export const UUID_BYTES = 16;

const UUID_PATTERN = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;

/** The 16 raw bytes of a UUID given in canonical (or dash-less) form; throws a TypeError for anything else. */
export function uuidToBytes(uuid: string): Buffer {
  if (!UUID_PATTERN.test(uuid)) throw new TypeError(`not a UUID: ${JSON.stringify(uuid)}`);
  return Buffer.from(uuid.replaceAll("-", ""), "hex");
}

/**
 * Raw bytes of the UUIDs of references passed to calls, so a reference used for many calls is parsed once.
 * Weak: entries go with their references.
 */
const uuidBytesByRef = new WeakMap<object, Buffer>();

function refUuidBytes(ref: { readonly uuid: string }): Buffer {
  let bytes = uuidBytesByRef.get(ref);
  if (bytes === undefined) {
    bytes = uuidToBytes(ref.uuid);
    uuidBytesByRef.set(ref, bytes);
  }
  return bytes;
}

/** Canonical lower-case form of 16 raw UUID bytes. */
export function uuidFromBytes(bytes: Buffer): string {
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Smallest encoding of a domain: empty name (4), uuid (16), id (4). For array bounds checks. */
export const MIN_DOMAIN_BYTES = 24;
/** Smallest encoding of a snapshot: empty name (4) and a domain. */
export const MIN_SNAPSHOT_BYTES = 4 + MIN_DOMAIN_BYTES;
/** Smallest encoding of a storage pool: empty name (4), uuid (16). */
export const MIN_POOL_BYTES = 20;

export function writeDomain(writer: XdrWriter, domain: DomainRef): void {
  writer.string(domain.name);
  writer.fixedOpaque(refUuidBytes(domain), UUID_BYTES);
  writer.int(domain.id);
}

export function readDomain(reader: XdrReader): DomainRef {
  const name = reader.string();
  const uuid = uuidFromBytes(reader.fixedOpaque(UUID_BYTES));
  return { name, uuid, id: reader.int() };
}

/** An optional domain (`remote_domain`): null is encoded as absent. */
export function writeOptionalDomain(writer: XdrWriter, domain: DomainRef | null): void {
  writer.bool(domain !== null);
  if (domain !== null) writeDomain(writer, domain);
}

export function writeSnapshot(writer: XdrWriter, snapshot: SnapshotRef): void {
  writer.string(snapshot.name);
  writeDomain(writer, snapshot.domain);
}

export function readSnapshot(reader: XdrReader): SnapshotRef {
  const name = reader.string();
  return { name, domain: readDomain(reader) };
}

export function writePool(writer: XdrWriter, pool: StoragePoolRef): void {
  writer.string(pool.name);
  writer.fixedOpaque(refUuidBytes(pool), UUID_BYTES);
}

export function readPool(reader: XdrReader): StoragePoolRef {
  const name = reader.string();
  return { name, uuid: uuidFromBytes(reader.fixedOpaque(UUID_BYTES)) };
}

export function writeVolume(writer: XdrWriter, volume: StorageVolRef): void {
  writer.string(volume.pool);
  writer.string(volume.name);
  writer.string(volume.key);
}

export function readVolume(reader: XdrReader): StorageVolRef {
  const pool = reader.string();
  const name = reader.string();
  return { pool, name, key: reader.string() };
}
