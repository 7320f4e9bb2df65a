import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { deleteSnapshot } from "../../../provider/engine/delete";
import { isEngineError } from "../../../provider/engine/errors";
import { readJournal } from "../../../provider/engine/journal";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { lab } from "../../support/lab";
import {
  dataMismatches,
  expectedObservation,
  LayeredDomain,
  observe,
  openLabConnection,
} from "./delete-support";

let conn: LibvirtConnection;
beforeAll(async () => {
  conn = await openLabConnection();
});
afterAll(async () => {
  await conn?.close();
});

const MiB = 1024 * 1024;

async function layered(bulkMiB?: number) {
  const domain = new LayeredDomain(await lab.domain({ disks: [{ sizeMiB: 128 }], state: "shutoff" }), {
    disks: 1,
    snapshots: 2,
    kind: "disk-only",
    ...(bulkMiB === undefined ? {} : { bulkMiB }),
  });
  await domain.build();
  await domain.enter("running");
  return domain;
}

describe("deleteSnapshot limits", () => {
  test("a timeout mid-merge cancels the job, keeps the chain and the data, and a later delete succeeds", async () => {
    const domain = await layered(64);
    const progress: { done: number; total: number }[] = [];
    // The timeout must hit while the job copies: at 1 MiB/s the 64 MiB take a minute, far beyond the 5 s
    // deadline however slow the host is, and 5 s leave even a loaded host time to start the job and size it
    // (a deadline that expires before QEMU sized the job would leave only zero-length progress).
    const error = await deleteSnapshot(conn, domain.lab.name, "s2", {
      bandwidthBytesPerSecond: 1 * MiB,
      timeoutMs: 5000,
      onProgress: (p) => progress.push({ done: p.bytesDone, total: p.bytesTotal }),
    }).catch((e: unknown) => e);
    expect(isEngineError(error) && [error.kind, error.disk]).toEqual(["timeout", "vda"]);
    expect(isEngineError(error) && error.message).toMatch(
      /timed out: .*the job was cancelled.*the chains are consistent; the merge was cancelled and nothing was merged: snapshot s2 still exists/,
    );
    // QEMU may report a zero length before it sized the job; once sized, the whole overlay is to be copied.
    expect(progress.some((p) => p.total >= 64 * MiB)).toBe(true);
    expect(progress.every((p) => p.done <= p.total)).toBe(true);
    expect((progress.at(-1)?.done ?? 0) < (progress.at(-1)?.total ?? 0), "stopped before the end").toBe(true);

    const chain = await domain.lab.liveChain("vda");
    expect(chain).toEqual([domain.overlay("vda", "s2"), domain.overlay("vda", "s1"), domain.lab.base("vda")]);
    expect((await domain.lab.xml()).includes("<mirror"), "no block job left").toBe(false);
    expect(await domain.lab.snapshotParents()).toEqual({ s1: null, s2: "s1" });
    expect(await readJournal(conn, await conn.domainLookupByName(domain.lab.name))).toBeNull();
    expect(await dataMismatches(chain[0] ?? "", 0, 2, 2), "the guest sees the same data").toEqual([]);

    const result = await deleteSnapshot(conn, domain.lab.name, "s2");
    expect(result.outcome).toBe("deleted");
    expect(await observe(domain)).toEqual(expectedObservation(domain, ["s2"], true));
  });

  test("a create and a delete started together on one domain both succeed, one after the other", async () => {
    const domain = await layered();
    // Every call either operation makes, in order: the create's snapshot call must not fall inside the delete
    // (between its first journal write and the journal's removal).
    const calls: string[] = [];
    const recording = new Proxy(conn, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          calls.push(String(property));
          return value.apply(target, args);
        };
      },
    });
    const [deleted, created] = await Promise.all([
      deleteSnapshot(recording, domain.lab.name, "s1"),
      createSnapshot(recording, {
        domain: domain.lab.name,
        name: "s3",
        memory: "disk-only",
        overlayPaths: { vda: domain.overlay("vda", "s3") },
      }),
    ]);
    expect([deleted.outcome, created.snapshot.name]).toEqual(["deleted", "s3"]);
    const create = calls.indexOf("domainSnapshotCreateXML");
    const deleteStart = calls.indexOf("domainBlockCommit");
    // The delete ends with the journal write after its file removal.
    const deleteEnd = calls.indexOf("domainSetMetadata", calls.lastIndexOf("storageVolDelete"));
    expect(
      create < deleteStart || create > deleteEnd,
      `create at ${create}, delete ${deleteStart}..${deleteEnd}`,
    ).toBe(true);
    expect(await domain.lab.liveChain("vda")).toEqual([
      domain.overlay("vda", "s3"),
      domain.overlay("vda", "s2"),
      domain.lab.base("vda"),
    ]);
    expect(await domain.lab.snapshotParents()).toEqual({ s2: null, s3: "s2" });
  });
});
