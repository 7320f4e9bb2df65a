import type { BlockJobEvent, BlockJobInfo, DomainRef, EventSubscription, LibvirtApi } from "../libvirt/api";
import { BlockJobStatus } from "../libvirt/api";
import { isLibvirtError } from "../libvirt/errors";
import { BlockCommitFlags, BlockJobAbortFlags, ErrorCode } from "../libvirt/flags";
import { parseDomainXml } from "../model/domain";
import { EngineError, EngineErrorKind } from "./errors";

/** The libvirt calls block-job handling needs; tests substitute a fake. */
export type BlockJobPort = Pick<
  LibvirtApi,
  | "domainBlockCommit"
  | "domainGetBlockJobInfo"
  | "domainBlockJobAbort"
  | "domainGetXMLDesc"
  | "subscribeBlockJobEvents"
>;

/** One commit of a disk's layer `top` into the layer `base` directly below it. */
export interface BlockCommitSpec {
  readonly domain: DomainRef;
  /** Disk target (`vda`). */
  readonly disk: string;
  /** Absolute path of the layer merged away (it leaves the chain). */
  readonly top: string;
  /** Absolute path of the layer that receives the data and stays. */
  readonly base: string;
  /** `top` is the active layer: an active commit that needs a pivot. */
  readonly active: boolean;
}

/** Progress of one disk's job; bytes of the job's own progress scale (QEMU's offset/len). */
export interface BlockJobProgress {
  readonly disk: string;
  readonly bytesDone: number;
  readonly bytesTotal: number;
}

export interface BlockJobOptions {
  /** Bytes per second; 0 or absent means unlimited. Passed to libvirt with the BANDWIDTH_BYTES flag. */
  readonly bandwidthBytesPerSecond?: number;
  /** Milliseconds for the whole job (READY and pivot included); on expiry the job is cancelled. */
  readonly timeoutMs?: number;
  readonly onProgress?: (progress: BlockJobProgress) => void;
  /** Milliseconds between polls of the job state, the safety net for lost events. Default 200. */
  readonly pollIntervalMs?: number;
  /** Runs once the active commit is READY and before the pivot (the journal records the pivot here). */
  readonly beforePivot?: () => Promise<void>;
  /**
   * Runs before the job is started, while the event subscription is being opened (one round trip instead of
   * two; the journal records the merge here). When it fails nothing is started and its error is thrown.
   */
  readonly beforeStart?: () => Promise<void>;
  /**
   * Aborting cancels the job like a timeout does (noticed within one poll interval, and right before the job
   * would start or pivot): the job is ended (or never started) and the promise rejects with a BlockJobError of
   * kind ABORTED. Used for Ctrl-C in the CLI.
   */
  readonly signal?: AbortSignal;
}

export const BlockJobErrorKind = {
  TIMEOUT: "timeout",
  FAILED: "failed",
  /** The job was cancelled by someone else (virsh blockjob --abort, another process). */
  CANCELED: "canceled",
  /** The caller's AbortSignal fired; the job was cancelled (or not started). */
  ABORTED: "aborted",
} as const;
export type BlockJobErrorKind = (typeof BlockJobErrorKind)[keyof typeof BlockJobErrorKind];

const BLOCK_JOB_ERROR_BRAND = Symbol.for("pulumi-libvirt-snapshot.BlockJobError");

/**
 * A commit that did not complete. When thrown by `runBlockCommit` the job has been ended (cancelled) and `top`
 * is still in the chain: the guest-visible data is unchanged, but `base` may hold part of `top`'s data.
 */
export class BlockJobError extends Error {
  readonly [BLOCK_JOB_ERROR_BRAND] = true;
  constructor(
    readonly kind: BlockJobErrorKind,
    readonly disk: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "BlockJobError";
  }
}

/** Brand check (not instanceof): a second copy of this package may be loaded. */
export function isBlockJobError(e: unknown): e is BlockJobError {
  return typeof e === "object" && e !== null && BLOCK_JOB_ERROR_BRAND in e;
}

/** How a watched job ended, as far as events and polls could tell. */
export type BlockJobEnd = "completed" | "failed" | "canceled" | "vanished";

/**
 * Watches one disk's block job through block-job-2 events and, as a safety net for lost events, polls of
 * `virDomainGetBlockJobInfo` and the live XML's `<mirror ready='yes'>`. Subscribe before starting the job so
 * no event can be missed; always `close()`.
 */
export class BlockJobWatcher {
  private readonly events: BlockJobEvent[] = [];
  private wake: (() => void) | undefined;

  private constructor(
    private readonly port: BlockJobPort,
    readonly domain: DomainRef,
    readonly disk: string,
    private subscription: EventSubscription | undefined,
  ) {}

  static async open(port: BlockJobPort, domain: DomainRef, disk: string): Promise<BlockJobWatcher> {
    let watcher: BlockJobWatcher | undefined;
    const pending: BlockJobEvent[] = [];
    const subscription = await port.subscribeBlockJobEvents(domain, (event) => {
      if (event.disk !== disk) return;
      if (watcher) watcher.push(event);
      else pending.push(event);
    });
    watcher = new BlockJobWatcher(port, domain, disk, subscription);
    for (const event of pending) watcher.push(event);
    return watcher;
  }

  private push(event: BlockJobEvent): void {
    this.events.push(event);
    this.wake?.();
  }

  private sawStatus(status: BlockJobStatus): boolean {
    return this.events.some((e) => e.status === status);
  }

  /** How the job ended according to its events, if an end event came. */
  private endStatus(): BlockJobEnd | undefined {
    if (this.sawStatus(BlockJobStatus.COMPLETED)) return "completed";
    if (this.sawStatus(BlockJobStatus.FAILED)) return "failed";
    if (this.sawStatus(BlockJobStatus.CANCELED)) return "canceled";
    return undefined;
  }

  /** Sleeps until an event arrives or `ms` pass. */
  private nap(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref?.();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  /**
   * Waits until the job is READY (`until: "ready"`, active commits) or gone (`until: "end"`). Resolves "ready"
   * or how the job ended; rejects a BlockJobError of kind TIMEOUT at `deadline` (epoch ms) leaving the job as
   * it is (the caller cancels it).
   */
  async wait(
    until: "ready" | "end",
    deadline: number,
    options: Pick<BlockJobOptions, "onProgress" | "pollIntervalMs" | "signal">,
  ): Promise<"ready" | BlockJobEnd> {
    const interval = options.pollIntervalMs ?? 200;
    for (;;) {
      const ended = this.endStatus();
      if (ended) return ended;
      throwIfAborted(options.signal, this.disk);
      if (until === "ready" && this.sawStatus(BlockJobStatus.READY)) return "ready";
      const info = await this.port.domainGetBlockJobInfo(this.domain, this.disk);
      if (info === null) return this.endStatus() ?? "vanished";
      this.report(info, options.onProgress);
      if (until === "ready" && info.end > 0n && info.cur === info.end && (await this.mirrorReady())) {
        return "ready";
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new BlockJobError(BlockJobErrorKind.TIMEOUT, this.disk, `block job on ${this.disk} timed out`);
      }
      await this.nap(Math.min(interval, left));
    }
  }

  private report(info: BlockJobInfo, onProgress: BlockJobOptions["onProgress"]): void {
    onProgress?.({ disk: this.disk, bytesDone: Number(info.cur), bytesTotal: Number(info.end) });
  }

  /** The live XML's view: libvirt sets `<mirror ready='yes'>` only once QEMU reported the job ready. */
  async mirrorReady(): Promise<boolean> {
    return mirrorIsReady(await this.port.domainGetXMLDesc(this.domain, 0), this.disk);
  }

  async close(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    await subscription?.close().catch(() => undefined);
  }
}

/** Rejects with an ABORTED BlockJobError once `signal` has fired. */
function throwIfAborted(signal: AbortSignal | undefined, disk: string): void {
  if (signal?.aborted) {
    throw new BlockJobError(BlockJobErrorKind.ABORTED, disk, `block job on ${disk} cancelled by the caller`);
  }
}

/** True when the disk with target `disk` carries `<mirror ready='yes'>` in this live domain XML. */
export function mirrorIsReady(domainXml: string, disk: string): boolean {
  return parseDomainXml(domainXml).disks.find((d) => d.target === disk)?.mirror?.ready === true;
}

/**
 * Starts the commit described by `spec`, with explicit `top` and `base` paths (never libvirt's defaults) and
 * the bandwidth in bytes/s (BANDWIDTH_BYTES). Failure: libvirt started nothing.
 */
export async function startBlockCommit(
  port: BlockJobPort,
  spec: BlockCommitSpec,
  bandwidthBytesPerSecond = 0,
): Promise<void> {
  let flags = spec.active ? BlockCommitFlags.ACTIVE : 0;
  if (bandwidthBytesPerSecond > 0) flags |= BlockCommitFlags.BANDWIDTH_BYTES;
  await port.domainBlockCommit(
    spec.domain,
    spec.disk,
    spec.base,
    spec.top,
    BigInt(Math.floor(bandwidthBytesPerSecond)),
    flags,
  );
}

/**
 * Pivots a READY active commit onto its base. libvirt's abort without ASYNC returns once the pivot is done.
 * Quirk: libvirt can still answer BLOCK_COPY_ACTIVE "not ready for pivot yet" right after QEMU's READY
 * (the event and libvirt's own job state are updated separately), so that answer is retried briefly.
 */
export async function pivotBlockJob(port: BlockJobPort, domain: DomainRef, disk: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await port.domainBlockJobAbort(domain, disk, BlockJobAbortFlags.PIVOT);
      return;
    } catch (e) {
      if (!(isLibvirtError(e) && e.code === ErrorCode.BLOCK_COPY_ACTIVE) || attempt >= 20) throw e;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Milliseconds `cancelBlockJob` waits for a cancelled job to be gone. */
const CANCEL_WAIT_MS = 30_000;

/**
 * Cancels the job on `disk` if one runs, and waits until libvirt no longer reports it. Idempotent. For a
 * commit the layer `top` stays in the chain; data already copied into `base` stays there (a plain commit may
 * also complete just before the cancel reaches it: callers read the chain to tell). Throws EngineError LIBVIRT
 * when the job is still there after 30 s: it still runs, and nothing may treat it as ended.
 */
export async function cancelBlockJob(port: BlockJobPort, domain: DomainRef, disk: string): Promise<void> {
  if ((await port.domainGetBlockJobInfo(domain, disk)) === null) return;
  try {
    await port.domainBlockJobAbort(domain, disk, 0);
  } catch (e) {
    // The job may have ended between the two calls.
    if ((await port.domainGetBlockJobInfo(domain, disk)) !== null) throw e;
  }
  const giveUpAt = Date.now() + CANCEL_WAIT_MS;
  while ((await port.domainGetBlockJobInfo(domain, disk)) !== null) {
    if (Date.now() >= giveUpAt) {
      throw new EngineError({
        kind: EngineErrorKind.LIBVIRT,
        domain: domain.name,
        disk,
        message:
          `domain ${domain.name}: the block job on disk ${disk} was cancelled but still runs after ` +
          `${CANCEL_WAIT_MS / 1000} s; end it (virsh blockjob ${domain.name} ${disk} --abort) before anything else`,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Runs one commit to its end: starts it (or, with `attach`, follows the job already running on the disk),
 * waits for READY and pivots when it is an active commit, then waits for the job to be gone.
 *
 * Every job this starts or attaches to is ended on every path: on timeout, error or a failed `beforePivot`
 * it is cancelled before the promise rejects (BlockJobError for timeouts, jobs libvirt refused to start and
 * failed/cancelled jobs, else the original error); a rejection means `top` is still in the live chain.
 * On success `top` has left the chain (the caller verifies it against the live XML). A plain commit can
 * complete between a timeout (or an abort) and the cancel: the live chain read after the cancel tells, and a
 * commit that completed resolves like any other.
 */
export async function runBlockCommit(
  port: BlockJobPort,
  spec: BlockCommitSpec,
  options: BlockJobOptions & { readonly attach?: boolean } = {},
): Promise<void> {
  const deadline =
    options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
  const watcher = await openWhile(port, spec, options.beforeStart);
  let jobMayRun = false;
  try {
    throwIfAborted(options.signal, spec.disk);
    if (!options.attach) {
      await startBlockCommit(port, spec, options.bandwidthBytesPerSecond).catch((e: unknown) => {
        throw new BlockJobError(
          BlockJobErrorKind.FAILED,
          spec.disk,
          `libvirt did not start merging ${spec.top} into ${spec.base} on disk ${spec.disk}: ${(e as Error).message}`,
          { cause: e },
        );
      });
    }
    jobMayRun = true;
    if (spec.active) {
      const state = await watcher.wait("ready", deadline, options);
      if (state !== "ready") throw endedEarly(spec, state);
      await options.beforePivot?.();
      throwIfAborted(options.signal, spec.disk);
      await pivotBlockJob(port, spec.domain, spec.disk);
    }
    const end = await watcher.wait("end", deadline, options);
    jobMayRun = false;
    if (end === "failed" || end === "canceled") throw endedEarly(spec, end);
  } catch (e) {
    if (jobMayRun) {
      await cancelBlockJob(port, spec.domain, spec.disk);
      if (await topLeftChain(port, spec)) return;
    }
    if (isBlockJobError(e) && e.kind === BlockJobErrorKind.TIMEOUT) {
      throw new BlockJobError(
        BlockJobErrorKind.TIMEOUT,
        spec.disk,
        `merging ${spec.top} into ${spec.base} on disk ${spec.disk} did not finish within ` +
          `${options.timeoutMs} ms; the job was cancelled and ${spec.top} is still in the chain`,
      );
    }
    throw e;
  } finally {
    await watcher.close();
  }
}

/**
 * Opens the watcher of `spec`'s disk while `before` runs. When either fails, the watcher is closed and the
 * error thrown is `before`'s if it failed, else the opening's: the same one whichever fails first in time.
 */
async function openWhile(
  port: BlockJobPort,
  spec: BlockCommitSpec,
  before: (() => Promise<void>) | undefined,
): Promise<BlockJobWatcher> {
  const [ran, opened] = await Promise.allSettled([
    before?.(),
    BlockJobWatcher.open(port, spec.domain, spec.disk),
  ]);
  if (ran.status === "fulfilled" && opened.status === "fulfilled") return opened.value;
  if (opened.status === "fulfilled") await opened.value.close();
  throw ran.status === "rejected" ? ran.reason : (opened as PromiseRejectedResult).reason;
}

/** True when the live XML shows `spec.top` no longer in the disk's chain; false when it cannot tell. */
async function topLeftChain(port: BlockJobPort, spec: BlockCommitSpec): Promise<boolean> {
  try {
    const disk = parseDomainXml(await port.domainGetXMLDesc(spec.domain, 0)).disks.find(
      (d) => d.target === spec.disk,
    );
    return disk !== undefined && disk.chain.length > 0 && !disk.chain.some((i) => i.path === spec.top);
  } catch {
    return false;
  }
}

function endedEarly(spec: BlockCommitSpec, end: BlockJobEnd | "ready"): BlockJobError {
  const kind = end === "canceled" ? BlockJobErrorKind.CANCELED : BlockJobErrorKind.FAILED;
  return new BlockJobError(
    kind,
    spec.disk,
    `merging ${spec.top} into ${spec.base} on disk ${spec.disk} ended as ${end} before it completed`,
  );
}
