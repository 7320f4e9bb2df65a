import { describe, expect, test } from "vitest";
import { describeChain, parseDomainXml } from "../../../provider/model/domain";
import { isModelXmlError } from "../../../provider/model/xml";
import { FIXTURE_DIR, fixture, qcow2 } from "./fixtures";

const raw = (file: string, index?: number) => ({
  kind: "file",
  path: `${FIXTURE_DIR}/${file}`,
  format: "raw",
  ...(index === undefined ? {} : { index }),
});
const plain = { readOnly: false, shareable: false, transient: false };

/** The three raw extra disks of the recorded domain, with their node indexes when live. */
function extraDisks(live: boolean) {
  const end = live ? { chainTerminated: true } : {};
  return [
    {
      target: "vdc",
      bus: "virtio",
      device: "disk",
      ...plain,
      shareable: true,
      chain: [raw("shared.raw", live ? 3 : undefined)],
      ...end,
    },
    {
      target: "vdd",
      bus: "virtio",
      device: "disk",
      ...plain,
      readOnly: true,
      chain: [raw("ro.raw", live ? 2 : undefined)],
      ...end,
    },
    {
      target: "sda",
      bus: "sata",
      device: "cdrom",
      ...plain,
      readOnly: true,
      chain: [raw("cd.iso", live ? 1 : undefined)],
      ...end,
    },
  ];
}

describe("parseDomainXml", () => {
  test("running domain after two snapshots: live chains active first, with node indexes", () => {
    expect(parseDomainXml(fixture("domain-running-two-snapshots.xml"))).toEqual({
      name: "lvsnap-fixture",
      uuid: "e05f0791-0f7f-464c-b062-3987d0676449",
      disks: [
        {
          target: "vda",
          bus: "virtio",
          device: "disk",
          ...plain,
          chain: [qcow2("vda.s2.qcow2", 8), qcow2("vda.s1.qcow2", 6), qcow2("vda.qcow2", 5)],
          chainTerminated: true,
        },
        {
          target: "vdb",
          bus: "virtio",
          device: "disk",
          ...plain,
          chain: [qcow2("vdb.s1.qcow2", 7), qcow2("vdb.qcow2", 4)],
          chainTerminated: true,
        },
        ...extraDisks(true),
      ],
    });
  });

  test("an active commit parked in READY shows as a ready mirror on that disk only", () => {
    const disks = parseDomainXml(fixture("domain-running-active-commit-ready.xml")).disks;
    expect(disks.map((d) => [d.target, d.mirror])).toEqual([
      ["vda", { job: "active-commit", ready: true, phase: "yes", destination: qcow2("vda.qcow2", 5) }],
      ["vdb", undefined],
      ["vdc", undefined],
      ["vdd", undefined],
      ["sda", undefined],
    ]);
  });

  test("a mirror without ready attribute is a job still copying", () => {
    const xml = fixture("domain-running-active-commit-ready.xml").replace(" ready='yes'", "");
    expect(parseDomainXml(xml).disks[0]?.mirror).toEqual({
      job: "active-commit",
      ready: false,
      destination: qcow2("vda.qcow2", 5),
    });
  });

  test("shut-off domain: chain without indexes and without the empty terminator", () => {
    const model = parseDomainXml(fixture("domain-shutoff-four-snapshots.xml"));
    expect(model.disks).toEqual([
      {
        target: "vda",
        bus: "virtio",
        device: "disk",
        ...plain,
        chain: ["vda.s4.qcow2", "vda.s3.qcow2", "vda.s2.qcow2", "vda.s1.qcow2", "vda.qcow2"].map((f) =>
          qcow2(f),
        ),
      },
      {
        target: "vdb",
        bus: "virtio",
        device: "disk",
        ...plain,
        chain: ["vdb.s4.qcow2", "vdb.s1.qcow2", "vdb.qcow2"].map((f) => qcow2(f)),
      },
      ...extraDisks(false),
    ]);
  });

  test("source kinds, devices and per-disk snapshot policies", () => {
    const disks = parseDomainXml(fixture("domain-inactive-disk-kinds.xml")).disks;
    expect(
      disks.map((d) => ({ target: d.target, device: d.device, policy: d.snapshotPolicy, chain: d.chain })),
    ).toEqual([
      { target: "vda", device: "disk", policy: "external", chain: [qcow2("k-vda.qcow2")] },
      { target: "vdb", device: "disk", policy: "no", chain: [qcow2("k-vdb.qcow2")] },
      {
        target: "vdc",
        device: "disk",
        policy: undefined,
        chain: [{ kind: "block", path: "/dev/lvsnap-vg/lv0", format: "raw" }],
      },
      {
        target: "vde",
        device: "disk",
        policy: undefined,
        chain: [{ kind: "network", protocol: "nbd", name: "export", format: "raw" }],
      },
      {
        target: "vdf",
        device: "disk",
        policy: undefined,
        chain: [{ kind: "volume", pool: "default", volume: "vol1.qcow2", format: "qcow2" }],
      },
      { target: "vdg", device: "disk", policy: "internal", chain: [qcow2("k-vdg.qcow2")] },
      {
        target: "vdh",
        device: "disk",
        policy: undefined,
        chain: [{ kind: "dir", path: `${FIXTURE_DIR}/fatdir`, format: "fat" }],
      },
      {
        target: "sdb",
        device: "lun",
        policy: undefined,
        chain: [{ kind: "block", path: "/dev/sdz", format: "raw" }],
      },
      { target: "hdc", device: "cdrom", policy: undefined, chain: [] },
    ]);
  });

  test("the project's metadata element is extracted whatever its prefix", () => {
    const xml = fixture("domain-running-fresh.xml").replace(
      "</uuid>",
      "</uuid><metadata><other:x xmlns:other='urn:other'/><lvsnap:state xmlns:lvsnap='https://pulumi-libvirt-snapshot.dev/xmlns/v1'><lvsnap:snapshot name='a'/></lvsnap:state></metadata>",
    );
    expect(parseDomainXml(xml).projectMetadataXml).toBe(
      '<lvsnap:state xmlns:lvsnap="https://pulumi-libvirt-snapshot.dev/xmlns/v1"><lvsnap:snapshot name="a"/></lvsnap:state>',
    );
    expect(parseDomainXml(fixture("domain-running-fresh.xml")).projectMetadataXml).toBeUndefined();
  });

  test("the project's element, serialized on first read, is the same string in copies, JSON and later reads", () => {
    const xml = fixture("domain-running-fresh.xml").replace(
      "</uuid>",
      "</uuid><metadata><lvsnap:state xmlns:lvsnap='https://pulumi-libvirt-snapshot.dev/xmlns/v1'><lvsnap:journal/></lvsnap:state></metadata>",
    );
    const element =
      '<lvsnap:state xmlns:lvsnap="https://pulumi-libvirt-snapshot.dev/xmlns/v1"><lvsnap:journal/></lvsnap:state>';
    const model = parseDomainXml(xml);
    const copy = { ...model };
    expect(Object.keys(model)).toEqual(["name", "uuid", "disks", "projectMetadataXml"]);
    expect([copy.projectMetadataXml, model.projectMetadataXml, model.projectMetadataXml]).toEqual([
      element,
      element,
      element,
    ]);
    expect(JSON.parse(JSON.stringify(model))).toEqual(copy);
    expect(Object.keys(parseDomainXml(fixture("domain-running-fresh.xml")))).toEqual([
      "name",
      "uuid",
      "disks",
    ]);
  });

  test("malformed XML and a wrong root are ModelXmlErrors", () => {
    for (const xml of ["<domain><name>x</domain>", "<domainsnapshot/>", ""]) {
      let caught: unknown;
      try {
        parseDomainXml(xml);
      } catch (e) {
        caught = e;
      }
      expect(isModelXmlError(caught)).toBe(true);
    }
  });

  test("describeChain reads active first", () => {
    expect(describeChain([qcow2("b.qcow2"), qcow2("a.qcow2")])).toBe(
      `${FIXTURE_DIR}/b.qcow2 -> ${FIXTURE_DIR}/a.qcow2`,
    );
    expect(describeChain([])).toBe("(no image)");
  });
});
