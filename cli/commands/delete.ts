/**
 * `delete <domain> <name>`: deletes a snapshot by merging its layer away (engine `deleteSnapshot`), with
 * progress on stderr and Ctrl-C cancelling the merge through the engine, which ends the block job and leaves a
 * consistent chain.
 */
import { type DeleteOptions, type DeleteStrategy, deleteSnapshot } from "../../provider/engine/delete";
import type { CommandContext, CommandOutcome } from "../context";
import { ProgressReporter } from "../progress";

/** The options of `delete` after parsing. */
export interface DeleteCommandOptions {
  readonly strategy: DeleteStrategy;
  /** Bytes per second; absent: unlimited. */
  readonly bandwidth?: number;
  /** Seconds for each disk's merge; absent: no limit. */
  readonly timeout?: number;
}

/** The `delete --json` document. */
export interface DeleteDocument {
  readonly domain: string;
  readonly snapshot: string;
  /** `deleted`; `absent`: there was no such snapshot; `domain-absent`: there is no such domain. */
  readonly outcome: "deleted" | "absent" | "domain-absent";
  readonly strategy: DeleteStrategy;
  /** Interrupted earlier operations on the domain (a delete, a revert) finished or rolled back first, one sentence each; null when there was none. */
  readonly recovered: readonly string[] | null;
  readonly notes: readonly string[];
  /** Sentences the user should act on (files kept because another domain still uses them); empty when none. */
  readonly warnings: readonly string[];
}

/** Engine options for the parsed command options (units converted). Pure. */
export function deleteOptions(
  options: DeleteCommandOptions,
  signal: AbortSignal,
  onProgress: NonNullable<DeleteOptions["onProgress"]>,
): DeleteOptions & { readonly signal: AbortSignal } {
  return {
    strategy: options.strategy,
    ...(options.bandwidth === undefined ? {} : { bandwidthBytesPerSecond: options.bandwidth }),
    ...(options.timeout === undefined ? {} : { timeoutMs: options.timeout * 1000 }),
    onProgress,
    signal,
  };
}

/** Runs `delete`. Exit 0 also when there was nothing to delete (idempotent, like the engine). */
export async function deleteCommand(
  context: CommandContext,
  domain: string,
  name: string,
  options: DeleteCommandOptions,
): Promise<CommandOutcome> {
  const connection = await context.connection();
  const progress = new ProgressReporter(context.stderr, `merging ${name}`);
  let result: Awaited<ReturnType<typeof deleteSnapshot>>;
  try {
    result = await deleteSnapshot(
      connection,
      domain,
      name,
      deleteOptions(options, context.signal, (sample) => progress.update(sample)),
    );
  } finally {
    progress.done();
  }
  const document: DeleteDocument = {
    domain: result.domain,
    snapshot: result.snapshot,
    outcome: result.outcome,
    strategy: options.strategy,
    recovered: result.recovered?.messages ?? null,
    notes: result.notes,
    warnings: result.warnings,
  };
  return { exitCode: 0, document, text: renderDelete(document) };
}

/** The text output: the outcome, its notes, then its warnings. Pure. */
function renderDelete(document: DeleteDocument): string {
  const head =
    document.outcome === "deleted"
      ? `Deleted snapshot ${document.snapshot} of domain ${document.domain} (${document.strategy}).`
      : document.outcome === "absent"
        ? `Domain ${document.domain} has no snapshot ${document.snapshot}; nothing to do.`
        : `Domain ${document.domain} does not exist; nothing to do.`;
  return [
    head,
    ...document.notes.map((note) => `  ${note}`),
    ...document.warnings.map((warning) => `  warning: ${warning}`),
  ].join("\n");
}
