import { describe, expect, test } from "vitest";
import { type CreateProgress, createSnapshot } from "../../../provider/engine/create";
import { getSnapshot, listSnapshots } from "../../../provider/engine/inspect";
import { parseJournal, withJournal } from "../../../provider/engine/journal";
import { ownerStamp } from "../../../provider/engine/operation-owner";
import { DomainState } from "../../../provider/libvirt/api";
import { ErrorCode, SnapshotCreateFlags } from "../../../provider/libvirt/flags";
import { parseProjectMetadata } from "../../../provider/model/metadata";
import { engineRejection } from "../../support/rejections";
import { FIXTURE_DIR, fixture, qcow2 } from "../model/fixtures";
import { FakeLibvirt, libvirtError } from "./fake-libvirt";

const fresh = () => new FakeLibvirt(fixture("domain-running-fresh.xml"));
const request = { domain: "lvsnap-fixture", name: "s1" };
/** The files of snapshot s1 of the fixture's two snapshottable disks, with default overlay names. */
const s1Files = {
  overlays: [
    { disk: "vda", path: `${FIXTURE_DIR}/vda.s1.qcow2` },
    { disk: "vdb", path: `${FIXTURE_DIR}/vdb.s1.qcow2` },
  ],
};

describe("createSnapshot", () => {
  test("disk-only, quiesced: calls, chains, record, result", async () => {
    const host = fresh();
    const events: CreateProgress[] = [];
    const result = await createSnapshot(
      host,
      { ...request, description: "<&>" },
      { onProgress: (e) => events.push(e) },
    );
    expect(host.calls).toEqual([
      "domainLookupByName",
      // One batch; its domain XML shows no delete journal and no revert record, so recovery makes no call.
      "domainGetState",
      "domainGetXMLDesc",
      "domainListAllSnapshots",
      // The record first, the create right behind it.
      "domainSetMetadata",
      "domainSnapshotCreateXML+QUIESCE",
      "domainSnapshotGetXMLDesc",
      "domainGetXMLDesc",
    ]);
    expect(events).toEqual([{ kind: "locked" }, { kind: "created" }]);
    expect(result).toEqual({
      domain: { name: "lvsnap-fixture", uuid: "e05f0791-0f7f-464c-b062-3987d0676449" },
      snapshot: {
        name: "s1",
        description: "<&>",
        state: "running",
        creationTime: 1_800_000_000,
        children: [],
        memory: { mode: "no" },
        disks: [
          {
            target: "vda",
            overlay: qcow2("vda.s1.qcow2"),
            pointInTime: qcow2("vda.qcow2"),
            chainPosition: 0,
          },
          {
            target: "vdb",
            overlay: qcow2("vdb.s1.qcow2"),
            pointInTime: qcow2("vdb.qcow2"),
            chainPosition: 0,
          },
        ],
        quiesced: true,
      },
      adopted: false,
      quiesced: true,
      skipped: [
        {
          target: "vdc",
          reason: "shareable",
          warning: true,
          message: "disk vdc is shareable, which libvirt cannot snapshot externally",
        },
        { target: "vdd", reason: "read-only", warning: false, message: "disk vdd is read-only" },
        { target: "sda", reason: "cdrom", warning: false, message: "disk sda is a cdrom" },
      ],
      warnings: ["disk vdc is shareable, which libvirt cannot snapshot externally; it is not in snapshot s1"],
    });
    expect(host.metadata).toBe(
      `<state owner="${ownerStamp()}"><snapshot name="s1" quiesced="yes">` +
        `<overlay disk="vda" path="${FIXTURE_DIR}/vda.s1.qcow2"/><overlay disk="vdb" path="${FIXTURE_DIR}/vdb.s1.qcow2"/>` +
        "</snapshot></state>",
    );
  });

  test.each([
    [ErrorCode.ARGUMENT_UNSUPPORTED, "the domain has no guest agent channel"],
    [ErrorCode.AGENT_UNRESPONSIVE, "no guest agent answers on the domain's channel"],
  ])("quiesce auto falls back after code %i and says why", async (code, why) => {
    const host = fresh();
    host.failCreate = (flags) =>
      flags & SnapshotCreateFlags.QUIESCE ? libvirtError(code, "agent trouble") : undefined;
    const events: CreateProgress[] = [];
    const result = await createSnapshot(host, request, { onProgress: (e) => events.push(e) });
    const note = `not quiesced: ${why} (agent trouble)`;
    expect([
      result.quiesced,
      result.quiesceNote,
      result.snapshot.quiesced,
      result.snapshot.quiesceNote,
    ]).toEqual([false, note, false, note]);
    expect(host.calls.filter((c) => c.startsWith("domainSnapshotCreateXML"))).toEqual([
      "domainSnapshotCreateXML+QUIESCE",
      "domainSnapshotCreateXML",
    ]);
    expect(events).toEqual([
      { kind: "locked" },
      { kind: "quiesce-fallback", reason: note },
      { kind: "created" },
    ]);
    // The record said "quiesced" for the refused attempt and is rewritten, right before the retry.
    expect(host.calls.slice(4, 8)).toEqual([
      "domainSetMetadata",
      "domainSnapshotCreateXML+QUIESCE",
      "domainSetMetadata",
      "domainSnapshotCreateXML",
    ]);
    expect(parseProjectMetadata(host.metadata)).toEqual({
      snapshots: [{ name: "s1", files: s1Files, quiesced: false, quiesceNote: note }],
    });
  });

  test("aborted before the create call: rejects with the signal's reason, nothing made", async () => {
    const host = fresh();
    const before = host.xml();
    const controller = new AbortController();
    const stop = new Error("stop");
    controller.abort(stop);
    await expect(createSnapshot(host, request, { signal: controller.signal })).rejects.toBe(stop);
    expect([host.calls, host.xml()]).toEqual([[], before]);

    // Aborted while the domain is read: the reads finish, the create call is never sent.
    const reading = new AbortController();
    const readXml = host.domainGetXMLDesc.bind(host);
    host.domainGetXMLDesc = async () => {
      reading.abort(stop);
      return readXml();
    };
    await expect(createSnapshot(host, request, { signal: reading.signal })).rejects.toBe(stop);
    expect(host.calls.filter((c) => c.startsWith("domainSnapshotCreateXML"))).toEqual([]);
    expect(host.xml()).toBe(before);
  });

  test("aborted between a refused quiesced call and the retry: no snapshot, no retry, a record that matches none", async () => {
    const host = fresh();
    const controller = new AbortController();
    host.failCreate = (flags) => {
      controller.abort(new Error("stop"));
      return flags & SnapshotCreateFlags.QUIESCE ? libvirtError(74, "no channel") : undefined;
    };
    await expect(createSnapshot(host, request, { signal: controller.signal })).rejects.toThrow("stop");
    expect(host.calls.filter((c) => c.startsWith("domainSnapshotCreateXML"))).toEqual([
      "domainSnapshotCreateXML+QUIESCE",
    ]);
    expect(await host.domainListAllSnapshots(host.ref)).toEqual([]);
    expect(parseProjectMetadata(host.metadata)).toEqual({
      snapshots: [{ name: "s1", files: s1Files, quiesced: true }],
    });
  });

  test("aborted once the create call was sent: the snapshot is finished, recorded and reported", async () => {
    const host = fresh();
    const controller = new AbortController();
    host.failCreate = () => {
      controller.abort(new Error("too late"));
      return undefined;
    };
    const result = await createSnapshot(host, request, { signal: controller.signal });
    expect([result.snapshot.name, result.quiesced, result.snapshot.quiesced]).toEqual(["s1", true, true]);
    expect(host.calls.slice(-4)).toEqual([
      "domainSetMetadata",
      "domainSnapshotCreateXML+QUIESCE",
      "domainSnapshotGetXMLDesc",
      "domainGetXMLDesc",
    ]);
  });

  test("quiesce required: no fallback, nothing created, the error says why", async () => {
    const host = fresh();
    host.failCreate = (flags) =>
      flags & SnapshotCreateFlags.QUIESCE ? libvirtError(86, "not connected") : undefined;
    const before = host.xml();
    const error = await engineRejection(createSnapshot(host, { ...request, quiesce: "required" }));
    expect([error.kind, error.libvirtCode, error.libvirtCodeName, error.message]).toEqual([
      "quiesce-failed",
      86,
      "AGENT_UNRESPONSIVE",
      "snapshot s1 of domain lvsnap-fixture: quiesce is required but no guest agent answers on the domain's channel; nothing was created [libvirt AGENT_UNRESPONSIVE (86): not connected]",
    ]);
    // Only the record of the refused attempt stays; it names files that do not exist, so it matches nothing.
    expect([host.xml(), parseProjectMetadata(host.metadata), host.calls.slice(-2)]).toEqual([
      before,
      { snapshots: [{ name: "s1", files: s1Files, quiesced: true }] },
      ["domainSetMetadata", "domainSnapshotCreateXML+QUIESCE"],
    ]);
    expect(await host.domainListAllSnapshots(host.ref)).toEqual([]);
  });

  test("invalid names never reach the host", async () => {
    for (const name of ["", ".x", "a/b", "<x>", "$(reboot)", "a b", "x".repeat(101)]) {
      const host = fresh();
      const error = await engineRejection(createSnapshot(host, { ...request, name }));
      expect([error.kind, host.calls]).toEqual(["invalid-request", []]);
    }
  });

  test("a libvirt failure names domain, disk and code; its record stays until the next create replaces it", async () => {
    const host = fresh();
    const overlay = `${FIXTURE_DIR}/vdb.s1.qcow2`;
    host.failCreate = () =>
      libvirtError(
        ErrorCode.CONFIG_UNSUPPORTED,
        `external snapshot file for disk vdb already exists and is not a block device: ${overlay}`,
      );
    const error = await engineRejection(createSnapshot(host, { ...request, quiesce: "off" }));
    expect([error.kind, error.domain, error.disk, error.libvirtCode, error.cause !== undefined]).toEqual([
      "libvirt",
      "lvsnap-fixture",
      "vdb",
      67,
      true,
    ]);
    expect(error.message).toContain(
      `failed on disk vdb (overlay ${overlay}); nothing was changed (an overlay or memory file that already exists`,
    );
    const stale = {
      name: "s1",
      files: s1Files,
      quiesced: false,
      quiesceNote: "not quiesced: quiescing was turned off",
    };
    expect(parseProjectMetadata(host.metadata)).toEqual({ snapshots: [stale] });

    host.failCreate = () => undefined;
    const again = await createSnapshot(host, { ...request, overlayDir: "/elsewhere" });
    const files = {
      overlays: [
        { disk: "vda", path: "/elsewhere/vda.s1.qcow2" },
        { disk: "vdb", path: "/elsewhere/vdb.s1.qcow2" },
      ],
    };
    expect([again.quiesced, parseProjectMetadata(host.metadata)]).toEqual([
      true,
      { snapshots: [{ name: "s1", files, quiesced: true }] },
    ]);
  });

  test("the create call waits for libvirt to confirm the record; a record write that fails creates nothing", async () => {
    const host = fresh();
    const setMetadata = host.domainSetMetadata.bind(host);
    let sentBeforeRecordConfirmed: string[] | undefined;
    host.domainSetMetadata = async (...args) => {
      await setMetadata(...args);
      // Let every pending continuation run: a create sent without waiting would show up now.
      await new Promise((resolve) => setImmediate(resolve));
      sentBeforeRecordConfirmed ??= host.calls.filter((c) => c.startsWith("domainSnapshotCreateXML"));
    };
    await createSnapshot(host, { ...request, quiesce: "off" });
    expect(sentBeforeRecordConfirmed).toEqual([]);

    const failing = fresh();
    const before = failing.xml();
    failing.domainSetMetadata = async () => {
      failing.calls.push("domainSetMetadata (failed)");
      throw libvirtError(ErrorCode.OPERATION_TIMEOUT, "cannot acquire state change lock");
    };
    const error = await engineRejection(createSnapshot(failing, request));
    expect([error.kind, error.message]).toEqual([
      "libvirt",
      "recording snapshot s1 on domain lvsnap-fixture before creating it failed; nothing was created " +
        "[libvirt OPERATION_TIMEOUT (68): cannot acquire state change lock]",
    ]);
    expect(failing.calls.filter((c) => c.startsWith("domainSnapshotCreateXML"))).toEqual([]);
    expect([failing.xml(), await failing.domainListAllSnapshots(failing.ref)]).toEqual([before, []]);
  });

  test("an interrupted operation in the domain XML read under the lock is finished first, then the domain is read again", async () => {
    const host = fresh();
    host.metadata =
      withJournal(undefined, {
        kind: "delete",
        id: "killed",
        snapshot: "old",
        startedAt: "2026-11-22T05:00:00.000Z",
        phase: "starting",
        startedDomain: false,
        disks: [],
        files: [],
      }) ?? undefined;
    const result = await createSnapshot(host, request);
    expect(host.calls).toEqual([
      "domainLookupByName",
      "domainGetState",
      "domainGetXMLDesc",
      "domainListAllSnapshots",
      // Recovery: the journal (a delete that had only started) is cleared; no revert record.
      "domainGetMetadata",
      "domainGetMetadata",
      "domainGetState",
      "domainSetMetadata",
      "domainGetMetadata",
      // The domain again, then the create as always.
      "domainGetState",
      "domainGetXMLDesc",
      "domainListAllSnapshots",
      "domainSetMetadata",
      "domainSnapshotCreateXML+QUIESCE",
      "domainSnapshotGetXMLDesc",
      "domainGetXMLDesc",
    ]);
    expect([result.recovered?.delete?.action, result.quiesced, parseProjectMetadata(host.metadata)]).toEqual([
      "rolled-back",
      true,
      { snapshots: [{ name: "s1", files: s1Files, quiesced: true }] },
    ]);
    expect(parseJournal(host.metadata)).toBeNull();
  });

  test("Quirk: QEMU takes one memory snapshot per pause; the refusal is explained", async () => {
    const host = fresh();
    host.state = DomainState.PAUSED;
    host.failCreate = () =>
      libvirtError(
        1,
        "internal error: unable to execute QEMU command 'migrate': Can't migrate the vm that was paused due to previous migration",
      );
    const error = await engineRejection(createSnapshot(host, { ...request, memory: "memory" }));
    expect([error.kind, error.libvirtCode, error.message]).toEqual([
      "libvirt",
      1,
      expect.stringContaining(
        "nothing was changed (QEMU takes only one memory snapshot per pause: resume the domain once, or take a disk-only snapshot)",
      ),
    ]);
  });

  test("same name again: adopted when equal, conflict when different", async () => {
    const host = fresh();
    await createSnapshot(host, request);
    const calls = host.calls.length;
    const again = await createSnapshot(host, request);
    expect([again.adopted, again.quiesced, again.snapshot.disks.map((d) => d.target)]).toEqual([
      true,
      true,
      ["vda", "vdb"],
    ]);
    expect(
      host.calls
        .slice(calls)
        .filter((c) => c.startsWith("domainSnapshotCreateXML") || c === "domainSetMetadata"),
    ).toEqual([]);
    const error = await engineRejection(
      createSnapshot(host, { ...request, disks: { include: ["vda"] }, memory: "memory" }),
    );
    expect([error.kind, error.message]).toEqual([
      "snapshot-conflict",
      "domain lvsnap-fixture already has a snapshot s1 that differs from the request: memory is 'no' there and 'external' in the request; it covers disks [vda, vdb], the request [vda]; choose another name or delete it",
    ]);
  });

  test("memory snapshot of a shut-off domain: clear error, nothing sent", async () => {
    const host = fresh();
    host.state = DomainState.SHUTOFF;
    const error = await engineRejection(createSnapshot(host, { ...request, memory: "memory" }));
    expect(error.kind).toBe("domain-state");
    expect(host.calls.some((c) => c.startsWith("domainSnapshotCreateXML"))).toBe(false);
  });

  test("the domain by UUID, and a missing domain", async () => {
    const host = fresh();
    const result = await createSnapshot(host, { ...request, domain: "E05F0791-0F7F-464C-B062-3987D0676449" });
    expect([host.calls[0], result.domain.name]).toEqual(["domainLookupByUUID", "lvsnap-fixture"]);
    const error = await engineRejection(createSnapshot(fresh(), { ...request, domain: "nope" }));
    expect([error.kind, error.message]).toEqual([
      "domain-not-found",
      "domain nope not found (looked up by name) [libvirt NO_DOMAIN (42): Domain not found: no domain with matching name 'nope']",
    ]);
  });

  test("a chain that does not read back as planned is VERIFY_FAILED", async () => {
    const host = fresh();
    const original = host.domainGetXMLDesc.bind(host);
    let reads = 0;
    host.domainGetXMLDesc = async () => (reads++ === 0 ? original() : fixture("domain-running-fresh.xml"));
    const error = await engineRejection(createSnapshot(host, request));
    expect([error.kind, error.message]).toEqual([
      "verify-failed",
      expect.stringContaining("disk vda: expected the chain to start with"),
    ]);
  });

  test("concurrent creates on one domain run one after another and form one linear chain", async () => {
    const host = fresh();
    const names = Array.from({ length: 5 }, (_, i) => `c${i}`);
    const results = await Promise.all(names.map((name) => createSnapshot(host, { ...request, name })));
    expect(results.map((r) => r.snapshot.parent)).toEqual([undefined, "c0", "c1", "c2", "c3"]);
    const creates = host.calls
      .map((c, i) => [c, i] as const)
      .filter(([c]) => c.startsWith("domainSnapshotCreateXML"));
    const sets = host.calls.map((c, i) => [c, i] as const).filter(([c]) => c === "domainSetMetadata");
    // Each create is sent right after its own record, and after the previous create finished.
    expect(sets.map(([, i]) => i + 1)).toEqual(creates.map(([, i]) => i));
    const forest = await listSnapshots(host, "lvsnap-fixture");
    expect(forest.problems).toEqual([]);
    expect(forest.snapshots.map((s) => [s.name, s.parent, s.disks[0]?.chainPosition, s.quiesced])).toEqual([
      ["c0", undefined, 4, true],
      ["c1", "c0", 3, true],
      ["c2", "c1", 2, true],
      ["c3", "c2", 1, true],
      ["c4", "c3", 0, true],
    ]);
    expect((await getSnapshot(host, "lvsnap-fixture", "c2")).snapshot.disks[0]).toEqual({
      target: "vda",
      overlay: qcow2("vda.c2.qcow2"),
      pointInTime: qcow2("vda.c1.qcow2"),
      chainPosition: 2,
    });
    const missing = await engineRejection(getSnapshot(host, "lvsnap-fixture", "zz"));
    expect([missing.kind, missing.message]).toEqual([
      "snapshot-not-found",
      "domain lvsnap-fixture has no snapshot zz",
    ]);
  });
});
