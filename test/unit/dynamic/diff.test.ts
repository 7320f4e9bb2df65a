import { describe, expect, it } from "vitest";
import { diffSnapshot } from "../../../provider/dynamic/diff";
import { UNKNOWN } from "../../../provider/dynamic/inputs";
import { buildSnapshotOutputs, type SnapshotFacts } from "../../../provider/dynamic/outputs";

const facts: SnapshotFacts = {
  domainUuid: "6f1c2d9e-1111-4222-8333-944455556666",
  domainName: "web-1",
  snapshotName: "pre-deploy",
  creationTime: "2026-11-22T02:00:00.000Z",
  state: "disk-snapshot",
  parent: null,
  description: "before 2.0",
  disks: [{ target: "vda", overlay: "/img/web-1.pre-deploy.qcow2", pointInTimeImage: "/img/web-1.qcow2" }],
  memoryFile: null,
  quiesced: false,
  quiesceSkippedReason: "no guest agent channel",
  libvirtVersion: "9.0.0",
  hostname: "hv1",
};

const inputs = {
  domain: "web-1",
  name: "pre-deploy",
  description: "before 2.0",
  memory: false,
  live: false,
  quiesce: "auto",
  disks: ["vda", "vdb"],
  deleteStrategy: "blockcommit",
  bandwidth: 1048576,
  timeouts: { create: 60 },
  triggers: ["v1", { image: "app:1" }],
  adopt: false,
} as const;

const old = buildSnapshotOutputs(inputs, facts, "qemu:///system");
const none = { changes: false, replaces: [], deleteBeforeReplace: false };
const update = { changes: true, replaces: [], deleteBeforeReplace: false };
const replace = (...replaces: string[]) => ({ changes: true, replaces, deleteBeforeReplace: false });
const replaceDeleteFirst = (...replaces: string[]) => ({
  changes: true,
  replaces,
  deleteBeforeReplace: true,
});

const table: [string, Record<string, unknown>, ReturnType<typeof replace>][] = [
  ["nothing changed", {}, none],
  ["same triggers with other key order", { triggers: ["v1", { image: "app:1" }] }, none],
  ["same disks in another order", { disks: ["vdb", "vda"] }, none],
  ["domain given by UUID instead of name: the same domain", { domain: facts.domainUuid.toUpperCase() }, none],
  ["description", { description: "after" }, update],
  ["description removed", { description: undefined }, update],
  ["delete strategy", { deleteStrategy: "native" }, update],
  ["bandwidth", { bandwidth: 2097152 }, update],
  ["bandwidth removed", { bandwidth: undefined }, update],
  ["timeouts", { timeouts: { create: 60, delete: 10 } }, update],
  ["quiesce (creation only)", { quiesce: "off" }, update],
  ["adopt (creation only)", { adopt: true }, update],
  ["live (creation only)", { live: true }, update],
  ["overlay directory (creation only)", { overlayDir: "/snaps" }, update],
  ["uri set to the URI the snapshot was made through", { uri: "qemu:///system" }, update],
  ["another domain", { domain: "web-2" }, replace("domain")],
  ["another name", { name: "pre-deploy-2" }, replace("name")],
  ["memory", { memory: true }, replaceDeleteFirst("memory")],
  ["memory and live", { live: true, memory: true }, replaceDeleteFirst("memory")],
  ["disk selection", { disks: ["vda"] }, replaceDeleteFirst("disks")],
  [
    "disks -> excludeDisks",
    { disks: undefined, excludeDisks: ["vdb"] },
    replaceDeleteFirst("disks", "excludeDisks"),
  ],
  ["uri of another host", { uri: "qemu+ssh://root@hv1/system" }, replaceDeleteFirst("uri")],
  [
    "triggers only, fixed name: the replacement would collide",
    { triggers: ["v2"] },
    replaceDeleteFirst("triggers"),
  ],
  [
    "triggers and name: create before delete",
    { triggers: ["v2"], name: "pre-deploy-v2" },
    replace("name", "triggers"),
  ],
  ["replace and update at once", { triggers: ["v2"], description: "x" }, replaceDeleteFirst("triggers")],
  ["unknown update property", { description: UNKNOWN }, update],
  ["unknown triggers", { triggers: UNKNOWN }, replaceDeleteFirst("triggers")],
  ["unknown element in disks", { disks: ["vda", UNKNOWN] }, replaceDeleteFirst("disks")],
  ["unknown name: a collision cannot be ruled out", { name: UNKNOWN }, replaceDeleteFirst("name")],
  ["unknown domain", { domain: UNKNOWN }, replaceDeleteFirst("domain")],
];

describe("diffSnapshot", () => {
  it.each(table)("%s", (_label, change, expected) => {
    const news = { ...inputs, ...change };
    expect(diffSnapshot(old, news, "qemu:///system")).toEqual(expected);
  });

  it("compares with the host's description after a refresh: drift shows as a change", () => {
    const refreshed = { ...old, description: "edited on the host" };
    expect(diffSnapshot(refreshed, inputs, "qemu:///system")).toEqual(update);
  });

  it("uri: unset and an explicit URI are the same when they resolve to the connection the snapshot used", () => {
    const explicit = buildSnapshotOutputs(
      { ...inputs, uri: "qemu+ssh://root@hv1/system" },
      facts,
      "qemu+ssh://root@hv1/system",
    );
    const unset = { ...inputs, uri: undefined };
    expect(diffSnapshot(explicit, unset, "qemu+ssh://root@hv1/system")).toEqual(update);
    expect(diffSnapshot(explicit, unset, "qemu:///system")).toEqual(replaceDeleteFirst("uri"));
    const fromDefault = buildSnapshotOutputs(unset, facts, "qemu+ssh://root@hv1/system");
    expect(
      diffSnapshot(fromDefault, { ...inputs, uri: "qemu+ssh://root@hv1/system" }, "qemu:///system"),
    ).toEqual(update);
  });

  it("disks: unset, then a list of exactly the disks the snapshot covers, replaces nothing", () => {
    const covered = {
      ...facts,
      disks: [...facts.disks, { ...facts.disks[0], target: "vdb" }],
    } as SnapshotFacts;
    const allDisks = buildSnapshotOutputs({ ...inputs, disks: undefined }, covered, "qemu:///system");
    expect(diffSnapshot(allDisks, { ...inputs, disks: ["vdb", "vda"] }, "qemu:///system")).toEqual(update);
    expect(diffSnapshot(allDisks, { ...inputs, disks: ["vda"] }, "qemu:///system")).toEqual(
      replaceDeleteFirst("disks"),
    );
    expect(diffSnapshot(allDisks, { ...inputs, disks: ["vda", UNKNOWN] }, "qemu:///system")).toEqual(
      replaceDeleteFirst("disks"),
    );
  });
});
