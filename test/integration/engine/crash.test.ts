import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { deleteSnapshot } from "../../../provider/engine/delete";
import { TRANSIENT_POOL_PREFIX } from "../../../provider/engine/delete-files";
import { withDomainLock } from "../../../provider/engine/domain-lock";
import { readJournal } from "../../../provider/engine/journal";
import { finishInterruptedOperations } from "../../../provider/engine/recover";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { lab } from "../../support/lab";
import { RunError } from "../../support/run";
import { virsh } from "../../support/virsh";
import { expectedObservation, LayeredDomain, observe, openLabConnection } from "./delete-support";

let conn: LibvirtConnection;
beforeAll(async () => {
  conn = await openLabConnection();
});
afterAll(async () => {
  await conn?.close();
});

const MiB = 1024 * 1024;
const SLOW = String(8 * MiB);

interface ChildEvent {
  event: string;
  at?: string;
  done?: number;
  total?: number;
  message?: string;
}

/**
 * Runs crash-child.ts (a real process running deleteSnapshot) and SIGKILLs its whole process group as soon as
 * `killWhen` accepts one of its events. Rejects if the child ends on its own first.
 */
function runAndKill(args: string[], killWhen: (e: ChildEvent) => boolean): Promise<ChildEvent> {
  const child = spawn("npx", ["tsx", join(__dirname, "crash-child.ts"), ...args], {
    cwd: join(__dirname, "../../.."),
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    let killed = false;
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (killed || !line.startsWith("{")) return;
      const event = JSON.parse(line) as ChildEvent;
      if (!killWhen(event)) return;
      killed = true;
      process.kill(-(child.pid ?? 0), "SIGKILL");
      child.once("exit", () => resolve(event));
    });
    child.once("exit", (code, signal) => {
      if (!killed)
        reject(new Error(`child ended by itself (${code ?? signal}) before the kill point: ${stderr}`));
    });
  });
}

async function layered(
  snapshots: number,
  bulkMiB: number | undefined,
  state: "running" | "shutoff",
  bulkLayer = snapshots,
) {
  const domain = new LayeredDomain(await lab.domain({ disks: [{ sizeMiB: 128 }], state: "shutoff" }), {
    disks: 1,
    snapshots,
    kind: "disk-only",
    ...(bulkMiB === undefined ? {} : { bulkMiB, bulkLayer }),
  });
  await domain.build();
  await domain.enter(state);
  return domain;
}

/**
 * Transient pools of file removal over this domain's directory (none may outlive an operation). Deletes in
 * other test files create and destroy such pools all the time: one that is gone by the time it is read was
 * theirs (ours live until this test's recovery), so it is skipped instead of failing the test.
 */
async function transientPools(domain: LayeredDomain): Promise<string[]> {
  const names = (await virsh("pool-list", "--all", "--name"))
    .split("\n")
    .filter((n) => n.startsWith(TRANSIENT_POOL_PREFIX));
  const xmls = await Promise.all(
    names.map((n) =>
      virsh("pool-dumpxml", n).catch((e: unknown) => {
        if (e instanceof RunError && /Storage pool not found/.test(e.stderr)) return "";
        throw e;
      }),
    ),
  );
  return names.filter((_, i) => xmls[i]?.includes(`<path>${domain.lab.dir}</path>`));
}

async function refOf(domain: LayeredDomain) {
  return conn.domainLookupByName(domain.lab.name);
}

/** What `verify --repair` does: recovery under the domain lock. */
async function recover(domain: LayeredDomain) {
  const ref = await refOf(domain);
  return withDomainLock(ref.uuid, () => finishInterruptedOperations(conn, ref));
}

describe("a delete killed at any point is finished by the next engine call", () => {
  test("killed before the job: the journal says merging, no job runs; deleting another snapshot finishes it first", async () => {
    const domain = await layered(2, undefined, "running");
    await runAndKill([domain.lab.name, "s2", SLOW, "commit"], (e) => e.event === "hang");
    const journal = await readJournal(conn, await refOf(domain));
    expect([journal?.snapshot, journal?.phase, journal?.disks.map((d) => d.phase)]).toEqual([
      "s2",
      "merging",
      ["merging"],
    ]);
    expect(await conn.domainGetBlockJobInfo(await refOf(domain), "vda")).toBeNull();

    const result = await deleteSnapshot(conn, domain.lab.name, "s1");
    expect([
      result.outcome,
      result.recovered?.delete?.action,
      result.recovered?.delete?.journal.snapshot,
    ]).toEqual(["deleted", "finished", "s2"]);
    expect(await observe(domain)).toEqual(expectedObservation(domain, ["s1", "s2"], true));
    expect(await readJournal(conn, await refOf(domain))).toBeNull();
  });

  test("killed during an active commit (64 MiB at 8 MiB/s): recovery re-attaches, waits for READY and pivots", async () => {
    const domain = await layered(2, 64, "running");
    // Killed once the job copied data and the pool for the file removal exists: the delete prepares that pool
    // in the background, so progress alone does not say it is there yet. A child slowed down enough to see
    // READY first stops before the pivot, so either way the kill lands while the job runs or waits in READY.
    let copying = false;
    let pool = false;
    await runAndKill([domain.lab.name, "s2", SLOW, "pivot"], (e) => {
      if (e.event === "pool") pool = true;
      if (e.event === "hang" || (e.event === "progress" && (e.done ?? 0) > 0)) copying = true;
      return copying && pool;
    });
    // An active commit never ends by itself: running or READY, it waits for a pivot.
    const info = await conn.domainGetBlockJobInfo(await refOf(domain), "vda");
    expect(info, "the job outlives the killed client").not.toBeNull();

    expect(await transientPools(domain), "the killed run had prepared a pool").toHaveLength(1);

    const report = await recover(domain);
    expect([report?.delete?.action, report?.delete?.journal.snapshot]).toEqual(["finished", "s2"]);
    expect(await observe(domain)).toEqual(expectedObservation(domain, ["s2"], true));
    expect(await transientPools(domain), "recovery adopted and destroyed it").toEqual([]);
  });

  test("killed during a commit of a middle layer (64 MiB at 8 MiB/s): deleting it again waits for the job", async () => {
    // 64 MiB in the overlay of s1, which is the middle layer: s1's merge is a plain commit.
    const domain = await layered(2, 64, "running", 1);
    // Killed once the job copied data. A plain commit ends by itself: a child slowed down enough to see it end
    // first stops before deleting the metadata, so the kill always leaves the delete unfinished, with the job
    // still running (the usual case: 8 s of copying remain) or just completed; recovery must handle both.
    await runAndKill(
      [domain.lab.name, "s1", SLOW, "metadata"],
      (e) => e.event === "hang" || (e.event === "progress" && (e.done ?? 0) > 0),
    );
    expect((await readJournal(conn, await refOf(domain)))?.snapshot).toBe("s1");

    const result = await deleteSnapshot(conn, domain.lab.name, "s1");
    expect([result.outcome, result.recovered?.delete?.action]).toEqual(["absent", "finished"]);
    expect(await observe(domain)).toEqual(expectedObservation(domain, ["s1"], true));
  });

  test("killed while READY: the job waits for ever until recovery pivots it", async () => {
    const domain = await layered(2, undefined, "running");
    await runAndKill([domain.lab.name, "s2", SLOW, "pivot"], (e) => e.event === "hang");
    expect((await domain.lab.xml()).includes("ready='yes'"), "READY, not pivoted").toBe(true);
    expect((await readJournal(conn, await refOf(domain)))?.disks[0]?.phase).toBe("pivoting");

    const report = await recover(domain);
    expect(report?.delete?.action).toBe("finished");
    expect(await observe(domain)).toEqual(expectedObservation(domain, ["s2"], true));
  });

  test("killed after the pivot: recovery deletes the metadata and the merged file", async () => {
    const domain = await layered(2, undefined, "running");
    await runAndKill([domain.lab.name, "s2", SLOW, "metadata"], (e) => e.event === "hang");
    expect((await readJournal(conn, await refOf(domain)))?.phase).toBe("deleting-metadata");
    expect(await domain.lab.liveChain("vda")).toEqual([domain.overlay("vda", "s1"), domain.lab.base("vda")]);

    const result = await deleteSnapshot(conn, domain.lab.name, "s2");
    expect([result.outcome, result.recovered?.delete?.action]).toEqual(["absent", "finished"]);
    expect(await observe(domain)).toEqual(expectedObservation(domain, ["s2"], true));
  });

  test("a shut-off domain left running paused by a killed delete is merged and shut off again", async () => {
    const domain = await layered(2, undefined, "shutoff");
    await runAndKill([domain.lab.name, "s2", SLOW, "pivot"], (e) => e.event === "hang");
    expect([await domain.lab.state(), (await readJournal(conn, await refOf(domain)))?.startedDomain]).toEqual(
      ["paused", true],
    );

    const report = await recover(domain);
    expect(report?.delete?.action).toBe("finished");
    expect(await domain.lab.state()).toBe("shutoff");
    expect(await observe(domain)).toEqual(expectedObservation(domain, ["s2"], false));
  });
});
