import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, test } from "vitest";
import {
  classifyOwner,
  formatOwnerStamp,
  type OperationOwner,
  ownerStamp,
  parseOwnerStamp,
  thisProcessOwner,
} from "../../../provider/engine/operation-owner";

const linux = process.platform === "linux";

/** Field 22 (start time) and field 3 (state) of /proc/<pid>/stat, read here independently of the module. */
function procStat(pid: number): { start: string; state: string } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", start: fields[19] ?? "" };
}

/** The stamp `pid` would write on this host, its start time read from /proc. */
function stampOf(pid: number, start = procStat(pid).start): string {
  return formatOwnerStamp({ ...thisProcessOwner(), pid, start });
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill();
});

/** A `sleep 30` child that is running (spawned and its /proc entry there). */
async function sleeper(): Promise<ChildProcess & { pid: number }> {
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  return child as ChildProcess & { pid: number };
}

describe("owner stamps", () => {
  test("this process: its stamp round-trips and names it, whatever the hostname holds", () => {
    const me = thisProcessOwner();
    expect([me.pid, me.host, parseOwnerStamp(ownerStamp())]).toEqual([process.pid, hostname(), me]);
    const odd: OperationOwner = { pid: 7, start: "12", boot: "b", host: "a b=c%d\u00e9\"<x>'" };
    expect(parseOwnerStamp(formatOwnerStamp(odd))).toEqual(odd);
    expect(formatOwnerStamp({ pid: 7, host: "h" })).toBe("pid=7 host=h");
    expect(parseOwnerStamp("host=h pid=7 later=field")).toEqual({ pid: 7, host: "h" });
  });

  test.each([
    ["empty", ""],
    ["garbage", "garbage"],
    ["no pid", "host=h"],
    ["no host", "pid=12"],
    ["pid 0 (a process group for kill)", "pid=0 host=h"],
    ["negative pid", "pid=-1 host=h"],
    ["pid beyond any process", "pid=4294967296 host=h"],
    ["pid not a number", "pid=12a host=h"],
    ["start not a number", "pid=12 start=x host=h"],
    ["empty boot id", "pid=12 boot= host=h"],
    ["a field twice", "pid=12 pid=13 host=h"],
    ["bad escape", "pid=12 host=%E0%A4%A"],
  ])("unreadable (%s): no owner, classified elsewhere", (_what, stamp) => {
    expect([parseOwnerStamp(stamp), classifyOwner(stamp)]).toEqual([undefined, { status: "elsewhere" }]);
  });

  test("no stamp (metadata of an earlier version) is elsewhere", () => {
    expect(classifyOwner(undefined)).toEqual({ status: "elsewhere" });
  });
});

describe.runIf(linux)("classifying the owner of a stamp on Linux", () => {
  test("this process", () => {
    expect(classifyOwner(ownerStamp())).toEqual({ status: "this-process", owner: thisProcessOwner() });
  });

  test("this process's pid with another start time is an earlier process that is gone", () => {
    const stamp = stampOf(process.pid, String(Number(thisProcessOwner().start) + 1));
    expect(classifyOwner(stamp).status).toBe("gone");
  });

  test("a live other process of this host, with its command line", async () => {
    const child = await sleeper();
    const stamp = stampOf(child.pid);
    expect(classifyOwner(stamp)).toEqual({
      status: "alive-here",
      owner: parseOwnerStamp(stamp),
      command: "sleep",
    });
    // A stamp without a start time (written elsewhere than Linux) trusts the pid alone.
    expect(classifyOwner(`pid=${child.pid} host=${encodeURIComponent(hostname())}`).status).toBe(
      thisProcessOwner().boot === undefined ? "alive-here" : "elsewhere",
    );
  });

  test("a live process whose start time differs is a reused pid: gone", async () => {
    const child = await sleeper();
    expect(classifyOwner(stampOf(child.pid, String(Number(procStat(child.pid).start) + 1))).status).toBe(
      "gone",
    );
  });

  test("a process that has ended is gone", async () => {
    const child = await sleeper();
    const stamp = stampOf(child.pid);
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    expect(classifyOwner(stamp).status).toBe("gone");
  });

  test("a zombie (ended, never reaped by its parent) is gone although its pid still answers signal 0", async () => {
    // sh starts a short child, then becomes `sleep 30`, which never reaps it.
    const parent = spawn("sh", ["-c", "sleep 0 & echo $!; exec sleep 30"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    children.push(parent);
    const line = await new Promise<string>((resolve) =>
      createInterface({ input: parent.stdout }).once("line", resolve),
    );
    const pid = Number(line);
    // Waits for the state the test is about (the child's exit), with a bound instead of a fixed sleep.
    for (let i = 0; i < 3000 && procStat(pid).state !== "Z"; i++) await new Promise((r) => setTimeout(r, 10));
    expect(procStat(pid).state).toBe("Z");
    expect(() => process.kill(pid, 0)).not.toThrow();
    expect(classifyOwner(stampOf(pid)).status).toBe("gone");
  });

  test("another host, or this hostname after a reboot (another boot id), is elsewhere", async () => {
    const child = await sleeper();
    const here = parseOwnerStamp(stampOf(child.pid)) as OperationOwner;
    const otherHost = formatOwnerStamp({ ...here, host: `${here.host}-other` });
    const otherBoot = formatOwnerStamp({ ...here, boot: "00000000-0000-0000-0000-000000000000" });
    expect([classifyOwner(otherHost), classifyOwner(otherBoot)]).toEqual([
      { status: "elsewhere", owner: parseOwnerStamp(otherHost) },
      { status: "elsewhere", owner: parseOwnerStamp(otherBoot) },
    ]);
  });
});
