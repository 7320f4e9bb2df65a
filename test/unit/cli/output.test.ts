import { describe, expect, test } from "vitest";
import { listDocument, renderList } from "../../../cli/commands/list";
import { formatAge, formatBytes } from "../../../cli/format";
import { ProgressReporter } from "../../../cli/progress";
import type { DomainSnapshots } from "../../../provider/engine/inspect";

function stream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 100, write: (s: string) => writes.push(s) } };
}

describe("merge progress", () => {
  const samples = [0, 5, 12, 19, 55, 100].map((done) => ({
    disk: "vda",
    bytesDone: done * 1024 * 1024,
    bytesTotal: 100 * 1024 * 1024,
  }));

  test("on a terminal: one bar redrawn in place, ended by a newline", () => {
    const { writes, stream: s } = stream(true);
    const reporter = new ProgressReporter(s, "merging s1");
    for (const sample of samples.slice(-2)) reporter.update(sample);
    reporter.done();
    reporter.done();
    expect(writes).toEqual([
      `\r\x1b[2Kmerging s1 vda [${"#".repeat(17)}${"-".repeat(13)}]  55% 55 MiB/100 MiB`,
      `\r\x1b[2Kmerging s1 vda [${"#".repeat(30)}] 100% 100 MiB/100 MiB`,
      "\n",
    ]);
  });

  test("otherwise: a plain line per disk and per 10 % step, no control characters", () => {
    const { writes, stream: s } = stream(false);
    const reporter = new ProgressReporter(s, "merging s1");
    for (const sample of samples) reporter.update(sample);
    reporter.update({ disk: "vdb", bytesDone: 0, bytesTotal: 0 });
    reporter.done();
    expect(writes).toEqual(
      [
        "merging s1 vda: 0% (0 B/100 MiB)",
        "merging s1 vda: 12% (12 MiB/100 MiB)",
        "merging s1 vda: 55% (55 MiB/100 MiB)",
        "merging s1 vda: 100% (100 MiB/100 MiB)",
        "merging s1 vdb: 0% (0 B/0 B)",
      ].map((line) => `${line}\n`),
    );
  });
});

test("sizes and ages", () => {
  expect([0, 1023, 1024, 1536, 200704, 10 * 1024 ** 3].map(formatBytes)).toEqual([
    "0 B",
    "1023 B",
    "1.0 KiB",
    "1.5 KiB",
    "196 KiB",
    "10 GiB",
  ]);
  const now = new Date("2026-11-22T12:00:00Z");
  const t = now.getTime() / 1000;
  expect([t, t - 42, t - 300, t - 7200, t - 3 * 86400, t + 60].map((s) => formatAge(s, now))).toEqual([
    "just now",
    "42 s ago",
    "5 min ago",
    "2 h ago",
    "3 d ago",
    "in the future",
  ]);
});

test("list: a tree with sizes, unknown sizes explained, and the model's problems", () => {
  const file = (path: string) => ({ kind: "file" as const, path });
  const forest: DomainSnapshots = {
    domain: { name: "web1", uuid: "6e26ce1c-3e69-4e4e-ada5-7495e0519381" },
    snapshots: [
      {
        name: "a",
        state: "running",
        creationTime: 1_795_000_000,
        children: ["b", "c"],
        memory: { mode: "external", file: "/img/web1.a.mem" },
        disks: [
          {
            target: "vda",
            overlay: file("/img/vda.a.qcow2"),
            pointInTime: file("/img/vda.qcow2"),
            chainPosition: 1,
          },
        ],
        quiesced: false,
        quiesceNote: "not quiesced: memory snapshot",
      },
      {
        name: "b",
        description: "before <deploy> & co",
        state: "disk-snapshot",
        creationTime: 1_795_000_060,
        parent: "a",
        children: [],
        memory: { mode: "no" },
        disks: [{ target: "vda", overlay: file("/img/vda.b.qcow2") }],
      },
      {
        name: "c",
        state: "disk-snapshot",
        creationTime: 1_795_000_120,
        parent: "a",
        children: [],
        memory: { mode: "no" },
        disks: [
          {
            target: "vda",
            overlay: file("/img/vda.c.qcow2"),
            pointInTime: file("/img/vda.a.qcow2"),
            chainPosition: 0,
          },
        ],
        quiesced: true,
      },
    ],
    problems: [
      {
        kind: "overlay-not-in-chain",
        snapshot: "b",
        disk: "vda",
        message: "snapshot b, disk vda: not in the chain",
      },
    ],
  };
  const sizes = new Map([
    [
      "/img/vda.a.qcow2",
      { kind: "present" as const, allocationBytes: 1536 * 1024, capacityBytes: 64 * 1024 ** 2 },
    ],
    ["/img/vda.b.qcow2", { kind: "missing" as const }],
    ["/img/vda.c.qcow2", { kind: "unknown" as const, reason: "access denied [libvirt ACCESS_DENIED (55)]" }],
  ]);
  const document = listDocument(forest, sizes);
  expect(document.snapshots.map((s) => s.disks)).toEqual([
    [
      {
        target: "vda",
        overlay: "/img/vda.a.qcow2",
        pointInTime: "/img/vda.qcow2",
        active: false,
        allocationBytes: 1572864,
      },
    ],
    [
      {
        target: "vda",
        overlay: "/img/vda.b.qcow2",
        pointInTime: null,
        active: false,
        allocationBytes: null,
        sizeNote: "the file does not exist",
      },
    ],
    [
      {
        target: "vda",
        overlay: "/img/vda.c.qcow2",
        pointInTime: "/img/vda.a.qcow2",
        active: true,
        allocationBytes: null,
        sizeNote: "access denied [libvirt ACCESS_DENIED (55)]",
      },
    ],
  ]);
  expect(renderList(document, new Date(1_795_000_180_000)).split("\n")).toEqual([
    "Snapshots of domain web1 (6e26ce1c-3e69-4e4e-ada5-7495e0519381):",
    "  a  2026-11-18 11:06:40 UTC (3 min ago)  running  memory  not quiesced",
    "  │  vda  /img/vda.a.qcow2  1.5 MiB",
    "  │  memory   /img/web1.a.mem",
    "  ├─ b  2026-11-18 11:07:40 UTC (2 min ago)  disk-snapshot  disk-only  quiesce unknown",
    "  │     description: before <deploy> & co",
    "  │     vda  /img/vda.b.qcow2  size unknown: the file does not exist",
    "  └─ c  2026-11-18 11:08:40 UTC (1 min ago)  disk-snapshot  disk-only  quiesced",
    "        vda  /img/vda.c.qcow2  size unknown: access denied [libvirt ACCESS_DENIED (55)]  (active layer)",
    "Problems (metadata and chains disagree; see `libvirt-snapshot verify`):",
    "  - snapshot b, disk vda: not in the chain",
  ]);
});

test("a terminal that reports 0 columns (a fresh pty) gets an 80-column bar, not a cut one", () => {
  const writes: string[] = [];
  const reporter = new ProgressReporter(
    { isTTY: true, columns: 0, write: (s: string) => writes.push(s) },
    "merging s1",
  );
  reporter.update({ disk: "vda", bytesDone: 0, bytesTotal: 1024 });
  expect(writes).toEqual([`\r\x1b[2Kmerging s1 vda [${"-".repeat(30)}]   0% 0 B/1.0 KiB`]);
});
