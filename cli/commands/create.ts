/**
 * `create <domain> <name>`: takes an external snapshot through the engine (one atomic libvirt call, chains
 * verified after). Idempotent like the engine: an identical existing snapshot is adopted.
 */
import { type CreateProgress, createSnapshot } from "../../provider/engine/create";
import type { CreateSnapshotRequest, MemoryMode, QuiesceMode } from "../../provider/engine/create-plan";
import { describeImage } from "../../provider/model/domain";
import type { CommandContext, CommandOutcome } from "../context";
import { isoTime } from "../format";

/** The options of `create` after parsing. */
export interface CreateOptions {
  readonly memory: boolean;
  readonly live: boolean;
  readonly quiesce: QuiesceMode;
  readonly disk: readonly string[];
  readonly excludeDisk: readonly string[];
  readonly description?: string;
  readonly overlayDir?: string;
}

/** The `create --json` document. */
export interface CreateDocument {
  readonly domain: { readonly name: string; readonly uuid: string };
  readonly snapshot: string;
  /** `created`, or `adopted`: an identical snapshot of that name already existed and nothing was done. */
  readonly outcome: "created" | "adopted";
  readonly createdAt: string;
  readonly kind: "memory" | "disk-only";
  readonly memoryFile: string | null;
  readonly quiesced: boolean | null;
  readonly quiesceNote?: string;
  readonly disks: readonly {
    readonly target: string;
    readonly overlay: string;
    readonly pointInTime: string | null;
  }[];
  readonly skipped: readonly { readonly target: string; readonly reason: string; readonly message: string }[];
  readonly warnings: readonly string[];
}

/** The engine request for the parsed options. Pure; the engine validates names and paths. */
export function createRequest(domain: string, name: string, options: CreateOptions): CreateSnapshotRequest {
  const memory: MemoryMode = options.memory ? (options.live ? "memory-live" : "memory") : "disk-only";
  const disks =
    options.disk.length > 0 || options.excludeDisk.length > 0
      ? {
          disks: {
            ...(options.disk.length > 0 ? { include: options.disk } : {}),
            ...(options.excludeDisk.length > 0 ? { exclude: options.excludeDisk } : {}),
          },
        }
      : {};
  return {
    domain,
    name,
    memory,
    quiesce: options.quiesce,
    ...disks,
    ...(options.description === undefined ? {} : { description: options.description }),
    ...(options.overlayDir === undefined ? {} : { overlayDir: options.overlayDir }),
  };
}

/** Runs `create`. */
export async function createCommand(
  context: CommandContext,
  domain: string,
  name: string,
  options: CreateOptions,
): Promise<CommandOutcome> {
  const connection = await context.connection();
  const onProgress = (event: CreateProgress) => {
    if (event.kind === "waiting-for-lock")
      context.stderr.write("waiting for another operation on the domain\n");
    if (event.kind === "quiesce-fallback")
      context.stderr.write(`${event.reason}; creating without quiesce\n`);
  };
  const result = await createSnapshot(connection, createRequest(domain, name, options), { onProgress });
  const view = result.snapshot;
  const document: CreateDocument = {
    domain: result.domain,
    snapshot: view.name,
    outcome: result.adopted ? "adopted" : "created",
    createdAt: isoTime(view.creationTime),
    kind: view.memory.mode === "external" ? "memory" : "disk-only",
    memoryFile: view.memory.file ?? null,
    quiesced: result.quiesced ?? null,
    ...(result.quiesceNote === undefined ? {} : { quiesceNote: result.quiesceNote }),
    disks: view.disks.map((d) => ({
      target: d.target,
      overlay: describeImage(d.overlay),
      pointInTime: d.pointInTime === undefined ? null : describeImage(d.pointInTime),
    })),
    skipped: result.skipped.map((s) => ({ target: s.target, reason: s.reason, message: s.message })),
    warnings: result.warnings,
  };
  return { exitCode: 0, document, text: renderCreate(document) };
}

function renderCreate(document: CreateDocument): string {
  const lines = [
    document.outcome === "adopted"
      ? `Snapshot ${document.snapshot} of domain ${document.domain.name} already exists as requested; nothing done.`
      : `Created snapshot ${document.snapshot} of domain ${document.domain.name} (${document.kind}, ` +
        `${document.quiesced ? "quiesced" : "not quiesced"}).`,
  ];
  for (const disk of document.disks) lines.push(`  ${disk.target}: now writes to ${disk.overlay}`);
  if (document.memoryFile !== null) lines.push(`  memory: ${document.memoryFile}`);
  if (document.quiesceNote !== undefined) lines.push(`  ${document.quiesceNote}`);
  for (const skipped of document.skipped) lines.push(`  skipped ${skipped.target}: ${skipped.message}`);
  for (const warning of document.warnings) lines.push(`  warning: ${warning}`);
  return lines.join("\n");
}
