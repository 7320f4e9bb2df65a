import { describe, expect, it } from "vitest";
import { UNKNOWN } from "../../../provider/dynamic/inputs";
import { checkRestorePointInputs } from "../../../provider/dynamic/restore-point-inputs";
import { buildRestorePointOutputs, type Generation } from "../../../provider/dynamic/restore-point-outputs";
import {
  diffRestorePoint,
  type GenerationSummary,
  planGenerations,
} from "../../../provider/dynamic/restore-point-plan";

// The pure rules of a RestorePoint: check (failure paths), diff, and the generation plan.

describe("check", () => {
  const valid = { domains: ["web-1", "db-1"], name: "pre-deploy", triggers: ["v1"] };

  it("applies the defaults and accepts a minimal restore point", () => {
    expect(checkRestorePointInputs({ ...valid, __provider: "text" })).toEqual({
      inputs: {
        ...valid,
        keep: 1,
        consistency: "crash",
        memory: false,
        live: false,
        quiesce: "auto",
        deleteStrategy: "blockcommit",
      },
      failures: [],
    });
  });

  const table: [string, Record<string, unknown>, string[]][] = [
    ["no domains", { domains: [] }, ["domains"]],
    ["domains not a list", { domains: "web-1" }, ["domains"]],
    ["a domain twice", { domains: ["a", "a"] }, ["domains"]],
    ["an empty domain, by position", { domains: ["a", ""] }, ["domains[1]"]],
    ["keep 0", { keep: 0 }, ["keep"]],
    ["keep not whole", { keep: 1.5 }, ["keep"]],
    ["consistency unknown value", { consistency: "frozen" }, ["consistency"]],
    ["base name with a slash", { name: "a/b" }, ["name"]],
    ["nested timeout", { timeouts: { create: -1 } }, ["timeouts.create"]],
    ["disk target in a list", { disks: ["vda", "bad name"] }, ["disks[1]"]],
    ["credential in the uri", { uri: "qemu+ssh://u:pw@h/system" }, ["uri"]],
    ["adopt is not an input", { adopt: true }, ["adopt"]],
    ["an unknown property", { colour: "red" }, ["colour"]],
    ["quiesce required while paused", { consistency: "paused", quiesce: "required" }, ["quiesce"]],
    ["live without memory (the Snapshot's own rule)", { live: true }, ["live"]],
    ["unknown values during a preview never fail", { domains: [UNKNOWN, "b"], keep: UNKNOWN }, []],
    ["a whole unknown domains list", { domains: UNKNOWN }, []],
  ];
  it.each(table)("%s", (_what, change, properties) => {
    const { failures } = checkRestorePointInputs({ ...valid, ...change });
    expect(failures.map((f) => f.property)).toEqual(properties);
  });

  it("names the value and the fix, and never shows a credential", () => {
    const { failures } = checkRestorePointInputs({ ...valid, keep: 0, uri: "qemu+ssh://u:pw@h/system" });
    expect(failures.map((f) => f.reason)).toEqual([
      "must be at least 1 (got 0); give how many generations to keep (1 keeps only the newest)",
      expect.stringContaining('(got "qemu+ssh://u:***@h/system")'),
    ]);
    expect(JSON.stringify(failures)).not.toContain("pw");
  });

  it("refuses adopt with its value and the fix", () => {
    expect(checkRestorePointInputs({ ...valid, adopt: true }).failures).toEqual([
      { property: "adopt", reason: "unknown property (got true); remove it (no such input)" },
    ]);
  });

  it("reports a failure of a shared option once, not once per domain", () => {
    const { failures } = checkRestorePointInputs({ ...valid, overlayDir: "relative" });
    expect(failures).toHaveLength(1);
    expect(failures[0]?.property).toBe("overlayDir");
  });
});

describe("generation plan", () => {
  const gens = (...list: [number, unknown, boolean][]): GenerationSummary[] =>
    list.map(([number, triggers, complete]) => ({ number, triggers, complete }));

  const table: [string, GenerationSummary[], number, { triggers: unknown } | null, unknown][] = [
    ["create: generation 1", [], 1, { triggers: ["v1"] }, { create: 1, merge: [] }],
    [
      "keep 1: the new one replaces the old",
      gens([1, ["v1"], true]),
      1,
      { triggers: ["v2"] },
      { create: 2, merge: [1] },
    ],
    [
      "keep 2, two exist: the oldest goes",
      gens([2, 0, true], [3, 0, true]),
      2,
      { triggers: 1 },
      { create: 4, merge: [2] },
    ],
    ["keep 3, one exists: nothing merged", gens([1, 0, true]), 3, { triggers: 1 }, { create: 2, merge: [] }],
    [
      "numbers continue after the highest, in any order",
      gens([5, 0, true], [2, 0, true]),
      5,
      { triggers: 1 },
      { create: 6, merge: [] },
    ],
    [
      "keep lowered, no new triggers: merge the surplus oldest first",
      gens([3, 0, true], [1, 0, true], [2, 0, true]),
      1,
      null,
      { create: null, merge: [1, 2] },
    ],
    ["nothing to do", gens([1, 0, true]), 1, null, { create: null, merge: [] }],
    [
      "an incomplete newest generation for the same triggers is completed",
      gens([1, 0, true], [2, ["v2"], false]),
      1,
      { triggers: ["v2"] },
      { create: 2, merge: [1] },
    ],
    [
      "an incomplete newest generation for other triggers is not reused",
      gens([1, 0, true], [2, ["v2"], false]),
      2,
      { triggers: ["v3"] },
      { create: 3, merge: [1] },
    ],
  ];
  it.each(table)("%s", (_what, existing, keep, take, expected) => {
    expect(planGenerations(existing, keep, take)).toEqual(expected);
  });
});

describe("diff", () => {
  const uuid = { web: "6f1c2d9e-1111-4222-8333-944455556666", db: "7a2b3c4d-1111-4222-8333-944455556666" };
  const snapshot = (domain: string, domainName: string, domainUuid: string, number: number) => ({
    domain,
    domainName,
    domainUuid,
    snapshotName: `pre-${number}`,
    creationTime: "2026-11-22T02:00:00.000Z",
    disks: [{ target: "vda", overlay: `/img/${domainName}.pre-${number}`, pointInTimeImage: "/img/base" }],
  });
  const generation = (number: number): Generation => ({
    number,
    triggers: ["v1"],
    createdAt: "2026-11-22T02:00:00.000Z",
    snapshots: [snapshot("web-1", "web-1", uuid.web, number), snapshot(uuid.db, "db-1", uuid.db, number)],
  });
  const inputs = {
    domains: ["web-1", uuid.db],
    name: "pre",
    triggers: ["v1"],
    keep: 2,
    consistency: "paused",
    memory: false,
    live: false,
    quiesce: "auto",
    disks: ["vda", "vdb"],
    deleteStrategy: "blockcommit",
    timeouts: { delete: 60 },
  } as const;
  const old = buildRestorePointOutputs(inputs, [generation(1), generation(2)], "qemu:///system");

  const none = { changes: false, replaces: [], deleteBeforeReplace: false };
  const update = { changes: true, replaces: [], deleteBeforeReplace: false };
  const replace = (deleteBeforeReplace: boolean, ...replaces: string[]) => ({
    changes: true,
    replaces,
    deleteBeforeReplace,
  });

  const table: [string, Record<string, unknown>, unknown][] = [
    ["nothing changed", {}, none],
    [
      "domains reordered and named by UUID or name instead",
      { domains: [uuid.db.toUpperCase(), "web-1"] },
      none,
    ],
    ["db named by its name instead of its UUID", { domains: ["web-1", "db-1"] }, none],
    ["same disks in another order", { disks: ["vdb", "vda"] }, none],
    ["triggers: a new generation", { triggers: ["v2"] }, update],
    ["keep", { keep: 1 }, update],
    ["consistency", { consistency: "crash" }, update],
    ["description", { description: "x" }, update],
    ["quiesce", { quiesce: "off" }, update],
    ["delete strategy", { deleteStrategy: "native" }, update],
    ["bandwidth", { bandwidth: 1024 }, update],
    ["timeouts", { timeouts: { delete: 61 } }, update],
    [
      "a domain added: same names on a shared domain, delete first",
      { domains: ["web-1", uuid.db, "app-1"] },
      replace(true, "domains"),
    ],
    ["other domains entirely: no collision", { domains: ["app-1", "app-2"] }, replace(false, "domains")],
    ["another base name", { name: "other" }, replace(false, "name")],
    ["memory", { memory: true }, replace(true, "memory")],
    ["live (creation only)", { live: true }, update],
    ["overlayDir (creation only)", { overlayDir: "/img/snap" }, update],
    ["uri set to the URI the restore point was made through", { uri: "qemu:///system" }, update],
    ["uri of another daemon", { uri: "qemu:///session" }, replace(true, "uri")],
    ["excludeDisks", { excludeDisks: ["vdb"] }, replace(true, "excludeDisks")],
    ["unknown name during preview: delete first to be safe", { name: UNKNOWN }, replace(true, "name")],
    ["an unknown domain may be an old one", { domains: ["x", UNKNOWN] }, replace(true, "domains")],
    ["unknown triggers", { triggers: UNKNOWN }, update],
  ];
  it.each(table)("%s", (_what, change, expected) => {
    expect(diffRestorePoint(old, { ...inputs, ...change }, "qemu:///system")).toEqual(expected);
  });

  it("uri unset resolving to the stored connection replaces nothing; to another one replaces", () => {
    const explicit = buildRestorePointOutputs(
      { ...inputs, uri: "qemu+ssh://hv1/system" },
      [generation(1)],
      "qemu+ssh://hv1/system",
    );
    const unset = { ...inputs, uri: undefined };
    expect(diffRestorePoint(explicit, unset, "qemu+ssh://hv1/system")).toEqual(update);
    expect(diffRestorePoint(explicit, unset, "qemu:///system")).toEqual(replace(true, "uri"));
  });

  it("disks unset, then a list of exactly the disks every snapshot covers, replaces nothing", () => {
    const allDisks = buildRestorePointOutputs(
      { ...inputs, disks: undefined },
      [generation(1)],
      "qemu:///system",
    );
    expect(diffRestorePoint(allDisks, { ...inputs, disks: ["vda"] }, "qemu:///system")).toEqual(update);
    expect(diffRestorePoint(allDisks, inputs, "qemu:///system")).toEqual(replace(true, "disks"));
    const mixed = buildRestorePointOutputs(
      { ...inputs, disks: undefined },
      [
        generation(1),
        { ...generation(2), snapshots: [{ ...snapshot("web-1", "web-1", uuid.web, 2), disks: [] }] },
      ],
      "qemu:///system",
    );
    expect(diffRestorePoint(mixed, { ...inputs, disks: ["vda"] }, "qemu:///system")).toEqual(
      replace(true, "disks"),
    );
  });

  it("an incomplete newest generation is a change, which update completes", () => {
    const partial = buildRestorePointOutputs(
      inputs,
      [generation(1), { ...generation(2), snapshots: [snapshot("web-1", "web-1", uuid.web, 2)] }],
      "qemu:///system",
    );
    expect(diffRestorePoint(partial, inputs, "qemu:///system")).toEqual(update);
  });

  it("more generations than keep (a merge failed part-way) is a change, which update merges", () => {
    const three = buildRestorePointOutputs(
      inputs,
      [generation(1), generation(2), generation(3)],
      "qemu:///system",
    );
    expect(diffRestorePoint(three, inputs, "qemu:///system")).toEqual(update);
  });
});
