import { describe, expect, test } from "vitest";
import type { DeleteStep } from "../../../provider/engine/delete-plan";
import {
  filesOfDomainXml,
  filesOfSnapshotXml,
  keepReferencedFiles,
  mergesChangingOthers,
  type ReferencePort,
  referencesOutside,
} from "../../../provider/engine/delete-references";
import type { DomainRef, SnapshotRef } from "../../../provider/libvirt/api";
import { DomainXMLFlags, ErrorCode } from "../../../provider/libvirt/flags";
import { libvirtError } from "./fake-libvirt";

/** A running domain's live XML: vda on top of a backing chain, a cdrom, a network disk without a file. */
const LIVE = `<domain type="qemu"><name>other</name><devices>
  <disk type="file" device="disk"><source file="/i/other.qcow2"/><target dev="vda"/>
    <backingStore type="file"><format type="qcow2"/><source file="/i/./web.s1.qcow2"/>
      <backingStore type="file"><format type="qcow2"/><source file="/i/web.qcow2"/><backingStore/></backingStore>
    </backingStore></disk>
  <disk type="network" device="disk"><source protocol="nbd" name="x"/><target dev="vdb"/></disk>
  <disk type="file" device="cdrom"><source file="/iso/a&amp;b.iso"/><target dev="sda"/></disk>
  <serial type="file"><source path="/log/serial"/></serial>
</devices></domain>`;

const SNAPSHOT = `<domainsnapshot><name>t1</name><state>running</state><creationTime>1</creationTime>
  <memory snapshot="external" file="/i/other.t1.mem"/><disks>
  <disk name="vda" snapshot="external"><source file="/i/other.t1.qcow2"/></disk></disks>
  <domain><name>other</name><devices><disk type="file"><source file="/i/other.qcow2"/><target dev="vda"/></disk>
  </devices></domain></domainsnapshot>`;

describe("files named by XML", () => {
  test("a domain: every disk source and backing store file, normalized; no other sources", () => {
    expect(filesOfDomainXml(LIVE)).toEqual([
      "/i/other.qcow2",
      "/i/web.s1.qcow2",
      "/i/web.qcow2",
      "/iso/a&b.iso",
    ]);
  });
  test("a snapshot: its overlays, its saved domain's disks and its memory file", () => {
    expect(filesOfSnapshotXml(SNAPSHOT)).toEqual(["/i/other.t1.qcow2", "/i/other.qcow2", "/i/other.t1.mem"]);
  });
});

describe("keepReferencedFiles", () => {
  const steps: DeleteStep[] = [
    { kind: "commit", disk: "vda", top: "/i/web.s1.qcow2", base: "/i/web.qcow2", active: false },
    { kind: "delete-metadata", snapshot: "s1" },
    { kind: "remove-file", path: "/i/web.s1.qcow2", role: "overlay" },
    { kind: "remove-file", path: "/i/web.s1.mem", role: "memory" },
    { kind: "remove-file", path: "/i/web.s9.qcow2", role: "overlay" },
  ];

  test("nothing referenced: the steps unchanged, no warning", () => {
    expect(keepReferencedFiles(steps, new Map())).toEqual({ steps, warnings: [] });
  });

  test("referenced files are kept with a warning naming who uses them; the rest is unchanged", () => {
    const references = new Map([
      ["/i/web.s1.qcow2", ["domain other", "snapshot t1 of domain other"]],
      ["/i/web.s1.mem", ["domain clone"]],
      ["/i/web.s9.qcow2", []],
    ]);
    expect(keepReferencedFiles(steps, references)).toEqual({
      steps: [steps[0], steps[1], steps[4]],
      warnings: [
        "kept merged overlay /i/web.s1.qcow2: domain other, snapshot t1 of domain other still uses it; " +
          "remove it once nothing uses it any more",
        "kept memory file /i/web.s1.mem: domain clone still uses it; remove it once nothing uses it any more",
      ],
    });
  });

  test("paths are compared normalized", () => {
    const odd: DeleteStep[] = [{ kind: "remove-file", path: "/i//x/../web.s1.qcow2", role: "overlay" }];
    expect(keepReferencedFiles(odd, new Map([["/i/web.s1.qcow2", ["domain other"]]])).steps).toEqual([]);
  });
});

describe("referencesOutside", () => {
  const ref = (name: string, n: number): DomainRef => ({
    name,
    uuid: `00000000-0000-0000-0000-00000000000${n}`,
    id: -1,
  });
  const self = ref("web", 1);
  const other = ref("other", 2);
  const vanished = ref("vanished", 3);

  /** Answers for three domains: this one, `other` (live, persistent, one snapshot) and one that vanished. */
  const port: ReferencePort & { calls: string[] } = {
    calls: [],
    async connectListAllDomains(flags) {
      this.calls.push(`list ${flags}`);
      return [self, other, vanished];
    },
    async domainGetXMLDesc(domain, flags) {
      this.calls.push(`xml ${domain.name} ${flags}`);
      if (domain.name === "vanished") throw libvirtError(ErrorCode.NO_DOMAIN, "Domain not found");
      return flags === DomainXMLFlags.INACTIVE
        ? `<domain><name>other</name><devices><disk type="file"><source file="/i/other.qcow2"/><target dev="vda"/></disk></devices></domain>`
        : LIVE;
    },
    async domainListAllSnapshots(domain) {
      this.calls.push(`snapshots ${domain.name}`);
      if (domain.name === "vanished") throw libvirtError(ErrorCode.NO_DOMAIN, "Domain not found");
      return [{ name: "t1", domain } as SnapshotRef];
    },
    async domainSnapshotGetXMLDesc(snapshot) {
      this.calls.push(`snapshot ${snapshot.name}`);
      return SNAPSHOT;
    },
  };

  test("every file of every other domain, each user once; this domain and vanished ones are skipped", async () => {
    const references = await referencesOutside(port, self);
    expect(Object.fromEntries(references)).toEqual({
      "/i/other.qcow2": ["domain other", "snapshot t1 of domain other"],
      "/i/web.s1.qcow2": ["domain other"],
      "/i/web.qcow2": ["domain other"],
      "/iso/a&b.iso": ["domain other"],
      "/i/other.t1.qcow2": ["snapshot t1 of domain other"],
      "/i/other.t1.mem": ["snapshot t1 of domain other"],
    });
    expect(port.calls.filter((c) => c.includes("web"))).toEqual([]);
  });

  test("any other failure rejects, so that nothing is removed on doubt", async () => {
    const failing: ReferencePort = {
      ...port,
      async domainListAllSnapshots() {
        throw libvirtError(ErrorCode.OPERATION_FAILED, "broken");
      },
    };
    await expect(referencesOutside(failing, self)).rejects.toThrow("broken");
  });
});

describe("mergesChangingOthers", () => {
  const steps: DeleteStep[] = [
    { kind: "commit", disk: "vda", top: "/i/web.s1.qcow2", base: "/i/web.qcow2", active: false },
    { kind: "commit", disk: "vdb", top: "/i/b.s1.qcow2", base: "/i/b.qcow2", active: true },
    { kind: "delete-metadata", snapshot: "s1" },
    { kind: "remove-file", path: "/i/web.s1.qcow2", role: "overlay" },
  ];

  test("users that read the base only through the merged overlay are safe", () => {
    const references = new Map([
      ["/i/web.s1.qcow2", ["domain clone"]],
      ["/i/web.qcow2", ["domain clone"]],
    ]);
    expect(mergesChangingOthers(steps, references)).toEqual([]);
  });

  test("users of the base without the overlay above it are named, per disk", () => {
    const references = new Map([
      ["/i/web.s1.qcow2", ["domain clone"]],
      ["/i/web.qcow2", ["domain clone", "domain golden-user", "snapshot t1 of domain other"]],
      ["/i/b.qcow2", ["domain x"]],
      ["/i/unrelated.qcow2", ["domain y"]],
    ]);
    expect(mergesChangingOthers(steps, references)).toEqual([
      "disk vda: domain golden-user, snapshot t1 of domain other use /i/web.qcow2, the image the merge writes " +
        "into, without /i/web.s1.qcow2 above it, so the merge would change what they read",
      "disk vdb: domain x uses /i/b.qcow2, the image the merge writes into, without /i/b.s1.qcow2 above it, so " +
        "the merge would change what it reads",
    ]);
  });
});
