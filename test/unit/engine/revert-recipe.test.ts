import { describe, expect, test } from "vitest";
import { isEngineError } from "../../../provider/engine/errors";
import { finishBranch } from "../../../provider/engine/revert-finish";
import { leftDomainUnchanged, runRecipe } from "../../../provider/engine/revert-recipe";
import { finishUnfinishedRevert } from "../../../provider/engine/revert-recovery";
import { parseRevertRecord } from "../../../provider/engine/revert-state";
import { DomainState } from "../../../provider/libvirt/api";
import { localError } from "../../../provider/libvirt/errors";
import { ErrorCode } from "../../../provider/libvirt/flags";
import { parseDomainXml } from "../../../provider/model/domain";
import { parseProjectMetadata, withSnapshotRecord } from "../../../provider/model/metadata";
import { plan, RecipeHost } from "./recipe-host";

const run = (host: RecipeHost, p = plan()) =>
  runRecipe(host.port(), host.ref, p, () => plan("/i/vda.s2.revert-2.qcow2"), []).then((done) => done.disks);

describe("the recipe", () => {
  test("stops, creates the overlay through a helper, switches the definition, restores the memory state", async () => {
    const host = new RecipeHost();
    const disks = await run(host);
    expect(disks.map((d) => d.overlayPath)).toEqual(["/i/vda.s2.revert-1.qcow2"]);
    expect(host.mutations.filter((m) => m !== "domainSetMetadata")).toEqual([
      "domainDestroyFlags",
      "domainDefineXMLFlags(helper)",
      "domainSnapshotCreateXML(helper)",
      "domainUndefineFlags",
      "domainDefineXMLFlags(user)",
      "domainRestoreFlags",
    ]);
    // The record stays, in phase finishing, until the caller has finished (revert-finish.ts).
    expect([host.sources, host.helpers.size, host.state, parseRevertRecord(host.metadata)?.phase]).toEqual([
      { vda: "/i/vda.s2.revert-1.qcow2" },
      0,
      DomainState.RUNNING,
      "finishing",
    ]);
    expect(parseDomainXml(host.restoredWith ?? "").disks[0]?.chain[0]?.path).toBe("/i/vda.s2.revert-1.qcow2");
  });

  test("an overlay name taken on the host is skipped for the next one", async () => {
    const host = new RecipeHost();
    host.files.add("/i/vda.s2.revert-1.qcow2");
    expect((await run(host)).map((d) => d.overlayPath)).toEqual(["/i/vda.s2.revert-2.qcow2"]);
    expect(host.sources).toEqual({ vda: "/i/vda.s2.revert-2.qcow2" });
  });

  test.each(Array.from({ length: 11 }, (_, i) => i + 1))(
    "failing state-changing call %i (of 11): a clear error, and after recovery either the old disks or the new ones, no helper, no stray file",
    async (failAt) => {
      const host = new RecipeHost();
      host.failAt = failAt;
      const outcome = await run(host).then(
        () => "completed",
        (e: unknown) => {
          if (!isEngineError(e)) throw e;
          expect([e.kind, e.domain, e.snapshot]).toEqual(["libvirt", "d", "s2"]);
          expect(e.message).toMatch(
            /^reverting domain d to snapshot s2 failed while (stopping the domain|creating the new overlays|switching the definition to the new overlays|starting the domain|recording that the revert is finishing): /,
          );
          return "failed";
        },
      );
      host.failAt = undefined;
      await finishUnfinishedRevert(host.port(), host.ref);
      expect([host.helpers.size, parseRevertRecord(host.metadata)]).toEqual([0, null]);
      const switched = host.sources.vda === "/i/vda.s2.revert-1.qcow2";
      // Switched: recovery completes the revert (s2 current, owning the new overlay; the layer written before,
      // s3's overlay, removed). Not switched: the new overlay is removed and the old disks stay.
      const expectedFiles = switched
        ? ["/i/s2.mem", "/i/vda.qcow2", "/i/vda.s1.qcow2", "/i/vda.s2.qcow2", "/i/vda.s2.revert-1.qcow2"]
        : ["/i/s2.mem", "/i/vda.qcow2", "/i/vda.s1.qcow2", "/i/vda.s2.qcow2", "/i/vda.s3.qcow2"];
      expect([...host.files].sort()).toEqual(expectedFiles);
      if (!switched) expect([host.sources, host.redefined]).toEqual([{ vda: "/i/vda.s3.qcow2" }, []]);
      if (switched) {
        const owned = host.redefined.map((x) => /<source file="([^"]+)"\/><\/disk><\/disks>/.exec(x)?.[1]);
        expect(owned).toEqual(["/i/vda.s2.revert-1.qcow2"]);
      }
      if (outcome === "completed") expect(switched).toBe(true);
    },
  );
});

describe("a failed define of the user's domain", () => {
  /** A host that applies the define of the user's domain and then loses its reply (the deadline passes). */
  function lostDefineHost(): RecipeHost {
    const host = new RecipeHost();
    const define = host.domainDefineXMLFlags.bind(host);
    host.domainDefineXMLFlags = async (xml: string) => {
      const ref = await define(xml);
      if (ref !== undefined && ref.name === host.ref.name) {
        throw localError("timeout", ErrorCode.OPERATION_TIMEOUT, "DOMAIN_DEFINE_XML_FLAGS timed out");
      }
      return ref;
    };
    return host;
  }

  test("its reply lost, read back as applied: nothing is removed and the revert stays recorded for the next operation to complete", async () => {
    const host = lostDefineHost();
    const error = await run(host).catch((e: unknown) => e);
    expect([
      isEngineError(error) ? error.message : error,
      leftDomainUnchanged(error),
      host.sources,
      [...host.files].sort(),
      parseRevertRecord(host.metadata)?.phase,
    ]).toEqual([
      expect.stringContaining(
        "its definition was switched to the new overlays all the same (the reply was lost): the revert stays recorded",
      ),
      false,
      { vda: "/i/vda.s2.revert-1.qcow2" },
      [
        "/i/s2.mem",
        "/i/vda.qcow2",
        "/i/vda.s1.qcow2",
        "/i/vda.s2.qcow2",
        "/i/vda.s2.revert-1.qcow2",
        "/i/vda.s3.qcow2",
      ],
      "defining",
    ]);
    await finishUnfinishedRevert(host.port(), host.ref);
    expect([parseRevertRecord(host.metadata), host.files.has("/i/vda.s3.qcow2"), host.sources]).toEqual([
      null,
      false,
      { vda: "/i/vda.s2.revert-1.qcow2" },
    ]);
  });

  test("recovery refuses to complete a switched revert whose overlay is missing: VERIFY_FAILED, nothing removed, the record kept", async () => {
    const host = lostDefineHost();
    await run(host).catch(() => undefined);
    host.files.delete("/i/vda.s2.revert-1.qcow2");
    host.mutations.length = 0;
    const error = await finishUnfinishedRevert(host.port(), host.ref).catch((e: unknown) => e);
    expect([
      isEngineError(error) ? [error.kind, error.snapshot] : error,
      host.mutations,
      host.files.has("/i/vda.s3.qcow2"),
      parseRevertRecord(host.metadata)?.phase,
    ]).toEqual([["verify-failed", "s2"], [], true, "defining"]);
  });

  test("a failure the rollback cleans up says the domain is unchanged", async () => {
    const host = new RecipeHost();
    // The eighth state-changing call is the define of the user's domain: refused by the daemon.
    host.failAt = 8;
    const error = await run(host).catch((e: unknown) => e);
    expect([
      isEngineError(error) ? error.message : error,
      leftDomainUnchanged(error),
      host.sources,
      host.files.has("/i/vda.s2.revert-1.qcow2"),
      parseRevertRecord(host.metadata),
    ]).toEqual([
      expect.stringContaining("switching the definition to the new overlays: "),
      true,
      { vda: "/i/vda.s3.qcow2" },
      false,
      null,
    ]);
  });
});

describe("the finishing phase", () => {
  /** A recipe revert to s2 that discards s3, stopped right after the recipe: the finishing phase is left. */
  async function reverted() {
    const host = new RecipeHost();
    const done = await runRecipe(host.port(), host.ref, plan(), () => plan("/i/vda.s2.revert-2.qcow2"), [
      "s3",
    ]);
    host.mutations.length = 0;
    return { host, record: done.record };
  }
  const endState = (host: RecipeHost) => ({
    files: [...host.files].sort(),
    snapshots: [...host.snapshots],
    current: host.current,
    record: parseRevertRecord(host.metadata),
  });

  test("done in one go: s3 dropped, the abandoned layer removed, s2 current, the record cleared", async () => {
    const { host, record } = await reverted();
    const dropped = await finishBranch(host.port(), host.ref, record);
    expect([dropped, endState(host)]).toEqual([
      // s2's old overlay only led to s3: it goes with it.
      { dropped: ["s3"], removedFiles: ["/i/vda.s3.qcow2", "/i/vda.s2.qcow2"], warnings: [] },
      {
        files: ["/i/s2.mem", "/i/vda.qcow2", "/i/vda.s1.qcow2", "/i/vda.s2.revert-1.qcow2"],
        snapshots: ["s2"],
        current: "s2",
        record: null,
      },
    ]);
    // The recipe left the record in phase finishing: the first write adds the files to remove.
    expect(host.mutations).toEqual([
      "domainSetMetadata",
      "domainSnapshotDelete",
      "storageVolDelete",
      "storageVolDelete",
      "domainSetMetadata",
    ]);
  });

  test("the records of the dropped snapshots are forgotten in the write that clears the revert record", async () => {
    const { host, record } = await reverted();
    const recordOf = (name: string) => ({
      name,
      files: { overlays: [{ disk: "vda", path: `/i/vda.${name}.qcow2` }] },
      quiesced: true,
    });
    host.metadata = withSnapshotRecord(withSnapshotRecord(host.metadata, recordOf("s2")), recordOf("s3"));
    await finishBranch(host.port(), host.ref, record);
    expect([parseProjectMetadata(host.metadata), parseRevertRecord(host.metadata)]).toEqual([
      { snapshots: [recordOf("s2")] },
      null,
    ]);
    expect(host.mutations.filter((m) => m === "domainSetMetadata")).toHaveLength(2);
  });

  test("a file another domain of the host uses is kept, with a warning, and the rest goes", async () => {
    const { host, record } = await reverted();
    // A domain whose disk is s2's old overlay: this domain's chains alone would call that file unneeded.
    host.others.set("clone-1", { vda: "/i/vda.s2.qcow2" });
    const dropped = await finishBranch(host.port(), host.ref, record);
    expect([dropped, endState(host)]).toEqual([
      {
        dropped: ["s3"],
        removedFiles: ["/i/vda.s3.qcow2"],
        warnings: [
          "kept /i/vda.s2.qcow2: domain clone-1 still uses it; remove it once nothing uses it any more",
        ],
      },
      {
        files: [
          "/i/s2.mem",
          "/i/vda.qcow2",
          "/i/vda.s1.qcow2",
          "/i/vda.s2.qcow2",
          "/i/vda.s2.revert-1.qcow2",
        ],
        snapshots: ["s2"],
        current: "s2",
        record: null,
      },
    ]);
  });

  test.each([1, 2, 3, 4, 5])(
    "failing state-changing call %i (of 5): the record stays, and recovery reaches the same end state",
    async (failAt) => {
      const clean = await reverted();
      await finishBranch(clean.host.port(), clean.host.ref, clean.record);
      const { host, record } = await reverted();
      host.failAt = failAt;
      await expect(finishBranch(host.port(), host.ref, record)).rejects.toThrow(/failed/);
      expect(parseRevertRecord(host.metadata)?.phase).toBe("finishing");
      host.failAt = undefined;
      host.mutations.length = 0;
      const report = await finishUnfinishedRevert(host.port(), host.ref);
      expect([report?.action, endState(host)]).toEqual(["finished", endState(clean.host)]);
    },
  );
});
