import { DOMParser } from "@xmldom/xmldom";
import { describe, expect, test } from "vitest";
import { buildDomainXml, type DomainSpec } from "../support/domain-xml";
import { labDomainDir } from "../support/lab-cleanup";
import { LabDomain } from "../support/lab-domain";
import { parseBackingChain } from "../support/qemu-tools";
import { parseBlockList, parseDiskChains } from "../support/virsh";

describe("parseBackingChain", () => {
  test("returns the images top first with their formats", () => {
    const json = JSON.stringify([
      {
        filename: "/lab/vda.s1.qcow2",
        format: "qcow2",
        "backing-filename": "/lab/vda.qcow2",
        "virtual-size": 1,
      },
      { filename: "/lab/vda.qcow2", format: "qcow2", "virtual-size": 1 },
    ]);
    expect(parseBackingChain(json)).toEqual([
      { file: "/lab/vda.s1.qcow2", format: "qcow2" },
      { file: "/lab/vda.qcow2", format: "qcow2" },
    ]);
  });

  test("rejects output that is not a chain", () => {
    expect(() => parseBackingChain("[]")).toThrow();
    expect(() => parseBackingChain('{"filename":"x","format":"raw"}')).toThrow();
  });
});

describe("parseBlockList", () => {
  test("keeps sources with spaces whole and maps '-' to null", () => {
    const text = [
      " Type   Device   Target   Source",
      "------------------------------------------------",
      " file   disk     vda      /lab/a b.qcow2",
      " file   cdrom    sda      -",
      "",
    ].join("\n");
    expect(parseBlockList(text)).toEqual([
      { type: "file", device: "disk", target: "vda", source: "/lab/a b.qcow2" },
      { type: "file", device: "cdrom", target: "sda", source: null },
    ]);
  });
});

describe("parseDiskChains", () => {
  test("follows nested backingStore elements down to the base", () => {
    const xml = `<domain><devices>
      <disk type="file" device="disk"><driver name="qemu" type="qcow2"/><source file="/lab/vda.s2"/>
        <backingStore type="file" index="2"><format type="qcow2"/><source file="/lab/vda.s1"/>
          <backingStore type="file" index="3"><format type="raw"/><source file="/lab/vda.raw"/><backingStore/>
          </backingStore></backingStore>
        <target dev="vda" bus="virtio"/></disk>
      <disk type="file" device="cdrom"><driver name="qemu" type="raw"/><target dev="sda" bus="sata"/></disk>
    </devices></domain>`;
    expect(parseDiskChains(xml)).toEqual({
      vda: [
        { file: "/lab/vda.s2", format: "qcow2" },
        { file: "/lab/vda.s1", format: "qcow2" },
        { file: "/lab/vda.raw", format: "raw" },
      ],
      sda: [],
    });
  });
});

describe("buildDomainXml", () => {
  const hostile = `lvsnap-lab-<x y="1">&amp;'"]]>`;
  const spec: DomainSpec = {
    name: hostile,
    virtType: "qemu",
    memoryMiB: 64,
    disks: [
      { target: "vda", file: `/lab/${hostile}/vda.qcow2`, format: "qcow2", device: "disk", bus: "virtio" },
      {
        target: "vdb",
        file: "/lab/shared.raw",
        format: "raw",
        device: "disk",
        bus: "virtio",
        shareable: true,
        snapshot: "no",
      },
    ],
    guestAgentChannel: true,
  };

  test("hostile names and paths round-trip as data", () => {
    const document = new DOMParser().parseFromString(buildDomainXml(spec), "text/xml");
    expect(document.getElementsByTagName("name")[0]?.textContent).toBe(hostile);
    expect(parseDiskChains(buildDomainXml(spec))).toEqual({
      vda: [{ file: `/lab/${hostile}/vda.qcow2`, format: "qcow2" }],
      vdb: [{ file: "/lab/shared.raw", format: "raw" }],
    });
    expect(document.getElementsByTagName("domain")).toHaveLength(1);
    expect(document.getElementsByTagName("x")).toHaveLength(0);
  });

  test("writes the shareable disk, the agent channel and the domain type", () => {
    const xml = buildDomainXml(spec);
    expect(xml).toContain('<domain type="qemu">');
    expect(xml).toContain(
      '<disk type="file" device="disk" snapshot="no"><driver name="qemu" type="raw" cache="none"/>' +
        '<source file="/lab/shared.raw"/><target dev="vdb" bus="virtio"/><shareable/></disk>',
    );
    expect(xml).toContain(
      '<channel type="unix"><target type="virtio" name="org.qemu.guest_agent.0"/></channel>',
    );
  });
});

describe("labDomainDir", () => {
  test("accepts only lab names without path separators", () => {
    expect(labDomainDir("lvsnap-lab-0a1b2c3d").endsWith("/lvsnap-lab-0a1b2c3d")).toBe(true);
    expect(() => labDomainDir("other-domain")).toThrow();
    expect(() => labDomainDir("lvsnap-lab-../../etc")).toThrow();
  });
});

describe("LabDomain oracles", () => {
  test("checkPattern takes an image path: a disk target, which names no single image, is refused", async () => {
    const dom = new LabDomain(
      "d",
      "u",
      "/lab/d",
      "qemu",
      [{ target: "vda", base: "/lab/d/vda.qcow2", format: "qcow2" }],
      [],
    );
    await expect(dom.checkPattern("vda", { pattern: 0x11, offset: 0, length: 512 })).rejects.toThrow(
      'checkPattern takes an image path, not "vda": use checkActive(target) for what the disk reads now, ' +
        "or checkPattern(dom.base(target)) for its base image",
    );
  });
});
