/**
 * Keeps the files of a delete that another domain on the host still uses. A merged overlay (or a memory file)
 * belongs to this domain's chains only as far as this domain knows: another domain may run on a linked clone
 * whose backing file is that overlay, or name it as a disk. Removing it would break that domain, so before a
 * delete changes anything it reads every other domain's definitions (live and persistent) and its snapshots'
 * XML, and keeps every file one of them names, with a warning. (The merge itself keeps such a clone's data:
 * the overlay's own content does not change, and the image below it gains only what the overlay already
 * shadows.) A domain that reads the image the merge writes into without the merged overlay above it would see
 * its data change: such a merge is refused before anything is done.
 *
 * What is seen: every file image in those documents (disk sources, the backing chains libvirt lists, snapshot
 * overlays and memory files). The live XML of a running domain lists its whole chains; a persistent definition
 * only when it was written with one: a shut-off domain whose definition lists only its top image is not
 * followed through the qcow2 headers. Volume and network sources carry no path and are not seen.
 */
import { posix } from "node:path";
import type { DomainRef, LibvirtApi } from "../libvirt/api";
import { DomainXMLFlags, ErrorCode } from "../libvirt/flags";
import { type ImageSource, parseDomainXml } from "../model/domain";
import { parseSnapshotXml } from "../model/snapshot";
import type { DeleteStep } from "./delete-plan";
import { libvirtCodeOf } from "./errors";

/** The calls that read the other domains of the host. */
export type ReferencePort = Pick<
  LibvirtApi,
  "connectListAllDomains" | "domainGetXMLDesc" | "domainListAllSnapshots" | "domainSnapshotGetXMLDesc"
>;

/** Normalized absolute path -> who uses it (`domain web-1`, `snapshot s1 of domain web-1`), in order found. */
export type FileReferences = ReadonlyMap<string, readonly string[]>;

/** The normalized paths of the file images among `images`. */
function filePaths(images: readonly (ImageSource | undefined)[]): string[] {
  return images.flatMap((i) => (i?.kind === "file" && i.path !== undefined ? [posix.normalize(i.path)] : []));
}

/** Every file image of a domain XML: each disk's source and the backing chain listed under it. Pure. */
export function filesOfDomainXml(xml: string): string[] {
  return parseDomainXml(xml).disks.flatMap((d) => filePaths(d.chain));
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
 * Reads which files the domains of the host other than `self` use (see the module comment). Domains or
 * snapshots that disappear while they are read are skipped. Reads only; a failure rejects (the caller then
 * removes nothing).
 */
export async function referencesOutside(port: ReferencePort, self: DomainRef): Promise<FileReferences> {
  const domains = (await port.connectListAllDomains(0)).filter((d) => d.uuid !== self.uuid);
  const found = await Promise.all(domains.map((d) => filesOfDomain(port, d)));
  const references = new Map<string, string[]>();
  for (const pairs of found) {
    for (const [file, user] of pairs) {
      const users = references.get(file) ?? [];
      if (!users.includes(user)) users.push(user);
      references.set(file, users);
    }
  }
  return references;
}

/** [file, user] pairs of one domain: its live and persistent definitions and its snapshots. */
async function filesOfDomain(port: ReferencePort, domain: DomainRef): Promise<[string, string][]> {
  const user = `domain ${domain.name}`;
  const pairs: [string, string][] = [];
  const documents = await gone(
    Promise.all([
      port.domainGetXMLDesc(domain, 0),
      // A transient domain has no persistent definition; its live XML is then all there is.
      port.domainGetXMLDesc(domain, DomainXMLFlags.INACTIVE).catch(() => undefined),
    ]),
  );
  for (const xml of documents ?? []) {
    if (xml !== undefined) for (const file of filesOfDomainXml(xml)) pairs.push([file, user]);
  }
  const snapshots = (await gone(port.domainListAllSnapshots(domain, 0))) ?? [];
  for (const snapshot of snapshots) {
    const xml = await gone(port.domainSnapshotGetXMLDesc(snapshot, 0));
    if (xml === undefined) continue;
    for (const file of filesOfSnapshotXml(xml)) {
      pairs.push([file, `snapshot ${snapshot.name} of domain ${domain.name}`]);
    }
  }
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
