/**
 * Creating an external snapshot of a running, paused or shut-off domain: one atomic libvirt call for all
 * disks, preceded by a plan from the live state and followed by a verification of the chains read back.
 *
 * Calls per create in the common case (no interrupted operation, no quiesce fallback), each line one round
 * trip, the calls of a line in flight together: domain lookup; [state, domain XML, snapshot list]; record
 * write; snapshot create (create-call.ts); [snapshot XML, domain XML]. Nothing is written after the create.
 */
import type { DomainRef } from "../libvirt/api";
import { DomainState } from "../libvirt/api";
import { type DomainModel, parseDomainXml } from "../model/domain";
import { parseProjectMetadata } from "../model/metadata";
import { parseSnapshotXml, type SnapshotModel } from "../model/snapshot";
import { joinSnapshots, type SnapshotView } from "../model/snapshot-tree";
import { chainMismatches } from "./chain-verify";
import { createWithRecord } from "./create-call";
import {
  type CreatePlan,
  type CreateSnapshotRequest,
  type DiskSelection,
  planCreate,
  type SkippedDisk,
  type SnapshotDomainState,
  selectDisks,
  validateCreateRequest,
} from "./create-plan";
import { withDomainLock } from "./domain-lock";
import { resolveDomain } from "./domain-ref";
import { EngineError, EngineErrorKind, libvirtStep } from "./errors";
import type { DomainIdentity } from "./inspect";
import type { CreatePort } from "./libvirt-port";
import {
  finishInterruptedOperations,
  hasInterruptedOperation,
  type RecoveryPort,
  type RecoveryReport,
} from "./recover";

/** Progress of one create, in order; `waiting-for-lock` only when another operation holds the domain. */
export type CreateProgress =
  | { readonly kind: "waiting-for-lock" }
  | { readonly kind: "locked" }
  | { readonly kind: "quiesce-fallback"; readonly reason: string }
  | { readonly kind: "created" }
  | { readonly kind: "adopted" };

export interface CreateHooks {
  /** Called synchronously at each step; an exception thrown here is ignored. */
  readonly onProgress?: (event: CreateProgress) => void;
  /**
   * Gives up the create, as far as that is safe. Aborted before the record and the libvirt create call are
   * sent (while validating, waiting for the domain's lock, or reading the domain), the create rejects with the
   * signal's reason and nothing was made; aborted after the record was written and before the create call,
   * or between a quiesced attempt that libvirt refused and the retry without QUIESCE, only a record stays,
   * which matches no snapshot. Once the
   * create call was sent, the abort is ignored: the call finishes and the result (the snapshot, recorded and
   * verified, or the error) is reported as without a signal, because a snapshot half made and then abandoned
   * would be orphaned. So an aborted create settles after at most one libvirt call in flight plus the steps
   * after a create.
   */
  readonly signal?: AbortSignal;
}

export interface CreateSnapshotResult {
  readonly domain: DomainIdentity;
  /** The snapshot as inspection reports it (overlays, point-in-time images, memory file, creation time...). */
  readonly snapshot: SnapshotView;
  /** True when a snapshot of that name already existed with the same disks and memory mode (nothing done). */
  readonly adopted: boolean;
  /** Whether guest file systems were frozen; undefined only for an adopted snapshot with no record. */
  readonly quiesced: boolean | undefined;
  /** Why not quiesced (no agent channel, agent not answering, memory snapshot, domain paused or off). */
  readonly quiesceNote?: string;
  /** Disks left out, with the reason; those with `warning` are also in `warnings`. */
  readonly skipped: readonly SkippedDisk[];
  /** Sentences for the user: writable disks left out. */
  readonly warnings: readonly string[];
  /** Unfinished earlier operations (a delete, a revert) that were finished (or rolled back) first. */
  readonly recovered?: RecoveryReport;
}

/**
 * Creates the snapshot `request.name` of `request.domain` (name or UUID).
 *
 * - Validation of the request happens before any call to the host.
 * - One operation per domain at a time in this process: a second call waits for the first.
 * - All disks in one ATOMIC call: on any failure libvirt removes what it created, the chains stay as they were,
 *   and the EngineError names the domain, the disk (when libvirt's message allows) and the libvirt code.
 * - Afterwards the live chains are re-read and verified (VERIFY_FAILED if they differ; the snapshot then
 *   exists and is reported in the message).
 * - Idempotent: an existing snapshot of that name with the same disks and memory mode is adopted
 *   (`adopted: true`); one that differs is SNAPSHOT_CONFLICT.
 * - The quiesce outcome is recorded in the domain's project metadata BEFORE the snapshot exists (the create
 *   call is sent once libvirt confirmed the record, see `createWithRecord`), keyed by the snapshot's name and
 *   the files it creates, so a run killed right after libvirt made the snapshot still leaves it recorded. A
 *   failed create leaves that record behind; it matches no snapshot and the next create of the name replaces
 *   it. A failed record write creates nothing (EngineError LIBVIRT).
 * - Unfinished earlier operations (a delete journal, a revert record in the domain XML read under the lock)
 *   are finished first (`finishInterruptedOperations`) and the domain is read again; without one, recovery
 *   costs no call.
 */
export async function createSnapshot(
  port: CreatePort & RecoveryPort,
  request: CreateSnapshotRequest,
  hooks: CreateHooks = {},
): Promise<CreateSnapshotResult> {
  const { signal } = hooks;
  signal?.throwIfAborted();
  validateCreateRequest(request);
  const ref = await resolveDomain(port, request.domain);
  const report = progressReporter(hooks);
  return withDomainLock(
    ref.uuid,
    () => createUnderLock(port, ref, request, report, signal),
    () => report({ kind: "waiting-for-lock" }),
    signal,
  );
}

/**
 * `createSnapshot` for a caller that already holds `ref`'s domain lock and so needs no second hold (a revert or
 * a preview keeping the current state as a snapshot in the same hold as the revert): validates the request,
 * then everything `createSnapshot` does under the lock, with the same results, errors and abort semantics.
 */
export async function createSnapshotWhileLocked(
  port: CreatePort & RecoveryPort,
  ref: DomainRef,
  request: CreateSnapshotRequest,
  hooks: CreateHooks = {},
): Promise<CreateSnapshotResult> {
  hooks.signal?.throwIfAborted();
  validateCreateRequest(request);
  return createUnderLock(port, ref, request, progressReporter(hooks), hooks.signal);
}

/** The hooks' progress listener, made unable to change the outcome of the operation. */
function progressReporter(hooks: CreateHooks): (event: CreateProgress) => void {
  return (event) => {
    try {
      hooks.onProgress?.(event);
    } catch {
      // A progress listener must not change the outcome of the operation.
    }
  };
}

async function createUnderLock(
  port: CreatePort & RecoveryPort,
  ref: DomainRef,
  request: CreateSnapshotRequest,
  report: (event: CreateProgress) => void,
  signal: AbortSignal | undefined,
): Promise<CreateSnapshotResult> {
  report({ kind: "locked" });
  let live = await readDomain(port, ref, request);
  // Recovery reads the metadata again only when the domain XML just read says there is something to finish.
  const recovered = hasInterruptedOperation(live.domain.projectMetadataXml)
    ? await finishInterruptedOperations(port, ref)
    : null;
  if (recovered !== null) live = await readDomain(port, ref, request);
  const result = await createLocked(port, ref, live, request, report, () => signal?.throwIfAborted());
  return recovered === null ? result : { ...result, recovered };
}

/** The domain as read under the lock, in one parallel batch: state, live XML, snapshot names. */
interface LiveDomain {
  readonly state: number;
  readonly domain: DomainModel;
  readonly snapshotNames: ReadonlySet<string>;
}

async function readDomain(
  port: CreatePort,
  ref: DomainRef,
  request: CreateSnapshotRequest,
): Promise<LiveDomain> {
  const [stateInfo, xml, existing] = await libvirtStep(ref.name, request.name, "reading the domain", () =>
    Promise.all([
      port.domainGetState(ref),
      port.domainGetXMLDesc(ref, 0),
      port.domainListAllSnapshots(ref, 0),
    ]),
  );
  return {
    state: stateInfo.state,
    domain: parseDomainXml(xml),
    snapshotNames: new Set(existing.map((s) => s.name)),
  };
}

async function createLocked(
  port: CreatePort,
  ref: DomainRef,
  live: LiveDomain,
  request: CreateSnapshotRequest,
  report: (event: CreateProgress) => void,
  beforeCreateCall: () => void,
): Promise<CreateSnapshotResult> {
  const { domain } = live;
  const state = snapshotState(live.state, domain.name, request);
  const selection = selectDisks(domain, request);
  if (live.snapshotNames.has(request.name)) {
    const result = await adopt(port, ref, domain, request, selection);
    report({ kind: "adopted" });
    return result;
  }
  const plan = planCreate(domain, state, live.snapshotNames, request, selection);
  // The metadata read above is current: every writer of it holds the per-domain lock.
  const { snapshotRef, record } = await createWithRecord(
    port,
    { ref, state: live.state, projectMetadataXml: domain.projectMetadataXml },
    plan,
    (reason) => report({ kind: "quiesce-fallback", reason }),
    beforeCreateCall,
  );
  report({ kind: "created" });
  const [snapshotXml, afterXml] = await Promise.all([
    libvirtStep(ref.name, request.name, "reading the new snapshot", () =>
      port.domainSnapshotGetXMLDesc(snapshotRef, 0),
    ),
    libvirtStep(ref.name, request.name, "reading the domain after the snapshot", () =>
      port.domainGetXMLDesc(ref, 0),
    ),
  ]);
  const snapshot = parseSnapshotXml(snapshotXml);
  const after = parseDomainXml(afterXml);
  verifyCreated(after, snapshot, plan);
  const warnings = plan.skipped
    .filter((s) => s.warning)
    .map((s) => `${s.message}; it is not in snapshot ${plan.name}`);
  return {
    domain: { name: domain.name, uuid: domain.uuid },
    snapshot: viewOf(after, snapshot, { snapshots: [record] }),
    adopted: false,
    quiesced: record.quiesced,
    ...(record.quiesceNote === undefined ? {} : { quiesceNote: record.quiesceNote }),
    skipped: plan.skipped,
    warnings,
  };
}

/**
 * Re-reads are compared with the plan: each disk now writes to its new overlay, backed by the old image, and
 * the snapshot's metadata records that overlay and that image (which also covers shut-off domains, whose
 * chains libvirt lists only partly).
 */
function verifyCreated(after: DomainModel, snapshot: SnapshotModel, plan: CreatePlan): void {
  const problems = chainMismatches(
    after,
    plan.disks.map((d) => ({ target: d.target, top: [d.overlayPath, d.activeImage.path ?? ""] })),
  );
  for (const planned of plan.disks) {
    const recorded = snapshot.disks.find((d) => d.target === planned.target);
    const overlay = recorded?.overlay?.path;
    const before = recorded?.imageBefore?.path;
    if (overlay !== planned.overlayPath || (before !== undefined && before !== planned.activeImage.path)) {
      problems.push(
        `disk ${planned.target}: the snapshot records overlay ${overlay ?? "(none)"} over ${before ?? "(unknown)"}, ` +
          `planned ${planned.overlayPath} over ${planned.activeImage.path ?? "(not a file)"}`,
      );
    }
  }
  if (problems.length === 0) return;
  throw new EngineError({
    kind: EngineErrorKind.VERIFY_FAILED,
    domain: after.name,
    snapshot: plan.name,
    message: `snapshot ${plan.name} of domain ${after.name} was created, but its chains are not as planned: ${problems.join("; ")}`,
  });
}

/** Adopts an existing snapshot that matches the request, or explains how it differs. */
async function adopt(
  port: CreatePort,
  ref: DomainRef,
  domain: DomainModel,
  request: CreateSnapshotRequest,
  selection: DiskSelection,
): Promise<CreateSnapshotResult> {
  const snapshot = parseSnapshotXml(
    await libvirtStep(ref.name, request.name, "reading the existing snapshot", async () =>
      port.domainSnapshotGetXMLDesc(await port.domainSnapshotLookupByName(ref, request.name), 0),
    ),
  );
  const wantMemory = (request.memory ?? "disk-only") === "disk-only" ? "no" : "external";
  const want = selection.selected.map((d) => d.target).sort();
  const have = snapshot.disks
    .filter((d) => d.mode === "external")
    .map((d) => d.target)
    .sort();
  const differences: string[] = [];
  if (snapshot.memory.mode !== wantMemory) {
    differences.push(`memory is '${snapshot.memory.mode}' there and '${wantMemory}' in the request`);
  }
  if (want.join(",") !== have.join(",")) {
    differences.push(`it covers disks [${have.join(", ")}], the request [${want.join(", ")}]`);
  }
  if (differences.length > 0) {
    throw new EngineError({
      kind: EngineErrorKind.SNAPSHOT_CONFLICT,
      domain: domain.name,
      snapshot: request.name,
      message: `domain ${domain.name} already has a snapshot ${request.name} that differs from the request: ${differences.join("; ")}; choose another name or delete it`,
    });
  }
  const view = viewOf(domain, snapshot, parseProjectMetadata(domain.projectMetadataXml));
  return {
    domain: { name: domain.name, uuid: domain.uuid },
    snapshot: view,
    adopted: true,
    quiesced: view.quiesced,
    ...(view.quiesceNote === undefined ? {} : { quiesceNote: view.quiesceNote }),
    skipped: selection.skipped,
    warnings: [],
  };
}

/** The inspection view of one snapshot (its children are not known here; a new snapshot has none). */
function viewOf(
  domain: DomainModel,
  snapshot: SnapshotModel,
  metadata: Parameters<typeof joinSnapshots>[2],
): SnapshotView {
  const view = joinSnapshots(domain, [snapshot], metadata).snapshots[0];
  if (view === undefined) throw new Error("joinSnapshots lost the only snapshot");
  return view;
}

/** The snapshot engine's view of libvirt's domain state; states it cannot work in are DOMAIN_STATE errors. */
function snapshotState(
  state: number,
  domainName: string,
  request: CreateSnapshotRequest,
): SnapshotDomainState {
  if (state === DomainState.RUNNING || state === DomainState.BLOCKED) return "running";
  if (state === DomainState.PAUSED) return "paused";
  if (state === DomainState.SHUTOFF) return "shutoff";
  const names: Record<number, string> = {
    0: "in no state",
    4: "shutting down",
    6: "crashed",
    7: "suspended by the guest",
  };
  throw new EngineError({
    kind: EngineErrorKind.DOMAIN_STATE,
    domain: domainName,
    snapshot: request.name,
    message: `domain ${domainName} is ${names[state] ?? `in state ${state}`}; snapshots need it running, paused or shut off`,
  });
}
