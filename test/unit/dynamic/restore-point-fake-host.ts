import { expect } from "vitest";
import type { CreateSnapshotRequest, DeleteSnapshotRequest } from "../../../provider/dynamic/host";
import type { SnapshotFacts } from "../../../provider/dynamic/outputs";
import type { RestorePointHost } from "../../../provider/dynamic/restore-point-host";
import { checkRestorePointInputs } from "../../../provider/dynamic/restore-point-inputs";
import { createRestorePointProvider } from "../../../provider/dynamic/restore-point-provider";

// The fake host the RestorePoint provider's unit tests run against: it records every call (the order of
// pauses, snapshots, resumes and merges) and fails the steps a test asks it to.

/** The UUIDs of the fake domains `a` and `b`. */
export const UUIDS: Record<string, string> = {
  a: "00000000-0000-4000-8000-00000000000a",
  b: "00000000-0000-4000-8000-00000000000b",
};

/** Both domains running, no snapshots; `failCreate` and `failDelete` choose the steps that fail. */
export class FakeHost implements RestorePointHost {
  readonly calls: string[] = [];
  /** domain uuid -> snapshot names */
  readonly snapshots = new Map<string, Set<string>>(Object.values(UUIDS).map((u) => [u, new Set()]));
  readonly states = new Map<string, "running" | "paused" | "shutoff">([
    [UUIDS.a as string, "running"],
    [UUIDS.b as string, "running"],
  ]);
  failCreate: ((domain: string, name: string) => "before" | "after" | null) | null = null;
  failDelete: ((domain: string, name: string) => boolean) | null = null;

  private uuid(domain: string): string {
    return UUIDS[domain] ?? domain;
  }
  private facts(uuid: string, name: string): SnapshotFacts {
    const domainName = Object.entries(UUIDS).find(([, u]) => u === uuid)?.[0] ?? "?";
    return {
      domainUuid: uuid,
      domainName,
      snapshotName: name,
      creationTime: "2026-11-22T03:00:00.000Z",
      state: "disk-snapshot",
      parent: null,
      description: null,
      disks: [{ target: "vda", overlay: `/img/${domainName}.${name}`, pointInTimeImage: "/img/below" }],
      memoryFile: null,
      quiesced: false,
      quiesceSkippedReason: "off",
      libvirtVersion: "9.0.0",
      hostname: "hv",
    };
  }
  async create(request: CreateSnapshotRequest): Promise<SnapshotFacts> {
    const uuid = this.uuid(request.domain);
    this.calls.push(`create ${request.domain}/${request.name} (${this.states.get(uuid)})`);
    const failure = this.failCreate?.(request.domain, request.name) ?? null;
    if (failure === "before") throw new Error(`libvirt refused ${request.name}`);
    this.snapshots.get(uuid)?.add(request.name);
    if (failure === "after") throw new Error(`verification of ${request.name} failed`);
    return this.facts(uuid, request.name);
  }
  async get(domain: string, name: string): Promise<SnapshotFacts | null> {
    const uuid = this.uuid(domain);
    return this.snapshots.get(uuid)?.has(name) ? this.facts(uuid, name) : null;
  }
  async setDescription(): Promise<SnapshotFacts> {
    throw new Error("not used");
  }
  async delete(request: DeleteSnapshotRequest): Promise<void> {
    this.calls.push(`delete ${request.domain}/${request.name} ${request.strategy} ${request.bandwidth}`);
    if (this.failDelete?.(request.domain, request.name)) throw new Error(`merge of ${request.name} failed`);
    this.snapshots.get(this.uuid(request.domain))?.delete(request.name);
  }
  async pause(domain: string): Promise<boolean> {
    const uuid = this.uuid(domain);
    this.calls.push(`pause ${domain}`);
    if (this.states.get(uuid) !== "running") return false;
    this.states.set(uuid, "paused");
    return true;
  }
  async resume(domain: string): Promise<void> {
    this.calls.push(`resume ${domain}`);
    this.states.set(this.uuid(domain), "running");
  }
  names(domain: string): string[] {
    return [...(this.snapshots.get(this.uuid(domain)) ?? [])].sort();
  }
}

/** The entry the outputs record for a snapshot the fake host made. */
export function snapshotEntry(domain: string, name: string) {
  return {
    domain,
    domainName: domain,
    domainUuid: UUIDS[domain],
    snapshotName: name,
    creationTime: "2026-11-22T03:00:00.000Z",
    disks: [{ target: "vda", overlay: `/img/${domain}.${name}`, pointInTimeImage: "/img/below" }],
  };
}

/** A provider over a fresh fake host, and checked inputs for domains a and b (base name rp, triggers v1). */
export function setup() {
  const host = new FakeHost();
  const provider = createRestorePointProvider({ hostFor: () => host, env: {}, log: () => undefined });
  const inputs = (extra: Record<string, unknown> = {}) => {
    const checked = checkRestorePointInputs({ domains: ["a", "b"], name: "rp", triggers: ["v1"], ...extra });
    expect(checked.failures).toEqual([]);
    return { ...checked.inputs, __provider: "shim" };
  };
  return { host, provider, inputs };
}

/** Generation 1 on a and b (paused), then generation 2 failing on b: its partial state records rp-2 on a. */
export async function generationTwoFailedOnB() {
  const { host, provider, inputs } = setup();
  const { id, outs } = await provider.create(inputs({ consistency: "paused" }));
  host.failCreate = (domain) => (domain === "b" ? "before" : null);
  const failed = (await provider
    .update(
      id,
      outs as unknown as Record<string, unknown>,
      inputs({ consistency: "paused", triggers: ["v2"] }),
    )
    .catch((e: unknown) => e)) as { properties: Record<string, unknown> };
  return { host, provider, inputs, id, failed };
}
