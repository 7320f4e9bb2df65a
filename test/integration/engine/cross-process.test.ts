/**
 * Two processes on one domain: the per-domain lock excludes only operations of one process, so an operation
 * of this process must never take over (finish or roll back) what another live process recorded and is still
 * running. The other process is cross-process-child.ts, stopped for good in the middle of its operation.
 */
import { spawn } from "node:child_process";
import { basename, join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, onTestFinished, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { deleteSnapshot } from "../../../provider/engine/delete";
import { isEngineError } from "../../../provider/engine/errors";
import { readJournal } from "../../../provider/engine/journal";
import { readProjectMetadata } from "../../../provider/engine/project-metadata";
import { revertSnapshot } from "../../../provider/engine/revert";
import { readRevertRecord } from "../../../provider/engine/revert-state";
import { type LabDomain, lab } from "../../support/lab";
import { virsh } from "../../support/virsh";
import { expectedObservation, LayeredDomain, observe } from "./delete-support";
import { labConnectionPerFile } from "./lab-connection";
import { diskOnlyLayers, files, visibleLayer } from "./revert-support";

const conn = labConnectionPerFile();

/** The other process, hung in its operation; `kill` ends its whole process group and waits for npx to exit. */
interface HungChild {
  readonly pid: number;
  kill(): Promise<void>;
}

/** Starts cross-process-child.ts and resolves once it says it hangs (after recording its operation). */
function startHungChild(
  domain: string,
  operation: "delete" | "revert",
  snapshot: string,
): Promise<HungChild> {
  const child = spawn(
    "npx",
    ["tsx", join(__dirname, "cross-process-child.ts"), domain, operation, snapshot],
    {
      cwd: join(__dirname, "../../.."),
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let ended = false;
  const kill = async () => {
    if (!ended && child.pid !== undefined) {
      ended = true;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // The group is gone already.
      }
    }
    await exited;
  };
  onTestFinished(kill);
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (!line.startsWith("{")) return;
      const event = JSON.parse(line) as { event: string; pid: number };
      if (event.event === "hang") resolve({ pid: event.pid, kill });
    });
    void exited.then(() => reject(new Error(`the child ended before it hung: ${stderr}`)));
  });
}

/** Everything an operation could change: state, definitions, project metadata, snapshots, files and chains. */
async function hostState(dom: LabDomain) {
  const ref = await conn().domainLookupByName(dom.name);
  const names = await files(dom);
  const images = names.filter((n) => n.endsWith(".qcow2"));
  const state = await dom.state();
  return {
    state,
    live: await dom.xml(),
    persistent: await dom.xml(true),
    metadata: await readProjectMetadata(conn(), ref),
    snapshots: await dom.snapshotParents(),
    files: names,
    chains: await Promise.all(images.map((n) => dom.fileChain(dom.path(n)))),
    job: state === "shutoff" ? null : await conn().domainGetBlockJobInfo(ref, "vda"),
  };
}

/** The failure of `operation`, which must be DOMAIN_BUSY naming the domain and the other process. */
async function expectBusy(operation: Promise<unknown>, dom: LabDomain, other: HungChild, recorded: RegExp) {
  const error = await operation.then(
    () => new Error("the operation succeeded"),
    (e: unknown) => e,
  );
  expect(isEngineError(error) && [error.kind, error.domain]).toEqual(["domain-busy", dom.name]);
  const message = (error as Error).message;
  expect(message).toMatch(recorded);
  expect(message).toContain(`domain ${dom.name}: `);
  expect(message).toContain(`in another process ${other.pid} (`);
  expect(message).toContain("Wait for it to finish, or stop that process and try again");
}

const anyOperation = (dom: LabDomain) => [
  () => createSnapshot(conn(), { domain: dom.name, name: "s9", quiesce: "off" }),
  () => deleteSnapshot(conn(), dom.name, "s1"),
  () => revertSnapshot(conn(), dom.name, "s1"),
];

describe("an operation another live process of this host is running is never taken over", () => {
  test("a delete hung before its block commit: create, delete and revert are refused and change nothing; once it is killed, the next delete finishes it", async () => {
    const domain = new LayeredDomain(await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" }), {
      disks: 1,
      snapshots: 2,
      kind: "disk-only",
    });
    await domain.build();
    await domain.enter("running");
    const other = await startHungChild(domain.lab.name, "delete", "s2");

    const before = await hostState(domain.lab);
    expect(before.metadata).toMatch(/<journal /);
    for (const operation of anyOperation(domain.lab)) {
      await expectBusy(
        operation(),
        domain.lab,
        other,
        /: a delete of snapshot s2 \(started .*, phase merging\)/,
      );
    }
    expect(await hostState(domain.lab)).toEqual(before);

    await other.kill();
    const result = await deleteSnapshot(conn(), domain.lab.name, "s1");
    expect([
      result.outcome,
      result.recovered?.delete?.action,
      result.recovered?.delete?.journal.snapshot,
    ]).toEqual(["deleted", "finished", "s2"]);
    expect(await observe(domain)).toEqual(expectedObservation(domain, ["s1", "s2"], true));
    expect(await readJournal(conn(), await conn().domainLookupByName(domain.lab.name))).toBeNull();
  });

  test("a revert hung before it switches the definition to its new overlays: refused, nothing changes; once it is killed, the next revert rolls it back and reverts", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2"]);
    const other = await startHungChild(dom.name, "revert", "s1");
    const record = await readRevertRecord(conn(), await conn().domainLookupByName(dom.name));
    onTestFinished(() => virsh("undefine", record?.helper ?? "").then(noop, noop));
    expect([record?.snapshot, record?.phase, record?.overlays.map((o) => basename(o.path))]).toEqual([
      "s1",
      "defining",
      ["vda.s1.revert-1.qcow2"],
    ]);

    const before = await hostState(dom);
    for (const operation of anyOperation(dom)) {
      await expectBusy(operation(), dom, other, /: a revert to snapshot s1 \(started .*, phase defining\)/);
    }
    expect(await hostState(dom)).toEqual(before);

    await other.kill();
    const again = await revertSnapshot(conn(), dom.name, "s1");
    expect(again.notes[0]).toMatch(/^an interrupted revert of domain .* to snapshot s1 .* was rolled back/);
    expect(await readRevertRecord(conn(), await conn().domainLookupByName(dom.name))).toBeNull();
    expect(await visibleLayer(dom)).toBe(0);
    expect(await files(dom)).toEqual(
      ["domain.xml", "vda.qcow2", "vda.s1.qcow2", ...again.overlays.map((o) => basename(o.path))].sort(),
    );
  });
});

function noop(): void {}
