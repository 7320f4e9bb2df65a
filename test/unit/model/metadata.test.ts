import type { Element } from "@xmldom/xmldom";
import { describe, expect, test } from "vitest";
import { parseDomainXml } from "../../../provider/model/domain";
import {
  editProjectMetadata,
  findSnapshotRecord,
  parseProjectMetadata,
  type SnapshotFiles,
  snapshotFilesKey,
  withoutSnapshotRecord,
  withSnapshotRecord,
} from "../../../provider/model/metadata";
import { appendElement } from "../../../provider/model/xml";
import { fixture } from "./fixtures";

const filesOf = (name: string): SnapshotFiles => ({
  overlays: [{ disk: "vda", path: `/i/vda.${name}.qcow2` }],
});

describe("project metadata", () => {
  test("records are added, replaced by name, removed; other sections are kept as they were", () => {
    const withJournal = editProjectMetadata(undefined, (root) =>
      appendElement(root, "journal", { op: "delete" }, "x<y"),
    );
    const one = withSnapshotRecord(withJournal, {
      name: "s1",
      files: { overlays: [{ disk: "vda", path: "/i/a&b/vda.s1.qcow2" }], memoryFile: "/i/s1.mem" },
      quiesced: false,
      quiesceNote: "no <agent>",
    });
    const two = withSnapshotRecord(one, { name: "s2", files: filesOf("s2"), quiesced: true });
    const replaced = withSnapshotRecord(two, { name: "s1", files: filesOf("s1-again"), quiesced: true });
    expect(replaced).toBe(
      '<state><journal op="delete">x&lt;y</journal>' +
        '<snapshot name="s2" quiesced="yes"><overlay disk="vda" path="/i/vda.s2.qcow2"/></snapshot>' +
        '<snapshot name="s1" quiesced="yes"><overlay disk="vda" path="/i/vda.s1-again.qcow2"/></snapshot></state>',
    );
    expect(parseProjectMetadata(one)).toEqual({
      snapshots: [
        {
          name: "s1",
          files: { overlays: [{ disk: "vda", path: "/i/a&b/vda.s1.qcow2" }], memoryFile: "/i/s1.mem" },
          quiesced: false,
          quiesceNote: "no <agent>",
        },
      ],
    });
    expect(withoutSnapshotRecord(replaced, "s2")).toBe(
      '<state><journal op="delete">x&lt;y</journal>' +
        '<snapshot name="s1" quiesced="yes"><overlay disk="vda" path="/i/vda.s1-again.qcow2"/></snapshot></state>',
    );
  });

  test("a record describes a snapshot only with the same name and exactly the same files", () => {
    const files: SnapshotFiles = {
      overlays: [
        { disk: "vda", path: "/i/vda.s.qcow2" },
        { disk: "vdb", path: "/i/vdb.s.qcow2" },
      ],
      memoryFile: "/i/s.mem",
    };
    const metadata = parseProjectMetadata(
      withSnapshotRecord(undefined, { name: "s", files, quiesced: true }),
    );
    const record = { name: "s", files, quiesced: true };
    expect(findSnapshotRecord(metadata, "s", files)).toEqual(record);
    // The order of the disks does not matter.
    expect(findSnapshotRecord(metadata, "s", { ...files, overlays: files.overlays.toReversed() })).toEqual(
      record,
    );
    const others: SnapshotFiles[] = [
      { overlays: files.overlays }, // no memory file
      { ...files, memoryFile: "/i/other.mem" },
      { ...files, overlays: files.overlays.slice(0, 1) }, // one disk fewer
      { ...files, overlays: [...files.overlays, { disk: "vdc", path: "/i/vdc.s.qcow2" }] },
      {
        ...files,
        overlays: [
          { disk: "vda", path: "/i/vda.s.qcow2" },
          { disk: "vdb", path: "/j/vdb.s.qcow2" },
        ],
      },
      {
        ...files,
        overlays: [
          { disk: "vdb", path: "/i/vda.s.qcow2" },
          { disk: "vda", path: "/i/vdb.s.qcow2" },
        ],
      },
    ];
    for (const other of others) expect(findSnapshotRecord(metadata, "s", other)).toBeUndefined();
    expect(findSnapshotRecord(metadata, "t", files)).toBeUndefined();
  });

  test("the files fingerprint is stable and does not confuse paths that contain separators", () => {
    const a: SnapshotFiles = { overlays: [{ disk: "vda", path: '/i/x","y' }] };
    const b: SnapshotFiles = {
      overlays: [
        { disk: "vda", path: "/i/x" },
        { disk: "y", path: "" },
      ],
    };
    expect(snapshotFilesKey(a)).toBe(snapshotFilesKey({ overlays: [{ disk: "vda", path: '/i/x","y' }] }));
    expect(snapshotFilesKey(a)).not.toBe(snapshotFilesKey(b));
  });

  test("records of earlier versions (creation time, no files) and damaged ones match nothing", () => {
    const xml =
      '<state><snapshot name="old" creation-time="1795313354" quiesced="yes"/>' +
      '<snapshot name="half" quiesced="yes"><overlay disk="vda"/></snapshot>' +
      '<snapshot name="two-mem" quiesced="yes"><memory path="/a"/><memory path="/b"/></snapshot>' +
      '<snapshot name="mem-only" quiesced="no"><memory path="/i/m.mem"/></snapshot></state>';
    expect(parseProjectMetadata(xml)).toEqual({
      snapshots: [{ name: "mem-only", files: { overlays: [], memoryFile: "/i/m.mem" }, quiesced: false }],
    });
    // Writing a record of the same name replaces the old-format one.
    expect(
      withSnapshotRecord('<state><snapshot name="old" creation-time="1" quiesced="no"/></state>', {
        name: "old",
        files: filesOf("old"),
        quiesced: false,
      }),
    ).toBe(
      '<state><snapshot name="old" quiesced="no"><overlay disk="vda" path="/i/vda.old.qcow2"/></snapshot></state>',
    );
  });

  test("reads the prefixed form found in domain XML, as recorded from virsh", () => {
    const xml = fixture("domain-running-fresh.xml").replace(
      "</uuid>",
      `</uuid><metadata><lvsnap:state xmlns:lvsnap="https://pulumi-libvirt-snapshot.dev/xmlns/v1">
      <lvsnap:snapshot name="s4" quiesced="no" quiesce-note="domain shut off">
        <lvsnap:overlay disk="vda" path="/i/vda.s4.qcow2"/><lvsnap:memory path="/i/s4.mem"/>
      </lvsnap:snapshot>
      <lvsnap:journal><lvsnap:x a="1"/></lvsnap:journal></lvsnap:state></metadata>`,
    );
    expect(parseProjectMetadata(parseDomainXml(xml).projectMetadataXml)).toEqual({
      snapshots: [
        {
          name: "s4",
          files: { overlays: [{ disk: "vda", path: "/i/vda.s4.qcow2" }], memoryFile: "/i/s4.mem" },
          quiesced: false,
          quiesceNote: "domain shut off",
        },
      ],
    });
  });

  test("the prefixed form from domain XML is rewritten without namespaces, other sections kept", () => {
    const prefixed =
      '<lvsnap:state xmlns:lvsnap="https://pulumi-libvirt-snapshot.dev/xmlns/v1">' +
      '<lvsnap:journal version="1"><lvsnap:operation kind="delete">t&amp;</lvsnap:operation></lvsnap:journal>' +
      '<lvsnap:snapshot name="old" quiesced="no"><lvsnap:overlay disk="vda" path="/i/o"/></lvsnap:snapshot>' +
      "</lvsnap:state>";
    expect(withSnapshotRecord(prefixed, { name: "new", files: filesOf("new"), quiesced: true })).toBe(
      '<state><journal version="1"><operation kind="delete">t&amp;</operation></journal>' +
        '<snapshot name="old" quiesced="no"><overlay disk="vda" path="/i/o"/></snapshot>' +
        '<snapshot name="new" quiesced="yes"><overlay disk="vda" path="/i/vda.new.qcow2"/></snapshot></state>',
    );
  });

  test("adding and removing records writes what the same edit through editProjectMetadata writes", () => {
    const documents = [
      undefined,
      "<state/>",
      `<lvsnap:state xmlns:lvsnap="https://pulumi-libvirt-snapshot.dev/xmlns/v1" owner="p">
        <lvsnap:snapshot name="s1" quiesced="no" quiesce-note="tab&#9;cr&#13;lf&#10;&lt;&amp;&quot;'">
          <lvsnap:overlay disk="vda" path="/i/a b/&lt;x&gt;"/>
        </lvsnap:snapshot>
        <lvsnap:revert id="r" x:y="1" xmlns:x="urn:x">text &amp; more&#13;<lvsnap:discard snapshot="s1"/></lvsnap:revert>
        <lvsnap:snapshot name="s2" quiesced="yes"><lvsnap:overlay disk="vda" path="/i/s2"/></lvsnap:snapshot>
      </lvsnap:state>`,
    ];
    const record = {
      name: "s1",
      files: { overlays: [{ disk: "vda", path: '/i/"new"&\r<s1>' }], memoryFile: "/i/s1\t.mem" },
      quiesced: false,
      quiesceNote: 'no <agent> & "quotes"',
    };
    const byDom = (xml: string | undefined, name: string, add: boolean) =>
      editProjectMetadata(xml, (root) => {
        for (const el of [...Array.from(root.childNodes)]) {
          const element = el as unknown as Element;
          if (element.localName === "snapshot" && element.getAttribute("name") === name) root.removeChild(el);
        }
        if (!add) return;
        const el = appendElement(root, "snapshot", {
          name: record.name,
          quiesced: "no",
          "quiesce-note": record.quiesceNote,
        });
        appendElement(el, "overlay", { disk: "vda", path: record.files.overlays[0]?.path });
        appendElement(el, "memory", { path: record.files.memoryFile });
      });
    for (const xml of documents) {
      expect([
        withSnapshotRecord(xml, record),
        withoutSnapshotRecord(xml, "s1"),
        withoutSnapshotRecord(xml, "s9"),
      ]).toEqual([byDom(xml, "s1", true), byDom(xml, "s1", false), byDom(xml, "s9", false)]);
    }
    expect(parseProjectMetadata(withSnapshotRecord(documents[2], record))).toEqual({
      snapshots: [
        { name: "s2", files: { overlays: [{ disk: "vda", path: "/i/s2" }] }, quiesced: true },
        record,
      ],
    });
  });

  test("no document is empty metadata", () => {
    expect(parseProjectMetadata(undefined)).toEqual({ snapshots: [] });
  });
});
