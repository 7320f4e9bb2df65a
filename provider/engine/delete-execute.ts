/**
 * Runs a planned delete, recording its intent in the journal before each irreversible step, so that a killed
 * run can be finished by `finishInterruptedOperations` (recover.ts) from whatever point it reached. The
 * executor is driven by the journal itself: a fresh delete and a recovery run the same code, and every step
 * is idempotent (it first looks at the live chain, the running job and the snapshot metadata, and skips what
 * is already done).
 */
import type { BlockJobInfo, DomainRef, LibvirtApi } from "../libvirt/api";
import { BlockJobType, DomainState } from "../libvirt/api";
import { isLibvirtError } from "../libvirt/errors";
import { DomainCreateFlags, ErrorCode, SnapshotDeleteFlags } from "../libvirt/flags";
import { describeChain, parseDomainXml } from "../model/domain";
import { type BlockJobOptions, type BlockJobPort, isBlockJobError, runBlockCommit } from "./block-job";
import { chainMismatches } from "./chain-verify";
import { type FilePort, HostFileRemover } from "./delete-files";
import type { DeleteStep } from "./delete-plan";
import { stopStartedDomain } from "./delete-start";
import { EngineError, EngineErrorKind, isEngineError } from "./errors";
import {
  type DeleteJournal,
  DiskPhase,
  type JournalDisk,
  type JournalPort,
  OperationPhase,
  writeJournal,
} from "./journal";

/** Every libvirt call a delete (and its recovery) makes. */
export type DeletePort = BlockJobPort &
  JournalPort &
  FilePort &
  Pick<
    LibvirtApi,
    | "domainGetXMLDesc"
    | "domainDestroyFlags"
    | "domainCreateWithFlags"
    | "domainSnapshotLookupByName"
    | "domainSnapshotDelete"
    | "domainListAllSnapshots"
    | "domainSnapshotGetXMLDesc"
    | "domainGetState"
  >;

/** Knobs of the merge; see BlockJobOptions for units. `timeoutMs` applies to each disk's job. */
export type MergeOptions = Pick<
  BlockJobOptions,
  "bandwidthBytesPerSecond" | "timeoutMs" | "onProgress" | "pollIntervalMs" | "signal"
>;

/** The journal that describes the planned steps, before any of them ran. Pure. */
export function journalForSteps(
  snapshot: string,
  steps: readonly DeleteStep[],
  id: string,
  startedAt: Date,
): DeleteJournal {
  return {
    kind: "delete",
    id,
    snapshot,
    startedAt: startedAt.toISOString(),
    phase: OperationPhase.MERGING,
    startedDomain: steps.some((s) => s.kind === "stop-domain"),
    disks: steps.flatMap((s) =>
      s.kind === "commit"
        ? [{ target: s.disk, top: s.top, base: s.base, active: s.active, phase: DiskPhase.PENDING }]
        : [],
    ),
    files: steps.flatMap((s) => (s.kind === "remove-file" ? [s.path] : [])),
  };
}

/** What a delete left behind when it failed. */
export type DeleteFailureState = "rolled-back" | "journaled";

/**
 * Runs `journal`'s remaining steps on `domain`. The journal need not be on the domain yet: it is written before
 * the first irreversible step (and again before each one). On success the journal is cleared. On failure a
 * domain the delete started is stopped again while it is still paused (never one someone resumed), and either
 * - no disk was merged yet and the job was cancelled, or a block job the delete did not start was found and left
 *   alone (EngineError BLOCK_JOB_ACTIVE): the journal is cleared ("rolled-back"; the snapshot still exists, its
 *   point-in-time image may hold part of the overlay's data), or
 * - the journal stays ("journaled") and the next engine call on the domain finishes the delete.
 * The state is attached to the rethrown error as `deleteState`.
 */
export async function executeDelete(
  port: DeletePort,
  domain: DomainRef,
  journal: DeleteJournal,
  options: MergeOptions = {},
): Promise<void> {
  if (journal.phase === OperationPhase.STARTING)
    throw new Error("executeDelete: the journal has no plan yet");
  let current = journal;
  const record = async (next: DeleteJournal) => {
    await writeJournal(port, domain, next);
    current = next;
  };
  // Progress that is not before an irreversible step stays in memory; the next write carries it.
  const noteDisk: NoteDisk = async (target, phase, chain) => {
    const noted = (d: JournalDisk) => ({ ...d, phase, ...(chain === undefined ? {} : { chain }) });
    const next = { ...current, disks: current.disks.map((d) => (d.target === target ? noted(d) : d)) };
    if (phase === DiskPhase.MERGED) current = next;
    else await record(next);
  };
  const files = HostFileRemover.prepare(port, current.files);
  try {
    if (current.phase === OperationPhase.MERGING) {
      const pending = current.disks.find((d) => d.phase !== DiskPhase.MERGED);
      let firstRead: Promise<DiskRead> | undefined;
      if (pending !== undefined) {
        // The first disk's chain and job are read together with the state (one round trip, not two); they
        // count only if QEMU was already running.
        firstRead = readDisk(port, domain, pending.target);
        if (await isShutOff(port, domain)) {
          firstRead = undefined;
          // Block jobs need QEMU: start it paused, as libvirt's own offline delete does, and stop it after.
          await record({ ...current, startedDomain: true });
          await port.domainCreateWithFlags(domain, DomainCreateFlags.START_PAUSED);
        }
      }
      for (const disk of current.disks) {
        if (disk.phase === DiskPhase.MERGED) continue;
        const read = disk.target === pending?.target ? firstRead : undefined;
        await mergeDisk(
          port,
          domain,
          disk,
          noteDisk,
          options,
          await (read ?? readDisk(port, domain, disk.target)),
        );
      }
      if (current.startedDomain) await stopStartedDomain(port, domain);
      await record({ ...current, phase: OperationPhase.DELETING_METADATA, startedDomain: false });
    }
    if (current.startedDomain) {
      await stopStartedDomain(port, domain);
      await record({ ...current, startedDomain: false });
    }
    if (current.phase === OperationPhase.DELETING_METADATA) {
      await deleteMetadataOnly(port, domain, current.snapshot);
      await record({ ...current, phase: OperationPhase.REMOVING_FILES });
    }
    for (const file of current.files) await files.remove(file);
    await writeJournal(port, domain, null, current.snapshot);
  } catch (error) {
    throw await afterFailure(port, domain, current, error);
  } finally {
    // A transient pool that could not be destroyed only lingers until the daemon restarts; the next removal
    // in that directory reuses it. Not worth failing a finished delete for.
    await files.close().catch(() => undefined);
  }
}

async function afterFailure(
  port: DeletePort,
  domain: DomainRef,
  current: DeleteJournal,
  error: unknown,
): Promise<unknown> {
  let state: DeleteFailureState = "journaled";
  try {
    // From the live chains (read while a started domain still runs, so they are complete), not from the
    // phases in memory: a commit can complete while it is being cancelled.
    const nothingMerged =
      current.phase === OperationPhase.MERGING && (await everyTopInLiveChain(port, domain, current));
    if (current.startedDomain) {
      await stopStartedDomain(port, domain);
      current = { ...current, startedDomain: false };
    }
    // A cancelled job of ours and a refused foreign job both leave no job of this delete running.
    const noJobOfOurs =
      isBlockJobError(error) || (isEngineError(error) && error.kind === EngineErrorKind.BLOCK_JOB_ACTIVE);
    if (nothingMerged && noJobOfOurs) {
      await writeJournal(port, domain, null);
      state = "rolled-back";
    } else {
      await writeJournal(port, domain, current);
    }
  } catch {
    // The journal on the domain still describes the operation; the next engine call finishes it.
  }
  if (typeof error === "object" && error !== null) Object.assign(error, { deleteState: state });
  return error;
}

/** Records a disk's phase (and, with MERGING, the chain the job starts from) in the journal. */
type NoteDisk = (target: string, phase: DiskPhase, chain?: readonly string[]) => Promise<void>;

/** A read that failed keeps its error, to be thrown only if its result is used. */
type Kept<T> = { readonly value: T } | { readonly error: unknown };

function kept<T>(read: Promise<T>): Promise<Kept<T>> {
  return read.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

/**
 * A disk's live chain and block job, read together (one round trip, not two). The job matters only while
 * the merged layer is still in the chain, so each read keeps its failure instead of rejecting: which error is
 * thrown never depends on which read failed first.
 */
interface DiskRead {
  readonly chain: Kept<string[]>;
  readonly job: Kept<BlockJobInfo | null>;
}

async function readDisk(port: DeletePort, domain: DomainRef, target: string): Promise<DiskRead> {
  const [chain, job] = await Promise.all([
    kept(liveChainPaths(port, domain, target)),
    kept(port.domainGetBlockJobInfo(domain, target)),
  ]);
  return { chain, job };
}

/**
 * Merges one disk: skips it when `top` already left the live chain the way this merge leaves it, follows a
 * commit job of this delete that already runs on the disk (a killed run started it), or starts one. Verifies
 * the chain afterwards: exactly `top` left it.
 */
async function mergeDisk(
  port: DeletePort,
  domain: DomainRef,
  disk: JournalDisk,
  noteDisk: NoteDisk,
  options: MergeOptions,
  read: DiskRead,
): Promise<void> {
  if ("error" in read.chain) throw read.chain.error;
  const before = read.chain.value;
  if (!before.includes(disk.top)) {
    refuseUnexplainedChain(domain, disk, before);
    await noteDisk(disk.target, DiskPhase.MERGED);
    return;
  }
  if ("error" in read.job) throw read.job.error;
  const job = read.job.value;
  if (job !== null) await refuseForeignJob(port, domain, disk, job, before);
  await runBlockCommit(
    port,
    { domain, disk: disk.target, top: disk.top, base: disk.base, active: disk.active },
    {
      ...options,
      attach: job !== null,
      beforeStart: () => noteDisk(disk.target, DiskPhase.MERGING, before),
      beforePivot: () => noteDisk(disk.target, DiskPhase.PIVOTING),
    },
  );
  const expected = { target: disk.target, top: before.filter((p) => p !== disk.top) };
  const mismatches = chainMismatches(parseDomainXml(await port.domainGetXMLDesc(domain, 0)), [expected]);
  if (mismatches.length > 0) {
    throw new EngineError({
      kind: EngineErrorKind.VERIFY_FAILED,
      domain: domain.name,
      disk: disk.target,
      message: `domain ${domain.name}: after merging ${disk.top} into ${disk.base}: ${mismatches.join("; ")}`,
    });
  }
  await noteDisk(disk.target, DiskPhase.MERGED);
}

/** True when every journal disk's `top` is still in its live chain; false when any left it or on doubt. */
async function everyTopInLiveChain(port: DeletePort, domain: DomainRef, journal: DeleteJournal) {
  try {
    const { disks } = parseDomainXml(await port.domainGetXMLDesc(domain, 0));
    return journal.disks.every((j) =>
      disks.find((d) => d.target === j.target)?.chain.some((i) => i.path === j.top),
    );
  } catch {
    return false;
  }
}

/**
 * `top` is gone from the live chain: that is this delete's merge only when the journal recorded the chain the
 * job started from and the live chain is exactly that one without `top` (so `base` sits where `top` was
 * above it). Anything else is drift (a revert or redefine outside this delete, a PENDING disk that never had a
 * job of ours): deleting the snapshot's metadata then would forget an overlay no merge emptied. Throws
 * EngineError VERIFY_FAILED; the journal stays.
 */
function refuseUnexplainedChain(domain: DomainRef, disk: JournalDisk, live: readonly string[]): void {
  const expected = disk.chain?.filter((p) => p !== disk.top);
  if (expected !== undefined && expected.length === live.length && expected.every((p, i) => p === live[i])) {
    return;
  }
  throw new EngineError({
    kind: EngineErrorKind.VERIFY_FAILED,
    domain: domain.name,
    disk: disk.target,
    message:
      `domain ${domain.name}, disk ${disk.target}: ${disk.top} left the live chain (now ${live.join(", ")}, active first), but ` +
      (expected === undefined
        ? "no merge of it was started by this delete"
        : `the merge into ${disk.base} leaves ${expected.join(", ")}`) +
      "; the disk changed outside the delete (a revert or redefine?): check the chain by hand, the delete " +
      "stays recorded",
  });
}

/**
 * A job found on the disk is followed (and maybe pivoted) only when it is provably the one this delete started:
 * the journal says a job was started (MERGING or PIVOTING; a PENDING disk never had one of ours), its type
 * matches where `top` sits (the active layer takes an active commit, any other layer a plain commit, which is
 * also what the journal planned), and an active commit mirrors into the journal's `base`. Anything else is
 * someone else's job: pivoting a user's active commit into a deeper base would drop the point-in-time data of
 * the layers between, and waiting for the end of an active commit that nobody pivots never returns. Throws
 * EngineError BLOCK_JOB_ACTIVE and touches nothing.
 */
async function refuseForeignJob(
  port: DeletePort,
  domain: DomainRef,
  disk: JournalDisk,
  job: BlockJobInfo,
  chain: readonly string[],
): Promise<void> {
  const topIsActive = chain[0] === disk.top;
  const started = disk.phase === DiskPhase.MERGING || disk.phase === DiskPhase.PIVOTING;
  const expectedType = topIsActive ? BlockJobType.ACTIVE_COMMIT : BlockJobType.COMMIT;
  let ours = started && topIsActive === disk.active && job.type === expectedType;
  if (ours && topIsActive) {
    const live = parseDomainXml(await port.domainGetXMLDesc(domain, 0)).disks.find(
      (d) => d.target === disk.target,
    );
    ours = live?.mirror?.destination?.path === disk.base;
  }
  if (ours) return;
  throw new EngineError({
    kind: EngineErrorKind.BLOCK_JOB_ACTIVE,
    domain: domain.name,
    disk: disk.target,
    message:
      `domain ${domain.name}: a block job this delete did not start (type ${job.type}) runs on disk ` +
      `${disk.target}; end it first (virsh blockjob ${domain.name} ${disk.target}, --abort or --pivot as its ` +
      "owner intends), then delete again",
  });
}

/** The live chain of one disk as paths, active first. */
export async function liveChainPaths(port: DeletePort, domain: DomainRef, target: string): Promise<string[]> {
  const model = parseDomainXml(await port.domainGetXMLDesc(domain, 0));
  const disk = model.disks.find((d) => d.target === target);
  if (disk === undefined) throw new Error(`domain ${domain.name} has no disk ${target}`);
  if (disk.chain.some((i) => i.path === undefined)) {
    throw new Error(
      `domain ${domain.name}, disk ${target}: chain ${describeChain(disk.chain)} is not all files`,
    );
  }
  return disk.chain.map((i) => i.path as string);
}

/** Deletes only the snapshot's metadata (libvirt re-parents children, rewrites their paths). Idempotent. */
async function deleteMetadataOnly(port: DeletePort, domain: DomainRef, name: string): Promise<void> {
  try {
    const snapshot = await port.domainSnapshotLookupByName(domain, name);
    await port.domainSnapshotDelete(snapshot, SnapshotDeleteFlags.METADATA_ONLY);
  } catch (e) {
    if (!(isLibvirtError(e) && e.code === ErrorCode.NO_DOMAIN_SNAPSHOT)) throw e;
  }
}

/** True when the domain does not run (shut off or crashed): block jobs are impossible. */
export async function isShutOff(
  port: Pick<LibvirtApi, "domainGetState">,
  domain: DomainRef,
): Promise<boolean> {
  const { state } = await port.domainGetState(domain);
  return state === DomainState.SHUTOFF || state === DomainState.CRASHED;
}
