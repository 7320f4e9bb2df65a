/**
 * Keeps the files of a delete that another domain on the host still uses. A merged overlay (or a memory file)
 * belongs to this domain's chains only as far as this domain knows: another domain may run on a linked clone
 * whose backing file is that overlay, or name it as a disk. Removing it would break that domain, so before a
 * delete changes anything it reads the other domains of the host, and keeps every file one of them names, with
 * a warning. (The merge itself keeps such a clone's data: the overlay's own content does not change, and the
 * image below it gains only what the overlay already shadows.) A domain that reads the image the merge writes
 * into without the merged overlay above it would see its data change: such a merge is refused before anything
 * is done.
 *
 * What is read, per other domain: its live and persistent definitions; and, only when the domain is not
 * running, its snapshots' XML. Every file image in those documents is seen (disk sources, the backing chains
 * libvirt lists, snapshot overlays, the images each snapshot's saved domain used, memory files).
 * - A running (or paused) domain's live XML lists every image of its current chains, which covers every
 *   snapshot on its current branch, so its snapshots are not read.
 * - A shut-off domain's persistent definition lists only what it was written with: after a snapshot taken while
 *   shut off only the new top image (libvirt 9.0, verified), after one taken while running the top image and
 *   the one below. Its snapshots' XML names the image below each overlay, so together they name the chain
 *   its snapshots made; that is why they are read for these domains.
 * Not seen: an image reached only through qcow2 headers (a shut-off linked clone defined with just its top
 * image), an image named only by a running domain's snapshot on a branch it left by a revert, and volume or
 * network sources, which carry no path.
 *
 * Evidence for reading a shut-off domain's snapshots (test/integration/engine/delete-others.test.ts): a domain
 * whose disk is the image a merge writes into, snapshotted while shut off, is named by nothing else; without
 * its snapshot's XML the merge goes through and changes what that snapshot reads.
 *
 * Cost: one scan lists every domain (libvirtd waits for each domain object's lock) and reads the others with at
 * most `REFERENCE_READS_IN_FLIGHT` calls pending; concurrent deletes on one connection share a scan when it
 * started after they took their domain lock (see `referencesOutside`).
 */
import { posix } from "node:path";
import type { DomainRef, LibvirtApi } from "../libvirt/api";
import { DomainXMLFlags, ErrorCode } from "../libvirt/flags";
import { type ImageSource, parseDomainElement } from "../model/domain";
import { parseSnapshotXml } from "../model/snapshot";
import { attr, parseRoot } from "../model/xml-read";
import type { DeleteStep } from "./delete-plan";
import { libvirtCodeOf } from "./errors";
import { type CallSlots, callSlots, freshFlights, type ScanMark, scanMark } from "./scan-sharing";

/** The calls that read the other domains of the host. */
export type ReferencePort = Pick<
  LibvirtApi,
  "connectListAllDomains" | "domainGetXMLDesc" | "domainListAllSnapshots" | "domainSnapshotGetXMLDesc"
>;

/**
 * Normalized absolute path -> who uses it (`domain web-1`, `snapshot s1 of domain web-1`), sorted by domain name,
 * each domain before its snapshots, snapshots by name: messages naming them read the same however the host
 * listed its domains and whichever delete started a shared scan.
 */
export type FileReferences = ReadonlyMap<string, readonly string[]>;

/** The normalized paths of the file images among `images`. */
function filePaths(images: readonly (ImageSource | undefined)[]): string[] {
  return images.flatMap((i) => (i?.kind === "file" && i.path !== undefined ? [posix.normalize(i.path)] : []));
}

/** Every file image of a domain XML: each disk's source and the backing chain listed under it. Pure. */
export function filesOfDomainXml(xml: string): string[] {
  return readDomainXml(xml).files;
}

/** The files of a domain XML, and whether it is a running (or paused) domain's live XML: only that has an id. */
function readDomainXml(xml: string): { readonly files: string[]; readonly running: boolean } {
  const root = parseRoot(xml, "domain", "domain XML");
  const files = parseDomainElement(root).disks.flatMap((d) => filePaths(d.chain));
  return { files, running: attr(root, "id") !== undefined };
}

/** Every file a snapshot XML names: its overlays, the images its saved domain used, its memory file. Pure. */
export function filesOfSnapshotXml(xml: string): string[] {
  const snapshot = parseSnapshotXml(xml);
  const memory = snapshot.memory.file === undefined ? [] : [posix.normalize(snapshot.memory.file)];
  return [...snapshot.disks.flatMap((d) => filePaths([d.overlay, d.imageBefore])), ...memory];
}

/**
 * Splits the planned `steps` into those to run and the files to keep: a `remove-file` step whose path another
 * domain uses is dropped, with a warning that names the file, who uses it and what to do. Other steps are kept
 * in order. Pure.
 */
export function keepReferencedFiles(
  steps: readonly DeleteStep[],
  references: FileReferences,
): { readonly steps: DeleteStep[]; readonly warnings: string[] } {
  const kept: DeleteStep[] = [];
  const warnings: string[] = [];
  for (const step of steps) {
    const users = step.kind === "remove-file" ? references.get(posix.normalize(step.path)) : undefined;
    if (step.kind === "remove-file" && users !== undefined && users.length > 0) {
      warnings.push(
        `kept ${step.role === "memory" ? "memory file" : "merged overlay"} ${step.path}: ${users.join(", ")} ` +
          "still uses it; remove it once nothing uses it any more",
      );
    } else {
      kept.push(step);
    }
  }
  return { steps: kept, warnings };
}

/**
 * The merges among `steps` that would change what another domain reads: a commit writes `top`'s data into
 * `base`, which is harmless for a user that reads `base` only through `top` (its view stays the same) and
 * changes the data of any user that names `base` without `top` (a disk or a snapshot on that image, or on an
 * overlay of it other than `top`). One sentence per such merge, naming the users; empty when none. Pure.
 */
export function mergesChangingOthers(steps: readonly DeleteStep[], references: FileReferences): string[] {
  return steps.flatMap((step) => {
    if (step.kind !== "commit") return [];
    const throughTop = new Set(references.get(posix.normalize(step.top)) ?? []);
    const users = (references.get(posix.normalize(step.base)) ?? []).filter((u) => !throughTop.has(u));
    if (users.length === 0) return [];
    return [
      `disk ${step.disk}: ${users.join(", ")} ${users.length === 1 ? "uses" : "use"} ${step.base}, the image ` +
        `the merge writes into, without ${step.top} above it, so the merge would change what ` +
        `${users.length === 1 ? "it reads" : "they read"}`,
    ];
  });
}

/**
 * Why libvirt's own delete of a snapshot with `disks` must be refused: libvirt commits each overlay into the
 * image below it and removes the overlay itself, so it neither keeps an overlay another domain uses nor spares a
 * merge that changes what another domain reads. One sentence per overlay another domain uses, then one per such
 * merge (mergesChangingOthers); empty when the delete touches nothing another domain names. Pure.
 */
export function nativeDeleteConflicts(
  disks: readonly {
    readonly target: string;
    readonly overlay: ImageSource;
    readonly pointInTime?: ImageSource;
  }[],
  references: FileReferences,
): string[] {
  const removed = disks.flatMap((d) => {
    const users = d.overlay.path === undefined ? [] : (references.get(posix.normalize(d.overlay.path)) ?? []);
    if (users.length === 0) return [];
    return [
      `disk ${d.target}: ${users.join(", ")} ${users.length === 1 ? "uses" : "use"} ${d.overlay.path}, ` +
        "which libvirt's delete removes",
    ];
  });
  const commits: DeleteStep[] = disks.flatMap((d) =>
    d.overlay.path === undefined || d.pointInTime?.path === undefined
      ? []
      : [{ kind: "commit", disk: d.target, top: d.overlay.path, base: d.pointInTime.path, active: false }],
  );
  return [...removed, ...mergesChangingOthers(commits, references)];
}

/** Calls of one scan pending at once: one below libvirtd's 5 requests per client, left to other work. */
export const REFERENCE_READS_IN_FLIGHT = 4;

/** Who uses a file: a domain (its definitions) or one of its snapshots. */
interface FileUser {
  readonly domain: string;
  readonly snapshot?: string;
}

type FileUsers = readonly (readonly [string, FileUser])[];

/**
 * One scan: UUID of each domain of the host -> its [file, user] pairs, except `unread`, the domain of the
 * caller that started the scan (it needs no reading of itself).
 */
interface HostFiles {
  readonly domains: ReadonlyMap<string, FileUsers>;
  readonly unread?: DomainRef;
}

const scans = freshFlights<ReferencePort, HostFiles>();

/**
 * Reads which files the domains of the host other than `self` use (see the module comment). `lockedAt` is the
 * mark the caller took once it held the lock of `self` (default: now): a scan of the same `port` in flight that
 * started after it is joined instead of starting another, and each caller drops its own domain from the shared
 * result by UUID. The scan does not read the domain of the caller that started it; a caller that joins reads
 * that one domain itself. Domains or snapshots that disappear while they are read are skipped. Reads only; a
 * failure rejects (the caller then removes nothing), also for every caller that joined the scan.
 */
export async function referencesOutside(
  port: ReferencePort,
  self: DomainRef,
  lockedAt: ScanMark = scanMark(),
): Promise<FileReferences> {
  const host = await scans.run(port, lockedAt, () => scanHost(port, self));
  // A caller that joined reads the starter's domain itself, after its own lock, so that read is fresh too.
  const starter =
    host.unread === undefined || host.unread.uuid === self.uuid
      ? []
      : [
          [
            host.unread.uuid,
            await filesOfDomain(port, host.unread, callSlots(REFERENCE_READS_IN_FLIGHT)),
          ] as const,
        ];
  const users = new Map<string, Map<string, FileUser>>();
  for (const [uuid, pairs] of [...host.domains, ...starter]) {
    if (uuid === self.uuid) continue;
    for (const [file, user] of pairs) {
      const ofFile = users.get(file) ?? new Map<string, FileUser>();
      ofFile.set(describeUser(user), user);
      users.set(file, ofFile);
    }
  }
  return new Map(
    [...users].map(([file, ofFile]) => [file, [...ofFile.values()].sort(compareUsers).map(describeUser)]),
  );
}

function describeUser(user: FileUser): string {
  const domain = `domain ${user.domain}`;
  return user.snapshot === undefined ? domain : `snapshot ${user.snapshot} of ${domain}`;
}

/** By domain name, the domain before its snapshots, then by snapshot name; by code unit, not by locale. */
function compareUsers(a: FileUser, b: FileUser): number {
  const byCodeUnit = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  if (a.domain !== b.domain) return byCodeUnit(a.domain, b.domain);
  if (a.snapshot === undefined || b.snapshot === undefined) {
    return (a.snapshot === undefined ? 0 : 1) - (b.snapshot === undefined ? 0 : 1);
  }
  return byCodeUnit(a.snapshot, b.snapshot);
}

/**
 * Starts `referencesOutside` at once and returns how to wait for its result. A delete calls it as soon as it
 * holds the domain lock, so that the scan's wait (libvirt's list of all domains waits for every domain's lock)
 * overlaps the delete's own reads and planning instead of following them. The delete awaits the result before
 * its first irreversible step: the refusal of merges that change what another domain reads, and the journal's
 * list of files to remove (which recovery removes without asking again), both need it before anything changes.
 *
 * Freshness: the scan holds no lock of the other domains, so a domain defined (or changed) after the scan read
 * the host is not seen, wherever the scan falls in the delete. That was so when the scan ran after planning
 * too, and the merge, which can last minutes, was always inside that window; starting the scan here widens it
 * only by the delete's own reads (milliseconds). A domain defined meanwhile on one of the snapshot's overlays
 * is built on an image that a delete already in progress removes: the same race as defining it a moment after
 * the removal, which no scan can close. What matters is kept: every other domain that exists when the scan
 * lists the host is read after the delete took its lock, so every change made under that lock before is seen.
 *
 * A caller that ends without the result (absent snapshot, refusal, failed read) just drops it: the rejection
 * is handled here so that it is never unhandled, and whoever awaits the result still sees it. Reads only.
 */
export function startReferencesOutside(
  port: ReferencePort,
  self: DomainRef,
  lockedAt: ScanMark,
): () => Promise<FileReferences> {
  const scan = referencesOutside(port, self, lockedAt);
  scan.catch(() => undefined);
  return () => scan;
}

/** Every domain of the host but `starter` with the files it uses; each one's reads in parallel, bounded. */
async function scanHost(port: ReferencePort, starter: DomainRef): Promise<HostFiles> {
  const slots = callSlots(REFERENCE_READS_IN_FLIGHT);
  const all = await port.connectListAllDomains(0);
  const unread = all.find((d) => d.uuid === starter.uuid);
  const others = all.filter((d) => d !== unread);
  const found = await Promise.all(
    others.map(async (d) => [d.uuid, await filesOfDomain(port, d, slots)] as const),
  );
  return { domains: new Map(found), ...(unread === undefined ? {} : { unread }) };
}

/** [file, user] pairs of one domain: its live and persistent definitions, and its snapshots if not running. */
async function filesOfDomain(
  port: ReferencePort,
  domain: DomainRef,
  slots: CallSlots,
): Promise<[string, FileUser][]> {
  const user: FileUser = { domain: domain.name };
  const documents = await gone(
    Promise.all([
      slots(() => port.domainGetXMLDesc(domain, 0)),
      // Any failure but a vanished domain rejects: swallowing it would drop the files only this definition
      // names. A transient domain needs no exception: libvirt answers INACTIVE with its live definition.
      slots(() => port.domainGetXMLDesc(domain, DomainXMLFlags.INACTIVE)),
    ]),
  );
  if (documents === undefined) return [];
  const [live, persistent] = documents.map((xml) => (xml === undefined ? undefined : readDomainXml(xml)));
  const pairs: [string, FileUser][] = [...(live?.files ?? []), ...(persistent?.files ?? [])].map((file) => [
    file,
    user,
  ]);
  // Decided by the live document itself, not by the listing: a domain that stopped since is read in full.
  if (live?.running === true) return pairs;
  const snapshots = (await gone(slots(() => port.domainListAllSnapshots(domain, 0)))) ?? [];
  const xmls = await Promise.all(
    snapshots.map((s) => gone(slots(() => port.domainSnapshotGetXMLDesc(s, 0)))),
  );
  snapshots.forEach((snapshot, i) => {
    const xml = xmls[i];
    if (xml === undefined) return;
    for (const file of filesOfSnapshotXml(xml)) {
      pairs.push([file, { domain: domain.name, snapshot: snapshot.name }]);
    }
  });
  return pairs;
}
/** Resolves undefined when the domain or snapshot went away meanwhile; other failures reject. */
async function gone<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (e) {
    const code = libvirtCodeOf(e);
    if (code === ErrorCode.NO_DOMAIN || code === ErrorCode.NO_DOMAIN_SNAPSHOT) return undefined;
    throw e;
  }
}
