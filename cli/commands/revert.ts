/**
 * `revert <domain> <name>`: brings the domain back to a snapshot through the engine (`revertSnapshot`: libvirt's
 * own revert where the host has it, the engine's recipe otherwise). Not idempotent: each revert starts a new
 * branch from the snapshot.
 */
import { type RevertResult, revertSnapshot } from "../../provider/engine/revert";
import type { RevertOptions, RevertTargetState } from "../../provider/engine/revert-plan";
import type { CommandContext, CommandOutcome } from "../context";

/** The options of `revert` after parsing. */
export interface RevertCommandOptions {
  /** Absent: the state the snapshot recorded. */
  readonly state?: Exclude<RevertTargetState, "snapshot">;
  readonly keepCurrent: boolean;
  readonly discardNewer: boolean;
}

/** The part of `revert --json` (and `preview --json`, `undo --json`) that describes the revert. */
export interface RevertDocument {
  readonly domain: { readonly name: string; readonly uuid: string };
  readonly snapshot: string;
  /** `native`: libvirt reverted; `recipe`: the engine did (libvirt before 9.9). */
  readonly strategy: "native" | "recipe";
  /** The state the domain was left in. */
  readonly state: "running" | "paused" | "shutoff";
  /** The guest continues from the saved memory state. */
  readonly memoryRestored: boolean;
  /** Per disk, the new overlay it writes to and its backing (the snapshot's point-in-time image). */
  readonly overlays: readonly { readonly target: string; readonly path: string; readonly backing: string }[];
  /** The automatic snapshot that keeps the state from before the revert (`--keep-current`), else null. */
  readonly savedAs: string | null;
  /** Snapshots deleted on purpose (`--discard-newer`). */
  readonly discarded: readonly string[];
  readonly removedFiles: readonly string[];
  readonly notes: readonly string[];
}

/** Engine options for the parsed command options. Pure. */
export function revertOptions(options: RevertCommandOptions): RevertOptions {
  return {
    ...(options.state === undefined ? {} : { targetState: options.state }),
    keepCurrent: options.keepCurrent,
    discardNewer: options.discardNewer,
  };
}

/** The document of a revert result. Pure. */
export function revertDocument(result: RevertResult): RevertDocument {
  return {
    domain: result.domain,
    snapshot: result.snapshot,
    strategy: result.strategy,
    state: result.state,
    memoryRestored: result.memoryRestored,
    overlays: result.overlays,
    savedAs: result.savedAs ?? null,
    discarded: result.discarded,
    removedFiles: result.removedFiles,
    notes: result.notes,
  };
}

/** Human lines for a revert. Pure. */
export function renderRevert(document: RevertDocument): string[] {
  const memory = document.memoryRestored ? ", memory restored" : "";
  const lines = [
    `Reverted domain ${document.domain.name} to snapshot ${document.snapshot} ` +
      `(${document.strategy}; now ${document.state}${memory}).`,
  ];
  for (const overlay of document.overlays) {
    lines.push(`  ${overlay.target}: now writes to ${overlay.path} (on ${overlay.backing})`);
  }
  if (document.savedAs !== null)
    lines.push(`  the state from before is kept as snapshot ${document.savedAs}`);
  if (document.discarded.length > 0) lines.push(`  discarded snapshots: ${document.discarded.join(", ")}`);
  for (const file of document.removedFiles) lines.push(`  removed ${file}`);
  for (const note of document.notes) lines.push(`  ${note}`);
  return lines;
}

/** Runs `revert`. */
export async function revertCommand(
  context: CommandContext,
  domain: string,
  name: string,
  options: RevertCommandOptions,
): Promise<CommandOutcome> {
  const result = await revertSnapshot(await context.connection(), domain, name, revertOptions(options));
  const document = revertDocument(result);
  return { exitCode: 0, document, text: renderRevert(document).join("\n") };
}
