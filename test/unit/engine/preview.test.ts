import { expect, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { withDomainLock } from "../../../provider/engine/domain-lock";
import { isEngineError } from "../../../provider/engine/errors";
import { commitPreview, undoPreview } from "../../../provider/engine/preview";
import type { RevertPort } from "../../../provider/engine/revert";
import {
  type PreviewRecord,
  readPreviewRecord,
  readRevertRecord,
  writePreviewRecord,
} from "../../../provider/engine/revert-state";
import type { BlockJobInfo, DomainRef } from "../../../provider/libvirt/api";
import { fixture } from "../model/fixtures";
import { FakeLibvirt } from "./fake-libvirt";

const SAVED = "auto-before-preview-20261122T024000000Z";

/** The create fake, where a block job (someone else's commit) runs on every disk: the merge stops there. */
function busyHost(): FakeLibvirt {
  const host = new FakeLibvirt(fixture("domain-running-fresh.xml"));
  Object.assign(host, {
    domainGetBlockJobInfo: async (_d: DomainRef, disk: string): Promise<BlockJobInfo | null> => {
      host.calls.push(`domainGetBlockJobInfo ${disk}`);
      return { type: 3, bandwidth: 0n, cur: 0n, end: 1n };
    },
  });
  return host;
}

test("an undo merges the saved snapshot under the same hold of the domain lock that read its record", async () => {
  const host = busyHost();
  await createSnapshot(host, { domain: "lvsnap-fixture", name: SAVED });
  // An earlier undo already returned to the saved state: what is left is the merge.
  await writePreviewRecord(host, host.ref, {
    snapshot: "s1",
    saved: SAVED,
    started: "2026-11-22T02:40:00.000Z",
    returned: true,
  });
  host.calls.length = 0;
  let queued: Promise<number> | undefined;
  const read = host.domainGetMetadata.bind(host);
  host.domainGetMetadata = async () => {
    // Queued behind the undo as soon as it holds the lock: it must run only once the undo is over.
    queued ??= withDomainLock(host.ref.uuid, async () => host.calls.length);
    return read();
  };
  const error = await undoPreview(host as unknown as RevertPort, "lvsnap-fixture").catch((e: unknown) => e);
  const callsWhenUndoEnded = host.calls.length;
  expect(isEngineError(error) ? [error.kind, error.snapshot] : error).toEqual(["block-job-active", SAVED]);
  expect(host.calls).toContain("domainGetBlockJobInfo vda");
  expect(await queued).toBe(callsWhenUndoEnded);
});

/** A host with snapshot s1 and the saved snapshot after it, previewing s1. */
async function previewingHost(extra: Partial<PreviewRecord> = {}): Promise<FakeLibvirt> {
  const host = new FakeLibvirt(fixture("domain-running-fresh.xml"));
  await createSnapshot(host, { domain: "lvsnap-fixture", name: "s1" });
  await createSnapshot(host, { domain: "lvsnap-fixture", name: SAVED });
  await writePreviewRecord(host, host.ref, {
    snapshot: "s1",
    saved: SAVED,
    started: "2026-11-22T02:40:00.000Z",
    ...extra,
  });
  return host;
}

test("a commit is refused while an interrupted undo may already have passed its point of no return", async () => {
  const host = await previewingHost({ undoing: true });
  const error = await commitPreview(host as unknown as RevertPort, "lvsnap-fixture").catch((e: unknown) => e);
  expect(isEngineError(error) ? [error.kind, error.message] : error).toEqual([
    "domain-state",
    "domain lvsnap-fixture: an undo of the preview of snapshot s1 was interrupted: run undo to finish it",
  ]);
  expect(await readPreviewRecord(host, host.ref)).toEqual({
    snapshot: "s1",
    saved: SAVED,
    started: "2026-11-22T02:40:00.000Z",
    undoing: true,
  });
});

test("a commit killed while dropping the saved snapshot has already closed the preview", async () => {
  const host = await previewingHost();
  Object.assign(host, {
    domainSnapshotDelete: async () => {
      throw new Error("killed");
    },
  });
  const error = await commitPreview(host as unknown as RevertPort, "lvsnap-fixture").catch((e: unknown) => e);
  expect(error).toEqual(new Error("killed"));
  expect(await readPreviewRecord(host, host.ref)).toBeNull();
  const record = await readRevertRecord(host, host.ref);
  expect(record === null ? null : [record.phase, record.snapshot, record.discard]).toEqual([
    "finishing",
    "s1",
    [SAVED],
  ]);
});

test("an undo marks the preview undoing before its revert starts, so a revert stopped half-way is never committed", async () => {
  const host = await previewingHost();
  Object.assign(host, {
    connectGetCapabilities: async () => {
      throw new Error("killed");
    },
  });
  const error = await undoPreview(host as unknown as RevertPort, "lvsnap-fixture").catch((e: unknown) => e);
  expect(error).toEqual(new Error("killed"));
  expect(await readPreviewRecord(host, host.ref)).toEqual({
    snapshot: "s1",
    saved: SAVED,
    started: "2026-11-22T02:40:00.000Z",
    undoing: true,
  });
});
