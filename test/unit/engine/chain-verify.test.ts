import { expect, test } from "vitest";
import { chainMismatches } from "../../../provider/engine/chain-verify";
import { parseDomainXml } from "../../../provider/model/domain";
import { FIXTURE_DIR, fixture } from "../model/fixtures";

const live = parseDomainXml(fixture("domain-running-two-snapshots.xml"));
const f = (name: string) => `${FIXTURE_DIR}/${name}`;

test("matching tops pass; a different layer, a missing disk and a short terminated chain are reported", () => {
  expect(chainMismatches(live, [{ target: "vda", top: [f("vda.s2.qcow2"), f("vda.s1.qcow2")] }])).toEqual([]);
  expect(
    chainMismatches(live, [
      { target: "vda", top: [f("vda.s2.qcow2"), f("vda.qcow2")] },
      { target: "vdz", top: [f("x")] },
      { target: "vdb", top: [f("vdb.s1.qcow2"), f("vdb.qcow2"), f("older.qcow2")] },
    ]),
  ).toEqual([
    `disk vda: expected the chain to start with ${f("vda.s2.qcow2")} -> ${f("vda.qcow2")}, found ${f("vda.s2.qcow2")} -> ${f("vda.s1.qcow2")} -> ${f("vda.qcow2")}`,
    "disk vdz is no longer in domain lvsnap-fixture",
    `disk vdb: expected the chain to start with ${f("vdb.s1.qcow2")} -> ${f("vdb.qcow2")} -> ${f("older.qcow2")}, found ${f("vdb.s1.qcow2")} -> ${f("vdb.qcow2")}`,
  ]);
});

test("Quirk: a chain libvirt did not list to its end (shut-off domain) is compared as far as it is listed", () => {
  const partial = parseDomainXml(
    fixture("domain-shutoff-four-snapshots.xml").replace(
      /(<source file='[^']*vda\.s4\.qcow2'\/>)\s*<backingStore[\s\S]*?<target dev='vda'/,
      "$1<target dev='vda'",
    ),
  );
  expect(chainMismatches(partial, [{ target: "vda", top: [f("vda.s4.qcow2"), f("vda.s3.qcow2")] }])).toEqual(
    [],
  );
  expect(
    chainMismatches(partial, [{ target: "vda", top: [f("other.qcow2"), f("vda.s3.qcow2")] }]),
  ).toHaveLength(1);
});
