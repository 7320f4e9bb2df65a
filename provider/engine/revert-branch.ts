/**
 * Branches after a revert: reading everything the host knows about the domain's images, dropping snapshots on
 * purpose (their data is not merged anywhere), and removing image files that nothing needs any more.
 *
 * Which files may go: an image is needed while a disk chain (live or persistent) contains it, or a remaining
 * snapshot's saved definition has it in a chain (its point-in-time image and the layers below), or it is a
 * remaining snapshot's point-in-time image as the live chains show it. Files are only ever removed if they are
 * overlays (some snapshot's overlay, a layer with a backing file in a chain, or an overlay a revert created),
 * never a disk's base image. Removal goes through libvirt's storage API (delete-files.ts), so it works on
 * remote hosts.
 */
import { posix } from "node:path";
import type { DomainRef, LibvirtApi } from "../libvirt/api";
import { isLibvirtError } from "../libvirt/errors";
import { DomainXMLFlags, ErrorCode, SnapshotCreateFlags, SnapshotDeleteFlags } from "../libvirt/flags";
import { type DomainModel, parseDomainXml } from "../model/domain";
import { findSnapshotRecord, parseProjectMetadata, withSnapshotRecord } from "../model/metadata";
import { parseSnapshotXml } from "../model/snapshot";
import { snapshotFilesOf } from "../model/snapshot-tree";
import { type FilePort, removeHostFile } from "./delete-files";
import { type ReferencePort, referencesOutside } from "./delete-references";
import { type DomainSnapshots, forestOf, readCurrentSnapshot } from "./inspect";
import type { CurrentSnapshotPort, ProjectMetadataPort, SnapshotReadPort } from "./libvirt-port";
import { writeProjectMetadata } from "./project-metadata";
import { isRevertOverlayName, revertOverlayStem } from "./revert-plan";
import { type NewSource, snapshotDomain, withSnapshotOverlays } from "./revert-xml";
import type { ScanMark } from "./scan-sharing";

/** The calls reading and dropping need. */
export type BranchPort = SnapshotReadPort &
  CurrentSnapshotPort &
  FilePort &
  ReferencePort &
  ProjectMetadataPort &
  Pick<LibvirtApi, "domainGetXMLDesc" | "domainSnapshotDelete" | "domainSnapshotCreateXML">;

/** Everything read from the host about the domain's images, at one moment. */
export interface HostView {
  /** The domain as it runs now (the persistent definition when it is shut off). */
  readonly live: DomainModel;
  /** The persistent definition, as XML (for redefinition) and as a model. */
  readonly persistentXml: string;
  readonly persistent: DomainModel;
  readonly forest: DomainSnapshots;
  /** Each snapshot's XML as libvirt returned it, by name. */
  readonly snapshotXml: ReadonlyMap<string, string>;
  /** Each snapshot's saved definition (point-in-time chains), by name. */
  readonly savedDomains: ReadonlyMap<string, DomainModel | undefined>;
}

/** Reads the domain, its persistent definition and every snapshot. Reads only. */
export async function readHostView(port: BranchPort, ref: DomainRef): Promise<HostView> {
  const [liveXml, persistentXml, refs, current] = await Promise.all([
    port.domainGetXMLDesc(ref, 0),
    port.domainGetXMLDesc(ref, DomainXMLFlags.INACTIVE),
    port.domainListAllSnapshots(ref, 0),
    readCurrentSnapshot(port, ref),
  ]);
  const xmls = await Promise.all(refs.map((s) => port.domainSnapshotGetXMLDesc(s, 0)));
  return hostViewOf({
    live: parseDomainXml(liveXml),
    persistentXml,
    snapshotXml: new Map(refs.map((s, i) => [s.name, xmls[i] ?? ""])),
    current,
  });
}

/**
 * The HostView of documents already read (for a caller that read some of them for its own use): the live
 * model, the persistent XML, each snapshot's XML by name and libvirt's current snapshot. Pure.
 */
export function hostViewOf(read: {
  readonly live: DomainModel;
  readonly persistentXml: string;
  readonly snapshotXml: ReadonlyMap<string, string>;
  readonly current: string | undefined;
}): HostView {
  const { live, persistentXml, snapshotXml } = read;
  return {
    live,
    persistentXml,
    persistent: parseDomainXml(persistentXml),
    forest: forestOf(
      live,
      [...snapshotXml.values()].map((x) => parseSnapshotXml(x)),
      read.current,
    ),
    snapshotXml,
    savedDomains: new Map([...snapshotXml].map(([name, xml]) => [name, snapshotDomain(xml)])),
  };
}

/** Every image path the host knows: chains, snapshot overlays, saved definitions. For naming new files. */
export function knownImagePaths(view: HostView): Set<string> {
  const paths = new Set<string>();
  for (const model of [view.live, view.persistent, ...view.savedDomains.values()]) {
    for (const disk of model?.disks ?? [])
      for (const image of disk.chain) if (image.path) paths.add(image.path);
  }
  for (const snap of view.forest.snapshots)
    for (const d of snap.disks) if (d.overlay.path) paths.add(d.overlay.path);
  return paths;
}

/**
 * Which image each known image is backed by: consecutive layers of every chain libvirt shows, each snapshot's
 * overlay on its point-in-time image, and each revert overlay (by its name) on the point-in-time image of the
 * snapshot it was made from. The persistent definition of a shut-off domain shows no backing chain, so these
 * links are what tells which images a shut-off domain still reads. Pure.
 */
export function backingLinks(views: readonly HostView[]): Map<string, string> {
  const links = new Map<string, string>();
  const known = new Set<string>();
  for (const view of views) for (const path of knownImagePaths(view)) known.add(path);
  for (const view of views) {
    for (const model of [view.live, view.persistent, ...view.savedDomains.values()]) {
      for (const disk of model?.disks ?? []) {
        disk.chain.forEach((image, i) => {
          const below = disk.chain[i + 1]?.path;
          if (image.path !== undefined && below !== undefined) links.set(image.path, below);
        });
      }
    }
    for (const snap of view.forest.snapshots) {
      for (const disk of snap.disks) {
        const pit = view.savedDomains.get(snap.name)?.disks.find((d) => d.target === disk.target)
          ?.chain[0]?.path;
        const backing = pit ?? disk.pointInTime?.path;
        if (backing === undefined) continue;
        if (disk.overlay.path !== undefined && !links.has(disk.overlay.path))
          links.set(disk.overlay.path, backing);
        const stem = revertOverlayStem(snap.name, disk.target, disk.overlay, view.forest);
        for (const path of known) {
          if (!links.has(path) && isRevertOverlayName(posix.basename(path), stem)) links.set(path, backing);
        }
      }
    }
  }
  return links;
}

/**
 * Images still needed when the snapshots in `dropped` are gone: every layer the domain's disks read (live and
 * persistent, following `links` below what libvirt shows), and every remaining snapshot's point-in-time image
 * with the layers below it. Pure.
 */
export function neededImages(
  view: HostView,
  dropped: ReadonlySet<string>,
  links: ReadonlyMap<string, string>,
): Set<string> {
  const needed = new Set<string>();
  const need = (path: string | undefined) => {
    for (let p = path; p !== undefined && !needed.has(p); p = links.get(p)) needed.add(p);
  };
  const needChains = (model: DomainModel | undefined) => {
    for (const disk of model?.disks ?? []) for (const image of disk.chain) need(image.path);
  };
  needChains(view.live);
  needChains(view.persistent);
  for (const snap of view.forest.snapshots) {
    if (dropped.has(snap.name)) continue;
    needChains(view.savedDomains.get(snap.name));
    for (const disk of snap.disks) need(disk.pointInTime?.path);
  }
  return needed;
}

/**
 * Whether `path` is known to be an overlay (never a base image): a snapshot's overlay, a layer with another
 * below it in a chain, or a file named the way reverts name their overlays (`*.revert-<n>.qcow2`).
 */
export function isKnownOverlay(path: string, views: readonly HostView[]): boolean {
  if (REVERT_OVERLAY_NAME.test(path)) return true;
  return views.some(
    (view) =>
      view.forest.snapshots.some((s) => s.disks.some((d) => d.overlay.path === path)) ||
      [view.live, view.persistent, ...view.savedDomains.values()].some((model) =>
        model?.disks.some((disk) => disk.chain.slice(0, -1).some((image) => image.path === path)),
      ),
  );
}

/** File names of the overlays reverts create (revert-plan.ts `revertOverlayPath`). */
const REVERT_OVERLAY_NAME = /\.revert-\d+\.qcow2$/;

/** What dropping did. */
export interface DropResult {
  /** Snapshots whose metadata was deleted, in order. */
  readonly dropped: readonly string[];
  /** Files removed (overlays and memory files), in order. */
  readonly removedFiles: readonly string[];
  /** Sentences the user should act on: files kept because another domain on the host still uses them. */
  readonly warnings: readonly string[];
}

/**
 * How a drop records the files it is about to remove, so that a run killed after deleting metadata (which is
 * what made those files recognisable) still knows them. revert-finish.ts keeps them in the revert record.
 */
export interface DropRecorder {
  /** Files an earlier, interrupted run of the same drop recorded: removed unless something needs them now. */
  readonly recorded: readonly string[];
  /** Records every file the drop may remove (`recorded` included), before any snapshot's metadata goes. */
  record(files: readonly string[]): Promise<void>;
}

/**
 * Deletes the metadata of `names` (in the order given: pass leaves first, so no snapshot is re-parented),
 * then removes the files only they needed: their overlays, their point-in-time images when nothing else needs
 * them, their memory files, and the `abandoned` images (the layers the disks wrote to before a revert) under
 * the same rule. The candidates are computed and handed to `recorder.record` first, then the metadata goes,
 * then each candidate that the domain's chains and remaining snapshots (read again) do not need is removed.
 * `earlier` (the view before a revert) helps to recognise abandoned layers as overlays. Nothing is merged.
 * A file that another domain on the host names (read before anything changes, see delete-references.ts) is
 * kept, with a warning: this domain's view cannot tell that a linked clone or a disk of another domain uses it.
 * `lockedAt` is the mark the caller took once it held the domain lock: that read joins a scan of the host
 * started after it (by a concurrent delete, say) instead of starting another.
 * Idempotent: absent snapshots and files are skipped. A failure leaves the snapshots dropped so far dropped
 * and the remaining files in place; running again with the recorded files as `recorder.recorded` removes them.
 */
export async function dropSnapshotsAndFiles(
  port: BranchPort,
  ref: DomainRef,
  names: readonly string[],
  abandoned: readonly string[],
  recorder: DropRecorder,
  lockedAt: ScanMark,
  earlier?: HostView,
): Promise<DropResult> {
  const before = await readHostView(port, ref);
  const dropped = names.filter((n) => before.snapshotXml.has(n));
  const candidates: string[] = [...abandoned];
  const memoryFiles: string[] = [];
  for (const name of dropped) {
    const snap = before.forest.snapshots.find((s) => s.name === name);
    for (const disk of snap?.disks ?? []) if (disk.overlay.path) candidates.push(disk.overlay.path);
    for (const disk of before.savedDomains.get(name)?.disks ?? []) {
      const pit = disk.chain[0]?.path;
      if (pit !== undefined && snap?.disks.some((d) => d.target === disk.target)) candidates.push(pit);
    }
    if (snap?.memory.mode === "external" && snap.memory.file) memoryFiles.push(snap.memory.file);
  }
  const seen = earlier === undefined ? [before] : [earlier, before];
  const neededBefore = neededImages(before, new Set(dropped), backingLinks(seen));
  const files = [
    ...new Set([
      ...recorder.recorded,
      ...candidates.filter((p) => !neededBefore.has(p) && isKnownOverlay(p, seen)),
      ...memoryFiles,
    ]),
  ];
  // Read before anything changes: a failure then leaves nothing to undo.
  const references = await referencesOutside(port, ref, lockedAt);
  await recorder.record(files);
  for (const name of dropped) {
    try {
      await port.domainSnapshotDelete(
        await port.domainSnapshotLookupByName(ref, name),
        SnapshotDeleteFlags.METADATA_ONLY,
      );
    } catch (e) {
      if (!(isLibvirtError(e) && e.code === ErrorCode.NO_DOMAIN_SNAPSHOT)) throw e;
    }
  }
  // libvirt may rewrite the remaining snapshots when metadata goes: what is needed is decided on what is left.
  const after = await readHostView(port, ref);
  const needed = neededImages(after, new Set(), backingLinks([...seen, after]));
  for (const snap of after.forest.snapshots) if (snap.memory.file) needed.add(snap.memory.file);
  const removedFiles: string[] = [];
  const warnings: string[] = [];
  for (const path of files) {
    if (needed.has(path)) continue;
    const users = references.get(posix.normalize(path)) ?? [];
    if (users.length > 0) {
      warnings.push(
        `kept ${path}: ${users.join(", ")} still uses it; remove it once nothing uses it any more`,
      );
    } else if ((await removeHostFile(port, path)) === "removed") {
      removedFiles.push(path);
    }
  }
  return { dropped, removedFiles, warnings };
}

/**
 * Makes `snapshot` libvirt's current snapshot (so the next one becomes its child) and, when it has no child
 * and each of its disks writes to a revert overlay made from it, records those overlays as its own: the tree
 * then reads exactly as if the snapshot had just been taken, so the delete engine can merge it later. With
 * children (an older branch still reads its old overlay) the metadata is left as it is: rewriting it would
 * hide that branch's dependency from the delete engine. One REDEFINE|CURRENT call, preceded when adopting by
 * the move of the snapshot's record (moveSnapshotRecord); a failure of the call leaves at most the record moved,
 * and running this again completes it. Resolves the overlays recorded (empty when the metadata was kept).
 */
export async function settleSnapshot(
  port: BranchPort,
  ref: DomainRef,
  snapshot: string,
): Promise<NewSource[]> {
  const view = await readHostView(port, ref);
  const snap = view.forest.snapshots.find((s) => s.name === snapshot);
  const xml = view.snapshotXml.get(snapshot);
  if (snap === undefined || xml === undefined)
    throw new Error(`domain ${ref.name} has no snapshot ${snapshot}`);
  const sources = snap.disks.flatMap((disk): NewSource[] => {
    const active = view.persistent.disks.find((d) => d.target === disk.target)?.chain[0]?.path;
    const stem = revertOverlayStem(snapshot, disk.target, disk.overlay, view.forest);
    return active !== undefined && isRevertOverlayName(posix.basename(active), stem)
      ? [{ target: disk.target, overlayPath: active }]
      : [];
  });
  const adopt = snap.children.length === 0 && sources.length === snap.disks.length && sources.length > 0;
  const settled = adopt ? withSnapshotOverlays(xml, sources) : xml;
  if (adopt) await moveSnapshotRecord(port, ref, view.live, snapshot, xml, settled);
  await port.domainSnapshotCreateXML(
    ref,
    settled,
    SnapshotCreateFlags.REDEFINE | SnapshotCreateFlags.CURRENT,
  );
  return adopt ? sources : [];
}

/**
 * Keeps the engine's record of `snapshot` (quiesce state; what tells the Pulumi layer the engine made it) when
 * settling gives the snapshot new overlays: records are matched by the snapshot's files, so the record must
 * follow them. Written before the redefinition; a run killed in between left the record already moved (found
 * by the new files, nothing to do) or not yet (found by the old ones). No record: nothing to move.
 */
async function moveSnapshotRecord(
  port: ProjectMetadataPort,
  ref: DomainRef,
  live: DomainModel,
  snapshot: string,
  oldXml: string,
  newXml: string,
): Promise<void> {
  const metadata = parseProjectMetadata(live.projectMetadataXml);
  const record = findSnapshotRecord(metadata, snapshot, snapshotFilesOf(parseSnapshotXml(oldXml)));
  if (record === undefined) return;
  const files = snapshotFilesOf(parseSnapshotXml(newXml));
  await writeProjectMetadata(port, ref, withSnapshotRecord(live.projectMetadataXml, { ...record, files }));
}
