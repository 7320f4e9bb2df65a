/**
 * Preview of a snapshot, as Red Hat Virtualization offers it: `previewSnapshot` keeps the current state as an
 * automatic snapshot and reverts to the target; then either `commitPreview` keeps the previewed state and
 * drops the saved one, or `undoPreview` returns to the saved state and drops the preview branch. While a
 * preview is open, plain reverts and a second preview are refused. The preview is recorded on the domain
 * (revert-state.ts), so it can be committed or undone from another process or machine.
 */
import { isDeepStrictEqual } from "node:util";
import type { DomainRef } from "../libvirt/api";
import { deleteSnapshotWhileLocked } from "./delete";
import { withDomainLock } from "./domain-lock";
import { resolveDomain } from "./domain-ref";
import { EngineError, EngineErrorKind, isEngineError } from "./errors";
import type { DomainIdentity } from "./inspect";
import { finishInterruptedOperations } from "./recover";
import { type RevertPort, type RevertResult, revertSnapshot, revertWhileLocked } from "./revert";
import { type HostView, readHostView } from "./revert-branch";
import { finishBranch, finishingRecord } from "./revert-finish";
import { descendantsLeavesFirst, type RevertTargetState } from "./revert-plan";
import {
  type PreviewRecord,
  previewOnceFinishing,
  readPreviewRecord,
  writePreviewRecord,
} from "./revert-state";
import { type ScanMark, scanMark } from "./scan-sharing";

/** Prefix of the automatic snapshot that holds the state from before a preview. */
export const PREVIEW_SAVED_PREFIX = "auto-before-preview";

export interface PreviewOptions {
  /** State to leave the domain in while previewing; default: as the snapshot recorded it. */
  readonly targetState?: RevertTargetState;
  /** Absolute directory for the new overlays; default: next to the snapshot's overlays. */
  readonly overlayDir?: string;
}

export interface PreviewResult extends RevertResult {
  readonly preview: PreviewRecord;
}

/**
 * Starts a preview of `snapshot`: the current state is kept as snapshot `auto-before-preview-<UTC time>` (with
 * memory when the domain runs), the preview is recorded on the domain, and the domain is reverted to
 * `snapshot`. Refused with DOMAIN_STATE while another preview is open; otherwise the errors of
 * `revertSnapshot`. When the revert fails and leaves the domain as it was (before its first change, or rolled
 * back), no preview is open afterwards (the record is removed; the message says so) and the automatic snapshot
 * stays as an ordinary snapshot. Any other failure after the automatic snapshot exists leaves it and the record
 * in place (a revert the next operation rolls back also removes the record): undo the preview to return to the
 * saved state.
 */
export async function previewSnapshot(
  port: RevertPort,
  domain: string,
  snapshot: string,
  options: PreviewOptions = {},
): Promise<PreviewResult> {
  let preview: PreviewRecord | undefined;
  const result = await revertSnapshot(
    port,
    domain,
    snapshot,
    { ...options, keepCurrent: true },
    {
      savedPrefix: PREVIEW_SAVED_PREFIX,
      beforeRevert: async (ref, savedAs) => {
        preview = { snapshot, saved: savedAs ?? "", started: new Date().toISOString() };
        await writePreviewRecord(port, ref, preview);
      },
      afterUnchangedFailure: (ref) => endUnstartedPreview(port, ref, preview),
    },
  );
  if (preview === undefined) throw new Error("previewSnapshot: the preview was not recorded");
  return { ...result, preview };
}

/**
 * After the revert of a preview failed and left the domain as it was: removes the preview record (one write;
 * none when the revert's rollback already removed it), so that no undo reverts to the saved state over what the
 * guest writes from now on and no commit drops it. The automatic snapshot stays, as an ordinary snapshot of the
 * state the domain still has. Never rejects: resolves the sentence for the error message.
 */
async function endUnstartedPreview(
  port: RevertPort,
  ref: DomainRef,
  started: PreviewRecord | undefined,
): Promise<string> {
  const kept = `the preview did not start and no preview is open; snapshot ${started?.saved} stays as an ordinary snapshot (delete it when it is no longer needed)`;
  try {
    const open = await readPreviewRecord(port, ref);
    if (open !== null && isDeepStrictEqual(open, started)) await writePreviewRecord(port, ref, null);
    return kept;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return `the preview did not start, but removing its record failed (${why}): it still shows as open, and undoing it returns to snapshot ${started?.saved}`;
  }
}

export interface PreviewEndResult {
  readonly domain: DomainIdentity;
  /** The preview that ended. */
  readonly preview: PreviewRecord;
  /** The return to the saved state (`undoPreview` only). */
  readonly revert?: RevertResult;
  /** Snapshots deleted: the saved one (and its descendants) on commit; on undo those taken during the preview, then the saved one (merged). */
  readonly dropped: readonly string[];
  /**
   * Files removed: on commit those only the saved snapshot needed; on undo those of the saved snapshot when
   * it could only be dropped (the files of the snapshots taken during the preview, and the preview's own
   * overlay, are removed by the revert and listed in `revert.removedFiles`).
   */
  readonly removedFiles: readonly string[];
  readonly notes: readonly string[];
}

/**
 * Keeps the previewed state: deletes the automatic snapshot (and any descendant of it) with the files only it
 * needed, makes the previewed snapshot current, then clears the preview record. The drop is one finishing
 * phase recorded on the domain (revert-finish.ts): files to remove are recorded before any metadata goes.
 * The preview record is removed in the same metadata write that records that phase: from then on the commit
 * belongs to the phase, and a run killed half-way is completed by the next operation on the domain (a later
 * commit or undo then answers that no preview is open). Refused with INVALID_REQUEST when no preview is open,
 * and with DOMAIN_STATE while an undo is interrupted or already returned to the saved state (run undo again to
 * finish it).
 */
export async function commitPreview(port: RevertPort, domain: string): Promise<PreviewEndResult> {
  const ref = await resolveDomain(port, domain);
  return withDomainLock(ref.uuid, async () => {
    // The drop's reference scan may join one that concurrent deletes started after this point.
    const lockedAt = scanMark();
    const notes = [...((await finishInterruptedOperations(port, ref))?.messages ?? [])];
    const preview = await openPreview(port, ref, "commit");
    if (preview.undoing === true) {
      throw new EngineError({
        kind: EngineErrorKind.DOMAIN_STATE,
        domain: ref.name,
        snapshot: preview.snapshot,
        message: `domain ${ref.name}: an undo of the preview of snapshot ${preview.snapshot} was interrupted: run undo to finish it`,
      });
    }
    if (preview.returned === true) {
      throw new EngineError({
        kind: EngineErrorKind.DOMAIN_STATE,
        domain: ref.name,
        snapshot: preview.snapshot,
        message: `domain ${ref.name} was already returned to the state saved before the preview of snapshot ${preview.snapshot}; undo the preview again to finish it`,
      });
    }
    const view = await readHostView(port, ref);
    const names = [...descendantsLeavesFirst(view.forest, preview.saved), preview.saved];
    // Without the saved state the previewed snapshot may have no child left: its new branch becomes its own.
    // The preview closes in the write that records the drop: a later undo can no longer turn it into a commit.
    const { warnings, ...dropped } = await finishBranch(
      port,
      ref,
      finishingRecord(preview.snapshot, names, true),
      { lockedAt, preview: null },
    );
    return { domain: identity(ref), preview, ...dropped, notes: [...notes, ...warnings] };
  });
}

/**
 * Returns to the state saved when the preview started (a memory state comes back running or paused as it
 * was, unless `targetState` says otherwise), deletes the snapshots taken of the preview branch during the
 * preview with their files, then deletes the automatic snapshot with the delete engine: its fresh overlay is
 * merged into the layer the domain wrote to before the preview, so the chains and the tree are as they were
 * before it. (A memory state saved while paused cannot be merged while the domain is paused; its metadata is
 * then dropped instead and the overlay stays as a layer, which a note says.) Finally the record is cleared.
 *
 * The whole undo (reading the record, the revert, the drop of the branch, which is the revert's finishing phase,
 * the merge and clearing the record) runs under one hold of the domain lock, so no other operation of this
 * process runs in between. The record is marked `undoing` before the revert starts (stopped before the revert
 * switched the disks, a commit is refused and a second undo reverts again) and `returned` in the metadata write
 * that records the revert's finishing phase (recipe and native alike), or by the recovery that completes a
 * revert which had switched the disks: from then on the domain is in the saved state and the guest may write,
 * so a second undo only merges and a commit is refused. Refused with INVALID_REQUEST when no preview is open.
 * Killed half-way, the next operation finishes the recorded phase and calling it again completes the undo.
 */
export async function undoPreview(
  port: RevertPort,
  domain: string,
  options: { readonly targetState?: RevertTargetState } = {},
): Promise<PreviewEndResult> {
  const ref = await resolveDomain(port, domain);
  // The reference scans of the undo may join ones that concurrent deletes started after the lock was held.
  return withDomainLock(ref.uuid, () => undoWhileLocked(port, ref, options, scanMark()));
}

/** The undo, for `undoPreview`, which holds the domain lock since `lockedAt`. */
async function undoWhileLocked(
  port: RevertPort,
  ref: DomainRef,
  options: { readonly targetState?: RevertTargetState },
  lockedAt: ScanMark,
): Promise<PreviewEndResult> {
  const back = await returnToSaved(port, ref, options, lockedAt);
  const { preview, revert } = back;
  const notes = [...back.notes];
  // The files of the dropped branch were removed by the revert (its finishing phase): see revert.removedFiles.
  let removedFiles: readonly string[] = [];
  let dropped = [...(revert?.discarded ?? [])];
  if (back.savedExists) {
    const merged = await mergeSavedAway(port, ref, preview.saved, lockedAt);
    dropped = [...dropped, preview.saved];
    removedFiles = merged.removedFiles;
    notes.push(...merged.notes);
  } else {
    notes.push(
      `the saved snapshot ${preview.saved} was already merged away by an earlier undo; the preview is closed`,
    );
  }
  await writePreviewRecord(port, ref, null);
  return { domain: identity(ref), preview, ...(revert ? { revert } : {}), dropped, removedFiles, notes };
}

/**
 * The locked part of an undo: finishes interrupted operations, reads the preview, and (unless an earlier undo
 * already did) reverts to the saved snapshot, discarding the snapshots taken of the preview branch during the
 * preview; the record is marked `returned` in the write that records the revert's finishing phase. Caller holds
 * the domain lock since `lockedAt`.
 */
async function returnToSaved(
  port: RevertPort,
  ref: DomainRef,
  options: { readonly targetState?: RevertTargetState },
  lockedAt: ScanMark,
): Promise<{ preview: PreviewRecord; savedExists: boolean; revert?: RevertResult; notes: string[] }> {
  const notes = [...((await finishInterruptedOperations(port, ref))?.messages ?? [])];
  const preview = await openPreview(port, ref, "undo");
  const view = await readHostView(port, ref);
  const savedExists = view.snapshotXml.has(preview.saved);
  if (preview.returned === true || !savedExists) return { preview, savedExists, notes };
  // Marked before the revert starts: once it passed its point of no return a commit would keep the wrong state.
  const undoing: PreviewRecord = { ...preview, undoing: true };
  await writePreviewRecord(port, ref, undoing);
  // Marked returned in the write that records the revert's finishing phase: from then on the domain runs the
  // saved state and the guest may write, so a later undo must never revert again, whatever fails after it.
  const result = await revertWhileLocked(port, ref, preview.saved, options, {
    lockedAt,
    discard: previewBranch(view, preview),
    finishingPreview: previewOnceFinishing(undoing, { snapshot: preview.saved }),
  });
  return { preview, savedExists, revert: result, notes: [...notes, ...result.notes] };
}

/** The snapshots taken of the previewed branch during the preview, leaves first. Pure. */
function previewBranch(view: HostView, preview: PreviewRecord): string[] {
  // Creation times are whole seconds: one from the second the preview started counts as older (kept).
  const startedAt = Date.parse(preview.started) / 1000;
  const createdDuring = (name: string) =>
    (view.forest.snapshots.find((s) => s.name === name)?.creationTime ?? 0) > startedAt;
  return descendantsLeavesFirst(view.forest, preview.snapshot).filter(
    (name) => name !== preview.saved && createdDuring(name),
  );
}

/**
 * Deletes the automatic snapshot by merging; drops only its metadata when a paused memory state forbids it.
 * Caller holds the domain lock since `lockedAt`.
 */
async function mergeSavedAway(
  port: RevertPort,
  ref: DomainRef,
  saved: string,
  lockedAt: ScanMark,
): Promise<{ removedFiles: string[]; notes: string[] }> {
  try {
    const result = await deleteSnapshotWhileLocked(port, ref, saved, {}, { endingPreview: true });
    return { removedFiles: [], notes: [...result.notes, ...result.warnings] };
  } catch (e) {
    if (!(isEngineError(e) && e.kind === EngineErrorKind.DOMAIN_STATE)) throw e;
    const result = await finishBranch(port, ref, finishingRecord(saved, [saved], false), { lockedAt });
    return {
      removedFiles: [...result.removedFiles],
      notes: [
        `snapshot ${saved} holds memory saved while paused and cannot be merged while the domain is paused; ` +
          "its metadata was dropped and its overlay stays in the chain as a layer without a snapshot",
        ...result.warnings,
      ],
    };
  }
}

/** The open preview of the domain, or null. Reads only. */
export async function getPreview(port: RevertPort, domain: string): Promise<PreviewRecord | null> {
  return readPreviewRecord(port, await resolveDomain(port, domain));
}

async function openPreview(port: RevertPort, ref: DomainRef, what: string): Promise<PreviewRecord> {
  const preview = await readPreviewRecord(port, ref);
  if (preview !== null) return preview;
  throw new EngineError({
    kind: EngineErrorKind.INVALID_REQUEST,
    domain: ref.name,
    message: `domain ${ref.name} has no preview to ${what}`,
  });
}

function identity(ref: DomainRef): DomainIdentity {
  return { name: ref.name, uuid: ref.uuid };
}
