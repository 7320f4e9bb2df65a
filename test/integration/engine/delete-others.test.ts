/**
 * Deletes that meet what others own on the host: a block job someone else started on the domain, and a
 * merged overlay that another domain uses as its backing file.
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type DeleteStrategy, deleteSnapshot } from "../../../provider/engine/delete";
import { type EngineError, isEngineError } from "../../../provider/engine/errors";
import { readJournal } from "../../../provider/engine/journal";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { lab } from "../../support/lab";
import { run } from "../../support/run";
import { virsh } from "../../support/virsh";
import { dataMismatches, LayeredDomain, observe, openLabConnection } from "./delete-support";

let conn: LibvirtConnection;
beforeAll(async () => {
  conn = await openLabConnection();
});
afterAll(async () => {
  await conn?.close();
});

/** A running lab domain with one disk and snapshots s1, s2: vda.s2 (active) <- vda.s1 <- base. */
async function layered() {
  const domain = new LayeredDomain(await lab.domain({ disks: [{ sizeMiB: 64 }], state: "shutoff" }), {
    disks: 1,
    snapshots: 2,
    kind: "disk-only",
  });
  await domain.build();
  await domain.enter("running");
  return domain;
}

/** Everything a delete could change: chains, files, data, tree, both definitions, snapshot XML, the journal. */
async function hostState(domain: LayeredDomain) {
  const { lab: dom } = domain;
  return {
    observed: await observe(domain),
    live: await dom.xml(),
    persistent: await dom.xml(true),
    snapshots: await Promise.all(domain.names.map((n) => virsh("snapshot-dumpxml", dom.name, n))),
    journal: await readJournal(conn, await conn.domainLookupByName(dom.name)),
  };
}

/**
 * Another domain, shut off, whose disk is a new overlay on top of s1's overlay of `domain` (a linked clone of
 * s2's point in time), or with `onBase` on top of the base image (s1's point in time), defined with that
 * backing chain.
 */
async function linkedClone(domain: LayeredDomain, onBase = false) {
  const s1 = domain.overlay("vda", "s1");
  const base = domain.lab.base("vda");
  const other = await lab.domain({ disks: [{ sizeMiB: 64 }], state: "shutoff" });
  const clone = other.path("clone.qcow2");
  await run("qemu-img", ["create", "-f", "qcow2", "-F", "qcow2", "-b", onBase ? base : s1, clone]);
  const definition = await other.xml(true);
  const backing = (file: string, below: string) =>
    `<backingStore type='file'><format type='qcow2'/><source file='${file}'/>${below}</backingStore>`;
  const chain = `<source file='${clone}'/>${onBase ? backing(base, "<backingStore/>") : backing(s1, backing(base, "<backingStore/>"))}`;
  const redefined = definition
    .replace(/<backingStore\/>/g, "")
    .replace(`<source file='${other.base("vda")}'/>`, chain);
  expect(redefined).not.toEqual(definition);
  await writeFile(other.path("clone.xml"), redefined);
  await virsh("define", other.path("clone.xml"));
  expect(await other.liveChain("vda", true)).toEqual(onBase ? [clone, base] : [clone, s1, base]);
  return { other, clone };
}

async function rejection(promise: Promise<unknown>): Promise<EngineError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isEngineError(error)) throw new Error(`expected an EngineError, got ${String(error)}`);
  return error;
}

describe("deleteSnapshot and what others own", () => {
  test("a block job someone else parked READY: refused as block-job-active by both strategies, nothing changed", async () => {
    const domain = await layered();
    const name = domain.lab.name;
    // An active commit without pivot stays READY until someone pivots or aborts it.
    await virsh("blockcommit", name, "vda", "--active", "--shallow", "--wait");
    try {
      const before = await hostState(domain);
      expect(before.observed.jobs, "the job runs").toBe(true);
      for (const strategy of ["blockcommit", "native"] satisfies DeleteStrategy[]) {
        for (const snapshot of ["s1", "s2"]) {
          const error = await rejection(deleteSnapshot(conn, name, snapshot, { strategy }));
          expect([error.kind, error.domain, error.snapshot, error.disk, error.message]).toEqual([
            "block-job-active",
            name,
            snapshot,
            "vda",
            `cannot delete snapshot ${snapshot} of domain ${name}: a block job this delete did not start runs ` +
              "(active commit job (type 4) on disk vda); wait until its owner ends it, or cancel it " +
              `(virsh blockjob ${name} vda --abort), then delete again; nothing was changed`,
          ]);
          expect(await hostState(domain), `${strategy} ${snapshot}`).toEqual(before);
        }
      }
    } finally {
      await virsh("blockjob", name, "vda", "--abort").catch(() => undefined);
    }
    // Once the job is gone the same delete goes through.
    expect((await deleteSnapshot(conn, name, "s1")).outcome).toBe("deleted");
    expect(await domain.lab.liveChain("vda")).toEqual([domain.overlay("vda", "s2"), domain.lab.base("vda")]);
  });

  test("a merged overlay another domain uses as backing file is kept, with a warning; the merge happens", async () => {
    const domain = await layered();
    const s1 = domain.overlay("vda", "s1");
    const base = domain.lab.base("vda");
    // A running clone would hold QEMU's lock on the base image (see the Quirk test below).
    const { other, clone } = await linkedClone(domain);

    const result = await deleteSnapshot(conn, domain.lab.name, "s1");
    expect(result).toEqual({
      domain: domain.lab.name,
      snapshot: "s1",
      outcome: "deleted",
      notes: [`disk vda: merged ${s1} into ${base}`],
      warnings: [
        `kept merged overlay ${s1}: domain ${other.name} still uses it; remove it once nothing uses it any more`,
      ],
    });
    expect(existsSync(s1), "the other domain's backing file stays").toBe(true);
    expect(await domain.lab.liveChain("vda")).toEqual([domain.overlay("vda", "s2"), base]);
    expect(await domain.lab.snapshotParents()).toEqual({ s2: null });
    // The other domain still reads s2's point in time (layers 0 and 1), and the domain its own data.
    expect(await other.state()).toBe("shutoff");
    expect(await dataMismatches(clone, 0, 1, 2)).toEqual([]);
    expect(await dataMismatches(domain.overlay("vda", "s2"), 0, 2, 2)).toEqual([]);
  });

  test("the native strategy is refused when another domain uses the overlay libvirt would remove; nothing changes", async () => {
    const domain = await layered();
    const { other, clone } = await linkedClone(domain);
    const before = await hostState(domain);
    const error = await rejection(deleteSnapshot(conn, domain.lab.name, "s1", { strategy: "native" }));
    expect([error.kind, error.snapshot]).toEqual(["invalid-request", "s1"]);
    expect(error.message).toContain(domain.overlay("vda", "s1"));
    expect(error.message).toContain(other.name);
    expect(await hostState(domain)).toEqual(before);
    expect(existsSync(domain.overlay("vda", "s1"))).toBe(true);
    // The other domain still reads s2's point in time (layers 0 and 1).
    expect(await dataMismatches(clone, 0, 1, 2)).toEqual([]);
  });

  test("Quirk: QEMU refuses a merge into an image another running domain has open; nothing changes", async () => {
    const domain = await layered();
    const { other } = await linkedClone(domain);
    await other.start(true);
    const before = await hostState(domain);
    const error = await rejection(deleteSnapshot(conn, domain.lab.name, "s1"));
    expect([error.kind, error.disk]).toEqual(["libvirt", "vda"]);
    expect(error.message).toMatch(
      /Failed to get "write" lock.*; the chains are consistent; the merge was cancelled and nothing was merged: .*; another QEMU process has an image of the merge open/,
    );
    // The journal was written before the commit and cleared after it: libvirt leaves an empty <metadata/>.
    const after = await hostState(domain);
    const cleared = (xml: string) => xml.replace(/\n\s*<metadata\/>/, "");
    expect({ ...after, live: cleared(after.live), persistent: cleared(after.persistent) }).toEqual(before);
  });

  test("a merge into an image another domain reads without the merged overlay is refused; nothing changes", async () => {
    const domain = await layered();
    const { other, clone } = await linkedClone(domain, true);
    const before = await hostState(domain);
    const error = await rejection(deleteSnapshot(conn, domain.lab.name, "s1"));
    const [s1, base] = [domain.overlay("vda", "s1"), domain.lab.base("vda")];
    expect([error.kind, error.snapshot, error.message]).toEqual([
      "invalid-request",
      "s1",
      `cannot delete snapshot s1 of domain ${domain.lab.name}: disk vda: domain ${other.name} uses ${base}, the ` +
        `image the merge writes into, without ${s1} above it, so the merge would change what it reads. Delete ` +
        "it once nothing else uses that image (or give the other domains their own copy); nothing was changed",
    ]);
    expect(await hostState(domain)).toEqual(before);
    // The other domain still reads s1's point in time: layer 0 only.
    expect(await dataMismatches(clone, 0, 0, 2)).toEqual([]);
  });

  test("a shut-off domain whose definition names only its snapshot's overlay is seen through the snapshot: the merge into the image below is refused", async () => {
    const domain = await layered();
    const base = domain.lab.base("vda");
    // Another domain whose disk is the base image itself, then snapshotted while shut off: its persistent
    // definition names only the new overlay (libvirt 9.0), and only the snapshot's XML names the base.
    const other = await lab.domain({ disks: [{ sizeMiB: 64 }], state: "shutoff" });
    const definition = await other.xml(true);
    const onBase = definition.replace(`<source file='${other.base("vda")}'/>`, `<source file='${base}'/>`);
    expect(onBase).not.toEqual(definition);
    await writeFile(other.path("on-base.xml"), onBase);
    await virsh("define", other.path("on-base.xml"));
    const overlay = other.path("t1.qcow2");
    await virsh("snapshot-create-as", other.name, "t1", "--disk-only", "--diskspec", `vda,file=${overlay}`);
    const persistent = await other.xml(true);
    expect([persistent.includes(overlay), persistent.includes(base)]).toEqual([true, false]);

    const before = await hostState(domain);
    const error = await rejection(deleteSnapshot(conn, domain.lab.name, "s1"));
    const s1 = domain.overlay("vda", "s1");
    expect([error.kind, error.message]).toEqual([
      "invalid-request",
      `cannot delete snapshot s1 of domain ${domain.lab.name}: disk vda: snapshot t1 of domain ${other.name} ` +
        `uses ${base}, the image the merge writes into, without ${s1} above it, so the merge would change ` +
        "what it reads. Delete it once nothing else uses that image (or give the other domains their own " +
        "copy); nothing was changed",
    ]);
    expect(await hostState(domain)).toEqual(before);
  });
});
