import { describe, expect, test } from "vitest";
import { type DeleteJournal, withJournal } from "../../../provider/engine/journal";
import { hasInterruptedOperation } from "../../../provider/engine/recover";
import { withPreviewRecord, withRevertRecord } from "../../../provider/engine/revert-state";
import { parseDomainXml } from "../../../provider/model/domain";
import { withSnapshotRecord } from "../../../provider/model/metadata";
import { fixture } from "../model/fixtures";

const journal: DeleteJournal = {
  kind: "delete",
  id: "j",
  snapshot: "s1",
  startedAt: "2026-11-22T05:00:00.000Z",
  phase: "merging",
  startedDomain: false,
  disks: [{ target: "vda", top: "/i/vda.s1.qcow2", base: "/i/vda.qcow2", active: true, phase: "merging" }],
  files: [],
};
const revert = {
  id: "r",
  snapshot: "s1",
  started: "2026-11-22T05:00:00.000Z",
  phase: "overlays" as const,
  helper: "lvsnap-revert-0000",
  overlays: [],
  previous: [],
};
const record = withSnapshotRecord(undefined, {
  name: "s1",
  files: { overlays: [{ disk: "vda", path: "/i/vda.s1.qcow2" }] },
  quiesced: true,
});

/** The project metadata as a create finds it: inside the domain XML, under the project's prefix. */
function asInDomainXml(metadata: string | null): string | undefined {
  if (metadata === null) return undefined;
  const prefixed = metadata
    .replace(/<(\/?)([a-z])/g, "<$1lvsnap:$2")
    .replace("<lvsnap:state", '<lvsnap:state xmlns:lvsnap="https://pulumi-libvirt-snapshot.dev/xmlns/v1"');
  const xml = fixture("domain-running-fresh.xml").replace(
    "</uuid>",
    `</uuid><metadata>${prefixed}</metadata>`,
  );
  return parseDomainXml(xml).projectMetadataXml;
}

describe("hasInterruptedOperation", () => {
  test.each([
    ["no project metadata", null, false],
    ["only snapshot records", record, false],
    [
      "a preview in progress (a state, not an interrupted operation)",
      withPreviewRecord(record, {
        snapshot: "s1",
        saved: "auto",
        started: "2026-11-22T05:00:00.000Z",
      }),
      false,
    ],
    ["an empty journal element", '<state><journal version="1"/></state>', false],
    ["a delete journal", withJournal(record, journal), true],
    ["a revert record", withRevertRecord(record, revert), true],
    [
      "a journal of a version this one cannot read (recovery reports it)",
      '<state><journal version="9"><operation/></journal></state>',
      true,
    ],
    ["a revert record this version cannot read", '<state><revert phase="teleporting"/></state>', true],
  ])("%s", (_what, metadata, expected) => {
    expect([
      hasInterruptedOperation(metadata ?? undefined),
      hasInterruptedOperation(asInDomainXml(metadata)),
    ]).toEqual([expected, expected]);
  });
});
