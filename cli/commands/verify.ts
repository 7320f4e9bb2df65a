/**
 * `verify <domain> [--repair]`: checks a domain's snapshot state as the engine sees it: libvirt's metadata
 * against the real chains (the model's consistency check), an interrupted delete or revert recorded on the
 * domain, block jobs still running, and files an interrupted delete still has to remove; an open preview is
 * reported too (it is not a problem). `--repair` runs the engine's recovery, which finishes or rolls back the
 * interrupted operations, then checks again.
 */

import { withDomainLock } from "../../provider/engine/domain-lock";
import { resolveDomain } from "../../provider/engine/domain-ref";
import { listSnapshots } from "../../provider/engine/inspect";
import { type DeleteJournal, readJournal } from "../../provider/engine/journal";
import { finishInterruptedOperations } from "../../provider/engine/recover";
import { type PreviewRecord, readPreviewRecord, readRevertRecord } from "../../provider/engine/revert-state";
import type { LibvirtConnection } from "../../provider/libvirt/connection";
import { parseDomainXml } from "../../provider/model/domain";
import type { CommandContext, CommandOutcome } from "../context";
import { readHostImages } from "../host-images";

/** One thing found wrong. */
export interface Finding {
  /** A consistency-problem kind of the model, or `unfinished-operation`, `block-job`, `leftover-file`. */
  readonly kind: string;
  readonly message: string;
  readonly snapshot?: string;
  readonly disk?: string;
  readonly file?: string;
}

/** The `verify --json` document. */
export interface VerifyDocument {
  readonly domain: { readonly name: string; readonly uuid: string };
  /** True when nothing is wrong (after the repair, with `--repair`). */
  readonly ok: boolean;
  /** What `--repair` did, one sentence per operation finished or rolled back; null without `--repair`. */
  readonly repairs: readonly string[] | null;
  readonly findings: readonly Finding[];
  /** The open preview (`preview` ... `commit` or `undo`), or null. Not a problem. */
  readonly preview: PreviewRecord | null;
}

/** Runs `verify`. Exit 1 when something is wrong (and, with `--repair`, still wrong after the repair). */
export async function verifyCommand(
  context: CommandContext,
  domain: string,
  options: { readonly repair: boolean },
): Promise<CommandOutcome> {
  const connection = await context.connection();
  const ref = await resolveDomain(connection, domain);
  const repairs = options.repair
    ? await withDomainLock(ref.uuid, async () => [
        ...((await finishInterruptedOperations(connection, ref))?.messages ?? []),
      ])
    : null;
  const findings = await inspectDomain(connection, ref.uuid);
  const document: VerifyDocument = {
    domain: { name: ref.name, uuid: ref.uuid },
    ok: findings.length === 0,
    repairs,
    findings,
    preview: await readPreviewRecord(connection, ref),
  };
  return { exitCode: document.ok ? 0 : 1, document, text: renderVerify(document, options.repair) };
}

async function inspectDomain(connection: LibvirtConnection, uuid: string): Promise<Finding[]> {
  const forest = await listSnapshots(connection, uuid);
  const ref = await resolveDomain(connection, uuid);
  const journal = await readJournal(connection, ref);
  const live = parseDomainXml(await connection.domainGetXMLDesc(ref, 0));
  const findings: Finding[] = forest.problems.map((p) => ({
    kind: p.kind,
    message: p.message,
    snapshot: p.snapshot,
    ...(p.disk === undefined ? {} : { disk: p.disk }),
  }));
  if (journal !== null) findings.push(journalFinding(journal));
  const revert = await readRevertRecord(connection, ref);
  if (revert !== null) {
    findings.push({
      kind: "unfinished-operation",
      snapshot: revert.snapshot,
      message: `an interrupted revert to snapshot ${revert.snapshot} (started ${revert.started}) stopped in phase ${revert.phase}`,
    });
  }
  for (const disk of live.disks) {
    if (disk.mirror === undefined) continue;
    findings.push({
      kind: "block-job",
      disk: disk.target,
      message: `a block job is still running on disk ${disk.target}${journal === null ? " (not one of ours)" : ""}`,
    });
  }
  if (journal !== null && journal.files.length > 0) {
    const files = await readHostImages(connection, journal.files);
    for (const [file, info] of files) {
      if (info.kind === "missing") continue;
      findings.push({
        kind: "leftover-file",
        file,
        snapshot: journal.snapshot,
        message:
          info.kind === "present"
            ? `${file} is still on the host; the interrupted delete of ${journal.snapshot} removes it when finished`
            : `${file}: could not tell whether it is still on the host (${info.reason})`,
      });
    }
  }
  return findings;
}

function journalFinding(journal: DeleteJournal): Finding {
  const disks = journal.disks.map((d) => `${d.target} ${d.phase}`).join(", ");
  return {
    kind: "unfinished-operation",
    snapshot: journal.snapshot,
    message:
      `an interrupted delete of snapshot ${journal.snapshot} (started ${journal.startedAt}) stopped in phase ` +
      `${journal.phase}${disks === "" ? "" : ` (disks: ${disks})`}`,
  };
}

function renderVerify(document: VerifyDocument, repair: boolean): string {
  const lines: string[] = [];
  for (const repaired of document.repairs ?? []) lines.push(`Repaired: ${repaired}.`);
  if (repair && document.repairs?.length === 0) {
    lines.push("Nothing to repair: no interrupted operation is recorded on the domain.");
  }
  if (document.ok) {
    lines.push(`Domain ${document.domain.name}: snapshot metadata, chains and journal are consistent.`);
  } else {
    lines.push(`Domain ${document.domain.name}: ${document.findings.length} problem(s):`);
    for (const finding of document.findings) lines.push(`  - [${finding.kind}] ${finding.message}`);
    if (!repair && document.findings.some((f) => f.kind === "unfinished-operation")) {
      lines.push(
        `Run \`libvirt-snapshot verify --repair ${document.domain.name}\` to finish or roll it back.`,
      );
    }
  }
  return lines.join("\n");
}
