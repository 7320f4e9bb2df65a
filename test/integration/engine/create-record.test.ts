import { writeFile } from "node:fs/promises";
import { describe, expect, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { getSnapshot } from "../../../provider/engine/inspect";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { parseProjectMetadata } from "../../../provider/model/metadata";
import { PROJECT_XML_NAMESPACE } from "../../../provider/model/xml-namespace";
import { type LabDomain, lab } from "../../support/lab";
import { engineRejection } from "../../support/rejections";
import { virsh } from "../../support/virsh";
import { labConnectionPerFile } from "./lab-connection";

const conn = labConnectionPerFile();

/** The project's records on the domain, as virsh (not the project's client) reads them. */
async function recordsOf(dom: LabDomain) {
  const xml = await virsh("metadata", dom.name, PROJECT_XML_NAMESPACE).catch(() => undefined);
  return parseProjectMetadata(xml).snapshots;
}

/**
 * The connection with every call counted: `rounds` groups the calls into round trips, a new round starting
 * whenever a call is made while none is in flight (so calls sent together, before any reply, share a round).
 */
function countingPort(connection: LibvirtConnection) {
  const rounds: string[][] = [];
  let inFlight = 0;
  const port = new Proxy(connection, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function" || typeof property !== "string") return value;
      return (...args: unknown[]) => {
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
  return { port, rounds };
}

describe("create: record first", () => {
  test("one create is exactly five round trips, the record confirmed before the snapshot call, nothing written after it", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }] });
    const { port, rounds } = countingPort(conn());
    const overlay = dom.path("planned-vda.qcow2");
    const result = await createSnapshot(port, {
      domain: dom.name,
      name: "s1",
      quiesce: "off",
      overlayPaths: { vda: overlay },
    });
    expect(rounds).toEqual([
      ["domainLookupByName"],
      ["domainGetState", "domainGetXMLDesc", "domainListAllSnapshots"],
      ["domainSetMetadata"],
      ["domainSnapshotCreateXML"],
      ["domainSnapshotGetXMLDesc", "domainGetXMLDesc"],
    ]);
    const record = {
      name: "s1",
      files: { overlays: [{ disk: "vda", path: overlay }] },
      quiesced: false,
      quiesceNote: "not quiesced: quiescing was turned off",
    };
    expect([result.quiesced, result.snapshot.quiesced, await recordsOf(dom)]).toEqual([
      false,
      false,
      [record],
    ]);
  });

  test("a run killed once libvirt made the snapshot leaves it recorded: the retry adopts it as the engine's own", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }] });
    // The process "dies" as soon as the create call was answered: nothing of the engine runs after it.
    const killed = new Proxy(conn(), {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (property !== "domainSnapshotCreateXML" || typeof value !== "function") return value;
        return async (...args: unknown[]) => {
          await Reflect.apply(value, target, args);
          throw new Error("killed");
        };
      },
    });
    const request = { domain: dom.name, name: "s1", quiesce: "off" as const };
    await expect(createSnapshot(killed, request)).rejects.toThrow();
    expect(await dom.snapshotNames()).toEqual(["s1"]);
    const files = { overlays: [{ disk: "vda", path: dom.path("vda.s1.qcow2") }] };
    expect(await recordsOf(dom)).toEqual([
      { name: "s1", files, quiesced: false, quiesceNote: "not quiesced: quiescing was turned off" },
    ]);

    const retried = await createSnapshot(conn(), request);
    expect([retried.adopted, retried.quiesced, retried.quiesceNote]).toEqual([
      true,
      false,
      "not quiesced: quiescing was turned off",
    ]);
  });

  test("a failed create leaves a record that describes no snapshot: one virsh makes under that name is not the engine's", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }] });
    const taken = dom.path("vda.s1.qcow2");
    await writeFile(taken, "not empty");
    const error = await engineRejection(
      createSnapshot(conn(), { domain: dom.name, name: "s1", quiesce: "off" }),
    );
    expect([error.kind, error.libvirtCode]).toEqual(["libvirt", 67]);
    expect(await dom.snapshotNames()).toEqual([]);
    expect(await recordsOf(dom)).toEqual([
      {
        name: "s1",
        files: { overlays: [{ disk: "vda", path: taken }] },
        quiesced: false,
        quiesceNote: "not quiesced: quiescing was turned off",
      },
    ]);

    const other = dom.path("vda.s1.by-virsh.qcow2");
    await virsh(
      "snapshot-create-as",
      dom.name,
      "s1",
      "--disk-only",
      "--atomic",
      "--diskspec",
      `vda,file=${other}`,
    );
    const seen = await getSnapshot(conn(), dom.name, "s1");
    expect([seen.snapshot.disks.map((d) => d.overlay.path), seen.snapshot.quiesced]).toEqual([
      [other],
      undefined,
    ]);
    const adopted = await createSnapshot(conn(), { domain: dom.name, name: "s1" });
    expect([adopted.adopted, adopted.quiesced]).toEqual([true, undefined]);
  });
});
