/**
 * Inspection of a domain's snapshots: the tree from libvirt's metadata joined with the live chains, with the
 * overlay, point-in-time image, memory file, creation time and quiesce state of every snapshot and disk.
 * Reads only; never takes the per-domain lock (a read concurrent with a create sees the state before or after).
 */
import type { DomainRef } from "../libvirt/api";
import { isLibvirtError } from "../libvirt/errors";
import { ErrorCode } from "../libvirt/flags";
import { type DomainModel, parseDomainXml } from "../model/domain";
import { parseProjectMetadata } from "../model/metadata";
import { parseSnapshotXml, type SnapshotModel } from "../model/snapshot";
import {
  type ConsistencyProblem,
  joinSnapshots,
  type SnapshotForest,
  type SnapshotView,
} from "../model/snapshot-tree";
import { resolveDomain } from "./domain-ref";
import { EngineError, EngineErrorKind } from "./errors";
import type { CurrentSnapshotPort, InspectPort, SnapshotReadPort } from "./libvirt-port";

/** A domain as reported to callers. */
export interface DomainIdentity {
  readonly name: string;
  readonly uuid: string;
}

export interface DomainSnapshots extends SnapshotForest {
  readonly domain: DomainIdentity;
}

export interface SnapshotDetails {
  readonly domain: DomainIdentity;
  readonly snapshot: SnapshotView;
  /** Consistency problems that concern this snapshot. */
  readonly problems: readonly ConsistencyProblem[];
}

/**
 * Every snapshot of the domain (name or UUID), parents before children, joined with the live chains, and the
 * problems found where metadata and chains disagree. Throws EngineError DOMAIN_NOT_FOUND or LIBVIRT.
 */
export async function listSnapshots(port: InspectPort, domain: string): Promise<DomainSnapshots> {
  const ref = await resolveDomain(port, domain);
  const [xml, snapshots, current] = await wrapRead(ref, () =>
    Promise.all([port.domainGetXMLDesc(ref, 0), readAllSnapshots(port, ref), readCurrentSnapshot(port, ref)]),
  );
  return forestOf(parseDomainXml(xml), snapshots, current);
}

/**
 * One snapshot with its place in the tree. Throws EngineError SNAPSHOT_NOT_FOUND when the domain has no
 * snapshot of that name, DOMAIN_NOT_FOUND or LIBVIRT otherwise.
 */
export async function getSnapshot(port: InspectPort, domain: string, name: string): Promise<SnapshotDetails> {
  const forest = await listSnapshots(port, domain);
  const snapshot = forest.snapshots.find((s) => s.name === name);
  if (snapshot === undefined) {
    throw new EngineError({
      kind: EngineErrorKind.SNAPSHOT_NOT_FOUND,
      domain: forest.domain.name,
      snapshot: name,
      message: `domain ${forest.domain.name} has no snapshot ${name}`,
    });
  }
  return { domain: forest.domain, snapshot, problems: forest.problems.filter((p) => p.snapshot === name) };
}

/**
 * Joins a parsed domain and its snapshots into the forest, with the project's records for quiesce state.
 * `current` (libvirt's current snapshot) tells the live branch from the others; see joinSnapshots.
 */
export function forestOf(
  domain: DomainModel,
  snapshots: readonly SnapshotModel[],
  current?: string,
): DomainSnapshots {
  const forest = joinSnapshots(domain, snapshots, parseProjectMetadata(domain.projectMetadataXml), current);
  return { domain: { name: domain.name, uuid: domain.uuid }, ...forest };
}

/** The parsed XML of every snapshot of the domain (read with up to libvirt's per-client concurrency). */
export async function readAllSnapshots(port: SnapshotReadPort, ref: DomainRef): Promise<SnapshotModel[]> {
  const refs = await port.domainListAllSnapshots(ref, 0);
  return Promise.all(refs.map(async (s) => parseSnapshotXml(await port.domainSnapshotGetXMLDesc(s, 0))));
}

/**
 * The name of libvirt's current snapshot of the domain, or undefined when it has none (libvirt answers
 * NO_DOMAIN_SNAPSHOT then; also when the last snapshot went away meanwhile). Reads only.
 */
export async function readCurrentSnapshot(
  port: CurrentSnapshotPort,
  ref: DomainRef,
): Promise<string | undefined> {
  try {
    return (await port.domainSnapshotCurrent(ref)).name;
  } catch (e) {
    if (isLibvirtError(e) && e.code === ErrorCode.NO_DOMAIN_SNAPSHOT) return undefined;
    throw e;
  }
}

async function wrapRead<T>(ref: DomainRef, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    throw new EngineError({
      kind: EngineErrorKind.LIBVIRT,
      domain: ref.name,
      message: `domain ${ref.name}: reading the domain and its snapshots failed`,
      cause: e,
    });
  }
}
