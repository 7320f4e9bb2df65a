import { describe, expect, test } from "vitest";
import {
  DELETE_READS_IN_FLIGHT,
  type DeleteReadPort,
  offChainBacking,
  readFirst,
  readSecond,
} from "../../../provider/engine/delete-read";
import { type BranchPort, backingLinks, readHostView } from "../../../provider/engine/revert-branch";
import type { BlockJobInfo, DomainRef, SnapshotRef } from "../../../provider/libvirt/api";
import { BlockJobType, DomainState } from "../../../provider/libvirt/api";
import { DomainXMLFlags } from "../../../provider/libvirt/flags";

// The domain of delete-plan-backing.test.ts after two reverts: s3 is off the live chain, so the planner needs
// the backing links, which must come out the same as from a full read of the host view.
const DIR = "/var/lib/libvirt/images/lab";
const backingStore = (files: readonly string[]): string =>
  files.reduceRight(
    (inner, f, i) =>
      `<backingStore type='file' index='${i + 1}'><format type='qcow2'/><source file='${DIR}/${f}'/>${inner}</backingStore>`,
    "<backingStore/>",
  );
const disk = (top: string, below: readonly string[], target: string) =>
  `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${DIR}/${top}' index='${below.length + 1}'/>${backingStore(below)}<target dev='${target}' bus='virtio'/></disk>`;
const cdrom = "<disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>";
const domainXml = (top: string, below: readonly string[], extra = "") =>
  `<domain type='qemu' id='7'><name>lab</name><uuid>6f1d8c52-2b7e-4a43-9d43-3a5b1f0e2c11</uuid><os><type arch='x86_64'>hvm</type></os><devices>${disk(top, below, "vda")}${extra}</devices></domain>`;
const snapshotXml = (name: string, parent: string | undefined, overlay: string, saved: string) =>
  `<domainsnapshot><name>${name}</name><state>running</state>${parent === undefined ? "" : `<parent><name>${parent}</name></parent>`}<creationTime>${1795313354 + Number(name.slice(1))}</creationTime><memory snapshot='no'/><disks><disk name='vda' snapshot='external' type='file'><driver type='qcow2'/><source file='${DIR}/${overlay}'/></disk></disks>${saved}</domainsnapshot>`;

const ref: DomainRef = { name: "lab", uuid: "6f1d8c52-2b7e-4a43-9d43-3a5b1f0e2c11", id: 7 };

interface Host {
  readonly state: DomainState;
  readonly liveXml: string;
  readonly persistentXml: string;
  readonly snapshots: ReadonlyMap<string, string>;
  readonly current: string;
  readonly jobs: ReadonlyMap<string, BlockJobInfo>;
}

/** A port over `host` that logs each call and the most calls ever pending at once. */
function fakePort(host: Host) {
  const calls: string[] = [];
  let pending = 0;
  const peak = { value: 0 };
  const answer = async <T>(call: string, value: () => T): Promise<T> => {
    calls.push(call);
    pending++;
    peak.value = Math.max(peak.value, pending);
    await new Promise((resolve) => setImmediate(resolve));
    pending--;
    return value();
  };
  const port: DeleteReadPort = {
    domainGetState: () => answer("domainGetState", () => ({ state: host.state, reason: 1 })),
    domainGetXMLDesc: (_d, flags) =>
      answer(flags === DomainXMLFlags.INACTIVE ? "domainGetXMLDesc inactive" : "domainGetXMLDesc", () =>
        flags === DomainXMLFlags.INACTIVE ? host.persistentXml : host.liveXml,
      ),
    domainListAllSnapshots: () =>
      answer("domainListAllSnapshots", () =>
        [...host.snapshots.keys()].map((name): SnapshotRef => ({ name, domain: ref })),
      ),
    domainSnapshotGetXMLDesc: (s) =>
      answer(`domainSnapshotGetXMLDesc ${s.name}`, () => host.snapshots.get(s.name) ?? ""),
    domainGetBlockJobInfo: (_d, target) =>
      answer(`domainGetBlockJobInfo ${target}`, () => host.jobs.get(target) ?? null),
    domainSnapshotCurrent: () => answer("domainSnapshotCurrent", () => ({ name: host.current, domain: ref })),
  };
  return { port, calls, peak };
}

function afterTwoReverts(state: DomainState = DomainState.RUNNING): Host {
  return {
    state,
    liveXml: domainXml("vda.s2.revert-1.qcow2", ["vda.s1.qcow2", "vda.qcow2"], cdrom),
    persistentXml: domainXml("vda.s2.revert-1.qcow2", []),
    snapshots: new Map([
      ["s1", snapshotXml("s1", undefined, "vda.s1.qcow2", domainXml("vda.qcow2", []))],
      ["s2", snapshotXml("s2", "s1", "vda.s2.revert-1.qcow2", domainXml("vda.s1.qcow2", ["vda.qcow2"]))],
      ["s3", snapshotXml("s3", "s1", "vda.s3.qcow2", domainXml("vda.s1.revert-1.qcow2", ["vda.qcow2"]))],
    ]),
    current: "s2",
    jobs: new Map([["vda", { type: BlockJobType.COMMIT, bandwidth: 0n, cur: 1n, end: 2n }]]),
  };
}

describe("delete-read", () => {
  test("off-chain backing links equal those of a full host view, reading only what the rounds lacked", async () => {
    const host = afterTwoReverts();
    const { port, calls } = fakePort(host);
    const view = await readSecond(port, ref, await readFirst(port, ref));
    const backing = await offChainBacking(port, ref, view);
    expect(calls).toEqual([
      "domainGetState",
      "domainGetXMLDesc",
      "domainListAllSnapshots",
      "domainSnapshotGetXMLDesc s1",
      "domainSnapshotGetXMLDesc s2",
      "domainSnapshotGetXMLDesc s3",
      "domainGetBlockJobInfo vda",
      "domainGetXMLDesc inactive",
      "domainSnapshotCurrent",
    ]);
    const full = fakePort(host);
    // readHostView reads only calls of this port (its type asks for more: the branch operations').
    const expected = backingLinks([await readHostView(full.port as unknown as BranchPort, ref)]);
    expect(backing).toEqual(expected);
    expect(backing.get(`${DIR}/vda.s3.qcow2`)).toBe(`${DIR}/vda.s1.revert-1.qcow2`);
  });

  test("block jobs are read for the disks with a source while QEMU runs, and for none when shut off", async () => {
    const running = await readSecond(
      fakePort(afterTwoReverts()).port,
      ref,
      await readFirst(fakePort(afterTwoReverts()).port, ref),
    );
    expect(running.jobs).toEqual([{ disk: "vda", type: BlockJobType.COMMIT }]);
    const off = fakePort(afterTwoReverts(DomainState.SHUTOFF));
    const shutOff = await readSecond(off.port, ref, await readFirst(off.port, ref));
    expect([shutOff.jobs, off.calls.filter((c) => c.startsWith("domainGetBlockJobInfo"))]).toEqual([[], []]);
  });

  test("the second round keeps at most DELETE_READS_IN_FLIGHT calls pending", async () => {
    const base = afterTwoReverts();
    const many = new Map(
      Array.from({ length: 12 }, (_, i) => [
        `s${i + 1}`,
        snapshotXml(`s${i + 1}`, undefined, `vda.x${i}.qcow2`, domainXml("vda.qcow2", [])),
      ]),
    );
    const { port, peak } = fakePort({ ...base, snapshots: many });
    const first = await readFirst(port, ref);
    peak.value = 0;
    const view = await readSecond(port, ref, first);
    expect([view.snapshotXml.size, peak.value]).toEqual([12, DELETE_READS_IN_FLIGHT]);
  });
});
