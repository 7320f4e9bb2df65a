/**
 * Sizes and existence of image files on the hypervisor host, read through libvirt's storage API so that the
 * CLI reports the same on a remote host (ssh, TLS) as on the local one. Used by `list` (allocated size of each
 * overlay) and `verify` (files an interrupted delete still has to remove).
 *
 * libvirt only answers about files that belong to a storage pool, so per directory this looks the files up
 * inside the engine's `withDirectoryPool` (an existing pool over the directory, refreshed, or a transient one
 * destroyed right after; see provider/engine/delete-files.ts).
 *
 * Quirk: virDomainGetBlockInfo answers only for a disk's active layer; for a backing image, by path or as
 * `vda[1]`, libvirt 9.0 refuses with INVALID_ARG "invalid path ... not assigned to domain". So it is only the
 * fallback for active layers when pools are refused (a read-only connection).
 */
import { posix } from "node:path";
import { type PoolPort, withDirectoryPool } from "../provider/engine/delete-files";
import type { DomainRef, LibvirtApi } from "../provider/libvirt/api";
import { isLibvirtError } from "../provider/libvirt/errors";
import { ErrorCode } from "../provider/libvirt/flags";

/** The libvirt calls this module makes. */
export type HostImagePort = PoolPort &
  Pick<LibvirtApi, "storageVolLookupByPath" | "storageVolGetInfo" | "domainGetBlockInfo">;

/** What is known of one file: its sizes in bytes, that it does not exist, or why it could not be read. */
export type HostImageInfo =
  | { readonly kind: "present"; readonly allocationBytes: number; readonly capacityBytes: number }
  | { readonly kind: "missing" }
  | { readonly kind: "unknown"; readonly reason: string };

/** An active layer: `virDomainGetBlockInfo` can answer for it when the storage API cannot. */
export interface ActiveLayer {
  readonly domain: DomainRef;
  readonly disk: string;
}

/**
 * Looks up every absolute `path` (duplicates are fine). Never throws for a single file: failures become
 * `unknown` with libvirt's reason. Leaves no pool behind; changes no file. `active` maps paths that are the
 * active layer of a disk to that disk, for the block-info fallback.
 */
export async function readHostImages(
  port: HostImagePort,
  paths: readonly string[],
  active: ReadonlyMap<string, ActiveLayer> = new Map(),
): Promise<Map<string, HostImageInfo>> {
  const result = new Map<string, HostImageInfo>();
  const byDirectory = new Map<string, string[]>();
  for (const path of new Set(paths)) {
    const directory = posix.dirname(path);
    byDirectory.set(directory, [...(byDirectory.get(directory) ?? []), path]);
  }
  for (const [directory, files] of byDirectory) {
    let answers: Map<string, HostImageInfo>;
    try {
      answers = await withDirectoryPool(port, directory, () => lookUpAll(port, files));
    } catch (e) {
      answers = new Map(files.map((file) => [file, { kind: "unknown", reason: reasonOf(e) }]));
    }
    for (const [file, info] of answers) {
      const layer = active.get(file);
      result.set(file, info.kind === "unknown" && layer ? await blockInfo(port, layer, info) : info);
    }
  }
  return result;
}

async function lookUpAll(port: HostImagePort, files: readonly string[]): Promise<Map<string, HostImageInfo>> {
  const answers = new Map<string, HostImageInfo>();
  for (const file of files) {
    try {
      const info = await port.storageVolGetInfo(await port.storageVolLookupByPath(file));
      answers.set(file, {
        kind: "present",
        allocationBytes: Number(info.allocation),
        capacityBytes: Number(info.capacity),
      });
    } catch (e) {
      answers.set(
        file,
        isLibvirtError(e) && e.code === ErrorCode.NO_STORAGE_VOL
          ? { kind: "missing" }
          : { kind: "unknown", reason: reasonOf(e) },
      );
    }
  }
  return answers;
}

async function blockInfo(port: HostImagePort, layer: ActiveLayer, failed: HostImageInfo) {
  try {
    const info = await port.domainGetBlockInfo(layer.domain, layer.disk);
    return {
      kind: "present",
      allocationBytes: Number(info.allocation),
      capacityBytes: Number(info.capacity),
    } as const;
  } catch {
    return failed;
  }
}

function reasonOf(e: unknown): string {
  if (isLibvirtError(e)) return `${e.message} [libvirt ${e.codeName} (${e.code})]`;
  return e instanceof Error ? e.message : String(e);
}
