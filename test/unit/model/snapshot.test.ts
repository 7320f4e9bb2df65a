import { DOMParser } from "@xmldom/xmldom";
import { describe, expect, test } from "vitest";
import { buildSnapshotCreateXml, parseSnapshotXml } from "../../../provider/model/snapshot";
import { findNonXmlCharacter } from "../../../provider/model/xml";
import { fixture, qcow2 } from "./fixtures";

const off = (target: string) => ({ target, mode: "no" });

describe("parseSnapshotXml", () => {
  test("disk-only snapshot of a running domain, description with XML metacharacters", () => {
    expect(parseSnapshotXml(fixture("snapshot-disk-only.xml"))).toEqual({
      name: "s1",
      description: "first <one> & 'quoted' \"double\" ü",
      state: "disk-snapshot",
      creationTime: 1795313354,
      memory: { mode: "no" },
      disks: [
        { target: "vda", mode: "external", overlay: qcow2("vda.s1.qcow2"), imageBefore: qcow2("vda.qcow2") },
        { target: "vdb", mode: "external", overlay: qcow2("vdb.s1.qcow2"), imageBefore: qcow2("vdb.qcow2") },
        off("vdc"),
        off("vdd"),
        off("sda"),
      ],
    });
  });

  test("memory snapshot: external memory file, parent, no description; image before from the embedded <domain>", () => {
    expect(parseSnapshotXml(fixture("snapshot-memory.xml"))).toEqual({
      name: "s2",
      state: "running",
      creationTime: 1795313354,
      parent: "s1",
      memory: { mode: "external", file: "/var/lib/libvirt/images/lvsnap-fixture/lvsnap-fixture.s2.mem" },
      disks: [
        {
          target: "vda",
          mode: "external",
          overlay: qcow2("vda.s2.qcow2"),
          imageBefore: qcow2("vda.s1.qcow2"),
        },
        off("vdb"),
        off("vdc"),
        off("vdd"),
        off("sda"),
      ],
    });
  });

  test("snapshots taken paused and shut off", () => {
    const paused = parseSnapshotXml(fixture("snapshot-disk-only-paused.xml"));
    const shutoff = parseSnapshotXml(fixture("snapshot-disk-only-shutoff.xml"));
    expect([paused.state, paused.parent, paused.description]).toEqual(["disk-snapshot", "s2", "paused one"]);
    expect([shutoff.state, shutoff.parent, shutoff.description]).toEqual(["shutoff", "s3", undefined]);
    expect(shutoff.disks.filter((d) => d.mode === "external").map((d) => d.overlay)).toEqual([
      qcow2("vda.s4.qcow2"),
      qcow2("vdb.s4.qcow2"),
    ]);
  });
});

describe("buildSnapshotCreateXml", () => {
  test("whole document for a memory snapshot with one disk left out", () => {
    expect(
      buildSnapshotCreateXml({
        name: "s1",
        description: "d",
        memoryFile: "/i/dom.s1.mem",
        disks: [
          { target: "vda", mode: "external", overlayPath: "/i/vda.s1.qcow2" },
          { target: "vdb", mode: "no" },
        ],
      }),
    ).toBe(
      "<domainsnapshot><name>s1</name><description>d</description>" +
        '<memory snapshot="external" file="/i/dom.s1.mem"/><disks>' +
        '<disk name="vda" snapshot="external" type="file"><driver type="qcow2"/><source file="/i/vda.s1.qcow2"/></disk>' +
        '<disk name="vdb" snapshot="no"/></disks></domainsnapshot>',
    );
  });

  const hostile = [
    `<>&'"`,
    "]]></description><name>evil</name>",
    "$(rm -rf /); `id` | ; && \\ \t end",
    "unicode: ü 日本語 🙂 \u200b",
    "line1\r\nline2\rline3\n",
    "  leading and trailing spaces  ",
    `${"x".repeat(999)}ü`,
  ];
  test.each(hostile)("description %j round-trips through our own parser", (description) => {
    const xml = buildSnapshotCreateXml({ name: "n", description, disks: [{ target: "vda", mode: "no" }] });
    expect(parseSnapshotXml(xml)).toEqual({
      name: "n",
      description,
      state: "",
      creationTime: Number.NaN,
      memory: { mode: "no" },
      disks: [{ target: "vda", mode: "no" }],
    });
  });

  test("paths and names with metacharacters stay attribute data", () => {
    const path = `/i/a'b"c<d>&e f.qcow2`;
    const xml = buildSnapshotCreateXml({
      name: "a&b",
      disks: [{ target: "vda", mode: "external", overlayPath: path }],
    });
    const doc = new DOMParser().parseFromString(xml, "text/xml");
    expect(doc.getElementsByTagName("source")[0]?.getAttribute("file")).toBe(path);
    expect(parseSnapshotXml(xml).name).toBe("a&b");
  });

  test("Quirk: a carriage return in text is written as a character reference", () => {
    const xml = buildSnapshotCreateXml({ name: "n", description: "a\r\nb", disks: [] });
    expect(xml).toContain("<description>a&#13;\nb</description>");
  });
});

describe("findNonXmlCharacter", () => {
  test("finds characters XML 1.0 cannot carry, accepts the rest", () => {
    expect(["ok \t\r\n", "🙂", "ü"].map(findNonXmlCharacter)).toEqual([undefined, undefined, undefined]);
    expect(["a\u0000", "a\u0007b", "\ud800x", "x\udc00", "\uffff"].map(findNonXmlCharacter)).toEqual([
      1, 1, 0, 1, 0,
    ]);
  });
});
