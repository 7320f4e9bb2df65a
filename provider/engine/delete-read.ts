/**
 * What a delete reads of its own domain under the domain lock, in as few round trips as the data allows:
 * 1. the state, the live XML (which carries the project's metadata: journal, revert and preview records) and
 *    the snapshot list, together;
 * 2. every snapshot's XML and, for a domain with QEMU running, the block job of each disk, together, with at
 *    most `DELETE_READS_IN_FLIGHT` calls pending.
 * After the delete started a shut-off domain paused, only the live XML is read again: the snapshots' XML does
 * not change by starting the domain. Reads only; a failed read rejects and nothing was changed.
 */
import type { DomainRef, LibvirtApi, SnapshotRef } from "../libvirt/api";
import { DomainState } from "../libvirt/api";
import { DomainXMLFlags } from "../libvirt/flags";
import { type DomainModel, parseDomainXml } from "../model/domain";
import { parseSnapshotXml, type SnapshotModel } from "../model/snapshot";
import type { DeleteView, FoundBlockJob } from "./delete-outcome";
import { forestOf, readCurrentSnapshot } from "./inspect";
import { backingLinks, hostViewOf } from "./revert-branch";
import { callSlots } from "./scan-sharing";

/** The calls of this module. */
export type DeleteReadPort = Pick<
  LibvirtApi,
  | "domainGetState"
  | "domainGetXMLDesc"
  | "domainListAllSnapshots"
  | "domainSnapshotGetXMLDesc"
  | "domainGetBlockJobInfo"
  | "domainSnapshotCurrent"
>;

/** Calls of the second round pending at once: one below libvirtd's 5 requests per client. */
export const DELETE_READS_IN_FLIGHT = 4;

/** The first round: enough to tell whether recovery must run first and what the second round reads. */
export interface FirstRead {
  /** libvirt's DomainState. */
  readonly state: number;
  readonly model: DomainModel;
  readonly snapshots: readonly SnapshotRef[];
}

/** Round 1 (see the module comment). */
export async function readFirst(port: DeleteReadPort, ref: DomainRef): Promise<FirstRead> {
  const [info, xml, snapshots] = await Promise.all([
    port.domainGetState(ref),
    port.domainGetXMLDesc(ref, 0),
    port.domainListAllSnapshots(ref, 0),
  ]);
  return { state: info.state, model: parseDomainXml(xml), snapshots };
}

/** Everything a delete plans from: both rounds joined. */
export interface LockedView extends DeleteView {
  /** libvirt's DomainState, as read in round 1. */
  readonly state: number;
  /** Each snapshot's XML as libvirt returned it, by name. */
  readonly snapshotXml: ReadonlyMap<string, string>;
  /** Block jobs found on the disks of the live XML; none when no QEMU process runs. */
  readonly jobs: readonly FoundBlockJob[];
}

/**
 * Round 2 (see the module comment). Block jobs are read for every disk of the live XML that has a source (the
 * snapshot's disks are not known before its XML is read, and a round trip costs more than a read): the caller
 * keeps the ones on the disks it merges.
 */
export async function readSecond(
  port: DeleteReadPort,
  ref: DomainRef,
  first: FirstRead,
): Promise<LockedView> {
  const slots = callSlots(DELETE_READS_IN_FLIGHT);
  const qemuRuns = first.state !== DomainState.SHUTOFF && first.state !== DomainState.CRASHED;
  const targets = qemuRuns ? first.model.disks.filter((d) => d.chain.length > 0).map((d) => d.target) : [];
  const [xmls, infos] = await Promise.all([
    Promise.all(first.snapshots.map((s) => slots(() => port.domainSnapshotGetXMLDesc(s, 0)))),
    Promise.all(targets.map((disk) => slots(() => port.domainGetBlockJobInfo(ref, disk)))),
  ]);
  const snapshotXml = new Map(first.snapshots.map((s, i) => [s.name, xmls[i] ?? ""]));
  const jobs = targets.flatMap((disk, i) => {
    const info = infos[i];
    return info === null || info === undefined ? [] : [{ disk, type: info.type }];
  });
  return { ...viewOf(first.model, snapshotXml), state: first.state, snapshotXml, jobs };
}

/** The live model joined with the snapshots. Pure. */
function viewOf(model: DomainModel, snapshotXml: ReadonlyMap<string, string>): DeleteView {
  const snapshots: SnapshotModel[] = [...snapshotXml.values()].map((x) => parseSnapshotXml(x));
  return { model, forest: forestOf(model, snapshots) };
}

/**
 * The view of a domain the delete just started paused: its live XML read again (it now lists the complete
 * chains, which a persistent definition may not), the snapshots as `before` read them.
 */
export async function readRestarted(port: DeleteReadPort, ref: DomainRef, before: LockedView) {
  const model = parseDomainXml(await port.domainGetXMLDesc(ref, 0));
  return { ...before, ...viewOf(model, before.snapshotXml) };
}

/**
 * Which image each image is backed by (revert-branch.ts `backingLinks`), for the planner to tell what the
 * snapshots off the live chain read. Read only when there are such snapshots (after a revert): otherwise the
 * planner does not need it. Only the persistent definition and libvirt's current snapshot are read; the live
 * XML and the snapshots' XML come from `view`. Reads only.
 */
export async function offChainBacking(
  port: DeleteReadPort,
  ref: DomainRef,
  view: LockedView,
): Promise<ReadonlyMap<string, string>> {
  const offChain = view.forest.snapshots.some((s) => s.disks.some((d) => d.chainPosition === undefined));
  if (!offChain) return new Map();
  const [persistentXml, current] = await Promise.all([
    port.domainGetXMLDesc(ref, DomainXMLFlags.INACTIVE),
    readCurrentSnapshot(port, ref),
  ]);
  return backingLinks([
    hostViewOf({ live: view.model, persistentXml, snapshotXml: view.snapshotXml, current }),
  ]);
}
