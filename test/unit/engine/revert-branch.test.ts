import { describe, expect, test } from "vitest";
import { forestOf } from "../../../provider/engine/inspect";
import {
  backingLinks,
  type HostView,
  isKnownOverlay,
  neededImages,
} from "../../../provider/engine/revert-branch";
import type { DomainModel } from "../../../provider/model/domain";
import type { SnapshotModel } from "../../../provider/model/snapshot";

const domainWith = (...chains: string[][]): DomainModel => ({
  name: "d",
  uuid: "00000000-0000-0000-0000-000000000001",
  disks: chains.map((chain, i) => ({
    target: `vd${"ab"[i]}`,
    device: "disk",
    readOnly: false,
    shareable: false,
    transient: false,
    chain: chain.map((name) => ({ kind: "file", path: `/i/${name}`, format: "qcow2" })),
  })),
});

const snap = (name: string, parent?: string): SnapshotModel => ({
  name,
  state: "shutoff",
  creationTime: 1,
  ...(parent === undefined ? {} : { parent }),
  memory: { mode: "no" },
  disks: [{ target: "vda", mode: "external", overlay: { kind: "file", path: `/i/vda.${name}.qcow2` } }],
});

/**
 * A shut-off domain after reverting to s2 (s1 <- s2 <- s3): the persistent definition names only the new
 * overlay, and snapshots taken while shut off saved only their point-in-time image, without the layers below.
 */
function shutOffAfterRevert(): HostView {
  const persistent = domainWith(["vda.s2.revert-1.qcow2"]);
  const snapshots = [snap("s1"), snap("s2", "s1"), snap("s3", "s2")];
  return {
    live: persistent,
    persistent,
    persistentXml: "",
    forest: forestOf(persistent, snapshots),
    snapshotXml: new Map(),
    savedDomains: new Map([
      ["s1", domainWith(["vda.qcow2"])],
      ["s2", domainWith(["vda.s1.qcow2"])],
      ["s3", domainWith(["vda.s2.qcow2"])],
    ]),
  };
}

describe("which images are still needed", () => {
  test("a shut-off domain's chain is followed through snapshot and revert-overlay links", () => {
    const view = shutOffAfterRevert();
    expect(Object.fromEntries(backingLinks([view]))).toEqual({
      "/i/vda.s1.qcow2": "/i/vda.qcow2",
      "/i/vda.s2.qcow2": "/i/vda.s1.qcow2",
      "/i/vda.s3.qcow2": "/i/vda.s2.qcow2",
      "/i/vda.s2.revert-1.qcow2": "/i/vda.s1.qcow2",
    });
    // Without s3, its point in time (the old overlay of s2) and its own overlay are needed by nothing.
    expect([...neededImages(view, new Set(["s3"]), backingLinks([view]))].sort()).toEqual([
      "/i/vda.qcow2",
      "/i/vda.s1.qcow2",
      "/i/vda.s2.revert-1.qcow2",
    ]);
    expect(neededImages(view, new Set(), backingLinks([view])).has("/i/vda.s2.qcow2")).toBe(true);
  });

  test("only overlays are ever removable, never a base image", () => {
    const view = shutOffAfterRevert();
    expect(
      [
        "/i/vda.qcow2",
        "/i/vda.s3.qcow2",
        "/i/vda.s2.revert-1.qcow2",
        "/i/vda.s7.revert-3.qcow2",
        "/i/other.qcow2",
      ].map((p) => isKnownOverlay(p, [view])),
    ).toEqual([false, true, true, true, false]);
  });
});
