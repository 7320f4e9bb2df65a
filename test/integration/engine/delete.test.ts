import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type DeleteStrategy, deleteSnapshot } from "../../../provider/engine/delete";
import { isEngineError } from "../../../provider/engine/errors";
import { readJournal } from "../../../provider/engine/journal";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { lab } from "../../support/lab";
import { virsh } from "../../support/virsh";
import {
  expectedObservation,
  LayeredDomain,
  type LayeredSpec,
  observe,
  openLabConnection,
} from "./delete-support";

let conn: LibvirtConnection;
beforeAll(async () => {
  conn = await openLabConnection();
});
afterAll(async () => {
  await conn?.close();
});

interface Scenario {
  readonly name: string;
  readonly state: "running" | "paused" | "shutoff";
  readonly spec: LayeredSpec;
  /** Deleted one after another; everything is checked after each. */
  readonly order: readonly string[];
  /** Suspend a running domain after building (memory snapshots taken while running, deleted while paused). */
  readonly pauseAfterBuild?: boolean;
  /** Destroy and start the domain afterwards to prove its persistent definition (slow: a few scenarios only). */
  readonly restartCheck?: boolean;
}

const scenarios: Scenario[] = [
  {
    name: "running, one disk: middle, first, then current",
    state: "running",
    spec: { disks: 1, snapshots: 3, kind: "disk-only" },
    restartCheck: true,
    order: ["s2", "s1", "s3"],
  },
  {
    name: "running, two disks: all, newest first",
    state: "running",
    spec: { disks: 2, snapshots: 3, kind: "disk-only" },
    order: ["s3", "s2", "s1"],
  },
  {
    name: "paused, one disk: all, oldest first",
    state: "paused",
    spec: { disks: 1, snapshots: 3, kind: "disk-only" },
    restartCheck: true,
    order: ["s1", "s2", "s3"],
  },
  {
    name: "shut off, two disks: middle, current, first",
    state: "shutoff",
    spec: { disks: 2, snapshots: 3, kind: "disk-only" },
    restartCheck: true,
    order: ["s2", "s3", "s1"],
  },
  {
    name: "running, memory snapshots: first then current",
    state: "running",
    spec: { disks: 1, snapshots: 2, kind: "memory" },
    order: ["s1", "s2"],
  },
  {
    name: "paused domain, memory snapshots taken while running: current",
    state: "running",
    pauseAfterBuild: true,
    spec: { disks: 1, snapshots: 2, kind: "memory" },
    order: ["s2"],
  },
  {
    name: "shut off, memory snapshots: first",
    state: "shutoff",
    spec: { disks: 1, snapshots: 2, kind: "memory" },
    order: ["s1"],
  },
];

const strategies: DeleteStrategy[] = ["blockcommit", "native"];
/** Final observations per scenario and strategy, for the differential comparison. */
const finals = new Map<string, Map<DeleteStrategy, unknown>>();

async function layered(scenario: Scenario): Promise<LayeredDomain> {
  const sizes = Array.from({ length: scenario.spec.disks }, () => ({ sizeMiB: 64 }));
  const domain = new LayeredDomain(await lab.domain({ disks: sizes, state: "shutoff" }), scenario.spec);
  await domain.build();
  await domain.enter(scenario.state);
  if (scenario.pauseAfterBuild) await domain.lab.suspend();
  return domain;
}

/** Relative names, so that observations of two domains can be compared. */
function relative(domain: LayeredDomain, value: unknown): unknown {
  return JSON.parse(JSON.stringify(value).replaceAll(`${domain.lab.dir}/`, ""));
}

describe.each(strategies)("deleteSnapshot, strategy %s", (strategy) => {
  test.each(scenarios)("$name", async (scenario) => {
    const domain = await layered(scenario);
    const stateBefore = await domain.lab.state();
    const deleted: string[] = [];
    let observed: unknown;
    for (const name of scenario.order) {
      const result = await deleteSnapshot(conn, domain.lab.name, name, { strategy });
      deleted.push(name);
      expect(result.outcome, `${name}`).toBe("deleted");
      observed = await observe(domain);
      expect(observed, `after deleting ${deleted.join(", ")}`).toEqual(
        expectedObservation(domain, deleted, scenario.state !== "shutoff"),
      );
      expect(await domain.lab.state(), "the domain state is what the user left").toBe(stateBefore);
    }
    // Idempotent: a second delete of the same snapshot is fine.
    const again = await deleteSnapshot(conn, domain.lab.name, scenario.order[0] ?? "", { strategy });
    expect(again.outcome).toBe("absent");

    const perScenario = finals.get(scenario.name) ?? new Map();
    perScenario.set(strategy, relative(domain, observed));
    // The persistent definition is right: stop the domain and start it again from it. (The native strategy is
    // libvirt's own; its persistent definition is libvirt's business, and restarts are the slowest step here.)
    if (strategy === "blockcommit" && scenario.restartCheck) {
      if (stateBefore !== "shutoff") await domain.lab.destroy();
      await domain.lab.start(true);
      expect(await observe(domain)).toEqual(expectedObservation(domain, deleted, true));
    }
    finals.set(scenario.name, perScenario);
  });
});

describe("differential: native and blockcommit end alike", () => {
  test.each(scenarios)("$name", (scenario) => {
    const results = finals.get(scenario.name);
    expect(results?.size, "both strategies ran").toBe(2);
    expect(results?.get("blockcommit")).toEqual(results?.get("native"));
  });
});

describe("deleteSnapshot edge cases", () => {
  test("a memory snapshot taken while paused waits for the domain to run, then deletes", async () => {
    // s0 disk-only and s1 with memory, both taken while paused: QEMU's disks stay read-only until resumed.
    const domain = new LayeredDomain(await lab.domain({ state: "paused" }), {
      disks: 1,
      snapshots: 1,
      kind: "memory",
    });
    const diskspec = (n: string) => ["--diskspec", `vda,snapshot=external,file=${domain.overlay("vda", n)}`];
    await virsh("snapshot-create-as", domain.lab.name, "s0", "--disk-only", ...diskspec("s0"));
    const memspec = `file=${domain.memoryFile("s1")},snapshot=external`;
    await virsh("snapshot-create-as", domain.lab.name, "s1", "--memspec", memspec, ...diskspec("s1"));
    const chain = [domain.overlay("vda", "s1"), domain.overlay("vda", "s0"), domain.lab.base("vda")];

    const refused = await deleteSnapshot(conn, domain.lab.name, "s1").catch((e: unknown) => e);
    expect(isEngineError(refused) && [refused.kind, /resume the domain/.test(refused.message)]).toEqual([
      "domain-state",
      true,
    ]);
    const failed = await deleteSnapshot(conn, domain.lab.name, "s0").catch((e: unknown) => e);
    expect(
      isEngineError(failed) && [failed.kind, /nothing was merged.*resume the domain/.test(failed.message)],
    ).toEqual(["domain-state", true]);
    expect(await domain.lab.liveChain("vda")).toEqual(chain);
    expect(await readJournal(conn, await conn.domainLookupByName(domain.lab.name))).toBeNull();

    await domain.lab.resume();
    expect((await deleteSnapshot(conn, domain.lab.name, "s1")).outcome).toBe("deleted");
    expect((await deleteSnapshot(conn, domain.lab.name, "s0")).outcome).toBe("deleted");
    expect(await domain.lab.liveChain("vda")).toEqual([domain.lab.base("vda")]);
  });

  test("Quirk: libvirt 9.0 cannot natively delete an offline-created snapshot of a shut-off domain", async () => {
    const domain = new LayeredDomain(await lab.domain({ state: "shutoff" }), {
      disks: 1,
      snapshots: 2,
      kind: "disk-only",
    });
    await domain.build();
    const direct = await virsh("snapshot-delete", domain.lab.name, "s1").catch((e: unknown) => e);
    expect(String(direct)).toMatch(/could not find base disk source in disk source chain/);
    // The native strategy starts the domain paused around libvirt's delete, so the oracle still works.
    await deleteSnapshot(conn, domain.lab.name, "s1", { strategy: "native" });
    expect(await observe(domain)).toEqual(expectedObservation(domain, ["s1"], false));
    expect(await domain.lab.state()).toBe("shutoff");
  });

  test("after a blockcommit delete, libvirt's own delete still works on the chain (no metadata drift)", async () => {
    const domain = new LayeredDomain(await lab.domain({ state: "shutoff" }), {
      disks: 1,
      snapshots: 3,
      kind: "disk-only",
    });
    await domain.build();
    await domain.enter("running");
    await deleteSnapshot(conn, domain.lab.name, "s2");
    await deleteSnapshot(conn, domain.lab.name, "s3", { strategy: "native" });
    await deleteSnapshot(conn, domain.lab.name, "s1", { strategy: "native" });
    expect(await observe(domain)).toEqual(expectedObservation(domain, ["s1", "s2", "s3"], true));
  });

  test("a domain that no longer exists succeeds with a note", async () => {
    const result = await deleteSnapshot(conn, "lvsnap-tmp-e-no-such-domain", "s1");
    expect(result).toEqual({
      domain: "lvsnap-tmp-e-no-such-domain",
      snapshot: "s1",
      outcome: "domain-absent",
      notes: ["domain lvsnap-tmp-e-no-such-domain no longer exists"],
      warnings: [],
    });
  });
});
