import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, test } from "vitest";
import { journalForSteps } from "../../../provider/engine/delete-execute";
import { isEngineError } from "../../../provider/engine/errors";
import { OperationPhase, withJournal } from "../../../provider/engine/journal";
import { formatOwnerStamp, thisProcessOwner } from "../../../provider/engine/operation-owner";
import { finishInterruptedOperations } from "../../../provider/engine/recover";
import { RevertPhase, withRevertRecord } from "../../../provider/engine/revert-state";
import { PROJECT_METADATA_ROOT } from "../../../provider/model/metadata";
import { parseForEdit, serialize } from "../../../provider/model/xml";
import { FakeHost } from "./delete-fakes";

/** A delete killed while it started a shut-off domain: recovery only clears it (the domain runs now). */
const journal = {
  ...journalForSteps("s1", [{ kind: "stop-domain" }], "op-1", new Date(0)),
  phase: OperationPhase.STARTING,
};
const revert = {
  id: "r-1",
  snapshot: "s1",
  started: "1970-01-01T00:00:00.000Z",
  phase: RevertPhase.DEFINING,
  overlays: [],
  previous: [],
};

/** `xml` as written by the owner `stamp`. */
function ownedBy(xml: string | null, stamp: string): string {
  const root = parseForEdit(xml ?? "", PROJECT_METADATA_ROOT, "project metadata");
  root.setAttribute("owner", stamp);
  return serialize(root);
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill();
});

/** The stamp of a live `sleep 30` child of this host (start time from /proc). */
async function liveOtherProcess(): Promise<{ stamp: string; pid: number }> {
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  const pid = child.pid as number;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  return { pid, stamp: formatOwnerStamp({ ...thisProcessOwner(), pid, ...(start ? { start } : {}) }) };
}

function hostWith(metadata: string): FakeHost {
  const host = new FakeHost({ vda: ["/i/a.s1", "/i/a"] }, ["s1"], []);
  host.metadata = metadata;
  return host;
}

describe.runIf(process.platform === "linux")("recovery and the owner of a record", () => {
  test.each([
    [
      "a delete journal",
      withJournal(undefined, journal),
      /a delete of snapshot s1 \(started 1970-01-01T00:00:00.000Z/,
    ],
    [
      "a revert record",
      withRevertRecord(undefined, revert),
      /a revert to snapshot s1 \(started .*, phase defining\)/,
    ],
  ])(
    "%s written by another live process of this host: DOMAIN_BUSY, nothing changed",
    async (_what, xml, operation) => {
      const other = await liveOtherProcess();
      const host = hostWith(ownedBy(xml, other.stamp));
      const before = host.snapshotState();
      const error = await finishInterruptedOperations(host, host.domain).catch((e: unknown) => e);
      expect(isEngineError(error) && [error.kind, error.domain]).toEqual(["domain-busy", "d"]);
      const message = (error as Error).message;
      expect(message).toMatch(operation);
      expect(message).toContain(`process ${other.pid} (sleep) on this host (\`ps -fp ${other.pid}\` shows`);
      expect(message).toMatch(/Wait for it to finish, or stop that process and try again$/);
      expect([host.mutations, host.snapshotState()]).toEqual([[], before]);
    },
  );

  test.each([
    ["a process that has ended", "gone"],
    ["another host", "elsewhere"],
    ["this process", "this-process"],
    ["no stamp (an earlier version)", "none"],
  ])("a journal written by %s is recovered", async (_what, owner) => {
    const xml = withJournal(undefined, journal);
    let stamp: string | undefined;
    if (owner === "gone") {
      const other = await liveOtherProcess();
      const child = children.at(-1) as ChildProcess;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
      stamp = other.stamp;
    } else if (owner === "elsewhere") {
      stamp = formatOwnerStamp({ ...thisProcessOwner(), host: `${thisProcessOwner().host}-other` });
    } else if (owner === "this-process") {
      stamp = formatOwnerStamp(thisProcessOwner());
    }
    const host = hostWith(stamp === undefined ? (xml ?? "") : ownedBy(xml, stamp));
    const report = await finishInterruptedOperations(host, host.domain);
    expect([report?.delete?.action, host.mutations, host.metadata]).toEqual([
      "rolled-back",
      ["set-metadata"],
      undefined,
    ]);
  });
});
