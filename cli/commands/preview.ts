/**
 * `preview <domain> <name>`, `commit <domain>`, `undo <domain>`: try a snapshot out and then keep it or go
 * back (engine preview.ts). The preview is recorded on the domain, so `commit` or `undo` may run from another
 * process or machine.
 */
import {
  commitPreview,
  type PreviewEndResult,
  previewSnapshot,
  undoPreview,
} from "../../provider/engine/preview";
import type { RevertTargetState } from "../../provider/engine/revert-plan";
import type { PreviewRecord } from "../../provider/engine/revert-state";
import type { CommandContext, CommandOutcome } from "../context";
import { type RevertDocument, renderRevert, revertDocument } from "./revert";

/** A target state given with `--state`; absent: as recorded (the snapshot's, or the saved state's). */
export type StateOption = Exclude<RevertTargetState, "snapshot"> | undefined;

/** The `preview --json` document: the revert, and the preview record (target, saved state, start time). */
export interface PreviewDocument extends RevertDocument {
  readonly preview: PreviewRecord;
}

/** The `commit --json` and `undo --json` document. */
export interface PreviewEndDocument {
  readonly domain: { readonly name: string; readonly uuid: string };
  readonly preview: PreviewRecord;
  /** `undo` only: the return to the saved state; null for `commit`. */
  readonly revert: RevertDocument | null;
  /** Snapshots deleted: the saved one on commit; on undo also those taken during the preview. */
  readonly dropped: readonly string[];
  readonly removedFiles: readonly string[];
  readonly notes: readonly string[];
}

/** Runs `preview`. */
export async function previewCommand(
  context: CommandContext,
  domain: string,
  name: string,
  state: StateOption,
): Promise<CommandOutcome> {
  const result = await previewSnapshot(
    await context.connection(),
    domain,
    name,
    state === undefined ? {} : { targetState: state },
  );
  const document: PreviewDocument = { ...revertDocument(result), preview: result.preview };
  const lines = renderRevert(document);
  lines[0] = `Previewing snapshot ${name} of domain ${document.domain.name}; the state from before is snapshot ${result.preview.saved}.`;
  lines.push(
    `End the preview with \`libvirt-snapshot commit ${document.domain.name}\` (keep this state) or \`undo\`.`,
  );
  return { exitCode: 0, document, text: lines.join("\n") };
}

/** Runs `commit`. */
export async function commitCommand(context: CommandContext, domain: string): Promise<CommandOutcome> {
  const document = endDocument(await commitPreview(await context.connection(), domain));
  return {
    exitCode: 0,
    document,
    text: renderEnd(
      `Kept the previewed snapshot ${document.preview.snapshot} of domain ${document.domain.name}.`,
      document,
    ),
  };
}

/** Runs `undo`. */
export async function undoCommand(
  context: CommandContext,
  domain: string,
  state: StateOption,
): Promise<CommandOutcome> {
  const result = await undoPreview(
    await context.connection(),
    domain,
    state === undefined ? {} : { targetState: state },
  );
  const document = endDocument(result);
  return {
    exitCode: 0,
    document,
    text: renderEnd(
      `Undid the preview of snapshot ${document.preview.snapshot}: domain ${document.domain.name} is back in ` +
        `the state from before (now ${document.revert?.state ?? "unknown"}).`,
      document,
    ),
  };
}

function endDocument(result: PreviewEndResult): PreviewEndDocument {
  return {
    domain: result.domain,
    preview: result.preview,
    revert: result.revert === undefined ? null : revertDocument(result.revert),
    dropped: result.dropped,
    removedFiles: result.removedFiles,
    notes: result.notes,
  };
}

function renderEnd(head: string, document: PreviewEndDocument): string {
  const lines = [head];
  if (document.dropped.length > 0) lines.push(`  deleted snapshots: ${document.dropped.join(", ")}`);
  for (const file of document.removedFiles) lines.push(`  removed ${file}`);
  for (const note of document.notes) lines.push(`  ${note}`);
  return lines.join("\n");
}
