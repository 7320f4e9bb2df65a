/**
 * What revert and preview keep on the domain, in the project's metadata element (shared with the snapshot
 * records and the delete journal, and written through the same writer, project-metadata.ts):
 * ```xml
 * <state>
 *   <revert id="..." snapshot="s1" started="2026-11-22T02:40:00.000Z" phase="overlays" helper="lvsnap-revert-...">
 *     <previous target="vda" path="/images/vda.s2.qcow2"/>
 *     <overlay target="vda" path="/images/vda.s1.revert-1.qcow2"/>
 *     <discard snapshot="s2"/>
 *     <remove path="/images/vda.s2.qcow2"/>
 *   </revert>
 *   <preview snapshot="s1" saved="auto-before-preview-20261122T024000000Z" started="2026-11-22T02:40:00.000Z"/>
 * </state>
 * ```
 * `<revert>` is the intent of a revert in progress (written before the first change, cleared only when
 * everything is done, including the finishing phase: snapshots discarded, abandoned files removed), so a killed
 * revert can be cleaned up by the next operation. The end of a preview records its finishing phase the same
 * way (no helper then). `<remove>` lists the files a drop is about to remove, written before the first
 * snapshot's metadata goes, so a run killed in between still knows which files it meant to remove; `<preview>` says that the domain runs a preview and
 * which automatic snapshot holds the state to return to. Both survive restarts of this process and of libvirt.
 */
import type { Element } from "@xmldom/xmldom";
import type { DomainRef } from "../libvirt/api";
import { editProjectMetadata, PROJECT_METADATA_ROOT } from "../model/metadata";
import { appendElement, childElements as editedChildElements } from "../model/xml";
import { attr, childElements, localName, parseRoot, type XmlElement } from "../model/xml-read";
import type { ProjectMetadataPort } from "./libvirt-port";
import { readProjectMetadata, writeProjectMetadata } from "./project-metadata";

/** How far a recipe revert got; each value is written before the step it names begins. */
export const RevertPhase = {
  /** The domain is (about to be) stopped; nothing else changed. */
  STOPPING: "stopping",
  /** The helper domain is (about to be) defined and the overlays created; the domain definition is unchanged. */
  OVERLAYS: "overlays",
  /** The domain definition is (about to be) switched to the new overlays. */
  DEFINING: "defining",
  /** The definition uses the new overlays; the domain is (about to be) started or restored. */
  STARTING: "starting",
  /**
   * The disks are reverted and the domain is in its final state (or there was no recipe revert: a native
   * revert or the end of a preview); left to do: drop the `discard` snapshots, remove the files that nothing
   * needs any more (`previous`, `remove`, the dropped snapshots' files), make `snapshot` current if `settle`.
   */
  FINISHING: "finishing",
} as const;
export type RevertPhase = (typeof RevertPhase)[keyof typeof RevertPhase];

export interface RevertRecord {
  readonly id: string;
  readonly snapshot: string;
  /** ISO 8601. */
  readonly started: string;
  readonly phase: RevertPhase;
  /** Name of the throwaway domain that creates the overlays; absent for a record that only finishes. */
  readonly helper?: string;
  readonly overlays: readonly { readonly target: string; readonly path: string }[];
  /** The images the disks wrote to before the revert: abandoned once it completes (unless still needed). */
  readonly previous: readonly { readonly target: string; readonly path: string }[];
  /** Snapshots to drop (metadata only, leaves first) in the finishing phase; absent: none. */
  readonly discard?: readonly string[];
  /** Files a drop recorded for removal before deleting any metadata (each rechecked before removal). */
  readonly remove?: readonly string[];
  /**
   * false: the finishing phase leaves libvirt's current snapshot as it is; absent: it makes `snapshot` the
   * current one (revert-branch.ts settleSnapshot), as every recipe revert does.
   */
  readonly settle?: false;
}

export interface PreviewRecord {
  /** The snapshot being previewed. */
  readonly snapshot: string;
  /** The automatic snapshot holding the state from before the preview. */
  readonly saved: string;
  /** ISO 8601. */
  readonly started: string;
  /**
   * Set by an undo once the domain is back in the saved state and the preview's branch is dropped: what is
   * left is merging the saved snapshot away and clearing the record, so the undo is never reverted twice.
   */
  readonly returned?: true;
  /**
   * Set by an undo before its revert to the saved state begins (the revert passes its point of no return long
   * before it finishes): while it is set, a commit is refused and the next undo runs the revert again.
   */
  readonly undoing?: true;
}

const REVERT = "revert";
const PREVIEW = "preview";
const PHASES = new Set<string>(Object.values(RevertPhase));

/** The metadata document with the revert record replaced (null removes it); null when nothing is left. Pure. */
export function withRevertRecord(xml: string | undefined, record: RevertRecord | null): string | null {
  return replaceSection(xml, REVERT, (root) => {
    if (record === null) return;
    const el = appendElement(root, REVERT, {
      id: record.id,
      snapshot: record.snapshot,
      started: record.started,
      phase: record.phase,
      ...(record.helper === undefined ? {} : { helper: record.helper }),
      ...(record.settle === false ? { settle: "no" } : {}),
    });
    for (const previous of record.previous)
      appendElement(el, "previous", { target: previous.target, path: previous.path });
    for (const overlay of record.overlays)
      appendElement(el, "overlay", { target: overlay.target, path: overlay.path });
    for (const snapshot of record.discard ?? []) appendElement(el, "discard", { snapshot });
    for (const path of record.remove ?? []) appendElement(el, "remove", { path });
  });
}

/** The metadata document with the preview record replaced (null removes it); null when nothing is left. Pure. */
export function withPreviewRecord(xml: string | undefined, record: PreviewRecord | null): string | null {
  return replaceSection(xml, PREVIEW, (root) => {
    if (record === null) return;
    const { returned, undoing, ...attrs } = record;
    appendElement(root, PREVIEW, {
      ...attrs,
      ...(returned === true ? { returned: "yes" } : {}),
      ...(undoing === true ? { undoing: "yes" } : {}),
    });
  });
}

function replaceSection(xml: string | undefined, name: string, add: (root: Element) => void): string | null {
  let empty = false;
  const out = editProjectMetadata(xml, (root) => {
    for (const old of editedChildElements(root, name)) root.removeChild(old);
    add(root);
    empty = editedChildElements(root).length === 0;
  });
  return empty ? null : out;
}

/** The revert record in the metadata document, or null. Throws on a record this version cannot read. Pure. */
export function parseRevertRecord(xml: string | undefined): RevertRecord | null {
  const el = section(xml, REVERT);
  if (el === undefined) return null;
  const phase = need(el, "phase");
  if (!PHASES.has(phase)) throw new Error(`revert record: unknown phase ${phase}`);
  const helper = attr(el, "helper");
  const discard = childElements(el, "discard").map((d) => need(d, "snapshot"));
  const remove = childElements(el, "remove").map((r) => need(r, "path"));
  return {
    id: need(el, "id"),
    snapshot: need(el, "snapshot"),
    started: need(el, "started"),
    phase: phase as RevertPhase,
    ...(helper === undefined ? {} : { helper }),
    overlays: childElements(el, "overlay").map((o) => ({ target: need(o, "target"), path: need(o, "path") })),
    previous: childElements(el, "previous").map((o) => ({
      target: need(o, "target"),
      path: need(o, "path"),
    })),
    ...(discard.length === 0 ? {} : { discard }),
    ...(remove.length === 0 ? {} : { remove }),
    ...(attr(el, "settle") === "no" ? { settle: false as const } : {}),
  };
}

/** The preview record in the metadata document, or null. Pure. */
export function parsePreviewRecord(xml: string | undefined): PreviewRecord | null {
  const el = section(xml, PREVIEW);
  if (el === undefined) return null;
  return {
    snapshot: need(el, "snapshot"),
    saved: need(el, "saved"),
    started: need(el, "started"),
    ...(attr(el, "returned") === "yes" ? { returned: true as const } : {}),
    ...(attr(el, "undoing") === "yes" ? { undoing: true as const } : {}),
  };
}

function section(xml: string | undefined, name: string): XmlElement | undefined {
  if (xml === undefined || xml.trim() === "") return undefined;
  return childElements(parseRoot(xml, PROJECT_METADATA_ROOT, "project metadata"), name)[0];
}

function need(el: XmlElement, name: string): string {
  const value = attr(el, name);
  if (value === undefined) throw new Error(`project metadata: <${localName(el)}> lacks ${name}`);
  return value;
}

/** Reads the revert record of the domain (live definition when running), or null. */
export async function readRevertRecord(
  port: ProjectMetadataPort,
  domain: DomainRef,
): Promise<RevertRecord | null> {
  return parseRevertRecord(await readProjectMetadata(port, domain));
}

/** Reads the preview record of the domain, or null. */
export async function readPreviewRecord(
  port: ProjectMetadataPort,
  domain: DomainRef,
): Promise<PreviewRecord | null> {
  return parsePreviewRecord(await readProjectMetadata(port, domain));
}

/**
 * Records (null clears) the revert in progress, in the live and persistent definitions, and in the same write
 * replaces the preview record with `preview` when one is given (null removes it; undefined leaves it as it
 * is). One metadata write. Idempotent.
 */
export async function writeRevertRecord(
  port: ProjectMetadataPort,
  domain: DomainRef,
  record: RevertRecord | null,
  preview?: PreviewRecord | null,
): Promise<void> {
  const xml = withRevertRecord(await readProjectMetadata(port, domain), record);
  await writeProjectMetadata(
    port,
    domain,
    preview === undefined ? xml : withPreviewRecord(xml ?? undefined, preview),
  );
}

/**
 * The preview record once the revert `record` reached its finishing phase (the domain is in the state of
 * `record.snapshot` from then on): the preview whose undo returns to `record.snapshot` is marked `returned`
 * (and no longer `undoing`), so a later undo only merges the saved snapshot away and never reverts a second
 * time over what the guest wrote since. Undefined: the preview record stays as it is. Pure.
 */
export function previewOnceFinishing(
  preview: PreviewRecord | null,
  record: Pick<RevertRecord, "snapshot">,
): PreviewRecord | undefined {
  if (preview?.undoing !== true || preview.saved !== record.snapshot) return undefined;
  const { undoing: _undoing, ...rest } = preview;
  return { ...rest, returned: true };
}

/**
 * The preview record once the revert `record` was rolled back (the domain keeps the state it had before):
 * the preview of `record.snapshot` that this revert was starting (open, neither being undone nor returned;
 * plain reverts are refused while a preview is open, so no other revert targets that snapshot) never started,
 * and is removed (null). Undefined: the preview record stays as it is. Pure.
 */
export function previewOnceRolledBack(
  preview: PreviewRecord | null,
  record: Pick<RevertRecord, "snapshot">,
): null | undefined {
  const starting =
    preview !== null &&
    preview.snapshot === record.snapshot &&
    preview.undoing !== true &&
    preview.returned !== true;
  return starting ? null : undefined;
}

/** Records (null clears) the preview of the domain, in the live and persistent definitions. Idempotent. */
export async function writePreviewRecord(
  port: ProjectMetadataPort,
  domain: DomainRef,
  record: PreviewRecord | null,
): Promise<void> {
  await writeProjectMetadata(
    port,
    domain,
    withPreviewRecord(await readProjectMetadata(port, domain), record),
  );
}
