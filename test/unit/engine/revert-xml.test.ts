import { describe, expect, test } from "vitest";
import {
  parsePreviewRecord,
  parseRevertRecord,
  withPreviewRecord,
  withRevertRecord,
} from "../../../provider/engine/revert-state";
import {
  helperDomainXml,
  overlayCreateXml,
  restoreXml,
  snapshotDomain,
  withNewSources,
  withSnapshotOverlays,
} from "../../../provider/engine/revert-xml";
import { parseDomainXml } from "../../../provider/model/domain";
import { parseSnapshotXml } from "../../../provider/model/snapshot";
import { fixture, qcow2 } from "../model/fixtures";

/** The definition inside a save image as libvirt 9.0 writes it (trimmed): each disk ends its chain explicitly. */
const SAVE_IMAGE_XML = `<domain type='qemu'>
  <name>d</name>
  <uuid>e05f0791-0f7f-464c-b062-3987d0676449</uuid>
  <metadata>
    <lvsnap:state xmlns:lvsnap="https://pulumi-libvirt-snapshot.dev/xmlns/v1"><lvsnap:snapshot name="old" creation-time="1" quiesced="no"/></lvsnap:state>
  </metadata>
  <memory unit='KiB'>65536</memory>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/i/vda.qcow2'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/i/other.raw'/>
      <backingStore/>
      <target dev='vdb' bus='virtio'/>
    </disk>
  </devices>
</domain>`;

const PERSISTENT_XML = `<domain type='qemu'><name>d</name><uuid>e05f0791-0f7f-464c-b062-3987d0676449</uuid><title>t</title>
<metadata><lvsnap:state xmlns:lvsnap="https://pulumi-libvirt-snapshot.dev/xmlns/v1"><lvsnap:preview snapshot="s1" saved="a" started="x"/></lvsnap:state></metadata>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/i/vda.s9.qcow2'/><backingStore type='file'><format type='qcow2'/><source file='/i/vda.qcow2'/></backingStore><target dev='vda' bus='virtio'/></disk></devices></domain>`;

describe("restore XML", () => {
  test("Quirk: memory revert drops the save image's <backingStore/>, so the overlay is opened with its backing", () => {
    const xml = restoreXml(
      SAVE_IMAGE_XML,
      [{ target: "vda", overlayPath: "/i/vda.m1.revert-1.qcow2" }],
      PERSISTENT_XML,
    );
    const disks = parseDomainXml(xml).disks;
    // The chain as libvirt will read it: the overlay alone at the top, with no "no backing" terminator that
    // would stop QEMU from opening the point-in-time image below it.
    expect(disks.map((d) => [d.target, d.chain])).toEqual([
      ["vda", [{ kind: "file", path: "/i/vda.m1.revert-1.qcow2", format: "qcow2" }]],
      ["vdb", [{ kind: "file", path: "/i/other.raw", format: "raw" }]],
    ]);
    expect(xml.match(/<backingStore\/>/g)?.length).toBe(1);
    expect(xml).not.toContain("/i/vda.qcow2");
  });

  test("Quirk: the save image's stale project metadata is replaced by the persistent definition's", () => {
    const xml = restoreXml(SAVE_IMAGE_XML, [], PERSISTENT_XML);
    expect(parseDomainXml(xml).projectMetadataXml).toContain('preview snapshot="s1"');
    expect(xml).not.toContain('name="old"');
    const none = restoreXml(SAVE_IMAGE_XML, [], "<domain><name>d</name></domain>");
    expect(none).not.toContain("metadata");
  });
});

describe("definitions", () => {
  test("withNewSources switches only the listed disks, drops their recorded chain, keeps everything else", () => {
    const xml = withNewSources(PERSISTENT_XML, [{ target: "vda", overlayPath: "/i/vda.s1.revert-2.qcow2" }]);
    expect(parseDomainXml(xml)).toEqual({
      ...parseDomainXml(PERSISTENT_XML),
      disks: [
        {
          target: "vda",
          bus: "virtio",
          device: "disk",
          readOnly: false,
          shareable: false,
          transient: false,
          chain: [{ kind: "file", path: "/i/vda.s1.revert-2.qcow2", format: "qcow2" }],
        },
      ],
    });
    expect(() => withNewSources(PERSISTENT_XML, [{ target: "vdz", overlayPath: "/x" }])).toThrow(
      "has no disk vdz",
    );
  });

  test("the helper domain opens the point-in-time images and its snapshot names the overlays", () => {
    const disks = [
      {
        target: "vda",
        bus: "virtio",
        image: { kind: "file", path: "/i/a <&> b.qcow2", format: "qcow2" },
        overlayPath: "/i/o1.qcow2",
      },
      {
        target: "sda",
        bus: "sata",
        image: { kind: "block", path: "/dev/vg/lv", format: "raw" },
        overlayPath: "/i/o2.qcow2",
      },
    ];
    const helper = parseDomainXml(
      helperDomainXml(fixture("domain-running-fresh.xml"), "lvsnap-revert-1", disks),
    );
    expect(helper.disks.map((d) => [d.target, d.bus, d.chain])).toEqual([
      ["vda", "virtio", [{ kind: "file", path: "/i/a <&> b.qcow2", format: "qcow2" }]],
      ["sda", "sata", [{ kind: "block", path: "/dev/vg/lv", format: "raw" }]],
    ]);
    expect(helper.name).toBe("lvsnap-revert-1");
    expect(overlayCreateXml(disks)).toBe(
      '<domainsnapshot><name>overlays</name><memory snapshot="no"/><disks><disk name="vda" snapshot="external" type="file"><driver type="qcow2"/><source file="/i/o1.qcow2"/></disk><disk name="sda" snapshot="external" type="file"><driver type="qcow2"/><source file="/i/o2.qcow2"/></disk></disks></domainsnapshot>',
    );
  });

  test("a snapshot's saved definition gives its point-in-time chains", () => {
    const saved = snapshotDomain(fixture("snapshot-memory.xml"));
    expect(saved?.disks.find((d) => d.target === "vda")?.chain).toEqual([
      qcow2("vda.s1.qcow2"),
      qcow2("vda.qcow2"),
    ]);
    expect(snapshotDomain("<domainsnapshot><name>x</name></domainsnapshot>")).toBeUndefined();
  });
});

describe("snapshot metadata", () => {
  test("withSnapshotOverlays rewrites only the named disks' overlays and keeps the saved definition", () => {
    const xml = fixture("snapshot-disk-only.xml");
    const out = withSnapshotOverlays(xml, [{ target: "vdb", overlayPath: "/i/vdb.s1.revert-1.qcow2" }]);
    const before = parseSnapshotXml(xml);
    expect(parseSnapshotXml(out)).toEqual({
      ...before,
      disks: before.disks.map((d) =>
        d.target === "vdb"
          ? { ...d, overlay: { kind: "file", path: "/i/vdb.s1.revert-1.qcow2", format: "qcow2" } }
          : d,
      ),
    });
    expect(snapshotDomain(out)).toEqual(snapshotDomain(xml));
    expect(() => withSnapshotOverlays(xml, [{ target: "vdc", overlayPath: "/x" }])).toThrow(
      "has no overlay for disk vdc",
    );
  });
});

describe("records on the domain", () => {
  const revert = {
    id: "i",
    snapshot: "s1",
    started: "2026-11-22T02:00:00.000Z",
    phase: "defining" as const,
    helper: "lvsnap-revert-1",
    overlays: [{ target: "vda", path: "/i/vda.s1.revert-1.qcow2" }],
    previous: [{ target: "vda", path: "/i/vda.s3.qcow2" }],
  };
  const preview = { snapshot: "s1", saved: "auto-before-preview-1", started: "2026-11-22T02:00:00.000Z" };
  const others = '<state><snapshot name="s1" creation-time="5" quiesced="no"/><journal version="1"/></state>';

  test("both records round-trip next to the other sections, which stay untouched", () => {
    const both = withPreviewRecord(withRevertRecord(others, revert) ?? undefined, preview) ?? undefined;
    expect([parseRevertRecord(both), parsePreviewRecord(both)]).toEqual([revert, preview]);
    const cleared = withPreviewRecord(withRevertRecord(both, null) ?? undefined, null);
    expect(cleared).toBe(others);
    expect([parseRevertRecord(undefined), parsePreviewRecord(others)]).toEqual([null, null]);
  });

  test("the element is removed when nothing else is left", () => {
    expect(withRevertRecord(withRevertRecord(undefined, revert) ?? undefined, null)).toBeNull();
  });
});
