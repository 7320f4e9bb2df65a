/**
 * Removing image and memory files through libvirt's storage API instead of the local file system, so that it
 * works the same on a remote hypervisor (ssh, TLS) as on the local one: find an active pool whose target is the
 * file's directory, or create a transient `dir` pool for it, look the volume up by path, delete it, and destroy
 * the transient pool again (a transient pool leaves no definition behind and destroying it keeps the files).
 *
 * Pools are leased per connection and directory: a delete prepares its pools while its merge runs (creating a
 * pool costs a directory scan), operations of this process on the same directory share one transient pool, and
 * the last lease destroys it. Other pools are used and left as they are. Several processes (a CLI run and a
 * Pulumi plugin, parallel test files) remove files at once, so a transient pool's name carries its creator
 * (operation-owner.ts): a pool whose creator is certainly gone was left by a killed run and is adopted and
 * destroyed; a pool of a live process, of another host or of unknown origin is only used, never destroyed, and
 * when it vanishes under a removal (its creator destroyed it) the pool is opened again and the removal retried
 * once.
 */
import { randomBytes } from "node:crypto";
import { posix } from "node:path";
import type { LibvirtApi, StoragePoolRef } from "../libvirt/api";
import { isLibvirtError } from "../libvirt/errors";
import { ErrorCode, ListStoragePoolsFlags } from "../libvirt/flags";
import { appendElement, newDocumentRoot, serialize } from "../model/xml";
import { child, childText, parseRoot } from "../model/xml-read";
import { classifyOwner, formatOwnerStamp, type OperationOwner, thisProcessOwner } from "./operation-owner";

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

interface OpenedPool {
  readonly ref: StoragePoolRef;
  /** This process made the pool, or adopted one whose creator is gone: the last lease destroys it. */
  readonly destroyOnRelease: boolean;
}

interface Lease {
  /** The pool for the directory; replaced by a fresh lookup when the pool vanished (see reopen). */
  pool: Promise<OpenedPool>;
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
   * such file (idempotent). A failure leaves the file in place. A pool that vanishes meanwhile (another process
   * destroyed its own pool that this one was using) is opened again and the removal retried once.
   */
  async remove(path: string): Promise<"removed" | "absent"> {
    const directory = posix.dirname(path);
    if (this.closed || leases.get(this.port)?.get(directory) === undefined) {
      throw new Error(`remove ${path}: not prepared, or closed`);
    }
    return withReopen(this.port, directory, (pool) => removeThrough(this.port, pool, path));
  }

  /** Releases the pools; the last holder destroys a transient pool this process created or adopted. Idempotent. */
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
 * A `body` that fails with NO_STORAGE_POOL (the pool vanished) runs once more with a pool opened again, so it
 * must be safe to repeat.
 */
export async function withDirectoryPool<T>(
  port: PoolPort,
  directory: string,
  body: (pool: StoragePoolRef) => Promise<T>,
): Promise<T> {
  if (!posix.isAbsolute(directory)) throw new Error(`not an absolute path: ${JSON.stringify(directory)}`);
  acquire(port, directory);
  try {
    return await withReopen(port, directory, body);
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
  // An adopted pool may have been destroyed by another process that adopted it too: that is the goal anyway.
  if (opened?.destroyOnRelease) await port.storagePoolDestroy(opened.ref).catch(unlessPoolVanished);
}

/**
 * Runs `body` with the leased pool of `directory`; when it fails with NO_STORAGE_POOL, opens the pool again
 * (once for all the holders that saw the same pool vanish) and runs `body` once more.
 */
async function withReopen<T>(
  port: PoolPort,
  directory: string,
  body: (pool: StoragePoolRef) => Promise<T>,
): Promise<T> {
  const lease = leases.get(port)?.get(directory);
  if (lease === undefined) throw new Error(`no pool lease for ${directory}`);
  const first = lease.pool;
  try {
    return await body((await first).ref);
  } catch (e) {
    if (!isPoolVanished(e)) throw e;
  }
  if (lease.pool === first) {
    lease.pool = openPool(port, directory);
    lease.pool.catch(() => undefined);
  }
  return body((await lease.pool).ref);
}

function isPoolVanished(e: unknown): boolean {
  return isLibvirtError(e) && e.code === ErrorCode.NO_STORAGE_POOL;
}

function unlessPoolVanished(e: unknown): void {
  if (!isPoolVanished(e)) throw e;
}

/** Tries at finding or creating a pool for one directory (see openPool). */
const POOL_ATTEMPTS = 3;

/**
 * Finds or creates the pool for `directory`. Another process may destroy its transient pool between this
 * process listing it and using it (libvirt then answers NO_STORAGE_POOL): the lookup is then made again, up to
 * POOL_ATTEMPTS times in all.
 */
async function openPool(port: PoolPort, directory: string): Promise<OpenedPool> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await findOrCreatePool(port, directory);
    } catch (e) {
      if (!isPoolVanished(e) || attempt >= POOL_ATTEMPTS) throw e;
    }
  }
}

async function findOrCreatePool(port: PoolPort, directory: string): Promise<OpenedPool> {
  const existing = await findPoolFor(port, directory);
  if (existing !== undefined) {
    await port.storagePoolRefresh(existing);
    // A transient pool of this module whose creator is gone was left by a killed run: adopt it, so the last
    // lease destroys it instead of it lingering. Any other pool (a live process's, this process's on another
    // connection, one of unknown origin) is only used.
    return { ref: existing, destroyOnRelease: isAbandonedTransientPool(existing.name) };
  }
  try {
    // Creating a pool also scans the directory: its volumes are listed at once.
    return { ref: await port.storagePoolCreateXML(transientPoolXml(directory), 0), destroyOnRelease: true };
  } catch (e) {
    // Another process made a pool for this directory meanwhile (libvirt refuses two on one target): use it.
    const raced = await findPoolFor(port, directory);
    if (raced === undefined) throw e;
    await port.storagePoolRefresh(raced);
    return { ref: raced, destroyOnRelease: false };
  }
}

/**
 * Deletes the volume at `path`, refreshing `pool` and looking once more when libvirt does not know the file
 * (the pool's list may predate it). Resolves "absent" when there is no such file.
 */
async function removeThrough(
  port: FilePort,
  pool: StoragePoolRef,
  path: string,
): Promise<"removed" | "absent"> {
  try {
    return await deleteVolume(port, path);
  } catch (e) {
    if (!isLibvirtError(e) || e.code !== ErrorCode.NO_STORAGE_VOL) throw e;
    await port.storagePoolRefresh(pool);
    return deleteVolume(port, path).catch((again: unknown) => {
      if (isLibvirtError(again) && again.code === ErrorCode.NO_STORAGE_VOL) return "absent" as const;
      throw again;
    });
  }
}

async function deleteVolume(port: FilePort, path: string): Promise<"removed"> {
  const volume = await port.storageVolLookupByPath(path);
  await port.storageVolDelete(volume, 0);
  return "removed";
}

/**
 * An active pool whose target path is `directory`, if any. A pool destroyed between the listing and the read
 * of its XML (other processes make and destroy transient pools all the time) is skipped. On the way, destroys
 * transient pools of this module whose creator is gone and whose directory is gone too (refreshing them fails):
 * they serve nobody.
 */
async function findPoolFor(port: PoolPort, directory: string): Promise<StoragePoolRef | undefined> {
  const pools = await port.connectListAllStoragePools(ListStoragePoolsFlags.ACTIVE);
  let found: StoragePoolRef | undefined;
  for (const pool of pools) {
    let xml: string;
    try {
      xml = await port.storagePoolGetXMLDesc(pool, 0);
    } catch (e) {
      if (isPoolVanished(e)) continue;
      throw e;
    }
    const target = poolTargetPath(xml);
    if (target !== undefined && posix.normalize(target) === posix.normalize(directory)) found ??= pool;
    else if (isAbandonedTransientPool(pool.name)) {
      await port.storagePoolRefresh(pool).catch(() => port.storagePoolDestroy(pool).catch(() => undefined));
    }
  }
  return found;
}

/**
 * The name of a new transient pool: the prefix, 12 random hex digits, then its creator's fields
 * (`.pid<pid>[.start<ticks>][.boot<boot id>].host<hostname>`, values URI-encoded). Pure apart from the random part.
 */
export function transientPoolName(owner: OperationOwner): string {
  const fields: [string, string | undefined][] = [
    ["pid", String(owner.pid)],
    ["start", owner.start],
    ["boot", owner.boot],
    ["host", owner.host],
  ];
  const suffix = fields
    .filter((f): f is [string, string] => f[1] !== undefined)
    .map(([key, value]) => `.${key}${encodeURIComponent(value)}`)
    .join("");
  return `${TRANSIENT_POOL_PREFIX}${randomBytes(6).toString("hex")}${suffix}`;
}

/**
 * The creator a transient pool's name carries, or undefined (not this module's, written by an earlier version
 * without an owner, or malformed). Pure.
 */
export function transientPoolOwner(name: string): OperationOwner | undefined {
  const match = /^lvsnap-files-[0-9a-f]{12}\.pid([^.]+)(?:\.start([^.]+))?(?:\.boot([^.]+))?\.host(.+)$/.exec(
    name,
  );
  if (match === null) return undefined;
  try {
    const [pid, start, boot, host] = match
      .slice(1)
      .map((v) => (v === undefined ? undefined : decodeURIComponent(v)));
    if (pid === undefined || host === undefined || !/^[1-9][0-9]{0,9}$/.test(pid)) return undefined;
    return {
      pid: Number(pid),
      ...(start === undefined ? {} : { start }),
      ...(boot === undefined ? {} : { boot }),
      host,
    };
  } catch {
    return undefined;
  }
}

/** Whether `name` is a transient pool of this module whose creator has certainly ended (on this host). */
function isAbandonedTransientPool(name: string): boolean {
  const owner = transientPoolOwner(name);
  return owner !== undefined && classifyOwner(formatOwnerStamp(owner)).status === "gone";
}

/** `<pool><target><path>` of a storage pool XML, if it has one. Pure. */
export function poolTargetPath(poolXml: string): string | undefined {
  const target = child(parseRoot(poolXml, "pool", "storage pool XML"), "target");
  return target === undefined ? undefined : childText(target, "path")?.trim();
}

/** XML of a transient `dir` pool over `directory` with a fresh name naming this process as its creator. */
export function transientPoolXml(directory: string): string {
  const root = newDocumentRoot("pool");
  root.setAttribute("type", "dir");
  appendElement(root, "name", {}, transientPoolName(thisProcessOwner()));
  appendElement(appendElement(root, "target"), "path", {}, directory);
  return serialize(root);
}
