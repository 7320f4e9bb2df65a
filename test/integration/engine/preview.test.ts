import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, onTestFinished, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { deleteSnapshot } from "../../../provider/engine/delete";
import { withDomainLock } from "../../../provider/engine/domain-lock";
import { commitPreview, getPreview, previewSnapshot, undoPreview } from "../../../provider/engine/preview";
import { finishInterruptedOperations } from "../../../provider/engine/recover";
import { revertSnapshot } from "../../../provider/engine/revert";
import { readRevertRecord } from "../../../provider/engine/revert-state";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { lab } from "../../support/lab";
import { engineRejection } from "../../support/rejections";
import { currentSnapshot } from "../../support/virsh";
import { labConnectionPerFile } from "./lab-connection";
import {
  diskOnlyLayers,
  files,
  persistentSources,
  runKilledChild,
  stateWithReason,
  visibleLayer,
} from "./revert-support";

const conn = labConnectionPerFile();

/**
 * For tests that save and restore a running guest's memory: under TCG on a loaded 2-core host one such test
 * took 62 s, half of the project's 120 s default.
 */
const MEMORY_STATE_TIMEOUT_MS = 300_000;

describe("preview", () => {
  test("preview, then commit: the previewed state stays, the saved state and its files are gone", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2"]);
    const started = await previewSnapshot(conn(), dom.name, "s1");
    const saved = started.preview.saved;
    expect(saved).toMatch(/^auto-before-preview-\d{8}T\d{9}Z$/);
    expect(await getPreview(conn(), dom.name)).toEqual(started.preview);
    expect(await visibleLayer(dom)).toBe(0);

    const again = await engineRejection(previewSnapshot(conn(), dom.name, "s2"));
    const revert = await engineRejection(revertSnapshot(conn(), dom.name, "s2"));
    expect([again.kind, revert.kind, revert.message]).toEqual([
      "domain-state",
      "domain-state",
      expect.stringContaining(`is previewing snapshot s1`),
    ]);
    // Without the saved state the preview could not be undone: it is protected until commit or undo.
    const deleting = await engineRejection(deleteSnapshot(conn(), dom.name, saved));
    expect([deleting.kind, deleting.snapshot, deleting.message]).toEqual([
      "domain-state",
      saved,
      expect.stringContaining("commit or undo the preview first"),
    ]);
    expect(await dom.snapshotNames()).toEqual(["s1", "s2", saved]);
    expect(await getPreview(conn(), dom.name)).toEqual(started.preview);

    const committed = await commitPreview(conn(), dom.name);
    expect([committed.dropped, committed.removedFiles]).toEqual([[saved], [dom.path("vda.s2.qcow2")]]);
    expect(await getPreview(conn(), dom.name)).toBeNull();
    expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1" });
    expect(await files(dom)).toEqual(["domain.xml", "vda.qcow2", "vda.s1.qcow2", "vda.s1.revert-1.qcow2"]);
    expect(await visibleLayer(dom)).toBe(0);
    const none = await engineRejection(commitPreview(conn(), dom.name));
    expect([none.kind, none.message]).toEqual([
      "invalid-request",
      `domain ${dom.name} has no preview to commit`,
    ]);
  });

  test("preview of a running domain, then undo: back to the saved memory state, the preview branch is gone", {
    timeout: MEMORY_STATE_TIMEOUT_MS,
  }, async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1"]);
    await dom.start();
    const started = await previewSnapshot(conn(), dom.name, "s1", { targetState: "running" });
    const saved = started.preview.saved;
    expect(await stateWithReason(dom)).toBe("running (booted)");
    expect(await visibleLayer(dom)).toBe(0);

    const undone = await undoPreview(conn(), dom.name);
    expect([undone.dropped, undone.revert?.memoryRestored, undone.revert?.removedFiles]).toEqual([
      [saved],
      true,
      [dom.path("vda.s1.revert-1.qcow2")],
    ]);
    expect(await stateWithReason(dom)).toBe("running (restored)");
    expect(await visibleLayer(dom)).toBe(1);
    // The saved snapshot's fresh overlay was merged away: the chain is the one from before the preview.
    expect(await dom.liveChain("vda")).toEqual([dom.path("vda.s1.qcow2"), dom.base("vda")]);
    expect(await files(dom)).toEqual(["domain.xml", "vda.qcow2", "vda.s1.qcow2"]);
    expect(await dom.snapshotParents()).toEqual({ s1: null });
    expect(await currentSnapshot(dom.name)).toBe("s1");
    expect(await getPreview(conn(), dom.name)).toBeNull();
  });

  test("preview in a process that is killed, undo from another process", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2"]);
    const saved = await previewInKilledChild(dom.name, "s1");
    expect(await getPreview(conn(), dom.name)).toEqual({
      snapshot: "s1",
      saved,
      started: expect.any(String),
    });
    expect(await visibleLayer(dom)).toBe(0);

    const undone = await undoPreview(conn(), dom.name);
    expect(undone.dropped).toEqual([saved]);
    expect(await visibleLayer(dom)).toBe(2);
    expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1" });
    expect(await files(dom)).toEqual(["domain.xml", "vda.qcow2", "vda.s1.qcow2", "vda.s2.qcow2"]);
    expect(await persistentSources(dom)).toEqual([dom.path("vda.s2.qcow2")]);
    expect(await getPreview(conn(), dom.name)).toBeNull();
  });
});

describe("ending a preview safely", () => {
  test("a commit killed after dropping the saved snapshot's metadata: the preview is closed, its files stay recorded, and the next operation (even a refused commit) removes them", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2"]);
    await runKilledChild(["revert-child.ts", dom.name, "s1", "snapshot-delete", "preview-commit"]);
    const ref = await conn().domainLookupByName(dom.name);
    const record = await readRevertRecord(conn(), ref);
    const saved = record?.discard?.[0] ?? "";
    expect(saved).toMatch(/^auto-before-preview-/);
    // Recorded: the saved snapshot's overlay (already removed by the preview's revert: nothing to do) and the
    // layer written before the preview, which only the saved snapshot kept. The preview itself was closed in
    // the same write, so an undo can no longer be mistaken for it.
    expect([record?.phase, record?.discard, record?.remove, await getPreview(conn(), dom.name)]).toEqual([
      "finishing",
      [saved],
      [dom.path(`vda.${saved}.qcow2`), dom.path("vda.s2.qcow2")],
      null,
    ]);
    expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1" });

    // Committing again finds no preview, but like every operation on the domain it first finishes the drop.
    const again = await engineRejection(commitPreview(conn(), dom.name));
    expect(again.kind).toBe("invalid-request");
    expect(await withDomainLock(ref.uuid, () => finishInterruptedOperations(conn(), ref))).toBeNull();
    expect(await readRevertRecord(conn(), ref)).toBeNull();
    expect(await files(dom)).toEqual(["domain.xml", "vda.qcow2", "vda.s1.qcow2", "vda.s1.revert-1.qcow2"]);
    expect(await currentSnapshot(dom.name)).toBe("s1");
    expect(await visibleLayer(dom)).toBe(0);
  });

  test("a snapshot taken while an undo runs is not dropped with the preview branch", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    await diskOnlyLayers(conn(), dom, ["s1", "s2"]);
    const started = await previewSnapshot(conn(), dom.name, "s1");
    // Snapshots from the second the preview started count as older than it: make "during" clearly newer.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    let during: Promise<unknown> | undefined;
    const port = new Proxy(conn(), {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (typeof value !== "function") return value;
        return async (...args: unknown[]) => {
          const result = await value.apply(target, args);
          // The undo reads the preview record under the domain lock: a create asked for now queues for it. The
          // undo goes on once the create says it waits for the lock (after its own domain lookup, which a fixed
          // delay could outlast on a loaded host, letting the create run only after the undo).
          if (key === "domainGetMetadata" && during === undefined) {
            let onQueued: () => void = () => undefined;
            const queued = new Promise<void>((resolve) => {
              onQueued = resolve;
            });
            during = createSnapshot(
              conn(),
              { domain: dom.name, name: "during" },
              { onProgress: (e) => e.kind === "waiting-for-lock" && onQueued() },
            );
            await Promise.race([queued, during]);
          }
          return result;
        };
      },
    }) as LibvirtConnection;

    const undone = await undoPreview(port, dom.name);
    await during;
    expect(undone.dropped).toEqual([started.preview.saved]);
    // The create ran once the domain was back in the saved state: "during" is a snapshot of that state.
    expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1", during: "s2" });
    expect(await visibleLayer(dom)).toBe(2);
    expect(await getPreview(conn(), dom.name)).toBeNull();
  });
});

/** Runs preview-child.ts in its own process group, waits for its report, kills the group with SIGKILL. */
async function previewInKilledChild(domain: string, snapshot: string): Promise<string> {
  const child = spawn("npx", ["tsx", join(__dirname, "preview-child.ts"), domain, snapshot], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const kill = () => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // The group is already gone.
    }
  };
  onTestFinished(kill);
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const saved = await new Promise<string>((resolve, reject) => {
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /previewing (\S+)\n/.exec(stdout);
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`preview child exited with ${code}: ${stderr}`)));
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  kill();
  await exited;
  return saved;
}
