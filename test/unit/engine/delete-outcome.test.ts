import { describe, expect, test } from "vitest";
import { BlockJobError, BlockJobErrorKind } from "../../../provider/engine/block-job";
import {
  commitNotes,
  type DeleteView,
  failureError,
  foreignJobError,
  refusalError,
  verifyFindings,
} from "../../../provider/engine/delete-outcome";
import { type DeleteStep, RefusalReason } from "../../../provider/engine/delete-plan";
import { EngineError, EngineErrorKind } from "../../../provider/engine/errors";
import { BlockJobType } from "../../../provider/libvirt/api";
import type { DiskModel, DomainModel } from "../../../provider/model/domain";
import type { SnapshotModel } from "../../../provider/model/snapshot";
import { joinSnapshots } from "../../../provider/model/snapshot-tree";

/** The fields of an EngineError a caller branches on or shows. */
const summary = (e: EngineError) => ({
  kind: e.kind,
  domain: e.domain,
  snapshot: e.snapshot,
  disk: e.disk,
  message: e.message,
});

describe("refusalError", () => {
  test.each([
    [RefusalReason.PAUSED_MEMORY, EngineErrorKind.DOMAIN_STATE],
    [RefusalReason.BRANCH_DEPENDS, EngineErrorKind.INVALID_REQUEST],
    [RefusalReason.NOT_ON_LIVE_BRANCH, EngineErrorKind.INVALID_REQUEST],
    [RefusalReason.INCONSISTENT, EngineErrorKind.INVALID_REQUEST],
    [RefusalReason.NOT_A_FILE, EngineErrorKind.INVALID_REQUEST],
  ])("%s is %s", (reason, kind) => {
    const error = refusalError("web", { kind: "refused", snapshot: "s1", reason, message: "why" });
    expect(summary(error)).toEqual({ kind, domain: "web", snapshot: "s1", disk: undefined, message: "why" });
  });
});

describe("foreignJobError", () => {
  test("one job: BLOCK_JOB_ACTIVE naming the domain, the disk, the job and the command", () => {
    const error = foreignJobError("web", "s1", [{ disk: "vda", type: BlockJobType.ACTIVE_COMMIT }]);
    expect(summary(error)).toEqual({
      kind: EngineErrorKind.BLOCK_JOB_ACTIVE,
      domain: "web",
      snapshot: "s1",
      disk: "vda",
      message:
        "cannot delete snapshot s1 of domain web: a block job this delete did not start runs (active commit job " +
        "(type 4) on disk vda); wait until its owner ends it, or cancel it (virsh blockjob web vda " +
        "--abort), then delete again; nothing was changed",
    });
  });

  test("two jobs: every disk is named, no single disk is set", () => {
    const error = foreignJobError("web", "s1", [
      { disk: "vda", type: BlockJobType.COPY },
      { disk: "vdb", type: 9 },
    ]);
    expect([error.disk, error.message]).toEqual([
      undefined,
      "cannot delete snapshot s1 of domain web: a block job this delete did not start runs (copy job (type 2) " +
        "on disk vda, unknown job (type 9) on disk vdb); wait until its owner ends it, or cancel it " +
        "(virsh blockjob web vda --abort; virsh blockjob web vdb --abort), then delete again; nothing was changed",
    ]);
  });
});

/** An executor error as executeDelete rethrows it. */
function failed<E extends Error>(error: E, deleteState: "rolled-back" | "journaled"): E {
  return Object.assign(error, { deleteState });
}

const ROLLED_BACK =
  "the merge was cancelled and nothing was merged: snapshot s1 still exists (its point-in-time image may hold " +
  "part of the newer data, so revert to it only after checking); delete it again";
const JOURNALED = "the delete stays recorded on the domain and the next operation on it finishes it";

describe("failureError", () => {
  test.each([
    {
      name: "a timeout, rolled back",
      error: failed(new BlockJobError(BlockJobErrorKind.TIMEOUT, "vda", "late"), "rolled-back"),
      paused: false,
      kind: EngineErrorKind.TIMEOUT,
      disk: "vda",
      message: `deleting snapshot s1 of domain web timed out: late; the chains are consistent; ${ROLLED_BACK}`,
    },
    {
      name: "an abort, journaled",
      error: failed(new BlockJobError(BlockJobErrorKind.ABORTED, "vdb", "stopped"), "journaled"),
      paused: false,
      kind: EngineErrorKind.ABORTED,
      disk: "vdb",
      message: `deleting snapshot s1 of domain web was aborted: stopped; the chains are consistent; ${JOURNALED}`,
    },
    {
      name: "a job cancelled by someone else",
      error: failed(new BlockJobError(BlockJobErrorKind.CANCELED, "vda", "gone"), "rolled-back"),
      paused: false,
      kind: EngineErrorKind.LIBVIRT,
      disk: "vda",
      message: `deleting snapshot s1 of domain web failed: gone; the chains are consistent; ${ROLLED_BACK}`,
    },
    {
      name: "read-only disks of a paused domain",
      error: failed(new Error("Block node is read-only"), "rolled-back"),
      paused: true,
      kind: EngineErrorKind.DOMAIN_STATE,
      disk: undefined,
      message:
        "deleting snapshot s1 of domain web failed: Block node is read-only; the chains are consistent; " +
        `${ROLLED_BACK}; resume the domain (virsh resume) and delete again`,
    },
    {
      name: "read-only text while running is a plain failure",
      error: failed(new Error("Block node is read-only"), "journaled"),
      paused: false,
      kind: EngineErrorKind.LIBVIRT,
      disk: undefined,
      message: `deleting snapshot s1 of domain web failed: Block node is read-only; the chains are consistent; ${JOURNALED}`,
    },
    {
      name: "a foreign job found by the executor before anything merged",
      error: failed(
        new EngineError({
          kind: EngineErrorKind.BLOCK_JOB_ACTIVE,
          domain: "web",
          disk: "vda",
          message: "a job",
        }),
        "rolled-back",
      ),
      paused: false,
      kind: EngineErrorKind.BLOCK_JOB_ACTIVE,
      disk: "vda",
      message: "a job; nothing was changed",
    },
    {
      name: "a foreign job found by the executor after another disk merged",
      error: failed(
        new EngineError({
          kind: EngineErrorKind.BLOCK_JOB_ACTIVE,
          domain: "web",
          disk: "vdb",
          message: "a job",
        }),
        "journaled",
      ),
      paused: false,
      kind: EngineErrorKind.BLOCK_JOB_ACTIVE,
      disk: "vdb",
      message: `a job; ${JOURNALED}`,
    },
    {
      name: "a chain changed outside the delete",
      error: failed(
        new EngineError({
          kind: EngineErrorKind.VERIFY_FAILED,
          domain: "web",
          disk: "vda",
          message: "drift",
        }),
        "journaled",
      ),
      paused: false,
      kind: EngineErrorKind.VERIFY_FAILED,
      disk: "vda",
      message: `deleting snapshot s1 of domain web failed: drift; ${JOURNALED}`,
    },
    {
      name: "a cancelled job that would not end",
      error: failed(
        new EngineError({ kind: EngineErrorKind.LIBVIRT, domain: "web", disk: "vdb", message: "stuck" }),
        "journaled",
      ),
      paused: false,
      kind: EngineErrorKind.LIBVIRT,
      disk: "vdb",
      message: `deleting snapshot s1 of domain web failed: stuck; the chains are consistent; ${JOURNALED}`,
    },
    {
      name: "Quirk: QEMU's image lock held by another domain",
      error: failed(
        new BlockJobError(BlockJobErrorKind.FAILED, "vda", 'block-commit: Failed to get "write" lock'),
        "rolled-back",
      ),
      paused: false,
      kind: EngineErrorKind.LIBVIRT,
      disk: "vda",
      message:
        'deleting snapshot s1 of domain web failed: block-commit: Failed to get "write" lock; the chains are ' +
        `consistent; ${ROLLED_BACK}; another QEMU process has an image of the merge open (often another running ` +
        "domain that uses it as its disk or backing file): shut that domain off, or leave this snapshot until it " +
        "no longer does",
    },
  ])("$name", ({ error, paused, kind, disk, message }) => {
    const result = failureError("web", "s1", error, paused);
    expect(summary(result)).toEqual({ kind, domain: "web", snapshot: "s1", disk, message });
    expect(result.cause).toBe(error);
  });
});

test("commitNotes: one note per commit, nothing for the other steps", () => {
  const steps: DeleteStep[] = [
    { kind: "commit", disk: "vda", top: "/i/a.s2", base: "/i/a.s1", active: true },
    { kind: "commit", disk: "vdb", top: "/i/b.s2", base: "/i/b.s1", active: false },
    { kind: "stop-domain" },
    { kind: "delete-metadata", snapshot: "s2" },
    { kind: "remove-file", path: "/i/a.s2", role: "overlay" },
  ];
  expect(commitNotes(steps)).toEqual([
    "disk vda: merged /i/a.s2 into /i/a.s1 (active commit, pivoted)",
    "disk vdb: merged /i/b.s2 into /i/b.s1",
  ]);
});

describe("verifyFindings", () => {
  const disk = (target: string, chain: string[], mirror = false): DiskModel => ({
    target,
    device: "disk",
    readOnly: false,
    shareable: false,
    transient: false,
    chain: chain.map((path) => ({ kind: "file", path, format: "qcow2" })),
    ...(mirror ? { mirror: { job: "active-commit", ready: true } } : {}),
  });
  const snap = (name: string, parent: string | undefined, overlay: string): SnapshotModel => ({
    name,
    state: "disk-snapshot",
    creationTime: 1,
    ...(parent === undefined ? {} : { parent }),
    memory: { mode: "no" },
    disks: [{ target: "vda", mode: "external", overlay: { kind: "file", path: overlay, format: "qcow2" } }],
  });
  const view = (disks: DiskModel[], snapshots: SnapshotModel[]): DeleteView => {
    const model: DomainModel = { name: "web", uuid: "00000000-0000-0000-0000-000000000001", disks };
    return {
      model,
      forest: { ...joinSnapshots(model, snapshots), domain: { name: "web", uuid: model.uuid } },
    };
  };
  const before = view(
    [disk("vda", ["/i/s2", "/i/s1", "/i/base"]), disk("vdb", ["/i/b"], true)],
    [snap("s1", undefined, "/i/s1"), snap("s2", "s1", "/i/s2")],
  );

  test("a clean delete of s2, with someone's job on vdb before and after, finds nothing", () => {
    const after = view(
      [disk("vda", ["/i/s1", "/i/base"]), disk("vdb", ["/i/b"], true)],
      [snap("s1", undefined, "/i/s1")],
    );
    expect(verifyFindings(before, after, "s2")).toEqual([]);
  });

  test("a snapshot still there, a new job and a new problem are all reported", () => {
    // s2's overlay left the chain but its metadata stayed; a job now runs on vda.
    const after = view(
      [disk("vda", ["/i/s1", "/i/base"], true), disk("vdb", ["/i/b"], true)],
      [snap("s1", undefined, "/i/s1"), snap("s2", "s1", "/i/s2")],
    );
    const findings = verifyFindings(before, after, "s2");
    expect(findings.slice(0, 2)).toEqual(["the snapshot still exists", "block jobs remain on vda"]);
    const fresh = after.forest.problems.filter((p) => p.snapshot === "s2").map((p) => p.message);
    expect(fresh.length).toBeGreaterThan(0);
    expect(findings.slice(2)).toEqual(fresh);
  });
});
