import { describe, expect, test } from "vitest";
import {
  type CreateSnapshotRequest,
  planCreate,
  planQuiesce,
  selectDisks,
  validateCreateRequest,
} from "../../../provider/engine/create-plan";
import { type EngineError, isEngineError } from "../../../provider/engine/errors";
import { SnapshotCreateFlags } from "../../../provider/libvirt/flags";
import { parseDomainXml } from "../../../provider/model/domain";
import { FIXTURE_DIR, fixture, qcow2 } from "../model/fixtures";

const fresh = parseDomainXml(fixture("domain-running-fresh.xml"));
const twoSnapshots = parseDomainXml(fixture("domain-running-two-snapshots.xml"));
const kinds = parseDomainXml(fixture("domain-inactive-disk-kinds.xml"));
const req = (extra: Partial<CreateSnapshotRequest> = {}): CreateSnapshotRequest => ({
  domain: "lvsnap-fixture",
  name: "s3",
  ...extra,
});

function thrown(fn: () => unknown): EngineError {
  try {
    fn();
  } catch (e) {
    if (isEngineError(e)) return e;
    throw e;
  }
  throw new Error("expected an EngineError");
}

describe("validateCreateRequest", () => {
  test.each([
    [{ name: "../x" }, "may only contain"],
    [{ description: "\u0000" }, "U+0000"],
    [{ quiesce: "required", memory: "memory" }, "cannot be combined with a memory snapshot"],
    [{ memoryFile: "/i/m.mem" }, "memory file was given for a disk-only snapshot"],
    [{ overlayDir: "rel" }, "not an absolute path"],
    [{ overlayPaths: { vda: "/i/../x.qcow2" } }, "overlay path of disk vda"],
    [{ disks: { include: ["vda"], exclude: ["vdb"] } }, "not both"],
    [{ disks: { include: [] } }, "disks.include is empty"],
    [{ disks: { exclude: ["vdb", "vdb"] } }, "disk vdb is listed twice"],
    [{ memory: "hibernate" }, "unknown memory mode"],
  ] as [Partial<CreateSnapshotRequest>, string][])("%j: %s", (extra, message) => {
    const error = thrown(() => validateCreateRequest(req(extra)));
    expect([error.kind, error.message]).toEqual(["invalid-request", expect.stringContaining(message)]);
  });
});

describe("selectDisks", () => {
  test("default: writable file disks; shareable skipped with a warning; read-only and cdrom silently", () => {
    const { selected, skipped } = selectDisks(fresh, req());
    expect(selected.map((d) => d.target)).toEqual(["vda", "vdb"]);
    expect(skipped).toEqual([
      {
        target: "vdc",
        reason: "shareable",
        warning: true,
        message: "disk vdc is shareable, which libvirt cannot snapshot externally",
      },
      { target: "vdd", reason: "read-only", warning: false, message: "disk vdd is read-only" },
      { target: "sda", reason: "cdrom", warning: false, message: "disk sda is a cdrom" },
    ]);
  });

  test("every kind of disk: reasons and warnings", () => {
    const { selected, skipped } = selectDisks(kinds, req());
    expect(selected.map((d) => d.target)).toEqual(["vda", "vdc"]);
    expect(skipped.map((s) => [s.target, s.reason, s.warning])).toEqual([
      ["vdb", "snapshot-policy", false],
      ["vde", "unsupported-source", true],
      ["vdf", "unsupported-source", true],
      ["vdg", "snapshot-policy", true],
      ["vdh", "read-only", false],
      ["sdb", "lun", true],
      ["hdc", "cdrom", false],
    ]);
  });

  test("include and exclude lists", () => {
    expect(selectDisks(fresh, req({ disks: { include: ["vdb"] } })).selected.map((d) => d.target)).toEqual([
      "vdb",
    ]);
    const excluded = selectDisks(fresh, req({ disks: { exclude: ["vda"] } }));
    expect(excluded.selected.map((d) => d.target)).toEqual(["vdb"]);
    expect(excluded.skipped[0]).toEqual({
      target: "vda",
      reason: "excluded",
      warning: false,
      message: "disk vda was excluded",
    });
  });

  test.each([
    [
      fresh,
      { include: ["vdc"] },
      "vdc",
      "disk vdc is shareable, which libvirt cannot snapshot externally; remove it",
    ],
    [kinds, { include: ["sdb"] }, "sdb", "disk sdb is a LUN passthrough"],
    [kinds, { include: ["vde"] }, "vde", "disk vde is a network disk"],
    [fresh, { include: ["vdz"] }, "vdz", "has no disk vdz (disks: vda, vdb, vdc, vdd, sda)"],
    [fresh, { exclude: ["vdz"] }, "vdz", "has no disk vdz"],
  ] as const)("naming an unsuitable disk is an error naming it: %#", (domain, disks, disk, message) => {
    const error = thrown(() => selectDisks(domain, req({ disks })));
    expect([error.kind, error.disk, error.message]).toEqual([
      "invalid-request",
      disk,
      expect.stringContaining(message),
    ]);
  });

  test("nothing left to snapshot is an error", () => {
    expect(thrown(() => selectDisks(fresh, req({ disks: { exclude: ["vda", "vdb"] } }))).message).toContain(
      "no disk of domain lvsnap-fixture can take an external snapshot",
    );
  });
});

describe("planQuiesce", () => {
  test.each([
    ["running", "auto", "disk-only", { attempt: true, required: false }],
    ["running", "required", "disk-only", { attempt: true, required: true }],
    ["running", "off", "disk-only", { attempt: false, required: false }],
    [
      "running",
      "auto",
      "memory",
      { attempt: false, required: false, note: "quiescing is not possible with a memory snapshot" },
    ],
    [
      "paused",
      "auto",
      "disk-only",
      { attempt: false, required: false, note: "the domain is paused: its guest agent cannot answer" },
    ],
    [
      "shutoff",
      "auto",
      "disk-only",
      { attempt: false, required: false, note: "the domain is shut off: there is no guest to freeze" },
    ],
  ] as const)("%s, quiesce %s, %s", (state, quiesce, memory, expected) => {
    expect(planQuiesce(state, req({ quiesce, memory }))).toEqual(expected);
  });
  test.each(["paused", "shutoff"] as const)("required while %s is an error", (state) => {
    const error = thrown(() => planQuiesce(state, req({ quiesce: "required" })));
    expect([error.kind, error.message]).toEqual([
      "domain-state",
      expect.stringContaining("quiesce is required but"),
    ]);
  });
});

describe("planCreate", () => {
  test("default placement next to the active image, stem without earlier snapshot names; whole plan", () => {
    const plan = planCreate(twoSnapshots, "running", new Set(["s1", "s2"]), req({ description: "d" }));
    expect(plan).toEqual({
      name: "s3",
      memory: "disk-only",
      disks: [
        { target: "vda", activeImage: qcow2("vda.s2.qcow2", 8), overlayPath: `${FIXTURE_DIR}/vda.s3.qcow2` },
        { target: "vdb", activeImage: qcow2("vdb.s1.qcow2", 7), overlayPath: `${FIXTURE_DIR}/vdb.s3.qcow2` },
      ],
      skipped: selectDisks(twoSnapshots, req()).skipped,
      quiesce: { attempt: true, required: false },
      flags: SnapshotCreateFlags.ATOMIC | SnapshotCreateFlags.DISK_ONLY,
      xml:
        '<domainsnapshot><name>s3</name><description>d</description><memory snapshot="no"/><disks>' +
        `<disk name="vda" snapshot="external" type="file"><driver type="qcow2"/><source file="${FIXTURE_DIR}/vda.s3.qcow2"/></disk>` +
        `<disk name="vdb" snapshot="external" type="file"><driver type="qcow2"/><source file="${FIXTURE_DIR}/vdb.s3.qcow2"/></disk>` +
        '<disk name="vdc" snapshot="no"/><disk name="vdd" snapshot="no"/><disk name="sda" snapshot="no"/></disks></domainsnapshot>',
    });
  });

  test("overlayDir, explicit paths, memory file and LIVE", () => {
    const plan = planCreate(
      fresh,
      "paused",
      new Set(),
      req({ overlayDir: "/snaps", overlayPaths: { vdb: "/x/b.qcow2" }, memory: "memory-live" }),
    );
    expect([plan.disks.map((d) => d.overlayPath), plan.memoryFile, plan.flags, plan.quiesce.attempt]).toEqual(
      [
        ["/snaps/vda.s3.qcow2", "/x/b.qcow2"],
        "/snaps/lvsnap-fixture.s3.mem",
        SnapshotCreateFlags.ATOMIC | SnapshotCreateFlags.LIVE,
        false,
      ],
    );
    expect(planCreate(fresh, "running", new Set(), req({ memory: "memory" })).memoryFile).toBe(
      `${FIXTURE_DIR}/lvsnap-fixture.s3.mem`,
    );
  });

  test.each([
    [
      "a memory snapshot of a shut-off domain",
      "shutoff",
      req({ memory: "memory" }),
      "domain-state",
      "needs a running or paused domain",
    ],
    [
      "an overlay that is already in a chain",
      "running",
      req({ overlayPaths: { vda: `${FIXTURE_DIR}/vdb.qcow2` } }),
      "invalid-request",
      "which disk vdb already uses",
    ],
    [
      "two disks on one path",
      "running",
      req({ overlayPaths: { vda: "/x/o.qcow2", vdb: "/x/o.qcow2" } }),
      "invalid-request",
      "would both be /x/o.qcow2",
    ],
    [
      "memory file on an overlay",
      "running",
      req({ memory: "memory", memoryFile: `${FIXTURE_DIR}/vda.s3.qcow2` }),
      "invalid-request",
      "would both be",
    ],
    [
      "a path for a disk left out",
      "running",
      req({ disks: { include: ["vda"] }, overlayPaths: { vdb: "/x/b.qcow2" } }),
      "invalid-request",
      "not part of the snapshot",
    ],
  ] as const)("%s is refused", (_what, state, request, kind, message) => {
    const error = thrown(() => planCreate(fresh, state, new Set(), request));
    expect([error.kind, error.message]).toEqual([kind, expect.stringContaining(message)]);
  });

  test("a block job on the domain is refused before libvirt's code 83, naming the disk", () => {
    const busy = parseDomainXml(fixture("domain-running-active-commit-ready.xml"));
    const error = thrown(() => planCreate(busy, "running", new Set(["s1", "s2"]), req()));
    expect([error.kind, error.disk, error.message]).toEqual([
      "block-job-active",
      "vda",
      "domain lvsnap-fixture: a block job (active-commit, ready) is running on disk vda; no snapshot can be taken until it is finished or cancelled",
    ]);
  });

  test("a block device needs an explicit place for its overlay", () => {
    const error = thrown(() => planCreate(kinds, "shutoff", new Set(), req()));
    expect([error.disk, error.message]).toEqual([
      "vdc",
      expect.stringContaining("give overlayDir or an overlay path"),
    ]);
    expect(
      planCreate(kinds, "shutoff", new Set(), req({ overlayDir: "/o" })).disks.map((d) => d.overlayPath),
    ).toEqual(["/o/k-vda.s3.qcow2", "/o/lv0.s3.qcow2"]);
  });
});
