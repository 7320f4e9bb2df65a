/**
 * Recovery of a revert that did not finish (a recipe revert, or the finishing phase of any revert or of the
 * end of a preview): `finishUnfinishedRevert` completes it or rolls it back from the record it left on the
 * domain (revert-state.ts), reading the domain's definition and files first so that it never removes data the
 * disks still need.
 */
import { posix } from "node:path";
import type { DomainRef } from "../libvirt/api";
import { DomainXMLFlags, ErrorCode } from "../libvirt/flags";
import { parseDomainXml } from "../model/domain";
import { removeHostFile, withDirectoryPool } from "./delete-files";
import { EngineError, EngineErrorKind, libvirtCodeOf } from "./errors";
import { readProjectMetadata } from "./project-metadata";
import { finishBranch } from "./revert-finish";
import type { RecipePort } from "./revert-recipe";
import {
  RevertPhase as Phase,
  parsePreviewRecord,
  parseRevertRecord,
  previewOnceFinishing,
  previewOnceRolledBack,
  type RevertRecord,
  writeRevertRecord,
} from "./revert-state";

/** Every image path the persistent definition's disks name (sources and any backing chain shown). */
export async function persistentImagePaths(port: RecipePort, ref: DomainRef): Promise<Set<string>> {
  const persistent = parseDomainXml(await port.domainGetXMLDesc(ref, DomainXMLFlags.INACTIVE));
  return new Set(persistent.disks.flatMap((d) => d.chain.flatMap((image) => image.path ?? [])));
}

/**
 * Refuses (VERIFY_FAILED, nothing changed, the record kept) to complete a revert whose definition names an
 * overlay file that does not exist: completing it would remove the layers the disks wrote to before, the only
 * data left. Reads only.
 */
async function refuseMissingOverlays(
  port: RecipePort,
  ref: DomainRef,
  record: RevertRecord,
  where: string,
): Promise<void> {
  const missing: string[] = [];
  for (const overlay of record.overlays)
    if (!(await hostFileExists(port, overlay.path))) missing.push(overlay.path);
  if (missing.length === 0) return;
  const previous = record.previous.map((p) => p.path).join(", ");
  throw new EngineError({
    kind: EngineErrorKind.VERIFY_FAILED,
    domain: ref.name,
    snapshot: record.snapshot,
    message:
      `${where} switched the definition to overlays that do not exist (${missing.join(", ")}): nothing was ` +
      `removed and the revert stays recorded; the layers the disks wrote to before (${previous}) are kept. ` +
      "Point the domain's disks at existing images (or restore the missing files), then run the operation again",
  });
}

/**
 * Whether the file `path` exists on the hypervisor host, asked through libvirt's storage API (so it works on
 * remote hosts): a pool over its directory is refreshed (its list may predate the file, or its removal), then
 * asked for the file. Reads only.
 */
async function hostFileExists(port: RecipePort, path: string): Promise<boolean> {
  return withDirectoryPool(port, posix.dirname(path), async (pool) => {
    await port.storagePoolRefresh(pool);
    return port.storageVolLookupByPath(path).then(
      () => true,
      (e: unknown) => {
        if (libvirtCodeOf(e) === ErrorCode.NO_STORAGE_VOL) return false;
        throw e;
      },
    );
  });
}

/** What recovery of a revert did. */
export interface RevertRecoveryReport {
  readonly record: RevertRecord;
  /** `rolled-back`: the definition keeps its previous disks; `finished`: it already used the new overlays. */
  readonly action: "rolled-back" | "finished";
  readonly message: string;
}

/**
 * Cleans up after a recipe revert (or the finishing phase of any revert or preview end) that did not finish,
 * if the domain has a revert record; resolves null when it has none. The helper domain is undefined. In phase
 * `finishing`, the finishing phase is completed (revert-finish.ts). Otherwise, if the definition does not use
 * the new overlays yet, the overlay files it does not name are removed and the domain keeps its previous disks
 * (shut off if the revert had stopped it); the write that clears the record also removes the preview this
 * revert was starting (revert-state.ts `previewOnceRolledBack`). If it does use them, the revert stands and is
 * completed like a finishing phase (discarded snapshots dropped, abandoned layers removed unless needed, the
 * snapshot made current) and the domain is left as it is (shut off); but when one of those overlay files does
 * not exist, completing it would remove the only data left: that is refused with an EngineError VERIFY_FAILED,
 * nothing changed and the record kept. Whenever the revert is finished, the phase's first write also marks the
 * preview that an undo was returning to `record.snapshot` returned (revert-state.ts `previewOnceFinishing`).
 * The record is cleared last. A run killed between libvirt creating the
 * overlays and recording them leaves those files behind, unused (later reverts choose other names).
 * Idempotent; the caller holds the domain lock. Throws (record kept) when libvirt fails. Operations reach it
 * only through recover.ts's `finishInterruptedOperations`, the engine's one recovery entry.
 */
export async function finishUnfinishedRevert(
  port: RecipePort,
  ref: DomainRef,
): Promise<RevertRecoveryReport | null> {
  const metadata = await readProjectMetadata(port, ref);
  const record = parseRevertRecord(metadata);
  if (record === null) return null;
  const preview = parsePreviewRecord(metadata);
  // From the finishing phase on the domain is in the state of record.snapshot: an undo returning there is over.
  const returned = previewOnceFinishing(preview, record);
  const finishing = returned === undefined ? {} : { preview: returned };
  if (record.helper !== undefined) {
    try {
      await port.domainUndefineFlags(await port.domainLookupByName(record.helper), 0);
    } catch (e) {
      if (libvirtCodeOf(e) !== ErrorCode.NO_DOMAIN) throw e;
    }
  }
  const where = `an interrupted revert of domain ${ref.name} to snapshot ${record.snapshot} (started ${record.started}, phase ${record.phase})`;
  if (record.phase === Phase.FINISHING) {
    await finishBranch(port, ref, record, finishing);
    return {
      record,
      action: "finished",
      message: `${where} had already brought the domain to its final state: its cleanup was completed (discarded snapshots dropped, files nothing needs removed${record.settle === false ? "" : ", the snapshot made current"})`,
    };
  }
  const named = await persistentImagePaths(port, ref);
  const switched = record.overlays.length > 0 && record.overlays.every((o) => named.has(o.path));
  if (switched) {
    await refuseMissingOverlays(port, ref, record, where);
    // Finish what the killed run had left: the abandoned layers go, the snapshot becomes current.
    await finishBranch(port, ref, { ...record, phase: Phase.FINISHING }, finishing);
  } else {
    // A file the definition names is never removed, whatever the record says.
    for (const overlay of record.overlays)
      if (!named.has(overlay.path)) await removeHostFile(port, overlay.path);
    await writeRevertRecord(port, ref, null, previewOnceRolledBack(preview, record));
  }
  return switched
    ? {
        record,
        action: "finished",
        message: `${where} had already switched the disks to the new overlays: it was completed (the snapshot made current, the layers written before it removed unless needed), and the domain was left as it is (start it if needed)`,
      }
    : {
        record,
        action: "rolled-back",
        message: `${where} was rolled back: the domain keeps its previous disks (it may have been stopped) and the new overlay files were removed`,
      };
}
