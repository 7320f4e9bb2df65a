import { expect, test } from "vitest";
import { planDelete } from "../../../provider/engine/delete-plan";
import { forestOf } from "../../../provider/engine/inspect";
import { backingLinks, type HostView } from "../../../provider/engine/revert-branch";
import { snapshotDomain } from "../../../provider/engine/revert-xml";
import { parseDomainXml } from "../../../provider/model/domain";
import { parseSnapshotXml } from "../../../provider/model/snapshot";

// A domain after two reverts, in the XML libvirt 9.0 shows for it: s1 <- s2 were taken; a revert to s1 kept
// s2 and made vda.s1.revert-1.qcow2 on s1's point in time; s3 was taken on that revert overlay (its parent is
// s1, but its overlay reads vda.s1.revert-1.qcow2, not s1's old overlay); a revert to s2 then made
// vda.s2.revert-1.qcow2 on s2's point in time and recorded it as s2's overlay (s2 had no child).
const DIR = "/var/lib/libvirt/images/lab";
const backingStore = (files: readonly string[]): string =>
  files.reduceRight(
    (inner, f, i) =>
      `<backingStore type='file' index='${i + 1}'><format type='qcow2'/><source file='${DIR}/${f}'/>${inner}</backingStore>`,
    "<backingStore/>",
  );
const domainXml = (top: string, below: readonly string[]) =>
  `<domain type='qemu' id='7'><name>lab</name><uuid>6f1d8c52-2b7e-4a43-9d43-3a5b1f0e2c11</uuid><os><type arch='x86_64'>hvm</type></os><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${DIR}/${top}' index='${below.length + 1}'/>${backingStore(below)}<target dev='vda' bus='virtio'/></disk></devices></domain>`;
const snapshotXml = (name: string, parent: string | undefined, overlay: string, saved: string) =>
  `<domainsnapshot><name>${name}</name><state>running</state>${parent === undefined ? "" : `<parent><name>${parent}</name></parent>`}<creationTime>${1795313354 + Number(name.slice(1))}</creationTime><memory snapshot='no'/><disks><disk name='vda' snapshot='external' type='file'><driver type='qcow2'/><source file='${DIR}/${overlay}'/></disk></disks>${saved}</domainsnapshot>`;

function afterTwoReverts(): { view: HostView; live: ReturnType<typeof parseDomainXml> } {
  const liveXml = domainXml("vda.s2.revert-1.qcow2", ["vda.s1.qcow2", "vda.qcow2"]);
  const xmls = new Map([
    ["s1", snapshotXml("s1", undefined, "vda.s1.qcow2", domainXml("vda.qcow2", []))],
    ["s2", snapshotXml("s2", "s1", "vda.s2.revert-1.qcow2", domainXml("vda.s1.qcow2", ["vda.qcow2"]))],
    ["s3", snapshotXml("s3", "s1", "vda.s3.qcow2", domainXml("vda.s1.revert-1.qcow2", ["vda.qcow2"]))],
  ]);
  const live = parseDomainXml(liveXml);
  const view: HostView = {
    live,
    persistent: parseDomainXml(domainXml("vda.s2.revert-1.qcow2", [])),
    persistentXml: "",
    forest: forestOf(
      live,
      [...xmls.values()].map((x) => parseSnapshotXml(x)),
    ),
    snapshotXml: xmls,
    savedDomains: new Map([...xmls].map(([name, xml]) => [name, snapshotDomain(xml)])),
  };
  return { view, live };
}

test("a snapshot taken on a revert overlay reads that overlay, as the saved definitions say", () => {
  const { view, live } = afterTwoReverts();
  const backing = backingLinks([view]);
  expect(backing.get(`${DIR}/vda.s3.qcow2`)).toBe(`${DIR}/vda.s1.revert-1.qcow2`);
  // s3 reads neither s2's overlay nor s2's point in time (s1's old overlay): s2 merges.
  expect(
    planDelete({ domain: live, state: "running", forest: view.forest, snapshot: "s2", backing }),
  ).toEqual({
    kind: "steps",
    snapshot: "s2",
    steps: [
      {
        kind: "commit",
        disk: "vda",
        top: `${DIR}/vda.s2.revert-1.qcow2`,
        base: `${DIR}/vda.s1.qcow2`,
        active: true,
      },
      { kind: "delete-metadata", snapshot: "s2" },
      { kind: "remove-file", path: `${DIR}/vda.s2.revert-1.qcow2`, role: "overlay" },
    ],
  });
});

test("a snapshot reading a point-in-time image through a revert overlay keeps that image from a merge", () => {
  const { view, live } = afterTwoReverts();
  const plan = planDelete({
    domain: live,
    state: "running",
    forest: view.forest,
    snapshot: "s1",
    backing: backingLinks([view]),
  });
  expect(plan.kind === "refused" ? [plan.reason, plan.message] : plan).toEqual([
    "branch-depends",
    `cannot delete snapshot s1 of domain lab: disk vda: the branch of snapshot s3 still depends on ${DIR}/vda.s1.qcow2 or ${DIR}/vda.qcow2; merging would change or remove data that branch reads. Delete that branch first`,
  ]);
});
