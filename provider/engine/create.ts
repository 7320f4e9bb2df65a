/**
 * Creating an external snapshot of a running, paused or shut-off domain: one atomic libvirt call for all
 * disks, preceded by a plan from the live state and followed by a verification of the chains read back.
 */
import type { DomainRef, SnapshotRef } from "../libvirt/api";
import { DomainState } from "../libvirt/api";
import { ErrorCode, SnapshotCreateFlags } from "../libvirt/flags";
import { type DomainModel, parseDomainXml } from "../model/domain";
import { parseProjectMetadata, type SnapshotRecord, withSnapshotRecord } from "../model/metadata";
import { parseSnapshotXml, type SnapshotModel } from "../model/snapshot";
import { joinSnapshots, type SnapshotView } from "../model/snapshot-tree";
import { chainMismatches } from "./chain-verify";
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
import { EngineError, EngineErrorKind, libvirtCodeOf, libvirtStep } from "./errors";
import type { DomainIdentity } from "./inspect";
import type { CreatePort } from "./libvirt-port";
import { writeProjectMetadata } from "./project-metadata";
import { finishInterruptedOperations, type RecoveryPort, type RecoveryReport } from "./recover";

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
   * Gives up the create, as far as that is safe. Aborted before the libvirt create call is sent (while
   * validating, waiting for the domain's lock, or reading the domain), the create rejects with the signal's
   * reason and nothing was made. Once the call was sent, the abort is ignored: the call finishes and the result
   * (the snapshot, recorded and verified, or the error) is reported as without a signal, because a snapshot
   * half made and then abandoned would be orphaned. So an aborted create settles after at most one libvirt
   * call in flight plus the steps after a create.
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
  /** Sentences for the user: writable disks left out, state that could not be recorded. */
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
 * - The quiesce outcome is recorded in the domain's project metadata; if only that write fails, the snapshot
 *   is kept and the result carries a warning.
 */
export async function createSnapshot(
  port: CreatePort & RecoveryPort,
  request: CreateSnapshotRequest,
  hooks: CreateHooks = {},
): Promise<CreateSnapshotResult> {
  const report = (event: CreateProgress) => {
    try {
      hooks.onProgress?.(event);
    } catch {
      // A progress listener must not change the outcome of the operation.
    }
  };
  const { signal } = hooks;
  signal?.throwIfAborted();
  validateCreateRequest(request);
  const ref = await resolveDomain(port, request.domain);
  return withDomainLock(
    ref.uuid,
    async () => {
      report({ kind: "locked" });
      const recovered = await finishInterruptedOperations(port, ref);
      const result = await createLocked(port, ref, request, report, () => signal?.throwIfAborted());
      return recovered === null ? result : { ...result, recovered };
    },
    () => report({ kind: "waiting-for-lock" }),
    signal,
  );
}

async function createLocked(
  port: CreatePort,
  ref: DomainRef,
  request: CreateSnapshotRequest,
  report: (event: CreateProgress) => void,
  beforeCreateCall: () => void,
): Promise<CreateSnapshotResult> {
  const [stateInfo, xml, existing] = await libvirtStep(ref.name, request.name, "reading the domain", () =>
    Promise.all([
      port.domainGetState(ref),
      port.domainGetXMLDesc(ref, 0),
      port.domainListAllSnapshots(ref, 0),
    ]),
  );
  const domain = parseDomainXml(xml);
  const state = snapshotState(stateInfo.state, domain.name, request);
  const selection = selectDisks(domain, request);
  const names = new Set(existing.map((s) => s.name));
  if (names.has(request.name)) {
    const result = await adopt(port, ref, domain, request, selection);
    report({ kind: "adopted" });
    return result;
  }
  const plan = planCreate(domain, state, names, request, selection);
  const { snapshotRef, quiesced, quiesceNote } = await runCreate(port, ref, plan, report, beforeCreateCall);
  report({ kind: "created" });

  // The record needs the snapshot's creation time; it is written while the domain is re-read for verification.
  const snapshotRead = libvirtStep(ref.name, request.name, "reading the new snapshot", async () =>
    parseSnapshotXml(await port.domainSnapshotGetXMLDesc(snapshotRef, 0)),
  );
  const recorded = snapshotRead.then(async () => {
    const record: SnapshotRecord = {
      name: plan.name,
      files: {
        overlays: plan.disks.map((d) => ({ disk: d.target, path: d.overlayPath })),
        ...(plan.memoryFile === undefined ? {} : { memoryFile: plan.memoryFile }),
      },
      quiesced,
      ...(quiesceNote === undefined ? {} : { quiesceNote }),
    };
    try {
      // The metadata read before the create is current: every writer holds the per-domain lock.
      const xml = withSnapshotRecord(domain.projectMetadataXml, record);
      await writeProjectMetadata(port, ref, xml, stateInfo.state);
      return { record, warning: undefined };
    } catch (e) {
      const warning = `snapshot ${plan.name} was created, but whether it is quiesced could not be recorded on domain ${domain.name}: ${String(e)}`;
      return { record, warning };
    }
  });
  const [afterXml, snapshot, { record, warning }] = await Promise.all([
    libvirtStep(ref.name, request.name, "reading the domain after the snapshot", () =>
      port.domainGetXMLDesc(ref, 0),
    ),
    snapshotRead,
    recorded,
  ]);
  const after = parseDomainXml(afterXml);
  verifyCreated(after, snapshot, plan);
  const warnings = plan.skipped
    .filter((s) => s.warning)
    .map((s) => `${s.message}; it is not in snapshot ${plan.name}`);
  if (warning !== undefined) warnings.push(warning);
  return {
    domain: { name: domain.name, uuid: domain.uuid },
    snapshot: viewOf(after, snapshot, { snapshots: [record] }),
    adopted: false,
    quiesced,
    ...(quiesceNote === undefined ? {} : { quiesceNote }),
    skipped: plan.skipped,
    warnings,
  };
}

/**
 * The create call: with QUIESCE first when planned, falling back (auto) when no agent can freeze.
 * `beforeCreateCall` runs before each call is sent (it throws to give up; nothing exists then).
 */
async function runCreate(
  port: CreatePort,
  ref: DomainRef,
  plan: CreatePlan,
  report: (event: CreateProgress) => void,
  beforeCreateCall: () => void,
): Promise<{ snapshotRef: SnapshotRef; quiesced: boolean; quiesceNote?: string }> {
  beforeCreateCall();
  if (plan.quiesce.attempt) {
    try {
      const snapshotRef = await port.domainSnapshotCreateXML(
        ref,
        plan.xml,
        plan.flags | SnapshotCreateFlags.QUIESCE,
      );
      return { snapshotRef, quiesced: true };
    } catch (e) {
      const code = libvirtCodeOf(e);
      if (code !== ErrorCode.ARGUMENT_UNSUPPORTED && code !== ErrorCode.AGENT_UNRESPONSIVE) {
        throw createFailure(ref, plan, e);
      }
      const why =
        code === ErrorCode.ARGUMENT_UNSUPPORTED
          ? "the domain has no guest agent channel"
          : "no guest agent answers on the domain's channel";
      if (plan.quiesce.required) {
        throw new EngineError({
          kind: EngineErrorKind.QUIESCE_FAILED,
          domain: ref.name,
          snapshot: plan.name,
          message: `snapshot ${plan.name} of domain ${ref.name}: quiesce is required but ${why}; nothing was created`,
          cause: e,
        });
      }
      // A quiesced create refused with 74 or 86 leaves nothing behind, so retrying without QUIESCE is safe.
      const note = `not quiesced: ${why} (${e instanceof Error ? e.message : String(e)})`;
      report({ kind: "quiesce-fallback", reason: note });
      beforeCreateCall();
      return { snapshotRef: await libvirtCreate(port, ref, plan), quiesced: false, quiesceNote: note };
    }
  }
  const snapshotRef = await libvirtCreate(port, ref, plan);
  const quiesceNote = `not quiesced: ${plan.quiesce.note ?? "quiescing was turned off"}`;
  return { snapshotRef, quiesced: false, quiesceNote };
}

async function libvirtCreate(port: CreatePort, ref: DomainRef, plan: CreatePlan): Promise<SnapshotRef> {
  try {
    return await port.domainSnapshotCreateXML(ref, plan.xml, plan.flags);
  } catch (e) {
    throw createFailure(ref, plan, e);
  }
}

/** An EngineError for a failed create call, naming the disk whose file libvirt's message mentions. */
function createFailure(ref: DomainRef, plan: CreatePlan, cause: unknown): EngineError {
  const text = cause instanceof Error ? cause.message : String(cause);
  const disk = plan.disks.find((d) => text.includes(d.overlayPath));
  const memory = plan.memoryFile !== undefined && text.includes(plan.memoryFile);
  const where = disk
    ? ` on disk ${disk.target} (overlay ${disk.overlayPath})`
    : memory
      ? ` (memory file ${plan.memoryFile})`
      : "";
  const hint = hintFor(libvirtCodeOf(cause), text);
  return new EngineError({
    kind: EngineErrorKind.LIBVIRT,
    domain: ref.name,
    snapshot: plan.name,
    ...(disk === undefined ? {} : { disk: disk.target }),
    message: `creating snapshot ${plan.name} of domain ${ref.name} failed${where}; nothing was changed${hint}`,
    cause,
  });
}

/** What the user can do about a failed create, from libvirt's code and message. */
function hintFor(code: number | undefined, message: string): string {
  // Quirk: QEMU refuses a second memory snapshot of a domain that stayed paused since the first one ("Can't
  // migrate the vm that was paused due to previous migration", libvirt 9.0 / QEMU 7.2); the domain state and
  // its reason do not tell the two situations apart beforehand, so the error is explained instead.
  if (/paused due to previous migration/i.test(message)) {
    return " (QEMU takes only one memory snapshot per pause: resume the domain once, or take a disk-only snapshot)";
  }
  switch (code) {
    case ErrorCode.CONFIG_UNSUPPORTED:
      return " (an overlay or memory file that already exists, or a disk that cannot take an external snapshot)";
    case ErrorCode.SYSTEM_ERROR:
      return " (check that the target directory exists)";
    case ErrorCode.INTERNAL_ERROR:
      return /permission denied/i.test(message)
        ? " (check that QEMU's user can enter and write to the target directory)"
        : "";
    case ErrorCode.BLOCK_COPY_ACTIVE:
    case ErrorCode.OPERATION_UNSUPPORTED:
      return " (a block job may be running on the domain)";
    default:
      return "";
  }
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
