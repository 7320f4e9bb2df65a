import { describe, expect, test } from "vitest";
import { parseDomainXml } from "../../../provider/model/domain";
import {
  editProjectMetadata,
  findSnapshotRecord,
  parseProjectMetadata,
  withoutSnapshotRecord,
  withSnapshotRecord,
} from "../../../provider/model/metadata";
import { appendElement } from "../../../provider/model/xml";
import { fixture } from "./fixtures";

describe("project metadata", () => {
  test("records are added, replaced by name, removed; other sections are kept as they were", () => {
    const withJournal = editProjectMetadata(undefined, (root) =>
      appendElement(root, "journal", { op: "delete" }, "x<y"),
    );
    const one = withSnapshotRecord(withJournal, {
      name: "s1",
      creationTime: 10,
      quiesced: false,
      quiesceNote: "no <agent>",
    });
    const two = withSnapshotRecord(one, { name: "s2", creationTime: 11, quiesced: true });
    const replaced = withSnapshotRecord(two, { name: "s1", creationTime: 12, quiesced: true });
    expect(replaced).toBe(
      '<state><journal op="delete">x&lt;y</journal><snapshot name="s2" creation-time="11" quiesced="yes"/>' +
        '<snapshot name="s1" creation-time="12" quiesced="yes"/></state>',
    );
    expect(parseProjectMetadata(one)).toEqual({
      snapshots: [{ name: "s1", creationTime: 10, quiesced: false, quiesceNote: "no <agent>" }],
    });
    expect(withoutSnapshotRecord(replaced, "s2")).toBe(
      '<state><journal op="delete">x&lt;y</journal><snapshot name="s1" creation-time="12" quiesced="yes"/></state>',
    );
  });

  test("a record describes a snapshot only with the same name and creation time", () => {
    const metadata = parseProjectMetadata(
      withSnapshotRecord(undefined, { name: "s", creationTime: 5, quiesced: true }),
    );
    expect(findSnapshotRecord(metadata, "s", 5)).toEqual({ name: "s", creationTime: 5, quiesced: true });
    expect(findSnapshotRecord(metadata, "s", 6)).toBeUndefined();
  });

  test("reads the prefixed form found in domain XML, as recorded from virsh", () => {
    const xml = fixture("domain-running-fresh.xml").replace(
      "</uuid>",
      `</uuid><metadata><lvsnap:state xmlns:lvsnap="https://pulumi-libvirt-snapshot.dev/xmlns/v1">
      <lvsnap:snapshot name="s4" creation-time="1795313375" quiesced="no" quiesce-note="domain shut off"/>
      <lvsnap:journal><lvsnap:x a="1"/></lvsnap:journal></lvsnap:state></metadata>`,
    );
    expect(parseProjectMetadata(parseDomainXml(xml).projectMetadataXml)).toEqual({
      snapshots: [{ name: "s4", creationTime: 1795313375, quiesced: false, quiesceNote: "domain shut off" }],
    });
  });

  test("the prefixed form from domain XML is rewritten without namespaces, other sections kept", () => {
    const prefixed =
      '<lvsnap:state xmlns:lvsnap="https://pulumi-libvirt-snapshot.dev/xmlns/v1">' +
      '<lvsnap:journal version="1"><lvsnap:operation kind="delete">t&amp;</lvsnap:operation></lvsnap:journal>' +
      '<lvsnap:snapshot name="old" creation-time="1" quiesced="no"/></lvsnap:state>';
    expect(withSnapshotRecord(prefixed, { name: "new", creationTime: 2, quiesced: true })).toBe(
      '<state><journal version="1"><operation kind="delete">t&amp;</operation></journal>' +
        '<snapshot name="old" creation-time="1" quiesced="no"/><snapshot name="new" creation-time="2" quiesced="yes"/></state>',
    );
  });

  test("no document is empty metadata", () => {
    expect(parseProjectMetadata(undefined)).toEqual({ snapshots: [] });
  });
});
