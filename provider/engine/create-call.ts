/**
 * The one libvirt call that makes a snapshot, with the engine's record of it written first: the record (name,
 * the files the snapshot will create, quiesce outcome) is written, and only once libvirt confirmed it is the
 * create call sent, so that no process killed after libvirt made the snapshot can leave it without a record (a
 * snapshot without one looks "not created by pulumi-libvirt-snapshot" to the Pulumi layer, which then refuses
 * to take it over without `adopt: true`). Also the quiesce fallback and the translation of a failed create into
 * an EngineError that says what the user can do.
 */
import type { DomainRef, SnapshotRef } from "../libvirt/api";
import { ErrorCode, SnapshotCreateFlags } from "../libvirt/flags";
import { type SnapshotFiles, type SnapshotRecord, withSnapshotRecord } from "../model/metadata";
import type { CreatePlan } from "./create-plan";
import { EngineError, EngineErrorKind, libvirtCodeOf } from "./errors";
import type { CreatePort } from "./libvirt-port";
import { writeProjectMetadata } from "./project-metadata";

/** What the domain looked like when the create was planned, under the per-domain lock. */
export interface CreateContext {
  readonly ref: DomainRef;
  /** libvirt's domain state number, as read under the lock (decides LIVE/CONFIG for the record). */
  readonly state: number;
  /** The project's metadata element as read under the lock (DomainModel.projectMetadataXml). */
  readonly projectMetadataXml: string | undefined;
}

export interface CreateCallOutcome {
  readonly snapshotRef: SnapshotRef;
  /** The record of the snapshot, as written before it was made. */
  readonly record: SnapshotRecord;
}

/** The files `plan` makes: every planned overlay and the memory file; what the record is keyed by. Pure. */
export function plannedFiles(plan: CreatePlan): SnapshotFiles {
  return {
    overlays: plan.disks.map((d) => ({ disk: d.target, path: d.overlayPath })),
    ...(plan.memoryFile === undefined ? {} : { memoryFile: plan.memoryFile }),
  };
}

/**
 * Records and creates the snapshot of `plan`: with QUIESCE first when planned, falling back (quiesce `auto`)
 * when no agent can freeze. `beforeCreateCall` runs before anything is sent for an attempt (it throws to give
 * up; nothing was created then, see below for the record).
 *
 * Each attempt writes `virDomainSetMetadata` (the domain's project element with this snapshot's record) and,
 * once libvirt answered, sends `virDomainSnapshotCreateXML`. The two cannot be sent back to back: libvirt
 * serves a client's calls on several worker threads, so nothing would order them on the domain's job, and a
 * write queued behind a long memory snapshot waits for its job for up to 30 s and then fails. One round trip
 * buys the guarantee. What each outcome leaves:
 * - both succeed: the snapshot and its record (quiesced, or not with the reason).
 * - the record write fails: nothing was created; an EngineError LIBVIRT says so.
 * - the create fails: the EngineError of the create; the record written for the attempt stays behind. It names
 *   the files the snapshot would have created, so it matches no other snapshot (metadata.ts), and the next
 *   create of that name replaces it. An attempt with QUIESCE refused for want of an agent (74/86) under `auto`
 *   is retried with the record rewritten as "not quiesced" first; under `required` the error is QUIESCE_FAILED
 *   and a record saying "quiesced" of a snapshot that was never made stays.
 * Not idempotent: a second call with the same plan fails (the snapshot and its files exist).
 */
export async function createWithRecord(
  port: CreatePort,
  context: CreateContext,
  plan: CreatePlan,
  onQuiesceFallback: (reason: string) => void,
  beforeCreateCall: () => void,
): Promise<CreateCallOutcome> {
  const files = plannedFiles(plan);
  const attempt = (record: SnapshotRecord, flags: number) =>
    recordAndCreate(port, context, record, plan.xml, flags, beforeCreateCall);
  let record: SnapshotRecord;
  let created: PromiseSettledResult<SnapshotRef>;
  if (plan.quiesce.attempt) {
    record = { name: plan.name, files, quiesced: true };
    created = await attempt(record, plan.flags | SnapshotCreateFlags.QUIESCE);
    if (created.status === "rejected") {
      const quiesceNote = quiesceFallbackNote(context.ref, plan, created.reason);
      onQuiesceFallback(quiesceNote);
      record = { name: plan.name, files, quiesced: false, quiesceNote };
      created = await attempt(record, plan.flags);
    }
  } else {
    const quiesceNote = `not quiesced: ${plan.quiesce.note ?? "quiescing was turned off"}`;
    record = { name: plan.name, files, quiesced: false, quiesceNote };
    created = await attempt(record, plan.flags);
  }
  if (created.status === "rejected") throw createFailure(context.ref, plan, created.reason);
  return { snapshotRef: created.value, record };
}

/**
 * The note of a create that falls back from a refused QUIESCE attempt; throws the EngineError to report
 * instead when the refusal is not for want of an agent (74/86) or quiescing is required.
 */
function quiesceFallbackNote(ref: DomainRef, plan: CreatePlan, refusal: unknown): string {
  const code = libvirtCodeOf(refusal);
  if (code !== ErrorCode.ARGUMENT_UNSUPPORTED && code !== ErrorCode.AGENT_UNRESPONSIVE) {
    throw createFailure(ref, plan, refusal);
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
      cause: refusal,
    });
  }
  // A quiesced create refused with 74 or 86 leaves nothing behind, so retrying without QUIESCE is safe.
  return `not quiesced: ${why} (${refusal instanceof Error ? refusal.message : String(refusal)})`;
}

/**
 * One attempt: the record written, then the create call. Resolves with the create's outcome; a failed record
 * write rejects with an EngineError (nothing was created).
 */
async function recordAndCreate(
  port: CreatePort,
  context: CreateContext,
  record: SnapshotRecord,
  createXml: string,
  flags: number,
  beforeCreateCall: () => void,
): Promise<PromiseSettledResult<SnapshotRef>> {
  const metadataXml = withSnapshotRecord(context.projectMetadataXml, record);
  beforeCreateCall();
  try {
    await writeProjectMetadata(port, context.ref, metadataXml, context.state);
  } catch (e) {
    throw new EngineError({
      kind: EngineErrorKind.LIBVIRT,
      domain: context.ref.name,
      snapshot: record.name,
      message:
        `recording snapshot ${record.name} on domain ${context.ref.name} before creating it failed; ` +
        "nothing was created",
      cause: e,
    });
  }
  beforeCreateCall();
  return port.domainSnapshotCreateXML(context.ref, createXml, flags).then(
    (value): PromiseSettledResult<SnapshotRef> => ({ status: "fulfilled", value }),
    (reason: unknown): PromiseSettledResult<SnapshotRef> => ({ status: "rejected", reason }),
  );
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
