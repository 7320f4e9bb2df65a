import { describe, expect, it } from "vitest";
import { generationTwoFailedOnB, setup, snapshotEntry, UUIDS } from "./restore-point-fake-host";

// The RestorePoint methods against a fake host that records every call: the order of pauses, snapshots and
// resumes, what a failure records, and the order of merges.

describe("RestorePoint provider", () => {
  it("paused: every running domain is paused before any snapshot, and resumed after; a paused one stays paused", async () => {
    const { host, provider, inputs } = setup();
    host.states.set(UUIDS.b as string, "paused");
    await provider.create(inputs({ consistency: "paused" }));
    expect(host.calls).toEqual([
      "pause a",
      "pause b",
      "create a/rp-1 (paused)",
      "create b/rp-1 (paused)",
      "resume a",
    ]);
    expect([...host.states.values()]).toEqual(["running", "paused"]);
  });

  it("paused: a create timeout during the pauses waits for every pause and resumes each domain it paused", async () => {
    const { host, provider, inputs } = setup();
    const afterAbort = (signal: AbortSignal) =>
      new Promise<void>((resolve) => signal.addEventListener("abort", () => setTimeout(resolve, 20)));
    host.pause = async (domain: string, signal?: AbortSignal) => {
      if (signal === undefined) throw new Error("pause needs the create's signal");
      host.calls.push(`pause ${domain}`);
      await afterAbort(signal);
      // a: the suspend was sent before the timeout and completes after it. b: another operation held the
      // domain's lock past the timeout, so the host skipped the suspend.
      if (domain === "b") throw signal.reason;
      host.states.set(UUIDS.a as string, "paused");
      host.calls.push("paused a");
      return true;
    };
    const error = await provider.create(inputs({ consistency: "paused", timeouts: { create: 0.05 } })).then(
      () => null,
      (e: unknown) => String(e),
    );
    expect(error).toMatch(/nothing was created: a: creating snapshot rp-1 of a did not finish within 0.05 s/);
    expect(host.calls).toEqual(["pause a", "pause b", "paused a", "resume a"]);
    expect([...host.states.values()]).toEqual(["running", "running"]);
  });

  it("paused: a failed snapshot still resumes the domains, and the one made is recorded as partial state", async () => {
    const { host, provider, inputs } = setup();
    host.failCreate = (domain) => (domain === "b" ? "before" : null);
    const error = (await provider.create(inputs({ consistency: "paused" })).catch((e: unknown) => e)) as {
      id: string;
      properties: Record<string, unknown>;
      reasons: string[];
    };
    expect(host.calls.slice(-2)).toEqual(["resume a", "resume b"]);
    expect([...host.states.values()]).toEqual(["running", "running"]);
    expect(error.id).toBe(`rp@${UUIDS.a}`);
    expect(error.reasons).toEqual(["b: libvirt refused rp-1"]);
    expect(error.properties.__provider).toBe("shim");
    const generations = error.properties.generations as { number: number; snapshots: { domain: string }[] }[];
    expect(generations.map((g) => [g.number, g.snapshots.map((s) => s.domain)])).toEqual([[1, ["a"]]]);
  });

  it("paused: a domain that cannot be paused fails the generation with the setting, its value and the fix", async () => {
    const { host, provider, inputs } = setup();
    host.pause = async (domain: string) => {
      host.calls.push(`pause ${domain}`);
      if (domain === "b") throw new Error("domain b is shut down by another operation");
      return false;
    };
    const error = await provider.create(inputs({ consistency: "paused" })).then(
      () => null,
      (e: unknown) => (e as Error).message,
    );
    const notTaken =
      'not taken: consistency "paused" needs every domain paused, and one could not be (domain b is shut ' +
      'down by another operation); make it pausable and run pulumi up again, or set consistency: "crash" to ' +
      "snapshot each domain on its own";
    expect(error).toBe(
      `restore point rp (generation 1): nothing was created: a: ${notTaken}; b: ${notTaken}`,
    );
    expect(host.calls).toEqual(["pause a", "pause b"]);
  });

  it("a partial failure says what the stack records and how to finish", async () => {
    const { host, provider, inputs } = setup();
    host.failCreate = (domain) => (domain === "b" ? "before" : null);
    const error = await provider.create(inputs()).then(
      () => null,
      (e: unknown) => (e as Error).message,
    );
    expect(error).toBe(
      "restore point rp (generation 1) failed; the stack records the generations that exist, and the next " +
        "pulumi up completes or merges what is left once the cause is fixed: b: libvirt refused rp-1",
    );
  });

  it("a snapshot made by a create that then failed is recorded; nothing made rejects plainly", async () => {
    const { host, provider, inputs } = setup();
    host.failCreate = () => "after";
    const error = (await provider.create(inputs()).catch((e: unknown) => e)) as {
      properties: Record<string, unknown>;
    };
    const generations = error.properties.generations as { snapshots: { domain: string }[] }[];
    expect(generations[0]?.snapshots.map((s) => s.domain)).toEqual(["a", "b"]);

    const fresh = setup();
    fresh.host.failCreate = () => "before";
    const plain = (await fresh.provider.create(fresh.inputs()).catch((e: unknown) => e)) as Error & {
      id?: string;
    };
    expect(plain.id).toBeUndefined();
    expect(plain.message).toMatch(/nothing was created/);
  });

  it("triggers x3 with keep 2: generations 2 and 3 remain, merged oldest first with the new strategy and bandwidth", async () => {
    const { host, provider, inputs } = setup();
    const first = inputs({ keep: 2 });
    const { id, outs: created } = await provider.create(first);
    let outs = created;
    for (const release of ["v2", "v3", "v4"]) {
      const next = inputs({ keep: 2, triggers: [release], bandwidth: 1024 });
      ({ outs } = await provider.update(id, outs as unknown as Record<string, unknown>, next));
    }
    expect(outs.generations.map((g) => [g.number, g.triggers])).toEqual([
      [3, ["v3"]],
      [4, ["v4"]],
    ]);
    expect(host.names("a")).toEqual(["rp-3", "rp-4"]);
    expect(host.calls.filter((c) => c.startsWith("delete"))).toEqual([
      `delete ${UUIDS.a}/rp-1 blockcommit 1024`,
      `delete ${UUIDS.b}/rp-1 blockcommit 1024`,
      `delete ${UUIDS.a}/rp-2 blockcommit 1024`,
      `delete ${UUIDS.b}/rp-2 blockcommit 1024`,
    ]);

    // Delete merges the rest oldest first on each domain.
    host.calls.length = 0;
    await provider.delete(id, outs as unknown as Record<string, unknown>);
    expect(host.calls).toEqual([
      `delete ${UUIDS.a}/rp-3 blockcommit 1024`,
      `delete ${UUIDS.b}/rp-3 blockcommit 1024`,
      `delete ${UUIDS.a}/rp-4 blockcommit 1024`,
      `delete ${UUIDS.b}/rp-4 blockcommit 1024`,
    ]);
    expect([host.names("a"), host.names("b")]).toEqual([[], []]);
  });

  it("a failed merge records what is left; a failed new generation is completed under the same number by the retry", async () => {
    const { host, provider, inputs } = setup();
    const { id, outs } = await provider.create(inputs());
    host.failCreate = (domain) => (domain === "b" ? "before" : null);
    const failed = (await provider
      .update(id, outs as unknown as Record<string, unknown>, inputs({ triggers: ["v2"] }))
      .catch((e: unknown) => e)) as { properties: Record<string, unknown> };
    // Generation 1 is not merged while generation 2 is incomplete, and the old triggers stay recorded.
    expect(host.calls.some((c) => c.startsWith("delete"))).toBe(false);
    expect(failed.properties.triggers).toEqual(["v1"]);
    host.failCreate = null;
    host.failDelete = (domain) => domain === UUIDS.b;
    const retry = (await provider
      .update(id, failed.properties, inputs({ triggers: ["v2"] }))
      .catch((e: unknown) => e)) as { properties: Record<string, unknown>; reasons: string[] };
    expect(host.names("b")).toEqual(["rp-1", "rp-2"]);
    expect(retry.reasons).toEqual([`b/rp-1: merge of rp-1 failed`]);
    const left = retry.properties.generations as { number: number; snapshots: { domain: string }[] }[];
    expect(left.map((g) => [g.number, g.snapshots.map((s) => s.domain)])).toEqual([
      [1, ["b"]],
      [2, ["a", "b"]],
    ]);
  });

  it("paused: a retried generation that fails again keeps the snapshot the previous attempt recorded", async () => {
    const { host, provider, inputs, id, failed } = await generationTwoFailedOnB();
    // b cannot be paused now, so a's existing rp-2 is not adopted by the retry: it must stay recorded.
    host.pause = async (domain: string) => {
      if (domain === "b") throw new Error("domain b is shut down by another operation");
      return false;
    };
    const retry = (await provider
      .update(id, failed.properties, inputs({ consistency: "paused", triggers: ["v2"] }))
      .catch((e: unknown) => e)) as { properties: Record<string, unknown> };
    const createdAt = expect.any(String);
    expect(retry.properties).toEqual({
      ...failed.properties,
      generations: [
        {
          number: 1,
          triggers: ["v1"],
          createdAt,
          snapshots: [snapshotEntry("a", "rp-1"), snapshotEntry("b", "rp-1")],
        },
        { number: 2, triggers: ["v2"], createdAt, snapshots: [snapshotEntry("a", "rp-2")] },
      ],
    });
    expect([host.names("a"), host.names("b")]).toEqual([["rp-1", "rp-2"], ["rp-1"]]);
  });

  it("paused: a retried generation drops a recorded snapshot that is gone from the host", async () => {
    const { host, provider, inputs, id, failed } = await generationTwoFailedOnB();
    host.snapshots.get(UUIDS.a as string)?.delete("rp-2");
    host.pause = async (domain: string) => {
      if (domain === "b") throw new Error("domain b is shut down by another operation");
      return false;
    };
    const retry = (await provider
      .update(id, failed.properties, inputs({ consistency: "paused", triggers: ["v2"] }))
      .catch((e: unknown) => e)) as { properties: Record<string, unknown> };
    const createdAt = expect.any(String);
    expect(retry.properties.generations).toEqual([
      {
        number: 1,
        triggers: ["v1"],
        createdAt,
        snapshots: [snapshotEntry("a", "rp-1"), snapshotEntry("b", "rp-1")],
      },
    ]);
  });

  it("read drops snapshots deleted out of band, and reports gone when none is left", async () => {
    const { host, provider, inputs } = setup();
    const { id, outs } = await provider.create(inputs({ keep: 2 }));
    const two = await provider.update(
      id,
      outs as unknown as Record<string, unknown>,
      inputs({ keep: 2, triggers: ["v2"] }),
    );
    host.snapshots.get(UUIDS.a as string)?.delete("rp-1");
    host.snapshots.get(UUIDS.b as string)?.delete("rp-1");
    const read = await provider.read(id, two.outs as unknown as Record<string, unknown>);
    expect(read.props?.generations.map((g) => g.number)).toEqual([2]);
    host.snapshots.get(UUIDS.a as string)?.clear();
    host.snapshots.get(UUIDS.b as string)?.clear();
    expect(await provider.read(id, two.outs as unknown as Record<string, unknown>)).toEqual({ id: "" });
  });
});
