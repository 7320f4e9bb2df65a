/**
 * Removing image and memory files through libvirt's storage API instead of the local file system, so that it
 * works the same on a remote hypervisor (ssh, TLS) as on the local one: find an active pool whose target is the
 * file's directory, or create a transient `dir` pool for it, look the volume up by path, delete it, and destroy
 * the transient pool again (a transient pool leaves no definition behind and destroying it keeps the files).
 *
 * Pools are leased per connection and directory: a delete prepares its pools while its merge runs (creating a
 * pool costs a directory scan), operations of this process on the same directory share one transient pool, and
 * the last lease destroys it. Other pools are used and left as they are; a transient pool of this module left
 * by a killed run is adopted and destroyed.
 */
import { randomBytes } from "node:crypto";
import { posix } from "node:path";
import type { LibvirtApi, StoragePoolRef } from "../libvirt/api";
import { isLibvirtError } from "../libvirt/errors";
import { ErrorCode, ListStoragePoolsFlags } from "../libvirt/flags";
import { appendElement, newDocumentRoot, serialize } from "../model/xml";
import { child, childText, parseRoot } from "../model/xml-read";

/** The storage calls that find, make and destroy a pool over a directory. */
export type PoolPort = Pick<
  LibvirtApi,
  | "connectListAllStoragePools"
  | "storagePoolGetXMLDesc"
  | "storagePoolCreateXML"
  | "storagePoolDestroy"
  | "storagePoolRefresh"
>;

/** The storage calls file removal uses. */
export type FilePort = PoolPort & Pick<LibvirtApi, "storageVolLookupByPath" | "storageVolDelete">;

/** Prefix of the transient pools this module creates (and destroys again). */
export const TRANSIENT_POOL_PREFIX = "lvsnap-files-";

interface Lease {
  /** The pool for the directory; `created`: this process made it and destroys it with the last lease. */
  readonly pool: Promise<{ ref: StoragePoolRef; created: boolean }>;
  holders: number;
}

const leases = new WeakMap<PoolPort, Map<string, Lease>>();

/**
 * Files to remove on one host, with their pools prepared ahead (`prepare` returns at once; the pools are found
 * or created in the background). Always `close()` it: that releases the pools, also when nothing was removed.
 */
export class HostFileRemover {
  private readonly directories: string[];
  private closed = false;

  private constructor(
    private readonly port: FilePort,
    paths: readonly string[],
  ) {
    for (const path of paths) {
      if (!posix.isAbsolute(path)) throw new Error(`not an absolute path: ${JSON.stringify(path)}`);
    }
    this.directories = [...new Set(paths.map((p) => posix.dirname(p)))];
    for (const directory of this.directories) acquire(port, directory);
  }

  /** Starts finding or creating a pool for the directory of every path. Throws only for a relative path. */
  static prepare(port: FilePort, paths: readonly string[]): HostFileRemover {
    return new HostFileRemover(port, paths);
  }

  /**
   * Removes the file at `path` (one of the prepared paths). Resolves "removed", or "absent" when there is no
   * such file (idempotent). A failure leaves the file in place.
   */
  async remove(path: string): Promise<"removed" | "absent"> {
    const lease = leases.get(this.port)?.get(posix.dirname(path));
    if (this.closed || lease === undefined) throw new Error(`remove ${path}: not prepared, or closed`);
    const { ref } = await lease.pool;
    try {
      return await deleteVolume(this.port, path);
    } catch (e) {
      if (!isLibvirtError(e) || e.code !== ErrorCode.NO_STORAGE_VOL) throw e;
      // The pool's list may predate the file: look again once.
      await this.port.storagePoolRefresh(ref);
      return deleteVolume(this.port, path).catch((again: unknown) => {
        if (isLibvirtError(again) && again.code === ErrorCode.NO_STORAGE_VOL) return "absent" as const;
        throw again;
      });
    }
  }

  /** Releases the pools; the last holder destroys a transient pool this process created. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const failures: unknown[] = [];
    for (const directory of this.directories) {
      await release(this.port, directory).catch((e: unknown) => failures.push(e));
    }
    if (failures.length > 0) throw failures[0];
  }
}

/** Removes one file on the hypervisor host (see HostFileRemover). Resolves "removed" or "absent". */
export async function removeHostFile(port: FilePort, path: string): Promise<"removed" | "absent"> {
  const remover = HostFileRemover.prepare(port, [path]);
  try {
    return await remover.remove(path);
  } finally {
    await remover.close();
  }
}

/**
 * Runs `body` while an active pool over the absolute `directory` exists, so that libvirt answers about the
 * files in it (storageVolLookupByPath, storageVolGetInfo): an existing pool (refreshed when first opened) or a
 * transient one of this module, shared with the other users in this process and destroyed by the last one.
 * The pool is released however `body` ends; a failure to find or make one rejects without running `body`.
 */
export async function withDirectoryPool<T>(
  port: PoolPort,
  directory: string,
  body: (pool: StoragePoolRef) => Promise<T>,
): Promise<T> {
  if (!posix.isAbsolute(directory)) throw new Error(`not an absolute path: ${JSON.stringify(directory)}`);
  acquire(port, directory);
  try {
    const lease = leases.get(port)?.get(directory);
    if (lease === undefined) throw new Error(`no pool lease for ${directory}`);
    return await body((await lease.pool).ref);
  } finally {
    await release(port, directory);
  }
}

function acquire(port: PoolPort, directory: string): void {
  let byDirectory = leases.get(port);
  if (byDirectory === undefined) {
    byDirectory = new Map();
    leases.set(port, byDirectory);
  }
  const existing = byDirectory.get(directory);
  if (existing !== undefined) {
    existing.holders++;
    return;
  }
  const pool = openPool(port, directory);
  // A failed preparation surfaces from remove(); keep it from being an unhandled rejection meanwhile.
  pool.catch(() => undefined);
  byDirectory.set(directory, { pool, holders: 1 });
}

async function release(port: PoolPort, directory: string): Promise<void> {
  const byDirectory = leases.get(port);
  const lease = byDirectory?.get(directory);
  if (byDirectory === undefined || lease === undefined) return;
  if (--lease.holders > 0) return;
  byDirectory.delete(directory);
  const opened = await lease.pool.catch(() => undefined);
  if (opened?.created) await port.storagePoolDestroy(opened.ref);
}

/** Tries at finding or creating a pool for one directory (see openPool). */
const POOL_ATTEMPTS = 3;

/**
 * Finds or creates the pool for `directory`. Another process may destroy its transient pool between this
 * process listing it and using it (libvirt then answers NO_STORAGE_POOL): the lookup is then made again, up to
 * POOL_ATTEMPTS times in all.
 */
async function openPool(
  port: PoolPort,
  directory: string,
): Promise<{ ref: StoragePoolRef; created: boolean }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await findOrCreatePool(port, directory);
    } catch (e) {
      const vanished = isLibvirtError(e) && e.code === ErrorCode.NO_STORAGE_POOL;
      if (!vanished || attempt >= POOL_ATTEMPTS) throw e;
    }
  }
}

async function findOrCreatePool(
  port: PoolPort,
  directory: string,
): Promise<{ ref: StoragePoolRef; created: boolean }> {
  const existing = await findPoolFor(port, directory);
  if (existing !== undefined) {
    await port.storagePoolRefresh(existing);
    // A transient pool of this module found here was left by a run that was killed (this process shares its
    // own through the leases): adopt it, so the last lease destroys it instead of it lingering.
    return { ref: existing, created: existing.name.startsWith(TRANSIENT_POOL_PREFIX) };
  }
  try {
    // Creating a pool also scans the directory: its volumes are listed at once.
    return { ref: await port.storagePoolCreateXML(transientPoolXml(directory), 0), created: true };
  } catch (e) {
    // Another process made a pool for this directory meanwhile (libvirt refuses two on one target): use it.
    const raced = await findPoolFor(port, directory);
    if (raced === undefined) throw e;
    await port.storagePoolRefresh(raced);
    return { ref: raced, created: false };
  }
}

async function deleteVolume(port: FilePort, path: string): Promise<"removed"> {
  const volume = await port.storageVolLookupByPath(path);
  await port.storageVolDelete(volume, 0);
  return "removed";
}

/**
 * An active pool whose target path is `directory`, if any. On the way, destroys transient pools of this module
 * whose directory is gone (left by killed runs; refreshing them fails): they serve nobody.
 */
async function findPoolFor(port: PoolPort, directory: string): Promise<StoragePoolRef | undefined> {
  const pools = await port.connectListAllStoragePools(ListStoragePoolsFlags.ACTIVE);
  let found: StoragePoolRef | undefined;
  for (const pool of pools) {
    const target = poolTargetPath(await port.storagePoolGetXMLDesc(pool, 0));
    if (target !== undefined && posix.normalize(target) === posix.normalize(directory)) found ??= pool;
    else if (pool.name.startsWith(TRANSIENT_POOL_PREFIX)) {
      await port.storagePoolRefresh(pool).catch(() => port.storagePoolDestroy(pool).catch(() => undefined));
    }
  }
  return found;
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
