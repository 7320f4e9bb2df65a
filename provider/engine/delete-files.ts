/**
 * Removing image and memory files through libvirt's storage API instead of the local file system, so that it
 * works the same on a remote hypervisor (ssh, TLS) as on the local one: find an active pool whose target is the
 * file's directory, or create a transient `dir` pool for it, look the volume up by path, delete it, and destroy
 * the transient pool again (a transient pool leaves no definition behind and destroying it keeps the files).
 */
import { randomBytes } from "node:crypto";
import { posix } from "node:path";
import type { LibvirtApi, StoragePoolRef } from "../libvirt/api";
import { isLibvirtError } from "../libvirt/errors";
import { ErrorCode, ListStoragePoolsFlags } from "../libvirt/flags";
import { appendElement, child, childText, newDocumentRoot, parseRoot, serialize } from "../model/xml";

/** The storage calls file removal uses. */
export type FilePort = Pick<
  LibvirtApi,
  | "connectListAllStoragePools"
  | "storagePoolGetXMLDesc"
  | "storagePoolCreateXML"
  | "storagePoolDestroy"
  | "storagePoolRefresh"
  | "storageVolLookupByPath"
  | "storageVolDelete"
>;

/** Prefix of the transient pools this module creates (and always destroys again). */
export const TRANSIENT_POOL_PREFIX = "lvsnap-files-";

/** Removals in one directory run one after another in this process: two transient pools on one directory clash. */
const directoryQueues = new Map<string, Promise<unknown>>();

/**
 * Removes the file at absolute `path` on the hypervisor host. Resolves "removed", or "absent" when there is no
 * such file (idempotent). A failure leaves the file in place and no transient pool behind.
 */
export async function removeHostFile(port: FilePort, path: string): Promise<"removed" | "absent"> {
  if (!posix.isAbsolute(path)) throw new Error(`not an absolute path: ${JSON.stringify(path)}`);
  const directory = posix.dirname(path);
  const previous = directoryQueues.get(directory) ?? Promise.resolve();
  const mine = previous.catch(() => undefined).then(() => removeInDirectory(port, directory, path));
  directoryQueues.set(directory, mine);
  try {
    return await mine;
  } finally {
    if (directoryQueues.get(directory) === mine) directoryQueues.delete(directory);
  }
}

async function removeInDirectory(
  port: FilePort,
  directory: string,
  path: string,
): Promise<"removed" | "absent"> {
  const existing = await findPoolFor(port, directory);
  if (existing !== undefined) {
    await port.storagePoolRefresh(existing);
    const result = await deleteVolume(port, path);
    // A transient pool of ours left by a run that could not destroy it: done with it now.
    if (existing.name.startsWith(TRANSIENT_POOL_PREFIX)) await port.storagePoolDestroy(existing);
    return result;
  }
  let pool: StoragePoolRef;
  try {
    pool = await port.storagePoolCreateXML(transientPoolXml(directory), 0);
  } catch (e) {
    // Someone else made a pool for this directory meanwhile (libvirt refuses two on one target): use theirs.
    const raced = await findPoolFor(port, directory);
    if (raced === undefined) throw e;
    await port.storagePoolRefresh(raced);
    return deleteVolume(port, path);
  }
  try {
    return await deleteVolume(port, path);
  } finally {
    await port.storagePoolDestroy(pool);
  }
}

async function deleteVolume(port: FilePort, path: string): Promise<"removed" | "absent"> {
  try {
    const volume = await port.storageVolLookupByPath(path);
    await port.storageVolDelete(volume, 0);
    return "removed";
  } catch (e) {
    if (isLibvirtError(e) && e.code === ErrorCode.NO_STORAGE_VOL) return "absent";
    throw e;
  }
}

/** An active pool whose target path is `directory`, if any. */
async function findPoolFor(port: FilePort, directory: string): Promise<StoragePoolRef | undefined> {
  const pools = await port.connectListAllStoragePools(ListStoragePoolsFlags.ACTIVE);
  for (const pool of pools) {
    const target = poolTargetPath(await port.storagePoolGetXMLDesc(pool, 0));
    if (target !== undefined && posix.normalize(target) === posix.normalize(directory)) return pool;
  }
  return undefined;
}

/** `<pool><target><path>` of a storage pool XML, if it has one. Pure. */
export function poolTargetPath(poolXml: string): string | undefined {
  const target = child(parseRoot(poolXml, "pool", "storage pool XML"), "target");
  return target === undefined ? undefined : childText(target, "path")?.trim();
}

/** XML of a transient `dir` pool over `directory` with a fresh name. Pure apart from the random name. */
export function transientPoolXml(directory: string): string {
  const root = newDocumentRoot("pool");
  root.setAttribute("type", "dir");
  appendElement(root, "name", {}, `${TRANSIENT_POOL_PREFIX}${randomBytes(6).toString("hex")}`);
  appendElement(appendElement(root, "target"), "path", {}, directory);
  return serialize(root);
}
