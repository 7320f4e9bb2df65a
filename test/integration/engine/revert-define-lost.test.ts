import { rm } from "node:fs/promises";
import { basename } from "node:path";
import { describe, expect, test } from "vitest";
import { deleteSnapshot } from "../../../provider/engine/delete";
import { isEngineError } from "../../../provider/engine/errors";
import { revertSnapshot } from "../../../provider/engine/revert";
import { readRevertRecord } from "../../../provider/engine/revert-state";
import { type LabDomain, lab } from "../../support/lab";
import { currentSnapshot } from "../../support/virsh";
import { deadlinePassed, definesDomain, interceptInOrder } from "./failing-port";
import { labConnectionPerFile } from "./lab-connection";
import { diskOnlyLayers, files, persistentSources, visibleLayer } from "./revert-support";

const conn = labConnectionPerFile();

/** The kind and message of an EngineError (and of its cause when that is one), or what else was thrown. */
const described = (e: unknown) =>
  isEngineError(e)
    ? [e.kind, e.message, isEngineError(e.cause) ? [e.cause.kind, e.cause.message] : undefined]
    : e;

/**
 * s1 <- s2 on a shut-off domain, reverted to s1 by the recipe through a connection on which libvirt applies
 * the define of the user's domain but its reply is lost (the call's deadline passes).
 */
async function revertWithLostDefine() {
  const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
  await diskOnlyLayers(conn(), dom, ["s1", "s2"]);
  const lost = interceptInOrder(conn(), [
    {
      picks: (name, args) => name === "domainDefineXMLFlags" && definesDomain(dom.name, args),
      answer: async (send) => {
        await send();
        throw deadlinePassed("DOMAIN_DEFINE_XML_FLAGS");
      },
    },
  ]);
  const failure = await revertSnapshot(lost.port, dom.name, "s1", { strategy: "recipe" }).then(
    () => "resolved",
    (e: unknown) => e,
  );
  return { dom, failure, intercepted: lost.intercepted() };
}

/** The record, files, definition and data of the domain. */
async function leftOn(dom: LabDomain) {
  const sources = await persistentSources(dom);
  const present = await files(dom);
  const missingSources = sources.filter((s) => !present.includes(basename(s)));
  return {
    record: (await readRevertRecord(conn(), await conn().domainLookupByName(dom.name)))?.phase ?? null,
    files: present,
    sources,
    missingSources,
    // What the guest sees, and what the layer it wrote to before the revert holds.
    layer: missingSources.length === 0 ? await visibleLayer(dom) : null,
    previousLayer: present.includes("vda.s2.qcow2")
      ? await visibleLayer(dom, dom.path("vda.s2.qcow2"))
      : null,
  };
}

describe("a recipe revert whose define was applied but its reply lost", () => {
  test("nothing is removed: the definition names existing files, the earlier layer stays, the revert stays recorded and the next operation completes it", async () => {
    const { dom, failure, intercepted } = await revertWithLostDefine();
    const left = await leftOn(dom);
    const next = await deleteSnapshot(conn(), dom.name, "none");
    expect({ intercepted, failure: described(failure), left }).toEqual({
      intercepted: 1,
      failure: [
        "libvirt",
        expect.stringMatching(
          /failed while switching the definition to the new overlays: .*its definition was switched to the new overlays all the same \(the reply was lost\): the revert stays recorded on the domain and the next engine operation on it completes it/,
        ),
        undefined,
      ],
      left: {
        record: "defining",
        files: ["domain.xml", "vda.qcow2", "vda.s1.qcow2", "vda.s1.revert-1.qcow2", "vda.s2.qcow2"],
        sources: [dom.path("vda.s1.revert-1.qcow2")],
        missingSources: [],
        layer: 0,
        previousLayer: 2,
      },
    });
    expect({
      next: [next.outcome, next.recovered?.revert?.action],
      after: await leftOn(dom),
      snapshots: await dom.snapshotParents(),
      current: await currentSnapshot(dom.name),
    }).toEqual({
      next: ["absent", "finished"],
      // Completed as a revert that had not failed: the layer written since s2 is abandoned, s2 stays.
      after: {
        record: null,
        files: ["domain.xml", "vda.qcow2", "vda.s1.qcow2", "vda.s1.revert-1.qcow2"],
        sources: [dom.path("vda.s1.revert-1.qcow2")],
        missingSources: [],
        layer: 0,
        previousLayer: null,
      },
      snapshots: { s1: null, s2: "s1" },
      current: "s1",
    });
  });

  test("a switched definition whose overlay file is missing: recovery refuses with VERIFY_FAILED and keeps the earlier layer and the record", async () => {
    const { dom } = await revertWithLostDefine();
    // As an older version's rollback left it: the definition names an overlay that was removed.
    await rm(dom.path("vda.s1.revert-1.qcow2"));
    const refused = await deleteSnapshot(conn(), dom.name, "none").then(
      () => "resolved",
      (e: unknown) => e,
    );
    expect({ refused: described(refused), left: await leftOn(dom) }).toEqual({
      // Recovery keeps the kind of the engine's refusal; the cause says why.
      refused: [
        "verify-failed",
        expect.stringContaining("could not be cleaned up; it stays recorded"),
        [
          "verify-failed",
          expect.stringMatching(
            /switched the definition to overlays that do not exist \(.*vda\.s1\.revert-1\.qcow2\): nothing was removed and the revert stays recorded; the layers the disks wrote to before \(.*vda\.s2\.qcow2\) are kept/,
          ),
        ],
      ],
      left: {
        record: "defining",
        files: ["domain.xml", "vda.qcow2", "vda.s1.qcow2", "vda.s2.qcow2"],
        sources: [dom.path("vda.s1.revert-1.qcow2")],
        missingSources: [dom.path("vda.s1.revert-1.qcow2")],
        layer: null,
        previousLayer: 2,
      },
    });
  });
});
