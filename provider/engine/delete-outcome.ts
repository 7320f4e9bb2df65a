/**
 * The pure decisions of `deleteSnapshot` (delete.ts) about what to tell the user: the error for a refused plan,
 * for a block job the delete did not start, and for a failed merge; the notes of a finished merge; and what the
 * check after a delete found. No I/O: each is tested as a table.
 */
import { BlockJobType } from "../libvirt/api";
import type { DomainModel } from "../model/domain";
import type { ConsistencyProblem } from "../model/snapshot-tree";
import { BlockJobErrorKind, isBlockJobError } from "./block-job";
import type { DeletePlan, DeleteStep } from "./delete-plan";
import { RefusalReason } from "./delete-plan";
import { EngineError, EngineErrorKind, isEngineError } from "./errors";
import type { DomainSnapshots } from "./inspect";

/** The EngineError for a plan that refused the delete: DOMAIN_STATE for a paused memory snapshot, else INVALID_REQUEST. */
export function refusalError(domain: string, plan: Extract<DeletePlan, { kind: "refused" }>): EngineError {
  return new EngineError({
    kind:
      plan.reason === RefusalReason.PAUSED_MEMORY
        ? EngineErrorKind.DOMAIN_STATE
        : EngineErrorKind.INVALID_REQUEST,
    domain,
    snapshot: plan.snapshot,
    message: plan.message,
  });
}

/** A block job found on a disk: the disk target and libvirt's job type (BlockJobType). */
export interface FoundBlockJob {
  readonly disk: string;
  readonly type: number;
}

const JOB_NAMES: Readonly<Record<number, string>> = {
  [BlockJobType.PULL]: "pull",
  [BlockJobType.COPY]: "copy",
  [BlockJobType.COMMIT]: "commit",
  [BlockJobType.ACTIVE_COMMIT]: "active commit",
  [BlockJobType.BACKUP]: "backup",
};

/** `active commit job (type 4)`: a job type for people. */
export function describeJobType(type: number): string {
  return `${JOB_NAMES[type] ?? "unknown"} job (type ${type})`;
}

/**
 * The EngineError BLOCK_JOB_ACTIVE for block jobs this delete did not start, found before it changed anything
 * (`jobs` non-empty): it names the domain, every disk and job type, and what to do (abort the job or let its
 * owner finish it). `disk` is set when there is one job.
 */
export function foreignJobError(
  domain: string,
  snapshot: string,
  jobs: readonly FoundBlockJob[],
): EngineError {
  const found = jobs.map((j) => `${describeJobType(j.type)} on disk ${j.disk}`).join(", ");
  const commands = jobs.map((j) => `virsh blockjob ${domain} ${j.disk} --abort`).join("; ");
  return new EngineError({
    kind: EngineErrorKind.BLOCK_JOB_ACTIVE,
    domain,
    snapshot,
    ...(jobs.length === 1 ? { disk: jobs[0]?.disk } : {}),
    message:
      `cannot delete snapshot ${snapshot} of domain ${domain}: a block job this delete did not start runs ` +
      `(${found}); wait until its owner ends it, or cancel it (${commands}), then delete again; ` +
      "nothing was changed",
  });
}

/**
 * The kind of the EngineError for an error a merge (the executor, or recovery running it) threw: the kind of an
 * EngineError it threw itself (BLOCK_JOB_ACTIVE for a job it did not start, VERIFY_FAILED for a chain that
 * changed outside it, LIBVIRT for a job that would not end), TIMEOUT or ABORTED when its time limit or the
 * caller's signal stopped the block job, else LIBVIRT.
 */
export function mergeFailureKind(error: unknown): EngineErrorKind {
  if (isEngineError(error)) return error.kind;
  if (isBlockJobError(error) && error.kind === BlockJobErrorKind.TIMEOUT) return EngineErrorKind.TIMEOUT;
  if (isBlockJobError(error) && error.kind === BlockJobErrorKind.ABORTED) return EngineErrorKind.ABORTED;
  return EngineErrorKind.LIBVIRT;
}

/**
 * Quirk: QEMU locks image files (OFD locks) for every process that opens them; a commit needs to write the
 * base image, and QEMU refuses it ("Failed to get \"write\" lock") while another QEMU, typically another
 * running domain whose chain includes that image, holds it. Verified on QEMU 7.2 with a second domain backed
 * by the overlay being merged.
 */
const LOCKED = /Failed to get "write" lock/;

/** The state a failed executor run left the delete in, as `executeDelete` attaches it to its error. */
function deleteStateOf(error: unknown): string | undefined {
  return (error as { deleteState?: string } | null)?.deleteState;
}

/**
 * What a failed executor run (a delete, or recovery finishing one) left behind, in words for the user: a
 * rolled-back merge leaves the snapshot (delete it again), any other failure leaves the delete recorded for the
 * next operation to finish.
 */
export function leftBehind(snapshot: string, error: unknown): string {
  return deleteStateOf(error) === "rolled-back"
    ? `the merge was cancelled and nothing was merged: snapshot ${snapshot} still exists (its point-in-time ` +
        "image may hold part of the newer data, so revert to it only after checking); delete it again"
    : "the delete stays recorded on the domain and the next operation on it finishes it";
}

/**
 * The EngineError for a merge that failed, from the executor's error (which carries `deleteState`,
 * "rolled-back" or "journaled"). Kind: DOMAIN_STATE for QEMU's read-only disks of a paused memory snapshot,
 * else `mergeFailureKind`. The message says what is left behind and what to do; the executor's error is the
 * `cause`.
 */
export function failureError(domain: string, snapshot: string, error: unknown, paused: boolean): EngineError {
  const state = deleteStateOf(error);
  const message = (error as Error).message;
  const what = leftBehind(snapshot, error);
  const disk = isEngineError(error) || isBlockJobError(error) ? error.disk : undefined;
  const base = { domain, snapshot, ...(disk === undefined ? {} : { disk }), cause: error };
  if (isEngineError(error) && error.kind === EngineErrorKind.BLOCK_JOB_ACTIVE) {
    // A refused job never ran for this delete: nothing of it to cancel, only what the delete had done.
    const left = state === "rolled-back" ? "nothing was changed" : what;
    return new EngineError({ ...base, kind: error.kind, message: `${message}; ${left}` });
  }
  // A memory snapshot taken while paused leaves QEMU's disks read-only until the domain runs again.
  const readOnly = paused && /read-only/i.test(message);
  const kind = readOnly ? EngineErrorKind.DOMAIN_STATE : mergeFailureKind(error);
  const ended =
    kind === EngineErrorKind.TIMEOUT
      ? "timed out"
      : kind === EngineErrorKind.ABORTED
        ? "was aborted"
        : "failed";
  // A chain that changed outside the delete is exactly what is not known to be consistent.
  const consistent = kind === EngineErrorKind.VERIFY_FAILED ? "" : "the chains are consistent; ";
  const hint = readOnly
    ? "; resume the domain (virsh resume) and delete again"
    : LOCKED.test(message)
      ? "; another QEMU process has an image of the merge open (often another running domain that uses it " +
        "as its disk or backing file): shut that domain off, or leave this snapshot until it no longer does"
      : "";
  return new EngineError({
    ...base,
    kind,
    message: `deleting snapshot ${snapshot} of domain ${domain} ${ended}: ${message}; ${consistent}${what}${hint}`,
  });
}

/** One note per merged disk: what was merged into what. */
export function commitNotes(steps: readonly DeleteStep[]): string[] {
  return steps.flatMap((step) =>
    step.kind === "commit"
      ? [
          `disk ${step.disk}: merged ${step.top} into ${step.base}${step.active ? " (active commit, pivoted)" : ""}`,
        ]
      : [],
  );
}

/** What a consistency problem is about (kind, snapshot, disk): the same problem before and after an operation. */
function problemKey(problem: ConsistencyProblem): string {
  return JSON.stringify([problem.kind, problem.snapshot, problem.disk ?? null]);
}

/** A domain's live model with its snapshot forest, as read before or after a delete. */
export interface DeleteView {
  readonly model: DomainModel;
  readonly forest: DomainSnapshots;
}

/**
 * What is wrong after deleting `snapshot` (empty when nothing): the snapshot still exists, a block job runs on
 * a disk that had none before (jobs of others found on other disks before the delete are theirs), or the join
 * of libvirt's tree with the live chains has a problem it did not have before. Problems are compared by
 * identity, never by message: a message may quote the live chain, which every merge changes.
 */
export function verifyFindings(before: DeleteView, after: DeleteView, snapshot: string): string[] {
  const known = new Set(before.forest.problems.map(problemKey));
  const fresh = after.forest.problems.filter((p) => !known.has(problemKey(p)));
  const jobsBefore = new Set(before.model.disks.filter((d) => d.mirror !== undefined).map((d) => d.target));
  const jobs = after.model.disks
    .filter((d) => d.mirror !== undefined && !jobsBefore.has(d.target))
    .map((d) => d.target);
  return [
    ...(after.forest.snapshots.some((s) => s.name === snapshot) ? ["the snapshot still exists"] : []),
    ...(jobs.length > 0 ? [`block jobs remain on ${jobs.join(", ")}`] : []),
    ...fresh.map((p) => p.message),
  ];
}
