import { describe, expect, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { deleteSnapshot } from "../../../provider/engine/delete";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { type LabDomain, lab } from "../../support/lab";
import { virsh } from "../../support/virsh";
import { labConnectionPerFile } from "./lab-connection";

const conn = labConnectionPerFile();

/** Whether a call is about the domain `uuid` (or names it), as opposed to the host scan and file removal. */
function isOwnCall(uuid: string, name: string, args: readonly unknown[]): boolean {
  const first = args[0] as { uuid?: unknown; domain?: { uuid?: unknown } } | string | undefined;
  if (typeof first === "string") return first === name;
  return first?.uuid === uuid || first?.domain?.uuid === uuid;
}

/**
 * The connection with every call logged in order (`log`), and the calls on domain `dom` grouped into round
 * trips (`rounds`): a new round starts whenever such a call is made while none of them is in flight. Calls of
 * the host scan and of file removal (other domains, storage pools) overlap the delete's own and are only
 * logged. `fail` makes the named procedures reject.
 */
function countingPort(connection: LibvirtConnection, dom: LabDomain, fail: ReadonlySet<string> = new Set()) {
  const rounds: string[][] = [];
  const log: string[] = [];
  let inFlight = 0;
  const port = new Proxy(connection, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function" || typeof property !== "string") return value;
      return (...args: unknown[]) => {
        log.push(property);
        if (fail.has(property)) return Promise.reject(new Error(`${property} failed (test)`));
        if (!isOwnCall(dom.uuid, dom.name, args)) return Reflect.apply(value, target, args);
        if (inFlight === 0) rounds.push([]);
        rounds.at(-1)?.push(property);
        inFlight++;
        const settle = () => {
          inFlight--;
        };
        const result = Reflect.apply(value, target, args);
        if (result instanceof Promise) return result.finally(settle);
        settle();
        return result;
      };
    },
  });
  return { port, rounds, log };
}

/** A running domain with one disk and snapshots s1, s2 (s2's overlay is the active layer). */
async function twoSnapshots(): Promise<LabDomain> {
  const dom = await lab.domain({ disks: [{ sizeMiB: 16 }] });
  for (const name of ["s1", "s2"]) {
    await createSnapshot(conn(), {
      domain: dom.name,
      name,
      quiesce: "off",
      overlayPaths: { vda: dom.path(`vda.${name}.qcow2`) },
    });
  }
  return dom;
}

describe("delete: round trips", () => {
  test("planning a merge reads the domain in two round trips, with the host scan started before them", async () => {
    const dom = await twoSnapshots();
    const { port, rounds, log } = countingPort(conn(), dom);
    const result = await deleteSnapshot(port, dom.name, "s1");
    const commitRound = rounds.findIndex((r) => r.includes("domainBlockCommit"));
    // Up to the journal: lookup, the two rounds of delete-read.ts, then the executor's own check right
    // before the first irreversible step (the disk's chain and job, and the state, together).
    expect(rounds.slice(0, 4)).toEqual([
      ["domainLookupByName"],
      ["domainGetState", "domainGetXMLDesc", "domainListAllSnapshots"],
      ["domainSnapshotGetXMLDesc", "domainSnapshotGetXMLDesc", "domainGetBlockJobInfo"],
      ["domainGetXMLDesc", "domainGetBlockJobInfo", "domainGetState"],
    ]);
    // Then the journal's first write, with the block-job events subscribed in the same round trip.
    expect(rounds[4]?.slice(0, 2)).toEqual(["domainGetMetadata", "subscribeBlockJobEvents"]);
    expect(commitRound).toBeGreaterThan(4);
    // Recovery and the preview check read the metadata from the domain XML of the first read: no read of their own.
    expect(
      rounds
        .slice(0, commitRound)
        .flat()
        .filter((c) => c === "domainGetMetadata").length,
    ).toBe(1);
    // The scan is the first call after the lookup: it starts before the delete's own reads.
    expect(log.slice(0, 2)).toEqual(["domainLookupByName", "connectListAllDomains"]);
    expect(log.filter((c) => c === "connectListAllDomains").length).toBe(1);
    expect(result).toEqual({
      domain: dom.name,
      snapshot: "s1",
      outcome: "deleted",
      notes: [`disk vda: merged ${dom.path("vda.s1.qcow2")} into ${dom.disks[0]?.base}`],
      warnings: [],
    });
    expect((await virsh("snapshot-list", dom.name, "--name")).trim()).toBe("s2");
  });

  test("a delete that ends before it needs the host scan leaves no unhandled rejection of it", async () => {
    const dom = await twoSnapshots();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const { port, log } = countingPort(conn(), dom, new Set(["connectListAllDomains"]));
      const absent = await deleteSnapshot(port, dom.name, "no-such");
      expect(absent).toEqual({
        domain: dom.name,
        snapshot: "no-such",
        outcome: "absent",
        notes: [`domain ${dom.name} has no snapshot no-such`],
        warnings: [],
      });
      // A delete that needs the scan fails with its error, before changing anything.
      const failed = await deleteSnapshot(port, dom.name, "s1").then(
        () => "resolved",
        (e: unknown) => (e as Error).message,
      );
      expect(failed).toBe("connectListAllDomains failed (test)");
      expect(log.includes("domainBlockCommit") || log.includes("domainSetMetadata")).toBe(false);
      // Rejections are reported on a later turn of the event loop than the one they happen in.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
    expect((await virsh("snapshot-list", dom.name, "--name")).trim().split("\n")).toEqual(["s1", "s2"]);
  });
});
