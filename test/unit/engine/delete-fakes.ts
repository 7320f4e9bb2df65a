import type { RecoveryPort } from "../../../provider/engine/recover";
import type {
  BlockJobEvent,
  BlockJobInfo,
  DomainRef,
  StoragePoolRef,
  StorageVolRef,
} from "../../../provider/libvirt/api";
import { BlockJobStatus, BlockJobType, DomainState } from "../../../provider/libvirt/api";
import { LibvirtError } from "../../../provider/libvirt/errors";
import { BlockCommitFlags, BlockJobAbortFlags, SnapshotDeleteFlags } from "../../../provider/libvirt/flags";

/** An error as the daemon would send it: kind `remote`, the given code, level ERROR. */
export function daemonError(code: number, message: string): LibvirtError {
  return new LibvirtError({
    kind: "remote",
    code,
    domain: 10,
    message,
    level: 2,
    str1: null,
    str2: null,
    str3: null,
    int1: -1,
    int2: -1,
    procedure: null,
  });
}

/** The state of the fake host, as tests compare it. */
export interface FakeHostState {
  domainState: number;
  chains: Record<string, string[]>;
  snapshots: string[];
  files: string[];
  journal: string | undefined;
  job: string | null;
  pools: string[];
}

/**
 * A scripted hypervisor for the delete executor: one domain with file chains, snapshot names, files, the
 * project metadata element, one block job at a time (jobs copy instantly, on a timer), storage pools. It can
 * fail the n-th state-changing call, to test what every failure leaves behind.
 */
export class FakeHost implements RecoveryPort {
  readonly domain: DomainRef = { name: "d", uuid: "00000000-0000-0000-0000-00000000000d", id: 1 };
  domainState: number = DomainState.RUNNING;
  chains: Record<string, string[]>;
  snapshots = new Set<string>();
  files = new Set<string>();
  metadata: string | undefined;
  job: { disk: string; top: string; base: string; active: boolean; ready: boolean } | null = null;
  pools = new Map<string, string>();
  mutations: string[] = [];
  failAt: number | undefined;
  private listeners = new Set<(e: BlockJobEvent) => void>();

  constructor(chains: Record<string, string[]>, snapshots: string[], files: string[]) {
    this.chains = structuredClone(chains);
    for (const s of snapshots) this.snapshots.add(s);
    for (const f of files) this.files.add(f);
  }

  snapshotState(): FakeHostState {
    return {
      domainState: this.domainState,
      chains: structuredClone(this.chains),
      snapshots: [...this.snapshots].sort(),
      files: [...this.files].sort(),
      journal: this.metadata,
      job: this.job && `${this.job.disk}:${this.job.top}`,
      pools: [...this.pools.keys()],
    };
  }

  private mutate(call: string): void {
    const index = this.mutations.length;
    this.mutations.push(call);
    if (index === this.failAt) throw daemonError(1, `injected failure of ${call}`);
  }
  private running(): void {
    if (this.domainState === DomainState.SHUTOFF) throw daemonError(55, "domain is not running");
  }
  private emit(status: BlockJobStatus): void {
    const job = this.job;
    if (!job) return;
    const type = job.active ? BlockJobType.ACTIVE_COMMIT : BlockJobType.COMMIT;
    for (const l of this.listeners) l({ domain: this.domain, disk: job.disk, type, status });
  }
  private finishJob(status: BlockJobStatus, merged: boolean): void {
    const job = this.job;
    if (!job) return;
    if (merged) this.chains[job.disk] = (this.chains[job.disk] ?? []).filter((p) => p !== job.top);
    this.emit(status);
    this.job = null;
  }

  async subscribeBlockJobEvents(_d: DomainRef | null, listener: (e: BlockJobEvent) => void) {
    this.listeners.add(listener);
    return {
      close: async () => {
        this.listeners.delete(listener);
      },
    };
  }
  async domainBlockCommit(
    _d: DomainRef,
    disk: string,
    base: string | null,
    top: string | null,
    _bw: bigint,
    flags: number,
  ) {
    this.mutate(`commit ${disk}`);
    this.running();
    if (this.job) throw daemonError(83, "block job already active");
    const active = (flags & BlockCommitFlags.ACTIVE) !== 0;
    const job = { disk, top: top ?? "", base: base ?? "", active, ready: false };
    this.job = job;
    setTimeout(() => {
      if (this.job !== job) return;
      if (active) {
        job.ready = true;
        this.emit(BlockJobStatus.READY);
      } else {
        this.finishJob(BlockJobStatus.COMPLETED, true);
      }
    }, 1);
  }
  async domainGetBlockJobInfo(_d: DomainRef, disk: string): Promise<BlockJobInfo | null> {
    const job = this.job;
    if (!job || job.disk !== disk) return null;
    const end = 1000n;
    return {
      type: job.active ? BlockJobType.ACTIVE_COMMIT : BlockJobType.COMMIT,
      bandwidth: 0n,
      cur: job.ready ? end : 0n,
      end,
    };
  }
  async domainBlockJobAbort(_d: DomainRef, disk: string, flags: number) {
    this.mutate(flags & BlockJobAbortFlags.PIVOT ? `pivot ${disk}` : `cancel ${disk}`);
    if (!this.job || this.job.disk !== disk) throw daemonError(55, "no job");
    if (flags & BlockJobAbortFlags.PIVOT) {
      if (!this.job.ready) throw daemonError(83, "not ready for pivot yet");
      this.finishJob(BlockJobStatus.COMPLETED, true);
    } else {
      this.finishJob(BlockJobStatus.CANCELED, false);
    }
  }
  /** The host has this one domain: no other domain uses its files. */
  async connectListAllDomains(): Promise<DomainRef[]> {
    return [this.domain];
  }
  async domainGetXMLDesc(): Promise<string> {
    const disks = Object.entries(this.chains).map(([target, chain]) => {
      const [active, ...below] = chain;
      const backing = below.reduceRight(
        (inner, path) =>
          `<backingStore type='file'><format type='qcow2'/><source file='${path}'/>${inner}</backingStore>`,
        "<backingStore/>",
      );
      const job = this.job?.disk === target ? this.job : null;
      const mirror =
        job?.active === true
          ? `<mirror type='file' job='active-commit'${job.ready ? " ready='yes'" : ""}><source file='${job.base}'/></mirror>`
          : "";
      return `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${active}'/>${backing}${mirror}<target dev='${target}' bus='virtio'/></disk>`;
    });
    return `<domain><name>d</name><uuid>${this.domain.uuid}</uuid><devices>${disks.join("")}</devices></domain>`;
  }
  async domainGetState() {
    return { state: this.domainState as DomainState, reason: 0 };
  }
  async domainCreateWithFlags(d: DomainRef) {
    this.mutate("start");
    this.domainState = DomainState.PAUSED;
    return d;
  }
  async domainDestroyFlags() {
    this.mutate("destroy");
    if (this.domainState === DomainState.SHUTOFF) throw daemonError(55, "domain is not running");
    this.job = null;
    this.domainState = DomainState.SHUTOFF;
  }
  async domainGetMetadata() {
    if (this.metadata === undefined) throw daemonError(80, "no metadata");
    return this.metadata;
  }
  async domainSetMetadata(_d: DomainRef, _t: number, xml: string | null) {
    this.mutate("set-metadata");
    this.metadata = xml ?? undefined;
  }
  // Only the recovery of a revert makes these calls; these fakes never hold a revert record.
  async domainSnapshotCurrent(): Promise<never> {
    throw notModelled("domainSnapshotCurrent");
  }
  async domainLookupByName(): Promise<never> {
    throw notModelled("domainLookupByName");
  }
  async domainDefineXMLFlags(): Promise<never> {
    throw notModelled("domainDefineXMLFlags");
  }
  async domainUndefineFlags(): Promise<never> {
    throw notModelled("domainUndefineFlags");
  }
  async domainSnapshotCreateXML(): Promise<never> {
    throw notModelled("domainSnapshotCreateXML");
  }
  async domainSaveImageGetXMLDesc(): Promise<never> {
    throw notModelled("domainSaveImageGetXMLDesc");
  }
  async domainRestoreFlags(): Promise<never> {
    throw notModelled("domainRestoreFlags");
  }
  async domainSnapshotLookupByName(domain: DomainRef, name: string) {
    if (!this.snapshots.has(name)) throw daemonError(72, "no such snapshot");
    return { name, domain };
  }
  async domainSnapshotDelete(snapshot: { name: string }, flags: number) {
    this.mutate("snapshot-delete");
    if (flags !== SnapshotDeleteFlags.METADATA_ONLY) throw new Error("the executor deletes metadata only");
    this.snapshots.delete(snapshot.name);
  }
  async domainListAllSnapshots(): Promise<never> {
    throw new Error("not used by the executor");
  }
  async domainSnapshotGetXMLDesc(): Promise<never> {
    throw new Error("not used by the executor");
  }
  async connectListAllStoragePools() {
    return [...this.pools.keys()].map((name) => ({ name, uuid: name }));
  }
  async storagePoolGetXMLDesc(pool: StoragePoolRef) {
    return `<pool type='dir'><name>${pool.name}</name><target><path>${this.pools.get(pool.name)}</path></target></pool>`;
  }
  async storagePoolCreateXML(xml: string) {
    this.mutate("pool-create");
    const name = /<name>([^<]+)<\/name>/.exec(xml)?.[1] ?? "";
    const dir = /<path>([^<]+)<\/path>/.exec(xml)?.[1] ?? "";
    if ([...this.pools.values()].includes(dir)) throw daemonError(1, "pool target already in use");
    this.pools.set(name, dir);
    return { name, uuid: name };
  }
  async storagePoolDestroy(pool: StoragePoolRef) {
    this.mutate("pool-destroy");
    this.pools.delete(pool.name);
  }
  async storagePoolRefresh(_pool: StoragePoolRef) {}
  async storageVolLookupByPath(path: string) {
    const dir = path.slice(0, path.lastIndexOf("/"));
    const pool = [...this.pools.entries()].find(([, d]) => d === dir);
    if (!pool || !this.files.has(path)) throw daemonError(50, "no storage vol");
    return { pool: pool[0], name: path.slice(dir.length + 1), key: path };
  }
  async storageVolDelete(vol: StorageVolRef) {
    this.mutate("vol-delete");
    this.files.delete(vol.key);
  }
}

function notModelled(call: string): Error {
  return new Error(`the delete fakes do not model ${call} (only the recovery of a revert calls it)`);
}
