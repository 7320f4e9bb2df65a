import { describe, expect, test } from "vitest";
import { executeDelete, journalForSteps } from "../../../provider/engine/delete-execute";
import type { DeleteStep } from "../../../provider/engine/delete-plan";
import { isEngineError } from "../../../provider/engine/errors";
import { DiskPhase, parseJournal, withJournal, writeJournal } from "../../../provider/engine/journal";
import { finishInterruptedOperations } from "../../../provider/engine/recover";
import { DomainState } from "../../../provider/libvirt/api";
import { daemonError, FakeHost, type FakeHostState } from "./delete-fakes";

interface Scenario {
  name: string;
  state: number;
  chains: Record<string, string[]>;
  steps: DeleteStep[];
  files: string[];
}

const commit = (disk: string, top: string, base: string, active: boolean): DeleteStep => ({
  kind: "commit",
  disk,
  top,
  base,
  active,
});
const removal = (path: string): DeleteStep => ({ kind: "remove-file", path, role: "overlay" });

const scenarios: Scenario[] = [
  {
    name: "middle snapshot, two disks, running",
    state: DomainState.RUNNING,
    chains: { vda: ["/i/a.s2", "/i/a.s1", "/i/a"], vdb: ["/i/b.s2", "/i/b.s1", "/i/b"] },
    steps: [
      commit("vda", "/i/a.s1", "/i/a", false),
      commit("vdb", "/i/b.s1", "/i/b", false),
      { kind: "delete-metadata", snapshot: "s1" },
      removal("/i/a.s1"),
      removal("/i/b.s1"),
    ],
    files: ["/i/a.s2", "/i/a.s1", "/i/a", "/i/b.s2", "/i/b.s1", "/i/b"],
  },
  {
    name: "current memory snapshot, running",
    state: DomainState.RUNNING,
    chains: { vda: ["/i/a.s1", "/i/a"] },
    steps: [
      commit("vda", "/i/a.s1", "/i/a", true),
      { kind: "delete-metadata", snapshot: "s1" },
      removal("/i/a.s1"),
      { kind: "remove-file", path: "/m/s1.mem", role: "memory" },
    ],
    files: ["/i/a.s1", "/i/a", "/m/s1.mem"],
  },
  {
    name: "current snapshot, shut off (started paused, stopped again)",
    state: DomainState.SHUTOFF,
    chains: { vda: ["/i/a.s1", "/i/a"] },
    steps: [
      commit("vda", "/i/a.s1", "/i/a", true),
      { kind: "stop-domain" },
      { kind: "delete-metadata", snapshot: "s1" },
      removal("/i/a.s1"),
    ],
    files: ["/i/a.s1", "/i/a"],
  },
];

function hostFor(s: Scenario): FakeHost {
  const host = new FakeHost(s.chains, ["s0", "s1"], s.files);
  host.domainState = s.state;
  return host;
}

const journalOf = (s: Scenario) => journalForSteps("s1", s.steps, "op-1", new Date(0));
const options = { pollIntervalMs: 1 };

async function run(host: FakeHost, s: Scenario) {
  // The journal is on the domain before the executor runs (deleteSnapshot writes it).
  host.metadata = withJournal(undefined, journalOf(s)) ?? undefined;
  await executeDelete(host, host.domain, journalOf(s), options);
}

/** What a finished delete must leave: tops out of the chains, snapshot and files gone, no journal. */
function expectedEnd(s: Scenario): FakeHostState {
  const tops = s.steps.flatMap((step) => (step.kind === "commit" ? [step.top] : []));
  const removed = s.steps.flatMap((step) => (step.kind === "remove-file" ? [step.path] : []));
  return {
    domainState: s.state,
    chains: Object.fromEntries(
      Object.entries(s.chains).map(([d, c]) => [d, c.filter((p) => !tops.includes(p))]),
    ),
    snapshots: ["s0"],
    files: s.files.filter((f) => !removed.includes(f)).sort(),
    journal: undefined,
    job: null,
    pools: [],
  };
}

describe.each(scenarios)("executeDelete: $name", (s) => {
  test("runs to the expected end and records the journal first", async () => {
    const host = hostFor(s);
    await run(host, s);
    expect(host.snapshotState()).toEqual(expectedEnd(s));
    expect(host.mutations.filter((m) => m !== "set-metadata").length).toBeGreaterThan(0);
  });

  test("a failure at every state-changing call leaves a consistent, journaled state that recovery finishes", async () => {
    const baseline = hostFor(s);
    await run(baseline, s);
    const calls = baseline.mutations.length;
    const tops = s.steps.flatMap((step) => (step.kind === "commit" ? [step.top] : []));
    for (let failAt = 0; failAt < calls; failAt++) {
      const host = hostFor(s);
      host.failAt = failAt;
      const error = await run(host, s).then(
        () => undefined,
        (e: unknown) => e,
      );
      const failed = host.mutations[failAt];
      if (failed === "pool-destroy") {
        // The delete is complete; only the transient pool lingers (the next removal there adopts it).
        expect(error, "a pool that cannot be destroyed does not fail a finished delete").toBeUndefined();
        expect({ ...host.snapshotState(), pools: [] }).toEqual(expectedEnd(s));
        expect(host.pools.size).toBe(1);
        continue;
      }
      expect(error, `failure of ${failed} (call ${failAt}) must surface`).toBeInstanceOf(Error);
      const left = host.snapshotState();
      const journal = parseJournal(left.journal);
      // Every job ended; every chain is the original or the merged one.
      expect(left.job, `after ${failed}`).toBeNull();
      for (const [disk, chain] of Object.entries(left.chains)) {
        const original = s.chains[disk] ?? [];
        expect([original, original.filter((p) => !tops.includes(p))], `after ${failed}`).toContainEqual(
          chain,
        );
      }
      // Anything irreversible done is on record; a domain the delete started is stopped or on record.
      const changed =
        JSON.stringify(left.chains) !== JSON.stringify(s.chains) || !left.snapshots.includes("s1");
      if (changed) expect(journal, `after ${failed}`).not.toBeNull();
      if (left.domainState !== s.state) expect(journal?.startedDomain, `after ${failed}`).toBe(true);

      host.failAt = undefined;
      const report = await finishInterruptedOperations(host, host.domain, options);
      if (report === null) {
        // Rolled back (or nothing recorded): the snapshot is intact and a new delete succeeds.
        expect(host.snapshotState().chains, `after ${failed}`).toEqual(s.chains);
        await run(host, s);
      }
      expect(host.snapshotState(), `recovery after failure of ${failed} (call ${failAt})`).toEqual(
        expectedEnd(s),
      );
    }
  });
});

describe("executeDelete: a block job it did not start", () => {
  const chains = { vda: ["/i/a.s2", "/i/a.s1", "/i/a"] };
  const files = ["/i/a.s2", "/i/a.s1", "/i/a"];

  /** A host running `job` on vda and the journal (already on the domain) of a delete of s2 or s1. */
  function hostWithJob(job: NonNullable<FakeHost["job"]>, step: DeleteStep, phase: DiskPhase) {
    const host = new FakeHost(chains, ["s1", "s2"], files);
    host.job = job;
    const planned = journalForSteps(job.active ? "s2" : "s1", [step], "op-1", new Date(0));
    const journal = { ...planned, disks: planned.disks.map((d) => ({ ...d, phase })) };
    if (phase !== DiskPhase.PENDING) host.metadata = withJournal(undefined, journal) ?? undefined;
    return { host, journal };
  }

  const cases = [
    {
      name: "a user's active commit into a deeper base, journal disk still pending",
      job: { disk: "vda", top: "/i/a.s2", base: "/i/a", active: true, ready: true },
      step: commit("vda", "/i/a.s2", "/i/a.s1", true),
      phase: DiskPhase.PENDING,
    },
    {
      name: "an active commit into another base than the journal's, journal says merging",
      job: { disk: "vda", top: "/i/a.s2", base: "/i/a", active: true, ready: true },
      step: commit("vda", "/i/a.s2", "/i/a.s1", true),
      phase: DiskPhase.PIVOTING,
    },
    {
      name: "an active commit while the journal merges a layer below the active one",
      job: { disk: "vda", top: "/i/a.s2", base: "/i/a.s1", active: true, ready: true },
      step: commit("vda", "/i/a.s1", "/i/a", false),
      phase: DiskPhase.MERGING,
    },
  ];

  test.each(cases)("$name: refused, nothing touched", async ({ job, step, phase }) => {
    const { host, journal } = hostWithJob(job, step, phase);
    const before = host.snapshotState();
    const error = await executeDelete(host, host.domain, journal, options).catch((e: unknown) => e);
    expect(isEngineError(error) && [error.kind, error.disk]).toEqual(["block-job-active", "vda"]);
    expect((error as Error).message).toMatch(/a block job this delete did not start .* end it first/);
    expect(host.mutations.filter((m) => m !== "set-metadata")).toEqual([]);
    // The job, the chain and the snapshots are as they were; nothing of this delete is left on record.
    expect(host.snapshotState()).toEqual({ ...before, journal: undefined });
  });

  test("found by recovery: the error keeps the executor's kind and says what is left", async () => {
    const { host } = hostWithJob(
      { disk: "vda", top: "/i/a.s2", base: "/i/a", active: true, ready: true },
      commit("vda", "/i/a.s2", "/i/a.s1", true),
      DiskPhase.PIVOTING,
    );
    const before = host.snapshotState();
    const error = await finishInterruptedOperations(host, host.domain, options).catch((e: unknown) => e);
    expect(isEngineError(error) && [error.kind, error.snapshot]).toEqual(["block-job-active", "s2"]);
    // Nothing was merged and the job is not the delete's: it is rolled back, and the message says so.
    expect((error as Error).message).toMatch(/unfinished delete of snapshot s2 .*nothing was merged/);
    expect(host.snapshotState()).toEqual({ ...before, journal: undefined });
  });

  test("its own active commit (journal pivoting, mirror into the journal's base) is followed and pivoted", async () => {
    const { host, journal } = hostWithJob(
      { disk: "vda", top: "/i/a.s2", base: "/i/a.s1", active: true, ready: true },
      commit("vda", "/i/a.s2", "/i/a.s1", true),
      DiskPhase.PIVOTING,
    );
    await executeDelete(host, host.domain, journal, options);
    expect(host.mutations.filter((m) => m !== "set-metadata")).toEqual(["pivot vda", "snapshot-delete"]);
    expect(host.snapshotState().chains).toEqual({ vda: ["/i/a.s1", "/i/a"] });
  });
});

describe("executeDelete: a layer that left the chain without this delete's merge", () => {
  const recorded = ["/i/a.s2", "/i/a.s1", "/i/a"];
  const cases = [
    {
      name: "an outside revert to s1 after the active commit started (journal pivoting)",
      live: ["/i/a.s1.revert-1", "/i/a.s1", "/i/a"],
      phase: DiskPhase.PIVOTING,
      chain: recorded,
    },
    {
      name: "a disk the delete never started a job on (journal pending)",
      live: ["/i/a.s1", "/i/a"],
      phase: DiskPhase.PENDING,
      chain: undefined,
    },
  ];

  test.each(cases)("$name: VERIFY_FAILED, metadata and journal kept", async ({ live, phase, chain }) => {
    const host = new FakeHost({ vda: live }, ["s1", "s2"], [...recorded, ...live]);
    const planned = journalForSteps("s2", [commit("vda", "/i/a.s2", "/i/a.s1", true)], "op-1", new Date(0));
    const journal = {
      ...planned,
      disks: planned.disks.map((d) => ({ ...d, phase, ...(chain === undefined ? {} : { chain }) })),
    };
    await writeJournal(host, host.domain, journal);
    const before = host.snapshotState();
    const error = await executeDelete(host, host.domain, journal, options).catch((e: unknown) => e);
    expect(isEngineError(error) && [error.kind, error.disk]).toEqual(["verify-failed", "vda"]);
    expect(host.mutations.filter((m) => m !== "set-metadata")).toEqual([]);
    expect(host.snapshotState()).toEqual(before);
    expect(parseJournal(host.metadata)).toEqual(journal);
  });

  test("the chain the merge leaves is taken as merged and the delete finishes", async () => {
    const host = new FakeHost({ vda: ["/i/a.s1", "/i/a"] }, ["s1", "s2"], recorded);
    const planned = journalForSteps(
      "s2",
      [commit("vda", "/i/a.s2", "/i/a.s1", true), removal("/i/a.s2")],
      "op-1",
      new Date(0),
    );
    const journal = {
      ...planned,
      disks: planned.disks.map((d) => ({ ...d, phase: DiskPhase.PIVOTING, chain: recorded })),
    };
    host.metadata = withJournal(undefined, journal) ?? undefined;
    await executeDelete(host, host.domain, journal, options);
    expect(host.snapshotState()).toMatchObject({ snapshots: ["s1"], files: ["/i/a", "/i/a.s1"] });
    expect(host.metadata).toBeUndefined();
  });
});

describe("executeDelete: a commit that completes while it is cancelled", () => {
  test("and the chain cannot be read right after: the delete stays journaled, recovery finishes it", async () => {
    const chain = ["/i/a.s2", "/i/a.s1", "/i/a"];
    const host = new FakeHost({ vda: chain }, ["s1", "s2"], [...chain]);
    // The job of a killed run: a plain commit that never finishes by itself.
    host.job = { disk: "vda", top: "/i/a.s1", base: "/i/a", active: false, ready: false };
    const planned = journalForSteps(
      "s1",
      [commit("vda", "/i/a.s1", "/i/a", false), removal("/i/a.s1")],
      "op-1",
      new Date(0),
    );
    const journal = {
      ...planned,
      disks: planned.disks.map((d) => ({ ...d, phase: DiskPhase.MERGING, chain })),
    };
    host.metadata = withJournal(undefined, journal) ?? undefined;
    const readXml = host.domainGetXMLDesc.bind(host);
    let failNextRead = false;
    host.domainGetXMLDesc = async () => {
      if (!failNextRead) return readXml();
      failNextRead = false;
      throw new Error("connection lost for a moment");
    };
    host.domainBlockJobAbort = async () => {
      host.chains.vda = ["/i/a.s2", "/i/a"];
      host.job = null;
      failNextRead = true;
      throw daemonError(55, "no job");
    };
    const error = await executeDelete(host, host.domain, journal, { ...options, timeoutMs: 20 }).catch(
      (e: unknown) => e,
    );
    expect((error as { deleteState?: string }).deleteState).toBe("journaled");
    expect(parseJournal(host.metadata)?.disks).toEqual(journal.disks);
    expect(host.snapshots.has("s1")).toBe(true);

    await executeDelete(host, host.domain, journal, options);
    expect(host.snapshotState()).toMatchObject({
      chains: { vda: ["/i/a.s2", "/i/a"] },
      snapshots: ["s2"],
      files: ["/i/a", "/i/a.s2"],
      journal: undefined,
    });
  });
});
