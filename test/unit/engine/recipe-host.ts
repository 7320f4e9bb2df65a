/**
 * A small in-memory hypervisor for the recipe revert and its finishing phase (revert-recipe.ts,
 * revert-finish.ts), shared by their unit tests.
 */

import type { RevertPlan } from "../../../provider/engine/revert-plan";
import type { RecipePort } from "../../../provider/engine/revert-recipe";
import type { DomainRef, SnapshotRef, StoragePoolRef, StorageVolRef } from "../../../provider/libvirt/api";
import { DomainState } from "../../../provider/libvirt/api";
import { ErrorCode } from "../../../provider/libvirt/flags";
import { parseDomainXml } from "../../../provider/model/domain";
import { daemonError } from "./delete-fakes";

const domainXml = (name: string, disks: Record<string, string>) =>
  `<domain type='qemu'><name>${name}</name><uuid>00000000-0000-0000-0000-00000000000d</uuid><os><type arch='x86_64'>hvm</type></os><devices>${Object.entries(
    disks,
  )
    .map(
      ([t, f]) =>
        `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${f}'/><target dev='${t}' bus='virtio'/></disk>`,
    )
    .join("")}</devices></domain>`;

/**
 * A hypervisor for the recipe: the user's domain (state, disk sources, project metadata), helper domains,
 * files, and a save image. Creating a helper's snapshot creates the overlay files (refusing existing ones with
 * CONFIG_UNSUPPORTED, as libvirt does). Every state-changing call can be made to fail by its number.
 */
export class RecipeHost implements Partial<RecipePort> {
  readonly ref: DomainRef = { name: "d", uuid: "00000000-0000-0000-0000-00000000000d", id: 1 };
  state: number = DomainState.RUNNING;
  sources: Record<string, string> = { vda: "/i/vda.s3.qcow2" };
  metadata: string | undefined;
  helpers = new Map<string, Record<string, string>>();
  files = new Set(["/i/vda.qcow2", "/i/vda.s1.qcow2", "/i/vda.s2.qcow2", "/i/vda.s3.qcow2", "/i/s2.mem"]);
  restoredWith: string | undefined;
  mutations: string[] = [];
  failAt: number | undefined;

  private mutate(call: string): void {
    this.mutations.push(call);
    if (this.mutations.length === this.failAt) throw daemonError(ErrorCode.INTERNAL_ERROR, `${call} failed`);
  }
  async domainGetState() {
    return { state: this.state as DomainState, reason: 1 };
  }
  async domainGetMetadata() {
    if (this.metadata === undefined) throw daemonError(ErrorCode.NO_DOMAIN_METADATA, "none");
    return this.metadata;
  }
  async domainSetMetadata(_d: DomainRef, _t: number, xml: string | null) {
    this.mutate("domainSetMetadata");
    this.metadata = xml ?? undefined;
  }
  /** Other domains of the host by name, with their disk sources (the same live and persistent). */
  others = new Map<string, Record<string, string>>();
  async connectListAllDomains(): Promise<DomainRef[]> {
    const others = [...this.others.keys()].map((name) => ({ name, uuid: `uuid-of-${name}`, id: -1 }));
    return [this.ref, ...others];
  }
  /** The domain is shut off whenever the recipe reads it, so live and persistent definitions are the same. */
  async domainGetXMLDesc(domain: DomainRef, _flags: number) {
    return domainXml(
      domain.name,
      this.helpers.get(domain.name) ?? this.others.get(domain.name) ?? this.sources,
    );
  }
  async domainDestroyFlags() {
    this.mutate("domainDestroyFlags");
    this.state = DomainState.SHUTOFF;
  }
  async domainDefineXMLFlags(xml: string) {
    const model = parseDomainXml(xml);
    const sources = Object.fromEntries(model.disks.map((d) => [d.target, d.chain[0]?.path ?? ""]));
    if (model.name === this.ref.name) {
      this.mutate("domainDefineXMLFlags(user)");
      this.sources = sources;
      return this.ref;
    }
    this.mutate("domainDefineXMLFlags(helper)");
    this.helpers.set(model.name, sources);
    return { name: model.name, uuid: "00000000-0000-0000-0000-0000000000ff", id: -1 };
  }
  async domainUndefineFlags(domain: DomainRef) {
    this.mutate("domainUndefineFlags");
    this.helpers.delete(domain.name);
  }
  async domainLookupByName(name: string) {
    if (!this.helpers.has(name)) throw daemonError(ErrorCode.NO_DOMAIN, "no domain");
    return { name, uuid: "00000000-0000-0000-0000-0000000000ff", id: -1 };
  }
  /** Snapshots s2 and s3 of the user's domain, as recovery reads them: overlay and saved point in time. */
  snapshots = new Set(["s2", "s3"]);
  async domainListAllSnapshots(domain: DomainRef): Promise<SnapshotRef[]> {
    if (domain.uuid !== this.ref.uuid) return [];
    return [...this.snapshots].map((name) => ({ name, domain }));
  }
  async domainSnapshotLookupByName(domain: DomainRef, name: string): Promise<SnapshotRef> {
    if (!this.snapshots.has(name)) throw daemonError(ErrorCode.NO_DOMAIN_SNAPSHOT, "no snapshot");
    return { name, domain };
  }
  /** Only METADATA_ONLY deletes are made by the recipe's finishing phase. */
  async domainSnapshotDelete(snapshot: SnapshotRef) {
    this.mutate("domainSnapshotDelete");
    if (!this.snapshots.delete(snapshot.name)) throw daemonError(ErrorCode.NO_DOMAIN_SNAPSHOT, "no snapshot");
  }
  async domainSnapshotGetXMLDesc(snapshot: SnapshotRef): Promise<string> {
    const below = snapshot.name === "s2" ? "/i/vda.s1.qcow2" : "/i/vda.s2.qcow2";
    return `<domainsnapshot><name>${snapshot.name}</name><state>shutoff</state><creationTime>1</creationTime><memory snapshot='no'/><disks><disk name='vda' snapshot='external' type='file'><driver type='qcow2'/><source file='/i/vda.${snapshot.name}.qcow2'/></disk></disks>${domainXml("d", { vda: below })}</domainsnapshot>`;
  }
  /** libvirt's current snapshot: s3 until s2 is redefined as current. */
  current = "s3";
  async domainSnapshotCurrent(domain: DomainRef): Promise<SnapshotRef> {
    return { name: this.current, domain };
  }
  /** Redefinitions of the user's snapshots (REDEFINE|CURRENT), in order. */
  redefined: string[] = [];
  async domainSnapshotCreateXML(domain: DomainRef, xml: string): Promise<SnapshotRef> {
    if (domain.name === this.ref.name) {
      this.redefined.push(xml);
      this.current = "s2";
      return { name: "s2", domain };
    }
    this.mutate("domainSnapshotCreateXML(helper)");
    const paths = [...xml.matchAll(/source file="([^"]+)"/g)].map((m) => m[1] ?? "");
    const existing = paths.find((p) => this.files.has(p));
    if (existing !== undefined) {
      throw daemonError(
        ErrorCode.CONFIG_UNSUPPORTED,
        `external snapshot file for disk vda already exists and is not a block device: ${existing}`,
      );
    }
    for (const p of paths) this.files.add(p);
    return { name: "overlays", domain };
  }
  async domainSaveImageGetXMLDesc() {
    return domainXml("d", { vda: "/i/vda.s1.qcow2" }).replace("</source>", "");
  }
  async domainRestoreFlags(_file: string, xml: string) {
    this.mutate("domainRestoreFlags");
    this.restoredWith = xml;
    this.state = DomainState.RUNNING;
  }
  async domainCreateWithFlags() {
    this.mutate("domainCreateWithFlags");
    this.state = DomainState.RUNNING;
    return this.ref;
  }
  async connectListAllStoragePools(): Promise<StoragePoolRef[]> {
    return [];
  }
  async storagePoolCreateXML(): Promise<StoragePoolRef> {
    return { name: "lvsnap-files-x", uuid: "p" };
  }
  async storagePoolDestroy() {}
  async storagePoolRefresh() {}
  async storageVolLookupByPath(path: string): Promise<StorageVolRef> {
    if (!this.files.has(path)) throw daemonError(ErrorCode.NO_STORAGE_VOL, "no volume");
    return { pool: "p", name: path, key: path };
  }
  async storageVolDelete(volume: StorageVolRef) {
    this.mutate("storageVolDelete");
    this.files.delete(volume.key);
  }
  port(): RecipePort {
    return this as unknown as RecipePort;
  }
}

export const plan = (overlayPath = "/i/vda.s2.revert-1.qcow2", memory = true): RevertPlan => ({
  domain: "d",
  snapshot: "s2",
  state: "running",
  ...(memory ? { memoryFile: "/i/s2.mem" } : {}),
  disks: [
    {
      target: "vda",
      bus: "virtio",
      pointInTime: { kind: "file", path: "/i/vda.s1.qcow2", format: "qcow2" },
      previousActive: { kind: "file", path: "/i/vda.s3.qcow2", format: "qcow2" },
      overlayPath,
    },
  ],
});
