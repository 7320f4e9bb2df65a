/**
 * The finishing phase of a revert and of the end of a preview: dropping the snapshots the operation discards,
 * removing the files nothing needs any more, and making the reverted-to snapshot libvirt's current one. It runs
 * after the domain reached its final state, and it is recorded on the domain (a revert record in phase
 * `finishing`, revert-state.ts) until every step is done, so that a run killed half-way leaves a record that
 * the next operation finishes (revert-recipe.ts `finishUnfinishedRevert`) rather than files nobody knows about.
 *
 * Order inside the phase, each step safe to repeat: the files to remove are added to the record (`remove`),
 * then the snapshots' metadata is deleted, then the files are removed, then the snapshot is settled, and only
 * then is the record cleared.
 */
import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import type { DomainRef } from "../libvirt/api";
import { ErrorCode } from "../libvirt/flags";
import { withoutSnapshotRecord } from "../model/metadata";
import { libvirtCodeOf } from "./errors";
import type { ProjectMetadataPort } from "./libvirt-port";
import { readProjectMetadata, writeProjectMetadata } from "./project-metadata";
import {
  type BranchPort,
  type DropResult,
  dropSnapshotsAndFiles,
  type HostView,
  settleSnapshot,
} from "./revert-branch";
import {
  type PreviewRecord,
  parsePreviewRecord,
  parseRevertRecord,
  RevertPhase,
  type RevertRecord,
  withPreviewRecord,
  withRevertRecord,
  writeRevertRecord,
} from "./revert-state";
import { type ScanMark, scanMark } from "./scan-sharing";

/** The calls the finishing phase makes. */
export type FinishPort = BranchPort & ProjectMetadataPort;

/**
 * A record of a finishing phase that follows no recipe revert (a native revert, the end of a preview):
 * drop `discard` (leaves first) with the files only they needed, then make `snapshot` current when `settle`.
 * Pure.
 */
export function finishingRecord(snapshot: string, discard: readonly string[], settle: boolean): RevertRecord {
  return {
    id: randomUUID(),
    snapshot,
    started: new Date().toISOString(),
    phase: RevertPhase.FINISHING,
    overlays: [],
    previous: [],
    ...(discard.length === 0 ? {} : { discard }),
    ...(settle ? {} : { settle: false as const }),
  };
}

/** How `finishBranch` runs. */
export interface FinishOptions {
  /**
   * The mark the caller took once it held the domain lock (scan-sharing.ts `scanMark`): the reference scan of
   * the drop joins a scan of the same connection that started after it (delete-references.ts). Default: a
   * mark taken when `finishBranch` starts, which joins only scans started from then on.
   */
  readonly lockedAt?: ScanMark;
  /** The view before a revert: helps to recognise the abandoned layers as overlays. */
  readonly earlier?: HostView;
  /**
   * The preview record to write in the metadata write that records the phase: null removes it (a commit
   * closes its preview there), a record replaces it (an undo marks its preview returned there); absent: the
   * preview record stays as it is.
   */
  readonly preview?: PreviewRecord | null;
}

/**
 * Runs the finishing phase of `record` on the domain: records it (phase `finishing`), drops the snapshots in
 * `record.discard` that still exist, removes the files only they needed, the `record.previous` layers and the
 * files an earlier run recorded in `record.remove` (each only if nothing needs it now, and each recorded
 * before any metadata is deleted), makes `record.snapshot` libvirt's current snapshot when `record.settle`
 * and it still exists, then clears the record and, in the same write, forgets the engine's records of the
 * discarded snapshots. With `preview` the preview record is replaced in the same metadata write that records
 * the phase, so the phase can never be mistaken for part of a preview in another state. A record (and preview)
 * the domain already holds as it is (the recipe leaves it so, and so does a run that stopped before recording
 * files) is not written again. A record with nothing to do (and no preview to write) resolves at once without
 * a call.
 *
 * Idempotent: running it again, also from another process after a kill, continues where the previous run
 * stopped. A failure throws the libvirt error and leaves the record on the domain (with the files it meant to
 * remove), so the next engine operation finishes the phase. The caller holds the domain lock.
 */
export async function finishBranch(
  port: FinishPort,
  ref: DomainRef,
  record: RevertRecord,
  options: FinishOptions = {},
): Promise<DropResult> {
  const lockedAt = options.lockedAt ?? scanMark();
  const discard = record.discard ?? [];
  const settle = record.settle !== false;
  const nothingToDo =
    discard.length === 0 && record.previous.length === 0 && (record.remove ?? []).length === 0 && !settle;
  if (nothingToDo && options.preview === undefined) return { dropped: [], removedFiles: [], warnings: [] };
  let current: RevertRecord = { ...record, phase: RevertPhase.FINISHING };
  const xml = await readProjectMetadata(port, ref);
  const recorded = nothingToDo ? null : current;
  if (options.preview === undefined) {
    if (!holdsRecord(xml, current)) await writeProjectMetadata(port, ref, withRevertRecord(xml, current));
  } else if (!holdsRecord(xml, recorded) || !holdsPreview(xml, options.preview)) {
    await writeProjectMetadata(
      port,
      ref,
      withPreviewRecord(withRevertRecord(xml, recorded) ?? undefined, options.preview),
    );
  }
  if (nothingToDo) return { dropped: [], removedFiles: [], warnings: [] };
  const dropped = await dropSnapshotsAndFiles(
    port,
    ref,
    discard,
    current.previous.map((p) => p.path),
    {
      recorded: current.remove ?? [],
      record: async (files) => {
        current = { ...current, remove: files };
        await writeRevertRecord(port, ref, current);
      },
    },
    lockedAt,
    options.earlier,
  );
  if (settle && (await snapshotExists(port, ref, current.snapshot)))
    await settleSnapshot(port, ref, current.snapshot);
  // Every discarded snapshot is gone by now (a rerun drops none, so `discard`, not `dropped`, names them): their
  // records go with the revert record, or a later snapshot made out of band under such a name could match one.
  let finished = await readProjectMetadata(port, ref);
  for (const name of discard) finished = withoutSnapshotRecord(finished, name);
  await writeProjectMetadata(port, ref, withRevertRecord(finished, null));
  return dropped;
}

/** Whether the metadata document holds exactly `preview` as its preview record; false when it cannot be read. */
function holdsPreview(xml: string | undefined, preview: PreviewRecord | null): boolean {
  try {
    return isDeepStrictEqual(parsePreviewRecord(xml), preview);
  } catch {
    return false;
  }
}

/** Whether the metadata document holds exactly `record` as its revert record; false when it cannot be read. */
function holdsRecord(xml: string | undefined, record: RevertRecord | null): boolean {
  try {
    return isDeepStrictEqual(parseRevertRecord(xml), record);
  } catch {
    // A record this version cannot read is replaced, as it always was.
    return false;
  }
}

async function snapshotExists(port: FinishPort, ref: DomainRef, name: string): Promise<boolean> {
  try {
    await port.domainSnapshotLookupByName(ref, name);
    return true;
  } catch (e) {
    if (libvirtCodeOf(e) === ErrorCode.NO_DOMAIN_SNAPSHOT) return false;
    throw e;
  }
}
