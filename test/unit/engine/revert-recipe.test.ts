import { describe, expect, test } from "vitest";
import { isEngineError } from "../../../provider/engine/errors";
import { finishBranch } from "../../../provider/engine/revert-finish";
import type { RevertPlan } from "../../../provider/engine/revert-plan";
import { finishUnfinishedRevert, type RecipePort, runRecipe } from "../../../provider/engine/revert-recipe";
import { parseRevertRecord } from "../../../provider/engine/revert-state";
import type { DomainRef, SnapshotRef, StoragePoolRef, StorageVolRef } from "../../../provider/libvirt/api";
import { DomainState } from "../../../provider/libvirt/api";
import { ErrorCode } from "../../../provider/libvirt/flags";
import { parseDomainXml } from "../../../provider/model/domain";
import { parseProjectMetadata, withSnapshotRecord } from "../../../provider/model/metadata";
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
class RecipeHost implements Partial<RecipePort> {
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

const plan = (overlayPath = "/i/vda.s2.revert-1.qcow2", memory = true): RevertPlan => ({
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

const run = (host: RecipeHost, p = plan()) =>
  runRecipe(host.port(), host.ref, p, () => plan("/i/vda.s2.revert-2.qcow2"), []).then((done) => done.disks);

describe("the recipe", () => {
  test("stops, creates the overlay through a helper, switches the definition, restores the memory state", async () => {
    const host = new RecipeHost();
    const disks = await run(host);
    expect(disks.map((d) => d.overlayPath)).toEqual(["/i/vda.s2.revert-1.qcow2"]);
    expect(host.mutations.filter((m) => m !== "domainSetMetadata")).toEqual([
      "domainDestroyFlags",
      "domainDefineXMLFlags(helper)",
      "domainSnapshotCreateXML(helper)",
      "domainUndefineFlags",
      "domainDefineXMLFlags(user)",
      "domainRestoreFlags",
    ]);
    // The record stays, in phase finishing, until the caller has finished (revert-finish.ts).
    expect([host.sources, host.helpers.size, host.state, parseRevertRecord(host.metadata)?.phase]).toEqual([
      { vda: "/i/vda.s2.revert-1.qcow2" },
      0,
      DomainState.RUNNING,
      "finishing",
    ]);
    expect(parseDomainXml(host.restoredWith ?? "").disks[0]?.chain[0]?.path).toBe("/i/vda.s2.revert-1.qcow2");
  });

  test("an overlay name taken on the host is skipped for the next one", async () => {
    const host = new RecipeHost();
    host.files.add("/i/vda.s2.revert-1.qcow2");
    expect((await run(host)).map((d) => d.overlayPath)).toEqual(["/i/vda.s2.revert-2.qcow2"]);
    expect(host.sources).toEqual({ vda: "/i/vda.s2.revert-2.qcow2" });
  });

  test.each(Array.from({ length: 11 }, (_, i) => i + 1))(
    "failing state-changing call %i (of 11): a clear error, and after recovery either the old disks or the new ones, no helper, no stray file",
    async (failAt) => {
      const host = new RecipeHost();
      host.failAt = failAt;
      const outcome = await run(host).then(
        () => "completed",
        (e: unknown) => {
          if (!isEngineError(e)) throw e;
          expect([e.kind, e.domain, e.snapshot]).toEqual(["libvirt", "d", "s2"]);
          expect(e.message).toMatch(
            /^reverting domain d to snapshot s2 failed while (stopping the domain|creating the new overlays|switching the definition to the new overlays|starting the domain|recording that the revert is finishing): /,
          );
          return "failed";
        },
      );
      host.failAt = undefined;
      await finishUnfinishedRevert(host.port(), host.ref);
      expect([host.helpers.size, parseRevertRecord(host.metadata)]).toEqual([0, null]);
      const switched = host.sources.vda === "/i/vda.s2.revert-1.qcow2";
      // Switched: recovery completes the revert (s2 current, owning the new overlay; the layer written before,
      // s3's overlay, removed). Not switched: the new overlay is removed and the old disks stay.
      const expectedFiles = switched
        ? ["/i/s2.mem", "/i/vda.qcow2", "/i/vda.s1.qcow2", "/i/vda.s2.qcow2", "/i/vda.s2.revert-1.qcow2"]
        : ["/i/s2.mem", "/i/vda.qcow2", "/i/vda.s1.qcow2", "/i/vda.s2.qcow2", "/i/vda.s3.qcow2"];
      expect([...host.files].sort()).toEqual(expectedFiles);
      if (!switched) expect([host.sources, host.redefined]).toEqual([{ vda: "/i/vda.s3.qcow2" }, []]);
      if (switched) {
        const owned = host.redefined.map((x) => /<source file="([^"]+)"\/><\/disk><\/disks>/.exec(x)?.[1]);
        expect(owned).toEqual(["/i/vda.s2.revert-1.qcow2"]);
      }
      if (outcome === "completed") expect(switched).toBe(true);
    },
  );
});

describe("the finishing phase", () => {
  /** A recipe revert to s2 that discards s3, stopped right after the recipe: the finishing phase is left. */
  async function reverted() {
    const host = new RecipeHost();
    const done = await runRecipe(host.port(), host.ref, plan(), () => plan("/i/vda.s2.revert-2.qcow2"), [
      "s3",
    ]);
    host.mutations.length = 0;
    return { host, record: done.record };
  }
  const endState = (host: RecipeHost) => ({
    files: [...host.files].sort(),
    snapshots: [...host.snapshots],
    current: host.current,
    record: parseRevertRecord(host.metadata),
  });

  test("done in one go: s3 dropped, the abandoned layer removed, s2 current, the record cleared", async () => {
    const { host, record } = await reverted();
    const dropped = await finishBranch(host.port(), host.ref, record);
    expect([dropped, endState(host)]).toEqual([
      // s2's old overlay only led to s3: it goes with it.
      { dropped: ["s3"], removedFiles: ["/i/vda.s3.qcow2", "/i/vda.s2.qcow2"], warnings: [] },
      {
        files: ["/i/s2.mem", "/i/vda.qcow2", "/i/vda.s1.qcow2", "/i/vda.s2.revert-1.qcow2"],
        snapshots: ["s2"],
        current: "s2",
        record: null,
      },
    ]);
    expect(host.mutations).toEqual([
      "domainSetMetadata",
      "domainSetMetadata",
      "domainSnapshotDelete",
      "storageVolDelete",
      "storageVolDelete",
      "domainSetMetadata",
    ]);
  });

  test("the records of the dropped snapshots are forgotten in the write that clears the revert record", async () => {
    const { host, record } = await reverted();
    const recordOf = (name: string) => ({
      name,
      files: { overlays: [{ disk: "vda", path: `/i/vda.${name}.qcow2` }] },
      quiesced: true,
    });
    host.metadata = withSnapshotRecord(withSnapshotRecord(host.metadata, recordOf("s2")), recordOf("s3"));
    await finishBranch(host.port(), host.ref, record);
    expect([parseProjectMetadata(host.metadata), parseRevertRecord(host.metadata)]).toEqual([
      { snapshots: [recordOf("s2")] },
      null,
    ]);
    expect(host.mutations.filter((m) => m === "domainSetMetadata")).toHaveLength(3);
  });

  test("a file another domain of the host uses is kept, with a warning, and the rest goes", async () => {
    const { host, record } = await reverted();
    // A domain whose disk is s2's old overlay: this domain's chains alone would call that file unneeded.
    host.others.set("clone-1", { vda: "/i/vda.s2.qcow2" });
    const dropped = await finishBranch(host.port(), host.ref, record);
    expect([dropped, endState(host)]).toEqual([
      {
        dropped: ["s3"],
        removedFiles: ["/i/vda.s3.qcow2"],
        warnings: [
          "kept /i/vda.s2.qcow2: domain clone-1 still uses it; remove it once nothing uses it any more",
        ],
      },
      {
        files: [
          "/i/s2.mem",
          "/i/vda.qcow2",
          "/i/vda.s1.qcow2",
          "/i/vda.s2.qcow2",
          "/i/vda.s2.revert-1.qcow2",
        ],
        snapshots: ["s2"],
        current: "s2",
        record: null,
      },
    ]);
  });

  test.each([1, 2, 3, 4, 5, 6])(
    "failing state-changing call %i (of 6): the record stays, and recovery reaches the same end state",
    async (failAt) => {
      const clean = await reverted();
      await finishBranch(clean.host.port(), clean.host.ref, clean.record);
      const { host, record } = await reverted();
      host.failAt = failAt;
      await expect(finishBranch(host.port(), host.ref, record)).rejects.toThrow(/failed/);
      expect(parseRevertRecord(host.metadata)?.phase).toBe("finishing");
      host.failAt = undefined;
      host.mutations.length = 0;
      const report = await finishUnfinishedRevert(host.port(), host.ref);
      expect([report?.action, endState(host)]).toEqual(["finished", endState(clean.host)]);
    },
  );
});
