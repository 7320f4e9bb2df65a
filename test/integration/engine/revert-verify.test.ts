import { describe, expect, test } from "vitest";
import { deleteSnapshot } from "../../../provider/engine/delete";
import { revertSnapshot } from "../../../provider/engine/revert";
import { readRevertRecord } from "../../../provider/engine/revert-state";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { ErrorCode } from "../../../provider/libvirt/flags";
import { type LabDomain, lab } from "../../support/lab";
import { engineRejection } from "../../support/rejections";
import { currentSnapshot } from "../../support/virsh";
import { daemonRefusal } from "./failing-port";
import { labConnectionPerFile } from "./lab-connection";
import { diskOnlyLayers, files, persistentSources, visibleLayer } from "./revert-support";

const conn = labConnectionPerFile();

/**
 * The connection, except for the first domain XML read after the recipe recorded its finishing phase (the
 * revert's verification): `tamper` answers it from what libvirt returned.
 */
function verificationTampered(connection: LibvirtConnection, tamper: (xml: string) => string) {
  let finishing = false;
  let tampered = false;
  return new Proxy(connection, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        const result = await Reflect.apply(value, target, args);
        if (property === "domainSetMetadata" && String(args[2]).includes('phase="finishing"'))
          finishing = true;
        if (property !== "domainGetXMLDesc" || !finishing || tampered) return result;
        tampered = true;
        return tamper(String(result));
      };
    },
  });
}

/** A read that fails as a busy daemon's would. */
const readFails = (): string => {
  throw daemonRefusal("the domain could not be read");
};

/** s1 <- s2 <- s3 on a shut-off domain, reverted to s1 into running with discardNewer, through `port`. */
async function revertedThrough(port: (dom: LabDomain) => LibvirtConnection) {
  const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
  await diskOnlyLayers(conn(), dom, ["s1", "s2", "s3"]);
  const error = await engineRejection(
    revertSnapshot(port(dom), dom.name, "s1", {
      discardNewer: true,
      targetState: "running",
      strategy: "recipe",
    }),
  );
  return { dom, error };
}

/** What the record says once the recipe reverted the disks, and what the next operation leaves. */
async function recordAndNext(dom: LabDomain) {
  const ref = await conn().domainLookupByName(dom.name);
  const record = await readRevertRecord(conn(), ref);
  const next = await deleteSnapshot(conn(), dom.name, "none");
  return {
    record: [record?.phase, record?.snapshot, record?.discard, record?.previous.map((p) => p.path)],
    next: [next.outcome, next.recovered?.revert?.action, next.warnings],
    after: {
      record: await readRevertRecord(conn(), ref),
      snapshots: await dom.snapshotParents(),
      current: await currentSnapshot(dom.name),
      files: await files(dom),
      sources: await persistentSources(dom),
      layer: await visibleLayer(dom),
      state: await dom.state(),
    },
  };
}

/** The record left by the recipe and the end state after the next operation, as an unfailed revert leaves it. */
const finished = (dom: LabDomain) => ({
  record: ["finishing", "s1", ["s3", "s2"], [dom.path("vda.s3.qcow2")]],
  next: ["absent", "finished", []],
  after: {
    record: null,
    snapshots: { s1: null },
    current: "s1",
    files: ["domain.xml", "vda.qcow2", "vda.s1.revert-1.qcow2"],
    sources: [dom.path("vda.s1.revert-1.qcow2")],
    layer: 0,
    state: "running",
  },
});

describe("a recipe revert whose verification fails", () => {
  test("chains not as planned: VERIFY_FAILED, the finishing phase stays recorded, the next operation drops the discarded snapshots and keeps what is needed", async () => {
    const { dom, error } = await revertedThrough((d) =>
      verificationTampered(conn(), (xml) =>
        xml.replaceAll(d.path("vda.s1.revert-1.qcow2"), d.path("elsewhere")),
      ),
    );
    expect([error.kind, error.message]).toEqual([
      "verify-failed",
      expect.stringMatching(
        /was reverted to snapshot s1, but its chains are not as planned: .*; the rest of the revert stays recorded on the domain and the next operation on it finishes it$/,
      ),
    ]);
    expect(await recordAndNext(dom)).toEqual(finished(dom));
  });

  test("chains that cannot be read: an EngineError LIBVIRT that says the disks were reverted and what is left, then the same end state", async () => {
    const { dom, error } = await revertedThrough(() => verificationTampered(conn(), readFails));
    expect([error.kind, error.libvirtCode, error.message]).toEqual([
      "libvirt",
      ErrorCode.INTERNAL_ERROR,
      expect.stringMatching(
        /was reverted to snapshot s1, but reading its chains to verify them failed; the rest of the revert stays recorded on the domain and the next operation on it finishes it/,
      ),
    ]);
    expect(await recordAndNext(dom)).toEqual(finished(dom));
  });
});
