import { chmod, chown, mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { DOMParser } from "@xmldom/xmldom";
import { describe, expect, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import type { CreateSnapshotRequest } from "../../../provider/engine/create-plan";
import { type LabDomain, lab } from "../../support/lab";
import { engineRejection } from "../../support/rejections";
import { virsh } from "../../support/virsh";
import { labConnectionPerFile } from "./lab-connection";

const conn = labConnectionPerFile();

/** Everything a failed create must leave as it was: chains (libvirt's and the files'), snapshots, files. */
async function hostState(dom: LabDomain, dirs: string[] = [dom.dir]) {
  const chains = await dom.liveChains();
  const files: Record<string, string[]> = {};
  for (const target of Object.keys(chains)) files[target] = await dom.fileChain(target);
  const listings: Record<string, string[]> = {};
  for (const dir of dirs) listings[dir] = (await readdir(dir).catch(() => ["(missing)"])).sort();
  return { chains, files, snapshots: await dom.snapshotParents(), listings };
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

describe.each(["running", "paused", "shutoff"] as const)("create on a %s domain", (state) => {
  test("disk-only of two disks, then memory of one, then memory-live of two; shareable skipped, and refused when named", async () => {
    const dom = await lab.domain({
      disks: [{ sizeMiB: 16 }, { sizeMiB: 16 }],
      extraDisks: ["shareable"],
      state,
    });
    const shared = dom.extraDisks[0]?.target ?? "";
    const req = (name: string, extra: Partial<CreateSnapshotRequest> = {}) => ({
      domain: dom.name,
      name,
      ...extra,
    });

    const s1 = await createSnapshot(conn(), req("s1"));
    expect([s1.adopted, s1.snapshot.disks.map((d) => d.target), s1.warnings]).toEqual([
      false,
      ["vda", "vdb"],
      [`disk ${shared} is shareable, which libvirt cannot snapshot externally; it is not in snapshot s1`],
    ]);
    expect(await dom.fileChain("vda")).toEqual([dom.path("vda.s1.qcow2"), dom.base("vda")]);
    expect(await dom.fileChain("vdb")).toEqual([dom.path("vdb.s1.qcow2"), dom.base("vdb")]);

    const named = await engineRejection(
      createSnapshot(conn(), req("bad", { disks: { include: ["vda", shared] } })),
    );
    expect([named.kind, named.disk]).toEqual(["invalid-request", shared]);

    if (state === "shutoff") {
      const before = await hostState(dom);
      for (const memory of ["memory", "memory-live"] as const) {
        const error = await engineRejection(createSnapshot(conn(), req("m", { memory })));
        expect([error.kind, error.message]).toEqual([
          "domain-state",
          expect.stringContaining("needs a running or paused domain"),
        ]);
      }
      expect(await hostState(dom)).toEqual(before);
      const s2 = await createSnapshot(conn(), req("s2", { disks: { include: ["vda"] } }));
      expect(s2.quiesceNote).toBe("not quiesced: the domain is shut off: there is no guest to freeze");
      expect(await dom.fileChain("vda")).toEqual([
        dom.path("vda.s2.qcow2"),
        dom.path("vda.s1.qcow2"),
        dom.base("vda"),
      ]);
      expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1" });
      return;
    }

    const s2 = await createSnapshot(conn(), req("s2", { memory: "memory", disks: { include: ["vda"] } }));
    expect([s2.snapshot.memory, s2.quiesced, s2.quiesceNote]).toEqual([
      { mode: "external", file: dom.path(`${dom.name}.s2.mem`) },
      false,
      "not quiesced: quiescing is not possible with a memory snapshot",
    ]);
    expect(await exists(dom.path(`${dom.name}.s2.mem`))).toBe(true);
    if (state === "paused") {
      // Quirk: QEMU takes one memory snapshot per pause; the second fails cleanly and is explained.
      const before = await hostState(dom);
      const again = await engineRejection(createSnapshot(conn(), req("s3", { memory: "memory-live" })));
      expect([again.kind, again.libvirtCode, again.message]).toEqual([
        "libvirt",
        1,
        expect.stringContaining("QEMU takes only one memory snapshot per pause: resume the domain once"),
      ]);
      expect(await hostState(dom)).toEqual(before);
      await dom.resume();
      await dom.suspend();
    }
    const s3 = await createSnapshot(conn(), req("s3", { memory: "memory-live" }));
    expect(s3.snapshot.disks.map((d) => [d.target, d.overlay.path, d.pointInTime?.path])).toEqual([
      ["vda", dom.path("vda.s3.qcow2"), dom.path("vda.s2.qcow2")],
      ["vdb", dom.path("vdb.s3.qcow2"), dom.path("vdb.s1.qcow2")],
    ]);
    expect(await dom.fileChain("vda")).toEqual([
      dom.path("vda.s3.qcow2"),
      dom.path("vda.s2.qcow2"),
      dom.path("vda.s1.qcow2"),
      dom.base("vda"),
    ]);
    expect(await dom.fileChain("vdb")).toEqual([
      dom.path("vdb.s3.qcow2"),
      dom.path("vdb.s1.qcow2"),
      dom.base("vdb"),
    ]);
    expect(await dom.liveChain("vda")).toEqual(await dom.fileChain("vda"));
    expect(await dom.snapshotParents()).toEqual({ s1: null, s2: "s1", s3: "s2" });
    expect(await dom.state()).toBe(state);
  });
});

describe("quiesce", () => {
  test.each([
    [false, 74, "the domain has no guest agent channel"],
    [true, 86, "no guest agent answers on the domain's channel"],
  ])(
    "agent channel %s: auto falls back and says why; required fails and leaves nothing",
    async (channel, code, why) => {
      const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], guestAgentChannel: channel });
      const before = await hostState(dom);
      const error = await engineRejection(
        createSnapshot(conn(), { domain: dom.name, name: "q", quiesce: "required" }),
      );
      expect([error.kind, error.libvirtCode, error.message]).toEqual([
        "quiesce-failed",
        code,
        expect.stringContaining(`quiesce is required but ${why}; nothing was created`),
      ]);
      expect(await hostState(dom)).toEqual(before);

      const result = await createSnapshot(conn(), { domain: dom.name, name: "q" });
      expect([result.quiesced, result.quiesceNote, result.snapshot.quiesced]).toEqual([
        false,
        expect.stringMatching(new RegExp(`^not quiesced: ${why} \\(.+\\)$`)),
        false,
      ]);
      expect(await dom.fileChain("vda")).toEqual([dom.path("vda.q.qcow2"), dom.base("vda")]);
    },
  );
});

describe("names, descriptions and files", () => {
  test("hostile descriptions round-trip through the host; invalid names never reach it", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
    const descriptions = [
      `<tag attr="x">&amp; 'single' "double"</tag>`,
      "$(reboot); `id` | cat /etc/passwd && rm -rf / \\ \t end",
      "unicode: ü 日本語 🙂 \u200b",
      "lines\nand\ttabs\n",
      `${"0123456789".repeat(99)}ü\u00e9!?#`,
    ];
    for (const [i, description] of descriptions.entries()) {
      const result = await createSnapshot(conn(), { domain: dom.name, name: `d${i}`, description });
      expect(result.snapshot.description).toBe(description);
    }
    // The oracle: virsh's own XML, parsed by a plain DOM parser, not the engine's model.
    for (const [i, description] of descriptions.entries()) {
      const xml = await virsh("snapshot-dumpxml", dom.name, `d${i}`);
      const doc = new DOMParser().parseFromString(xml, "text/xml");
      expect(doc.getElementsByTagName("description")[0]?.textContent).toBe(description);
    }

    const calls: string[] = [];
    const recording = new Proxy(conn(), {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          calls.push(String(key));
          return value.apply(target, args);
        };
      },
    });
    const cr = await engineRejection(
      createSnapshot(recording, { domain: dom.name, name: "cr", description: "a\r\nb" }),
    );
    expect([cr.kind, cr.message]).toEqual(["invalid-request", expect.stringContaining("carriage return")]);
    for (const name of [
      "",
      ".hidden",
      "a/b",
      "../../etc/x",
      "<x>",
      "a'b",
      '"q"',
      "$(id)",
      "ü",
      "x".repeat(101),
    ]) {
      const error = await engineRejection(createSnapshot(recording, { domain: dom.name, name }));
      expect(error.kind).toBe("invalid-request");
    }
    expect(calls).toEqual([]);
  });

  test("existing target file, unwritable and missing directories, a block job: clear errors, nothing changed", async () => {
    const dom = await lab.domain({ disks: [{ sizeMiB: 16 }, { sizeMiB: 16 }] });
    const locked = dom.path("locked");
    await mkdir(locked);
    await chown(locked, 0, 0);
    await chmod(locked, 0o700);
    await writeFile(dom.path("vdb.x.qcow2"), "not empty");
    const before = await hostState(dom, [dom.dir, locked]);

    const existing = await engineRejection(createSnapshot(conn(), { domain: dom.name, name: "x" }));
    expect([existing.kind, existing.disk, existing.libvirtCode]).toEqual(["libvirt", "vdb", 67]);
    expect(existing.message).toContain(`snapshot x of domain ${dom.name} failed on disk vdb`);
    expect(await hostState(dom, [dom.dir, locked])).toEqual(before);

    const missing = await engineRejection(
      createSnapshot(conn(), { domain: dom.name, name: "y", overlayDir: dom.path("nowhere") }),
    );
    expect([missing.kind, missing.libvirtCode, missing.message]).toEqual([
      "libvirt",
      38,
      expect.stringContaining("check that the target directory exists"),
    ]);
    expect(await hostState(dom, [dom.dir, locked])).toEqual(before);

    const unwritable = await engineRejection(
      createSnapshot(conn(), { domain: dom.name, name: "z", overlayDir: locked }),
    );
    expect([unwritable.kind, unwritable.libvirtCode]).toEqual(["libvirt", 1]);
    expect(await hostState(dom, [dom.dir, locked])).toEqual(before);

    await createSnapshot(conn(), { domain: dom.name, name: "s1", disks: { include: ["vda"] } });
    await virsh("blockcommit", dom.name, "vda", "--active", "--wait");
    try {
      const busy = await engineRejection(createSnapshot(conn(), { domain: dom.name, name: "s2" }));
      expect([busy.kind, busy.disk, busy.message]).toEqual([
        "block-job-active",
        "vda",
        `domain ${dom.name}: a block job (active-commit, ready) is running on disk vda; no snapshot can be taken until it is finished or cancelled`,
      ]);
    } finally {
      // Only tidiness: removing the lab domain ends the job anyway. A failed abort must neither hide a failed
      // assertion above nor fail a test whose assertions all held.
      await virsh("blockjob", dom.name, "vda", "--abort").catch(() => undefined);
    }
  });
});

// Ten snapshots of a running guest in a row: 48 s under TCG on a loaded 2-core host.
test("ten creates on one domain started at once succeed one after another, forming one linear chain", {
  timeout: 300_000,
}, async () => {
  const dom = await lab.domain({ disks: [{ sizeMiB: 16 }] });
  const names = Array.from({ length: 10 }, (_, i) => `c${i}`);
  const order: string[] = [];
  const results = await Promise.all(
    names.map((name) =>
      createSnapshot(
        conn(),
        { domain: dom.name, name, quiesce: "off" },
        { onProgress: (e) => e.kind === "created" && order.push(name) },
      ),
    ),
  );
  // The lock is taken once the domain is looked up, so the order is the lookups' order, not the calls'.
  expect([...order].sort()).toEqual(names);
  const byName = new Map(results.map((r) => [r.snapshot.name, r]));
  expect(order.map((name) => byName.get(name)?.snapshot.parent ?? null)).toEqual([
    null,
    ...order.slice(0, -1),
  ]);
  expect(await dom.fileChain("vda")).toEqual([
    ...order.map((n) => dom.path(`vda.${n}.qcow2`)).reverse(),
    dom.base("vda"),
  ]);
  expect(await dom.snapshotParents()).toEqual(
    Object.fromEntries(order.map((n, i) => [n, order[i - 1] ?? null])),
  );
});
