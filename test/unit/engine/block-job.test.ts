import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test, vi } from "vitest";
import {
  type BlockJobPort,
  type BlockJobProgress,
  cancelBlockJob,
  isBlockJobError,
  mirrorIsReady,
  runBlockCommit,
} from "../../../provider/engine/block-job";
import { isEngineError } from "../../../provider/engine/errors";
import type {
  BlockJobEvent,
  BlockJobInfo,
  DomainRef,
  EventSubscription,
} from "../../../provider/libvirt/api";
import { BlockJobStatus, BlockJobType } from "../../../provider/libvirt/api";
import { daemonError } from "./delete-fakes";

const domain: DomainRef = { name: "d", uuid: "00000000-0000-0000-0000-000000000001", id: 1 };

interface FakeOptions {
  /** Deliver block-job-2 events (false: only polls can see progress). */
  events?: boolean;
  /** Ticks (of 2 ms) the job needs to copy everything; Infinity never finishes. */
  ticks?: number;
  failAt?: number;
  /** Answer the first pivot with "not ready for pivot yet". */
  pivotNotReadyOnce?: boolean;
  /** The job completes just before a cancel reaches it (the cancel then finds no job). */
  completesAtCancel?: boolean;
  /** A cancel is accepted but the job goes on. */
  ignoresCancel?: boolean;
}

/** A scripted hypervisor with one disk and one possible block job. */
class FakeJobs implements BlockJobPort {
  readonly calls: string[] = [];
  private listener: ((e: BlockJobEvent) => void) | undefined;
  /** vda's live chain, active first; a completed commit (or pivot) removes the job's top. */
  chain = ["/i/s3.qcow2", "/i/s2.qcow2", "/i/s1.qcow2"];
  private job: {
    top: string | null;
    type: BlockJobType;
    cur: number;
    end: number;
    ready: boolean;
    timer: NodeJS.Timeout;
  } | null = null;
  private pivotRefused = false;
  constructor(private readonly opts: FakeOptions = {}) {}

  async subscribeBlockJobEvents(
    _d: DomainRef | null,
    l: (e: BlockJobEvent) => void,
  ): Promise<EventSubscription> {
    this.listener = l;
    return {
      close: async () => {
        this.listener = undefined;
      },
    };
  }
  private emit(type: BlockJobType, status: BlockJobStatus) {
    if (this.opts.events !== false) this.listener?.({ domain, disk: "vda", type, status });
    // Events of other disks must be ignored.
    this.listener?.({ domain, disk: "vdb", type, status: BlockJobStatus.FAILED });
  }
  async domainBlockCommit(
    _d: DomainRef,
    disk: string,
    base: string | null,
    top: string | null,
    bw: bigint,
    flags: number,
  ) {
    this.calls.push(`commit ${disk} base=${base} top=${top} bw=${bw} flags=${flags}`);
    const type = flags & 4 ? BlockJobType.ACTIVE_COMMIT : BlockJobType.COMMIT;
    const end = 100;
    const ticks = this.opts.ticks ?? 5;
    const job = { top, type, cur: 0, end, ready: false, timer: setInterval(() => step(), 2) };
    const step = () => {
      if (this.job !== job) return;
      if (this.opts.failAt !== undefined && job.cur >= this.opts.failAt) {
        this.end(BlockJobStatus.FAILED);
        return;
      }
      if (job.cur < end) job.cur = Math.min(end, job.cur + Math.ceil(end / ticks));
      if (job.cur === end && type === BlockJobType.COMMIT) this.end(BlockJobStatus.COMPLETED);
      else if (job.cur === end && !job.ready) {
        job.ready = true;
        this.emit(type, BlockJobStatus.READY);
      }
    };
    if (ticks === Number.POSITIVE_INFINITY) job.end = 1000;
    this.job = job;
  }
  private end(status: BlockJobStatus) {
    const job = this.job;
    if (!job) return;
    clearInterval(job.timer);
    this.job = null;
    if (status === BlockJobStatus.COMPLETED) this.chain = this.chain.filter((p) => p !== job.top);
    this.emit(job.type, status);
  }
  async domainGetBlockJobInfo(): Promise<BlockJobInfo | null> {
    const j = this.job;
    return j && { type: j.type, bandwidth: 0n, cur: BigInt(j.cur), end: BigInt(j.end) };
  }
  async domainBlockJobAbort(_d: DomainRef, disk: string, flags: number) {
    this.calls.push(`abort ${disk} flags=${flags}`);
    if (this.job && this.opts.completesAtCancel && !(flags & 2)) this.end(BlockJobStatus.COMPLETED);
    if (!this.job) throw daemonError(55, "no job");
    if (this.opts.ignoresCancel && !(flags & 2)) return;
    if (flags & 2) {
      if (!this.job.ready || (this.opts.pivotNotReadyOnce && !this.pivotRefused)) {
        this.pivotRefused = true;
        throw daemonError(83, "not ready for pivot yet");
      }
      this.end(BlockJobStatus.COMPLETED);
    } else {
      this.end(BlockJobStatus.CANCELED);
    }
  }
  async domainGetXMLDesc(): Promise<string> {
    const ready = this.job?.ready ? " ready='yes'" : "";
    const mirror = this.job ? `<mirror type='file' job='active-commit'${ready}/>` : "";
    const [active, ...below] = this.chain;
    const backing = below.reduceRight(
      (inner, p) => `<backingStore type='file'><source file='${p}'/>${inner}</backingStore>`,
      "<backingStore/>",
    );
    return `<domain><devices><disk type='file'><source file='${active}'/>${backing}${mirror}<target dev='vda'/></disk></devices></domain>`;
  }
  get running() {
    return this.job !== null;
  }
}

const middle = { domain, disk: "vda", top: "/i/s2.qcow2", base: "/i/s1.qcow2", active: false };
const current = { domain, disk: "vda", top: "/i/s3.qcow2", base: "/i/s2.qcow2", active: true };

describe("runBlockCommit", () => {
  test("commits a middle layer with explicit paths and byte bandwidth, reporting progress", async () => {
    const fake = new FakeJobs();
    const progress: BlockJobProgress[] = [];
    await runBlockCommit(fake, middle, {
      bandwidthBytesPerSecond: 4 * 1024 * 1024,
      pollIntervalMs: 1,
      onProgress: (p) => progress.push(p),
    });
    expect(fake.calls).toEqual([
      `commit vda base=/i/s1.qcow2 top=/i/s2.qcow2 bw=${4n * 1024n * 1024n} flags=16`,
    ]);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((p) => p.disk === "vda" && p.bytesTotal === 100 && p.bytesDone <= 100)).toBe(true);
    expect(fake.running).toBe(false);
  });

  test("pivots an active commit only after READY, after the journal hook ran", async () => {
    const fake = new FakeJobs();
    const order: string[] = [];
    await runBlockCommit(fake, current, {
      pollIntervalMs: 1,
      beforePivot: async () => void order.push(`hook with ${fake.calls.length} calls`),
    });
    expect(fake.calls).toEqual([
      "commit vda base=/i/s2.qcow2 top=/i/s3.qcow2 bw=0 flags=4",
      "abort vda flags=2",
    ]);
    expect(order).toEqual(["hook with 1 calls"]);
    expect(fake.running).toBe(false);
  });

  test("without events, READY is seen through the job info and the live XML mirror flag", async () => {
    const fake = new FakeJobs({ events: false });
    await runBlockCommit(fake, current, { pollIntervalMs: 1 });
    expect(fake.calls.at(-1)).toBe("abort vda flags=2");
    expect(fake.running).toBe(false);
  });

  test("Quirk: not ready for pivot right after READY is retried", async () => {
    const fake = new FakeJobs({ pivotNotReadyOnce: true });
    await runBlockCommit(fake, current, { pollIntervalMs: 1 });
    expect(fake.calls.filter((c) => c === "abort vda flags=2")).toHaveLength(2);
    expect(fake.running).toBe(false);
  });

  test("a timeout cancels the job and says the layer is still in the chain", async () => {
    const fake = new FakeJobs({ ticks: Number.POSITIVE_INFINITY });
    const error = await runBlockCommit(fake, middle, { pollIntervalMs: 1, timeoutMs: 30 }).catch((e) => e);
    expect(isBlockJobError(error) && error.kind).toBe("timeout");
    expect(error.message).toMatch(/cancelled and \/i\/s2\.qcow2 is still in the chain/);
    expect(fake.calls.at(-1)).toBe("abort vda flags=0");
    expect(fake.running).toBe(false);
  });

  test("a commit that completes between the timeout and the cancel resolves: the layer left the chain", async () => {
    const fake = new FakeJobs({ ticks: Number.POSITIVE_INFINITY, completesAtCancel: true });
    await runBlockCommit(fake, middle, { pollIntervalMs: 1, timeoutMs: 30 });
    expect(fake.calls.at(-1)).toBe("abort vda flags=0");
    expect([fake.running, fake.chain]).toEqual([false, ["/i/s3.qcow2", "/i/s1.qcow2"]]);
  });

  describe("an aborted signal ends the job, and the error says aborted", () => {
    test("before the start: nothing is started", async () => {
      const fake = new FakeJobs();
      const error = await runBlockCommit(fake, current, {
        pollIntervalMs: 1,
        signal: AbortSignal.abort(),
      }).catch((e) => e);
      expect(isBlockJobError(error) && [error.kind, error.disk]).toEqual(["aborted", "vda"]);
      expect([fake.calls, fake.running, fake.chain]).toEqual([
        [],
        false,
        ["/i/s3.qcow2", "/i/s2.qcow2", "/i/s1.qcow2"],
      ]);
    });

    test("while waiting for READY: the job is cancelled", async () => {
      const fake = new FakeJobs({ ticks: Number.POSITIVE_INFINITY });
      const controller = new AbortController();
      const error = await runBlockCommit(fake, current, {
        pollIntervalMs: 1,
        signal: controller.signal,
        onProgress: () => controller.abort(),
      }).catch((e) => e);
      expect(isBlockJobError(error) && error.kind).toBe("aborted");
      expect([fake.calls, fake.running, fake.chain]).toEqual([
        ["commit vda base=/i/s2.qcow2 top=/i/s3.qcow2 bw=0 flags=4", "abort vda flags=0"],
        false,
        ["/i/s3.qcow2", "/i/s2.qcow2", "/i/s1.qcow2"],
      ]);
    });

    test("after READY, before the pivot: the job is cancelled, not pivoted", async () => {
      const fake = new FakeJobs();
      const controller = new AbortController();
      const error = await runBlockCommit(fake, current, {
        pollIntervalMs: 1,
        signal: controller.signal,
        beforePivot: async () => controller.abort(),
      }).catch((e) => e);
      expect(isBlockJobError(error) && error.kind).toBe("aborted");
      expect([fake.calls, fake.running, fake.chain]).toEqual([
        ["commit vda base=/i/s2.qcow2 top=/i/s3.qcow2 bw=0 flags=4", "abort vda flags=0"],
        false,
        ["/i/s3.qcow2", "/i/s2.qcow2", "/i/s1.qcow2"],
      ]);
    });
  });

  test("a failing hook before the pivot cancels the READY job", async () => {
    const fake = new FakeJobs();
    const hookError = new Error("journal write failed");
    const error = await runBlockCommit(fake, current, {
      pollIntervalMs: 1,
      beforePivot: async () => {
        throw hookError;
      },
    }).catch((e) => e);
    expect(error).toBe(hookError);
    expect(fake.calls.at(-1)).toBe("abort vda flags=0");
    expect(fake.running).toBe(false);
  });

  test("a job that fails is reported as failed", async () => {
    const fake = new FakeJobs({ failAt: 40 });
    const error = await runBlockCommit(fake, middle, { pollIntervalMs: 1 }).catch((e) => e);
    expect(isBlockJobError(error) && error.kind).toBe("failed");
    expect(fake.running).toBe(false);
  });

  test("a job libvirt refuses to start is a failed BlockJobError with the cause, and nothing to end", async () => {
    const fake = new FakeJobs();
    const refusal = daemonError(1, "Block node is read-only");
    fake.domainBlockCommit = async () => {
      throw refusal;
    };
    const error = await runBlockCommit(fake, middle, { pollIntervalMs: 1 }).catch((e) => e);
    expect(isBlockJobError(error) && [error.kind, error.cause === refusal]).toEqual(["failed", true]);
    expect(error.message).toMatch(
      /did not start merging \/i\/s2\.qcow2 into \/i\/s1\.qcow2 on disk vda: Block node is read-only/,
    );
    expect(fake.calls).toEqual([]);
  });

  test("attach follows a job already running instead of starting one", async () => {
    const fake = new FakeJobs();
    await fake.domainBlockCommit(domain, "vda", current.base, current.top, 0n, 4);
    await runBlockCommit(fake, current, { pollIntervalMs: 1, attach: true });
    expect(fake.calls.filter((c) => c.startsWith("commit"))).toHaveLength(1);
    expect(fake.calls.at(-1)).toBe("abort vda flags=2");
  });
});

describe("cancelBlockJob", () => {
  test("throws when the cancelled job is still there after its wait, and leaves it running", async () => {
    vi.useFakeTimers();
    try {
      const fake = new FakeJobs({ ticks: Number.POSITIVE_INFINITY, ignoresCancel: true });
      await fake.domainBlockCommit(domain, "vda", middle.base, middle.top, 0n, 0);
      const outcome = cancelBlockJob(fake, domain, "vda").then(
        () => "resolved",
        (e: unknown) => e,
      );
      await vi.advanceTimersByTimeAsync(31_000);
      const error = await outcome;
      expect(isEngineError(error) && [error.kind, error.disk]).toEqual(["libvirt", "vda"]);
      expect((error as Error).message).toMatch(/cancelled but still runs/);
      expect(fake.running).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("mirrorIsReady", () => {
  const fixture = readFileSync(
    path.join(__dirname, "../../fixtures/xml/domain-running-active-commit-ready.xml"),
    "utf8",
  );
  test("reads the ready flag of the named disk only", () => {
    expect([
      mirrorIsReady(fixture, "vda"),
      mirrorIsReady(fixture, "vdb"),
      mirrorIsReady(fixture, "vdz"),
    ]).toEqual([true, false, false]);
  });
});
