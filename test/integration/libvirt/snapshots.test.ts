import { describe, expect, test } from "vitest";
import {
  type BlockJobEvent,
  BlockJobStatus,
  BlockJobType,
  type LifecycleEvent,
} from "../../../provider/libvirt/api";
import {
  BlockCommitFlags,
  BlockJobAbortFlags,
  DomainEventType,
  SnapshotCreateFlags,
  SnapshotListFlags,
  SnapshotXMLFlags,
} from "../../../provider/libvirt/flags";
import { type LabDomain, lab } from "../../support/lab";
import { libvirtRejection } from "../../support/rejections";
import { virsh } from "../../support/virsh";
import { EventLog, openForTest } from "./support/connect";

/** Disk-only external snapshot XML of vda with an explicit overlay path (built as data, no user input). */
function snapshotXml(dom: LabDomain, name: string): string {
  return `<domainsnapshot><name>${name}</name><disks><disk name='vda' snapshot='external'><source file='${dom.path(`vda.${name}.qcow2`)}'/></disk></disks></domainsnapshot>`;
}

const DISK_ONLY_ATOMIC = SnapshotCreateFlags.DISK_ONLY | SnapshotCreateFlags.ATOMIC;

describe("snapshot calls agree with virsh", () => {
  test("create, list (topological), look up, XML, current, revert (9.0: refused), delete", async () => {
    const dom = await lab.domain({ state: "running" });
    const connection = await openForTest();
    const ref = await connection.domainLookupByName(dom.name);
    const s1 = await connection.domainSnapshotCreateXML(ref, snapshotXml(dom, "s1"), DISK_ONLY_ATOMIC);
    const s2 = await connection.domainSnapshotCreateXML(ref, snapshotXml(dom, "s2"), DISK_ONLY_ATOMIC);
    expect([s1, s2]).toEqual([
      { name: "s1", domain: ref },
      { name: "s2", domain: ref },
    ]);

    const topological = await connection.domainListAllSnapshots(ref, SnapshotListFlags.TOPOLOGICAL);
    expect(topological.map((s) => s.name)).toEqual(await dom.snapshotNames());
    const plain = (await virsh("snapshot-list", "--name", dom.name))
      .split("\n")
      .filter((line) => line.length > 0);
    expect((await connection.domainListAllSnapshots(ref, 0)).map((s) => s.name).sort()).toEqual(plain.sort());
    expect(await connection.domainSnapshotLookupByName(ref, "s1")).toEqual(s1);
    expect((await connection.domainSnapshotGetXMLDesc(s1, SnapshotXMLFlags.SECURE)).trimEnd()).toBe(
      (await virsh("snapshot-dumpxml", "--security-info", dom.name, "s1")).trimEnd(),
    );
    expect((await connection.domainSnapshotCurrent(ref)).name).toBe(
      (await virsh("snapshot-current", "--name", dom.name)).trim(),
    );

    if ((await connection.connectGetLibVersion()) < 9_009_000) {
      // libvirt < 9.9 refuses to revert to an external snapshot (docs: notes/libvirt.md).
      expect((await libvirtRejection(connection.domainRevertToSnapshot(s1, 0))).codeName).toBe(
        "CONFIG_UNSUPPORTED",
      );
    }

    await connection.domainSnapshotDelete(s2, 0);
    expect(await dom.snapshotNames()).toEqual(["s1"]);
    expect(await dom.liveChain("vda")).toEqual([dom.path("vda.s1.qcow2"), dom.base("vda")]);
  });
});

/** `virsh blockjob <dom> vda --raw`: "... bandwidth=<n> cur=<n> end=<n>" (bandwidth in MiB/s). */
async function virshBlockJob(dom: LabDomain): Promise<Record<string, bigint>> {
  const text = await virsh("blockjob", dom.name, "vda", "--raw");
  const fields = Object.fromEntries(
    [...text.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1], BigInt(m[2] ?? "")]),
  );
  if (!("cur" in fields)) throw new Error(`unexpected virsh blockjob output: ${text}`);
  return fields;
}

describe("block jobs and events", () => {
  test("active commit parks READY, block info and job info agree with virsh, pivot COMPLETES; lifecycle", async () => {
    const dom = await lab.domain({ state: "running" });
    const connection = await openForTest();
    const events = await openForTest();
    const ref = await connection.domainLookupByName(dom.name);
    const jobs = new EventLog<BlockJobEvent>();
    const lifecycle = new EventLog<LifecycleEvent>();
    await events.subscribeBlockJobEvents(ref, jobs.listener);
    await events.subscribeLifecycleEvents(ref, lifecycle.listener);

    const blockInfo = await connection.domainGetBlockInfo(ref, "vda");
    const virshBlockInfo = await virsh("domblkinfo", dom.name, "vda");
    const field = (label: string) =>
      BigInt(new RegExp(`${label}:\\s+(\\d+)`).exec(virshBlockInfo)?.[1] ?? "-1");
    expect(blockInfo).toEqual({
      capacity: field("Capacity"),
      allocation: field("Allocation"),
      physical: field("Physical"),
    });

    await connection.domainSnapshotCreateXML(ref, snapshotXml(dom, "s1"), DISK_ONLY_ATOMIC);
    expect(await connection.domainGetBlockJobInfo(ref, "vda")).toBe(null);
    await connection.domainBlockCommit(ref, "vda", null, null, 0n, BlockCommitFlags.ACTIVE);
    const ready = await jobs.waitFor((e) => e.status === BlockJobStatus.READY);
    expect(ready).toEqual({
      domain: ref,
      disk: "vda",
      type: BlockJobType.ACTIVE_COMMIT,
      status: BlockJobStatus.READY,
    });

    const info = await connection.domainGetBlockJobInfo(ref, "vda");
    const virshInfo = await virshBlockJob(dom);
    expect(info).toEqual({
      type: BlockJobType.ACTIVE_COMMIT,
      bandwidth: virshInfo.bandwidth,
      cur: virshInfo.cur,
      end: virshInfo.end,
    });

    await connection.domainBlockJobAbort(ref, "vda", BlockJobAbortFlags.PIVOT);
    const completed = await jobs.waitFor((e) => e.status === BlockJobStatus.COMPLETED);
    expect(completed).toEqual({ ...ready, status: BlockJobStatus.COMPLETED });
    expect(await connection.domainGetBlockJobInfo(ref, "vda")).toBe(null);
    expect(await dom.liveChain("vda")).toEqual([dom.base("vda")]);

    await connection.domainSuspend(ref);
    await connection.domainResume(ref);
    await lifecycle.waitFor((e) => e.event === DomainEventType.RESUMED);
    expect(lifecycle.events.map((e) => [e.domain.name, e.event])).toEqual([
      [dom.name, DomainEventType.SUSPENDED],
      [dom.name, DomainEventType.RESUMED],
    ]);
  });
});
