/**
 * The journal of an unfinished delete, kept on the domain itself (libvirt `<metadata>`, project namespace) so
 * that a later run, from any machine, can finish what a killed run started. It is written before each
 * irreversible step and cleared when the operation is done.
 *
 * The project's metadata element is shared with other state (one element per namespace in libvirt), so the
 * journal is one child, `<journal>`, of that element; writers keep every other child as it was.
 */
import type { Element } from "@xmldom/xmldom";
import type { DomainRef } from "../libvirt/api";
import { editProjectMetadata, PROJECT_METADATA_ROOT, withoutSnapshotRecord } from "../model/metadata";
import { appendElement, childElements as editedChildElements } from "../model/xml";
import { attr, childElements, localName, parseRoot, type XmlElement } from "../model/xml-read";
import type { ProjectMetadataPort } from "./libvirt-port";
import { readProjectMetadata, writeProjectMetadata } from "./project-metadata";

/** Where one disk of the delete stands; each value is written before the step it names begins. */
export const DiskPhase = {
  /** Nothing started on this disk yet. */
  PENDING: "pending",
  /** A commit job was (about to be) started: `base` may already hold part of `top`'s data. */
  MERGING: "merging",
  /** The active commit was READY and a pivot was (about to be) requested. */
  PIVOTING: "pivoting",
  /** `top` has left the live chain. */
  MERGED: "merged",
} as const;
export type DiskPhase = (typeof DiskPhase)[keyof typeof DiskPhase];

/** Where the whole delete stands. */
export const OperationPhase = {
  /**
   * The domain was shut off and is being started paused so its chains can be read and planned; nothing was
   * merged. Recovery only stops the domain again and forgets the operation.
   */
  STARTING: "starting",
  MERGING: "merging",
  /** Every disk is merged; the snapshot's metadata is (about to be) deleted with METADATA_ONLY. */
  DELETING_METADATA: "deleting-metadata",
  /** Metadata is gone; the merged overlays and the memory file are (about to be) removed. */
  REMOVING_FILES: "removing-files",
} as const;
export type OperationPhase = (typeof OperationPhase)[keyof typeof OperationPhase];

export interface JournalDisk {
  readonly target: string;
  /** Absolute path of the layer merged away. */
  readonly top: string;
  /** Absolute path of the layer receiving the data. */
  readonly base: string;
  /** `top` was the active layer: an active commit, READY, then a pivot. */
  readonly active: boolean;
  readonly phase: DiskPhase;
  /**
   * The disk's live chain (paths, active first) when its job was started; recorded with MERGING. Recovery
   * takes a `top` that left the chain as merged only when the chain is exactly this one without `top`.
   */
  readonly chain?: readonly string[];
}

export interface DeleteJournal {
  readonly kind: "delete";
  /** Random id of the operation, to tell one attempt from the next in logs. */
  readonly id: string;
  readonly snapshot: string;
  /** ISO 8601 time the operation began. */
  readonly startedAt: string;
  readonly phase: OperationPhase;
  /** The domain was shut off and the delete started it paused: whoever finishes must destroy it again. */
  readonly startedDomain: boolean;
  readonly disks: readonly JournalDisk[];
  /** Files to remove once the metadata is deleted (merged overlays, memory state). */
  readonly files: readonly string[];
}

const JOURNAL_ELEMENT = "journal";
const DISK_PHASES = new Set<string>(Object.values(DiskPhase));
const OPERATION_PHASES = new Set<string>(Object.values(OperationPhase));

/**
 * Returns the project metadata XML with the journal replaced by `journal` (null removes it) and, with
 * `forgetSnapshot`, without the engine's record of that snapshot; every other child is kept. `metadataXml`
 * undefined means the domain has no project metadata yet. Returns null when nothing would be left (the caller
 * then removes the element). Pure.
 */
export function withJournal(
  metadataXml: string | undefined,
  journal: DeleteJournal | null,
  forgetSnapshot?: string,
): string | null {
  let empty = false;
  const xml = editProjectMetadata(
    forgetSnapshot === undefined ? metadataXml : withoutSnapshotRecord(metadataXml, forgetSnapshot),
    (root) => {
      for (const old of editedChildElements(root, JOURNAL_ELEMENT)) root.removeChild(old);
      if (journal !== null) appendJournal(root, journal);
      empty = editedChildElements(root).length === 0;
    },
  );
  return empty ? null : xml;
}

function appendJournal(root: Element, journal: DeleteJournal): void {
  const element = appendElement(root, JOURNAL_ELEMENT, { version: "1" });
  const operation = appendElement(element, "operation", {
    kind: journal.kind,
    id: journal.id,
    snapshot: journal.snapshot,
    started: journal.startedAt,
    phase: journal.phase,
    "started-domain": journal.startedDomain ? "yes" : "no",
  });
  for (const disk of journal.disks) {
    const element = appendElement(operation, "disk", {
      target: disk.target,
      top: disk.top,
      base: disk.base,
      job: disk.active ? "active-commit" : "commit",
      phase: disk.phase,
    });
    for (const path of disk.chain ?? []) appendElement(element, "layer", { path });
  }
  for (const file of journal.files) appendElement(operation, "file", { path: file });
}

/**
 * The journal held in the project metadata XML, or null when there is none. A journal this version cannot
 * read fails loudly (JournalFormatError) rather than being ignored: acting on half of it could lose data. Pure.
 */
export function parseJournal(metadataXml: string | undefined): DeleteJournal | null {
  if (metadataXml === undefined) return null;
  const journal = childElements(parseAnyRoot(metadataXml), JOURNAL_ELEMENT)[0];
  if (journal === undefined) return null;
  if (attr(journal, "version") !== "1") throw new JournalFormatError("journal: unknown version");
  const operation = childElements(journal, "operation")[0];
  if (operation === undefined) return null;
  const phase = need(operation, "phase");
  if (need(operation, "kind") !== "delete" || !OPERATION_PHASES.has(phase)) {
    throw new JournalFormatError(`journal: unknown operation ${attr(operation, "kind")}/${phase}`);
  }
  return {
    kind: "delete",
    id: need(operation, "id"),
    snapshot: need(operation, "snapshot"),
    startedAt: need(operation, "started"),
    phase: phase as OperationPhase,
    startedDomain: attr(operation, "started-domain") === "yes",
    disks: childElements(operation, "disk").map((disk) => {
      const diskPhase = need(disk, "phase");
      if (!DISK_PHASES.has(diskPhase))
        throw new JournalFormatError(`journal: unknown disk phase ${diskPhase}`);
      const chain = childElements(disk, "layer").map((layer) => need(layer, "path"));
      return {
        target: need(disk, "target"),
        top: need(disk, "top"),
        base: need(disk, "base"),
        active: need(disk, "job") === "active-commit",
        phase: diskPhase as DiskPhase,
        ...(chain.length > 0 ? { chain } : {}),
      };
    }),
    files: childElements(operation, "file").map((file) => need(file, "path")),
  };
}

function need(el: XmlElement, name: string): string {
  const value = attr(el, name);
  if (value === undefined) throw new JournalFormatError(`journal: <${localName(el)}> lacks ${name}`);
  return value;
}

function parseAnyRoot(xml: string): XmlElement {
  return parseRoot(xml, PROJECT_METADATA_ROOT, "project metadata");
}

const JOURNAL_FORMAT_BRAND = "lvsnap.JournalFormatError" as const;

/** A journal exists but cannot be understood by this version. Branded, not instanceof. */
export class JournalFormatError extends Error {
  readonly brand = JOURNAL_FORMAT_BRAND;
  override readonly name = "JournalFormatError";
}

/** The libvirt calls the journal uses. */
export type JournalPort = ProjectMetadataPort;

/** Reads the unfinished operation recorded on the domain (live definition when running), or null. */
export async function readJournal(port: JournalPort, domain: DomainRef): Promise<DeleteJournal | null> {
  return parseJournal(await readProjectMetadata(port, domain));
}

/**
 * Records `journal` (null clears it) in both the live and the persistent definition, so it survives a
 * daemon restart, a destroy and a host reboot. `forgetSnapshot` also drops the engine's record of that (deleted)
 * snapshot in the same write. Idempotent. A failure leaves the previous record in place. Call it under the
 * domain lock: the element is shared and rewritten whole.
 */
export async function writeJournal(
  port: JournalPort,
  domain: DomainRef,
  journal: DeleteJournal | null,
  forgetSnapshot?: string,
): Promise<void> {
  const xml = withJournal(await readProjectMetadata(port, domain), journal, forgetSnapshot);
  await writeProjectMetadata(port, domain, xml);
}

/** A new journal id: random, short, safe in XML and logs. */
export function newOperationId(): string {
  return crypto.randomUUID();
}
