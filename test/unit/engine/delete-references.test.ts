import { describe, expect, test } from "vitest";
import type { DeleteStep } from "../../../provider/engine/delete-plan";
import {
  filesOfDomainXml,
  filesOfSnapshotXml,
  keepReferencedFiles,
  mergesChangingOthers,
  nativeDeleteConflicts,
  REFERENCE_READS_IN_FLIGHT,
  type ReferencePort,
  referencesOutside,
} from "../../../provider/engine/delete-references";
import { scanMark } from "../../../provider/engine/scan-sharing";
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
  const ref = (name: string, n: number, id = -1): DomainRef => ({
    name,
    uuid: `00000000-0000-0000-0000-00000000000${n}`,
    id,
  });
  const self = ref("web", 1);
  const other = ref("other", 2);
  const vanished = ref("vanished", 3);
  const INACTIVE_XML = `<domain><name>other</name><devices><disk type="file"><source file="/i/other.qcow2"/><target dev="vda"/></disk></devices></domain>`;

  /**
   * A host of `domains`; a domain named `run-*` is running (its live XML has an id). Every domain answers the
   * same documents. The host's list waits for `listed` when given. Calls are recorded in order, and the most
   * calls pending at once.
   */
  function host(domains: DomainRef[], listed?: Promise<void>) {
    let pending = 0;
    const record = async <T>(call: string, answer: () => T): Promise<T> => {
      port.calls.push(call);
      pending += 1;
      port.mostPending = Math.max(port.mostPending, pending);
      try {
        await new Promise((resolve) => setImmediate(resolve));
        return answer();
      } finally {
        pending -= 1;
      }
    };
    const port: ReferencePort & { calls: string[]; mostPending: number } = {
      calls: [],
      mostPending: 0,
      async connectListAllDomains(flags) {
        port.calls.push(`list ${flags}`);
        await listed;
        return domains;
      },
      domainGetXMLDesc: (domain, flags) =>
        record(`xml ${domain.name} ${flags}`, () => {
          if (domain.name === "vanished") throw libvirtError(ErrorCode.NO_DOMAIN, "Domain not found");
          if (flags === DomainXMLFlags.INACTIVE) return INACTIVE_XML;
          return domain.name.startsWith("run-") ? LIVE.replace("<domain ", "<domain id='7' ") : LIVE;
        }),
      domainListAllSnapshots: (domain) =>
        record(`snapshots ${domain.name}`, () => {
          if (domain.name === "vanished") throw libvirtError(ErrorCode.NO_DOMAIN, "Domain not found");
          return [{ name: "t1", domain } as SnapshotRef];
        }),
      domainSnapshotGetXMLDesc: (snapshot) =>
        record(`snapshot ${snapshot.name} of ${snapshot.domain.name}`, () => SNAPSHOT),
    };
    return port;
  }

  const otherFiles = {
    "/i/other.qcow2": ["domain other", "snapshot t1 of domain other"],
    "/i/web.s1.qcow2": ["domain other"],
    "/i/web.qcow2": ["domain other"],
    "/iso/a&b.iso": ["domain other"],
    "/i/other.t1.qcow2": ["snapshot t1 of domain other"],
    "/i/other.t1.mem": ["snapshot t1 of domain other"],
  };

  test("every file of every other domain, each user once; this domain and vanished ones are dropped", async () => {
    // This domain answers the same documents: any "web" user in the result would come from it.
    const port = host([self, other, vanished]);
    expect(Object.fromEntries(await referencesOutside(port, self))).toEqual(otherFiles);
    expect(port.calls.filter((c) => c.includes("web"))).toEqual([]);
  });

  test("a running domain's snapshots are not read: its live XML lists its whole chains", async () => {
    const running = ref("run-1", 4, 7);
    const port = host([running, other]);
    const references = await referencesOutside(port, self);
    expect(references.get("/i/web.s1.qcow2")).toEqual(["domain other", "domain run-1"]);
    expect(port.calls.filter((c) => c.startsWith("snapshot"))).toEqual([
      "snapshots other",
      "snapshot t1 of other",
    ]);
  });

  test("concurrent deletes share a scan that started after their lock; a later lock starts a new one", async () => {
    let list: () => void = () => undefined;
    const port = host(
      [self, other],
      new Promise<void>((resolve) => {
        list = resolve;
      }),
    );
    const webLocked = scanMark();
    const otherLocked = scanMark();
    const webScan = referencesOutside(port, self, webLocked);
    const otherScan = referencesOutside(port, other, otherLocked);
    // Locked once the scan above had started: it may have missed a change made before this lock.
    const lateScan = referencesOutside(port, other, scanMark());
    list();
    const [forWeb, forOther, forLate] = await Promise.all([webScan, otherScan, lateScan]);
    expect(port.calls.filter((c) => c.startsWith("list"))).toEqual(["list 0", "list 0"]);
    // Scan 1, started by web, reads other; other, which joined it, reads web (the starter's domain) itself;
    // scan 2, started by other, reads web. No caller's scan reads its own domain.
    const reads = (domain: string) => port.calls.filter((c) => c.startsWith(`xml ${domain} `)).length;
    expect([reads("other"), reads("web")]).toEqual([2, 4]);
    expect(Object.fromEntries(forWeb)).toEqual(otherFiles);
    // The same documents answered for web: the shared result without `other` names web as their user.
    const webUses = Object.fromEntries(
      Object.entries(otherFiles).map(([file, users]) => [file, users.map((u) => u.replace("other", "web"))]),
    );
    expect(Object.fromEntries(forOther)).toEqual(webUses);
    expect(Object.fromEntries(forLate)).toEqual(webUses);
  });

  test("users are sorted by domain name, each domain before its snapshots, whatever the listing order and the scan's starter", async () => {
    const [zeta, alpha, mid] = [ref("zeta", 4), ref("alpha", 5), ref("mid", 6)];
    const listedOnce = async (domains: DomainRef[]) =>
      Object.fromEntries(await referencesOutside(host(domains), self));
    const forward = await listedOnce([zeta, self, alpha, mid]);
    const backward = await listedOnce([mid, alpha, self, zeta]);
    // A shared scan started by alpha's delete: web's delete joins it and reads alpha itself, after the others.
    let list: () => void = () => undefined;
    const port = host(
      [alpha, zeta, self, mid],
      new Promise<void>((resolve) => {
        list = resolve;
      }),
    );
    const mark = scanMark();
    const alphaScan = referencesOutside(port, alpha, mark);
    const webScan = referencesOutside(port, self, mark);
    list();
    await alphaScan;
    const joined = Object.fromEntries(await webScan);
    expect(port.calls.filter((c) => c.startsWith("list"))).toEqual(["list 0"]);
    const users = (...kinds: ("domain" | "snapshot")[]) =>
      ["alpha", "mid", "zeta"].flatMap((d) =>
        kinds.map((k) => (k === "domain" ? `domain ${d}` : `snapshot t1 of domain ${d}`)),
      );
    const expected = {
      "/i/other.qcow2": users("domain", "snapshot"),
      "/i/web.s1.qcow2": users("domain"),
      "/i/web.qcow2": users("domain"),
      "/iso/a&b.iso": users("domain"),
      "/i/other.t1.qcow2": users("snapshot"),
      "/i/other.t1.mem": users("snapshot"),
    };
    expect([forward, backward, joined]).toEqual([expected, expected, expected]);
  });

  test(`reads at most ${REFERENCE_READS_IN_FLIGHT} calls at once, however many domains the host has`, async () => {
    const domains = [other, ...[4, 5, 6, 7, 8].map((n) => ref(`d${n}`, n))];
    const port = host(domains);
    const references = await referencesOutside(port, self);
    expect(port.mostPending).toBe(REFERENCE_READS_IN_FLIGHT);
    expect(references.get("/i/other.t1.mem")).toEqual(
      ["d4", "d5", "d6", "d7", "d8", "other"].map((d) => `snapshot t1 of domain ${d}`),
    );
    expect(port.calls.length).toBe(1 + domains.length * 4);
  });

  test("any other failure rejects, so that nothing is removed on doubt", async () => {
    const failing: ReferencePort = {
      ...host([self, other]),
      async domainListAllSnapshots() {
        throw libvirtError(ErrorCode.OPERATION_FAILED, "broken");
      },
    };
    await expect(referencesOutside(failing, self)).rejects.toThrow("broken");
  });

  test("a failed read of a persistent definition rejects: the files only it names are not dropped", async () => {
    const base = host([self, other]);
    const failing: ReferencePort = {
      ...base,
      domainGetXMLDesc: (domain, flags) =>
        flags === DomainXMLFlags.INACTIVE
          ? Promise.reject(libvirtError(ErrorCode.OPERATION_TIMEOUT, "cannot acquire state change lock"))
          : base.domainGetXMLDesc(domain, flags),
    };
    await expect(referencesOutside(failing, self)).rejects.toThrow("cannot acquire state change lock");
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

describe("nativeDeleteConflicts (libvirt merges and removes the overlays itself)", () => {
  const file = (path: string) => ({ kind: "file" as const, path });
  const disks = [
    { target: "vda", overlay: file("/i/web.s1.qcow2"), pointInTime: file("/i/web.qcow2") },
    { target: "vdb", overlay: file("/i/data.s1.qcow2"), pointInTime: file("/i/data.qcow2") },
  ];

  test.each([
    ["nobody else names the snapshot's files", {}, []],
    [
      "another domain reads the overlay",
      { "/i/web.s1.qcow2": ["domain other"] },
      ["disk vda: domain other uses /i/web.s1.qcow2, which libvirt's delete removes"],
    ],
    [
      "another domain names the image merged into, without the overlay",
      { "/i/data.qcow2": ["snapshot t1 of domain other"] },
      [
        "disk vdb: snapshot t1 of domain other uses /i/data.qcow2, the image the merge writes into, without " +
          "/i/data.s1.qcow2 above it, so the merge would change what it reads",
      ],
    ],
    [
      "another domain reads the base through the overlay: the removal is refused, not the merge",
      { "/i/web.s1.qcow2": ["domain a", "domain b"], "/i/web.qcow2": ["domain a", "domain b"] },
      ["disk vda: domain a, domain b use /i/web.s1.qcow2, which libvirt's delete removes"],
    ],
  ] as const)("%s", (_what, references, expected) => {
    const map = new Map(Object.entries(references).map(([k, v]) => [k, [...v]]));
    expect(nativeDeleteConflicts(disks, map)).toEqual(expected);
  });
});
