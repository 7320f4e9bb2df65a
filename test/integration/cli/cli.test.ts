import { stat } from "node:fs/promises";
import { describe, expect, test } from "vitest";
import { resolveDomain } from "../../../provider/engine/domain-ref";
import { isLibvirtError } from "../../../provider/libvirt/errors";
import { openConnection } from "../../../provider/libvirt/open";
import { lab } from "../../support/lab";
import { labUri } from "../../support/virsh";
import { runCli, runCliJson, runCliOnTerminal } from "./cli-process";

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/;
const MiB = 1024 * 1024;

/** Bytes a file occupies on disk, the local oracle of the allocation libvirt reports. */
async function allocated(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

describe("the CLI against the real daemon", () => {
  test("create, list and delete with --json: whole documents, checked against the files and libvirt", async () => {
    const dom = await lab.domain({ state: "running" });
    const base = dom.base("vda");
    const s1 = dom.path("vda.s1.qcow2");

    const created = await runCliJson(
      "create",
      dom.name,
      "s1",
      "--description",
      "<a & 'b'>",
      "--quiesce",
      "off",
    );
    expect(created).toEqual({
      code: 0,
      stderr: "",
      document: {
        ok: true,
        domain: { name: dom.name, uuid: dom.uuid },
        snapshot: "s1",
        outcome: "created",
        createdAt: expect.stringMatching(ISO_TIME),
        kind: "disk-only",
        memoryFile: null,
        quiesced: false,
        quiesceNote: "not quiesced: quiescing was turned off",
        disks: [{ target: "vda", overlay: s1, pointInTime: base }],
        skipped: [],
        warnings: [],
      },
    });
    expect(await dom.liveChain("vda")).toEqual([s1, base]);

    const again = await runCliJson(
      "create",
      dom.name,
      "s1",
      "--description",
      "<a & 'b'>",
      "--quiesce",
      "off",
    );
    expect(again.code).toBe(0);
    expect((again.document as { outcome: string }).outcome).toBe("adopted");

    const createdAt = (created.document as { createdAt: string }).createdAt;
    const listed = await runCliJson("list", dom.name);
    expect(listed).toEqual({
      code: 0,
      stderr: "",
      document: {
        ok: true,
        domain: { name: dom.name, uuid: dom.uuid },
        snapshots: [
          {
            name: "s1",
            parent: null,
            children: [],
            createdAt,
            state: "disk-snapshot",
            kind: "disk-only",
            memoryFile: null,
            quiesced: false,
            quiesceNote: "not quiesced: quiescing was turned off",
            description: "<a & 'b'>",
            disks: [
              {
                target: "vda",
                overlay: s1,
                pointInTime: base,
                active: true,
                allocationBytes: expect.any(Number),
              },
            ],
          },
        ],
        problems: [],
      },
    });
    const reported = (listed.document as { snapshots: { disks: { allocationBytes: number }[] }[] })
      .snapshots[0]?.disks[0]?.allocationBytes;
    // Through libvirt (block info of the active layer, or the storage pool) it is the file's allocation.
    expect([await allocated(s1), (await stat(s1)).size]).toContain(reported);

    const deleted = await runCliJson("delete", dom.name, "s1");
    expect(deleted.code).toBe(0);
    expect(deleted.document).toEqual({
      ok: true,
      domain: dom.name,
      snapshot: "s1",
      outcome: "deleted",
      strategy: "blockcommit",
      recovered: null,
      notes: [`disk vda: merged ${s1} into ${base} (active commit, pivoted)`],
      warnings: [],
    });
    expect(await dom.liveChain("vda")).toEqual([base]);
    expect(await dom.fileChain("vda")).toEqual([base]);
    expect(await dom.snapshotNames()).toEqual([]);

    const absent = await runCliJson("delete", dom.name, "s1");
    expect(absent.code).toBe(0);
    expect((absent.document as { outcome: string }).outcome).toBe("absent");
  });

  test("list shows a tree with sizes read through libvirt for every overlay, not only the active one", async () => {
    const dom = await lab.domain({ state: "shutoff" });
    expect((await runCli("create", dom.name, "a")).code).toBe(0);
    await dom.writePattern(dom.path("vda.a.qcow2"), { pattern: 0x5a, offset: 0, length: 2 * MiB });
    expect((await runCli("create", dom.name, "b")).code).toBe(0);
    const listed = await runCliJson("list", dom.name);
    const disks = (listed.document as { snapshots: { name: string; disks: { allocationBytes: number }[] }[] })
      .snapshots;
    expect(disks.map((s) => [s.name, s.disks[0]?.allocationBytes])).toEqual([
      ["a", await allocated(dom.path("vda.a.qcow2"))],
      ["b", await allocated(dom.path("vda.b.qcow2"))],
    ]);
    const human = await runCli("list", dom.name);
    expect(human.code).toBe(0);
    expect(human.stdout.split("\n").slice(0, 5)).toEqual([
      `Snapshots of domain ${dom.name} (${dom.uuid}):`,
      expect.stringMatching(
        // The age is the host's clock against the creation time: any age the CLI can print.
        /^ {2}a {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \((just now|\d+ (s|min|h) ago)\) {2}shutoff {2}disk-only {2}not quiesced$/,
      ),
      expect.stringMatching(new RegExp(`^ {2}│ {2}vda {2}${dom.path("vda.a.qcow2")} {2}2\\.\\d MiB$`)),
      expect.stringMatching(/^ {2}└─ b {2}.* {2}shutoff {2}disk-only {2}not quiesced$/),
      `        vda  ${dom.path("vda.b.qcow2")}  196 KiB  (active layer)`,
    ]);
    // Shut off, libvirt's XML lists only the active image: the files say the rest.
    expect(await dom.fileChain("vda")).toEqual([
      dom.path("vda.b.qcow2"),
      dom.path("vda.a.qcow2"),
      dom.base("vda"),
    ]);
  });

  test("exit codes: 1 with libvirt's code for failed operations, 2 for usage errors, nothing changed", async () => {
    const dom = await lab.domain({ state: "shutoff" });
    expect((await runCli("create", dom.name, "s1")).code).toBe(0);
    const chainBefore = await dom.fileChain("vda");

    const noDomain = await runCli("list", `${dom.name}-missing`);
    expect(noDomain.code).toBe(1);
    expect(noDomain.stderr.split("\n")).toEqual([
      expect.stringMatching(new RegExp(`^libvirt-snapshot: error: domain ${dom.name}-missing not found`)),
      "  libvirt error: NO_DOMAIN (code 42)",
      "  what to do: check the domain name (virsh list --all) and that -c/--connect names the right host",
      "",
    ]);

    const noDisk = await runCliJson("create", dom.name, "s2", "--exclude-disk", "vda");
    expect(noDisk).toEqual({
      code: 1,
      stderr: "",
      document: {
        ok: false,
        error: {
          message: `snapshot s2 of domain ${dom.name}: no disk of domain ${dom.name} can take an external snapshot`,
          kind: "invalid-request",
          domain: dom.name,
          snapshot: "s2",
          hint: "change the request as the message says; nothing was changed on the host",
        },
      },
    });

    // Shut off, libvirt creates the overlay with qemu-img, which fails in a missing directory (code 1).
    const missing = dom.path("missing");
    const refused = await runCliJson("create", dom.name, "s2", "--overlay-dir", missing);
    expect(refused).toEqual({
      code: 1,
      stderr: "",
      document: {
        ok: false,
        error: {
          message: expect.stringContaining(
            `creating snapshot s2 of domain ${dom.name} failed on disk vda (overlay ${missing}/vda.s2.qcow2); ` +
              "nothing was changed",
          ),
          kind: "libvirt",
          libvirtCode: 1,
          libvirtCodeName: "INTERNAL_ERROR",
          domain: dom.name,
          snapshot: "s2",
          disk: "vda",
          hint: "see libvirt's message above; `libvirt-snapshot verify <domain>` shows whether anything was left",
        },
      },
    });

    const usage = await runCli("delete", dom.name, "s1", "--bandwidth", "lots");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("expected a positive whole number of bytes per second");

    expect(await dom.fileChain("vda")).toEqual(chainBefore);
    expect(await dom.snapshotNames()).toEqual(["s1"]);
  });

  test("delete on a terminal draws a progress bar on stderr, in place; without one it prints plain lines", async () => {
    const dom = await lab.domain({ state: "shutoff" });
    for (const name of ["a", "b"]) expect((await runCli("create", dom.name, name)).code).toBe(0);
    const dataA = { pattern: 0x33, offset: 0, length: 4 * MiB };
    const dataB = { pattern: 0x34, offset: 4 * MiB, length: 4 * MiB };
    await dom.writePattern(dom.path("vda.a.qcow2"), dataA);
    await dom.writePattern(dom.path("vda.b.qcow2"), dataB);
    await dom.start();

    // Each merge moves 4 MiB at 1 MiB/s. The CLI reports a job only when it looks at it while it runs (a job
    // that ended before the first look reports nothing): seconds of running keep a late first look on a busy
    // host inside the job, so both deletes surely report progress.
    const terminal = await runCliOnTerminal("delete", dom.name, "a", "--bandwidth", String(MiB));
    expect(terminal.code).toBe(0);
    const redraws = terminal.output.split("\r\x1b[2K").slice(1);
    expect(redraws.length).toBeGreaterThan(0);
    for (const redraw of redraws)
      expect(redraw).toMatch(/^merging a vda \[[#-]{30}\] +\d+% \S+ \S+\/\S+ \S+/);
    expect(terminal.output).toContain(`Deleted snapshot a of domain ${dom.name} (blockcommit).`);

    const plain = await runCli("delete", dom.name, "b", "--bandwidth", String(MiB));
    // One value, so that a failure shows the CLI's error output too.
    expect({ code: plain.code, stderr: plain.stderr }).toEqual({
      code: 0,
      stderr: expect.stringMatching(/^(merging b vda: \d+% \([^)]+\)\n)+$/),
    });
    expect(plain.stderr.includes("\r") || plain.stderr.includes("\x1b")).toBe(false);
    expect(await dom.liveChain("vda")).toEqual([dom.base("vda")]);
    expect([await dom.checkActive("vda", dataA), await dom.checkActive("vda", dataB)]).toEqual([true, true]);
  });
});

test("revert --keep-current --json: the disk reads the snapshot's data again, the state before is kept", async () => {
  const dom = await lab.domain({ state: "shutoff" });
  const base = dom.base("vda");
  const range = { offset: 0, length: MiB };
  await dom.writePattern(base, { pattern: 0x11, ...range });
  expect((await runCli("create", dom.name, "s1")).code).toBe(0);
  const s1 = dom.path("vda.s1.qcow2");
  await dom.writePattern(s1, { pattern: 0x22, ...range });

  const reverted = await runCliJson("revert", dom.name, "s1", "--keep-current");
  const savedAs = (reverted.document as { savedAs: string }).savedAs;
  expect(savedAs).toMatch(/^auto-before-revert-/);
  const active = dom.path("vda.s1.revert-1.qcow2");
  expect(reverted).toEqual({
    code: 0,
    stderr: "",
    document: {
      ok: true,
      domain: { name: dom.name, uuid: dom.uuid },
      snapshot: "s1",
      strategy: "recipe",
      state: "shutoff",
      memoryRestored: false,
      overlays: [{ target: "vda", path: active, backing: base }],
      savedAs,
      discarded: [],
      // The automatic snapshot's own overlay was the active layer, empty and abandoned by the revert.
      removedFiles: [dom.path(`vda.${savedAs}.qcow2`)],
      notes: [],
    },
  });
  expect(await dom.fileChain("vda")).toEqual([active, base]);
  expect(await dom.checkPattern(active, { pattern: 0x11, ...range })).toBe(true);
  // The state from before the revert is the point-in-time image of the automatic snapshot.
  expect(await dom.checkPattern(s1, { pattern: 0x22, ...range })).toBe(true);
  expect(Object.keys(await dom.snapshotParents()).sort()).toEqual([savedAs, "s1"].sort());
});

test("Quirk: virDomainGetBlockInfo answers only for a disk's active layer", async () => {
  const dom = await lab.domain({ state: "running" });
  expect((await runCli("create", dom.name, "s1")).code).toBe(0);
  const connection = await openConnection(labUri);
  try {
    const ref = await resolveDomain(connection, dom.name);
    const active = await connection.domainGetBlockInfo(ref, "vda");
    expect(active.capacity).toBe(64n * BigInt(MiB));
    for (const backing of [dom.base("vda"), "vda[1]"]) {
      const refused = await connection.domainGetBlockInfo(ref, backing).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isLibvirtError(refused) && [refused.code, refused.codeName]).toEqual([8, "INVALID_ARG"]);
    }
  } finally {
    await connection.close();
  }
});
