import { describe, expect, test } from "vitest";
import {
  type DeleteJournal,
  parseJournal,
  readJournal,
  withJournal,
  writeJournal,
} from "../../../provider/engine/journal";
import type { DomainRef } from "../../../provider/libvirt/api";
import { parseProjectMetadata, withSnapshotRecord } from "../../../provider/model/metadata";
import { daemonError } from "./delete-fakes";

const journal: DeleteJournal = {
  kind: "delete",
  id: "6b1c",
  snapshot: `s<1>&"quoted"'`,
  startedAt: "2026-11-22T02:00:00.000Z",
  phase: "merging",
  startedDomain: true,
  disks: [
    {
      target: "vda",
      top: "/i/a&b/vda.s1.qcow2",
      base: "/i/a&b/vda.qcow2",
      active: true,
      phase: "pivoting",
      chain: ["/i/a&b/vda.s1.qcow2", "/i/a&b/vda.qcow2"],
    },
    { target: "vdb", top: "/i/vdb.s1.qcow2", base: "/i/vdb.qcow2", active: false, phase: "pending" },
  ],
  files: ["/i/a&b/vda.s1.qcow2", "/i/vdb.s1.qcow2", "/i/s1.mem"],
};

describe("journal XML", () => {
  test("round trips, hostile strings included", () => {
    expect(parseJournal(withJournal(undefined, journal) ?? undefined)).toEqual(journal);
  });

  test("keeps the other project state in the shared element and clears only the journal", () => {
    const other = withSnapshotRecord(undefined, {
      name: "s1",
      files: { overlays: [{ disk: "vda", path: "/i/vda.s1.qcow2" }] },
      quiesced: false,
    });
    const written = withJournal(other, journal) ?? "";
    expect(parseJournal(written)).toEqual(journal);
    expect(parseProjectMetadata(written)).toEqual(parseProjectMetadata(other));
    expect(withJournal(written, null)).toBe(other);
  });

  test("clearing the journal can forget the deleted snapshot's record in the same write", () => {
    const records = withSnapshotRecord(
      withSnapshotRecord(undefined, {
        name: "s1",
        files: { overlays: [{ disk: "vda", path: "/i/vda.s1.qcow2" }] },
        quiesced: false,
      }),
      { name: "s2", files: { overlays: [{ disk: "vda", path: "/i/vda.s2.qcow2" }] }, quiesced: true },
    );
    const cleared = withJournal(withJournal(records, journal) ?? undefined, null, "s1") ?? undefined;
    expect(parseProjectMetadata(cleared)).toEqual({
      snapshots: [
        { name: "s2", files: { overlays: [{ disk: "vda", path: "/i/vda.s2.qcow2" }] }, quiesced: true },
      ],
    });
    expect(withJournal(withJournal(undefined, journal) ?? undefined, null, "s1")).toBeNull();
  });

  test("reads the form virDomainGetMetadata returns (no prefix) and removes an empty element", () => {
    const bare = (withJournal(undefined, journal) ?? "")
      .replaceAll("lvsnap:", "")
      .replace("xmlns:lvsnap", "xmlns");
    expect(parseJournal(bare)).toEqual(journal);
    expect(withJournal(bare, null)).toBeNull();
    expect(parseJournal(undefined)).toBeNull();
  });

  test("refuses a journal it cannot understand", () => {
    const future = (withJournal(undefined, journal) ?? "").replace('version="1"', 'version="2"');
    expect(() => parseJournal(future)).toThrow(/unknown version/);
    const badPhase = (withJournal(undefined, journal) ?? "").replace('phase="pending"', 'phase="later"');
    expect(() => parseJournal(badPhase)).toThrow(/unknown disk phase later/);
  });
});

describe("journal on the domain", () => {
  const domain: DomainRef = { name: "d", uuid: "u", id: -1 };
  function fakeHost(state: number, transient = false) {
    const writes: { flags: number; xml: string | null; key: string | null }[] = [];
    let stored: string | undefined;
    return {
      writes,
      port: {
        domainGetState: async () => ({ state: state as 1, reason: 0 }),
        domainGetMetadata: async () => {
          if (stored === undefined) throw daemonError(80, "no metadata");
          return stored;
        },
        domainSetMetadata: async (
          _d: DomainRef,
          _t: number,
          xml: string | null,
          key: string | null,
          _u: string | null,
          flags: number,
        ) => {
          if (transient && flags & 2) throw daemonError(55, "transient");
          writes.push({ flags, xml, key });
          stored = xml ?? undefined;
        },
      },
    };
  }

  test("a running persistent domain gets the journal in live and persistent definitions", async () => {
    const host = fakeHost(1);
    await writeJournal(host.port, domain, journal);
    expect(await readJournal(host.port, domain)).toEqual(journal);
    await writeJournal(host.port, domain, null);
    expect(await readJournal(host.port, domain)).toBeNull();
    expect(host.writes.map((w) => [w.flags, w.key, w.xml === null])).toEqual([
      [3, "lvsnap", false],
      [3, "lvsnap", true],
    ]);
  });

  test("a shut off domain gets it in the persistent definition, a transient one in the live one", async () => {
    const off = fakeHost(5);
    await writeJournal(off.port, domain, journal);
    const transient = fakeHost(3, true);
    await writeJournal(transient.port, domain, journal);
    expect([off.writes.map((w) => w.flags), transient.writes.map((w) => w.flags)]).toEqual([[2], [1]]);
  });
});
