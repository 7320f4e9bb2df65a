import { describe, expect, test, vi } from "vitest";
import { isDomainLocked, withDomainLock } from "../../../provider/engine/domain-lock";

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("withDomainLock", () => {
  test("operations on one domain run one after another in call order, also after a failure", async () => {
    const log: string[] = [];
    const op =
      (id: string, fail = false) =>
      async () => {
        log.push(`start ${id}`);
        await tick();
        await tick();
        log.push(`end ${id}`);
        if (fail) throw new Error(id);
        return id;
      };
    const waits: string[] = [];
    const results = await Promise.allSettled([
      withDomainLock("U1", op("a")),
      withDomainLock("u1", op("b", true), () => waits.push("b")),
      withDomainLock("U1", op("c"), () => waits.push("c")),
    ]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual([
      "a",
      "b",
      "c",
    ]);
    expect(log).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
    expect(waits).toEqual(["b", "c"]);
    expect(isDomainLocked("u1")).toBe(false);
  });

  test("different domains run in parallel", async () => {
    const log: string[] = [];
    const op = (id: string) => async () => {
      log.push(`start ${id}`);
      await tick();
      log.push(`end ${id}`);
    };
    await Promise.all([withDomainLock("x", op("x")), withDomainLock("y", op("y"))]);
    expect(log).toEqual(["start x", "start y", "end x", "end y"]);
  });
  test("an abort while waiting rejects with its reason and skips the operation; later ones still queue", async () => {
    const log: string[] = [];
    let finishFirst: () => void = () => undefined;
    const first = withDomainLock("u2", async () => {
      log.push("first");
      await new Promise<void>((resolve) => {
        finishFirst = resolve;
      });
    });
    const controller = new AbortController();
    const skipped = withDomainLock("u2", async () => log.push("skipped"), undefined, controller.signal);
    const third = withDomainLock("u2", async () => log.push("third"));
    await tick();
    controller.abort(new Error("gave up"));
    await expect(skipped).rejects.toThrow("gave up");
    await tick();
    expect(log).toEqual(["first"]);
    finishFirst();
    await Promise.all([first, third]);
    expect(log).toEqual(["first", "third"]);
    expect(isDomainLocked("u2")).toBe(false);
  });

  test("a second copy of the module shares the locks, as when Pulumi's plugin loads the package twice", async () => {
    vi.resetModules();
    // A dynamic import under CommonJS type-checking needs the emitted name; Vite maps it to the source.
    const secondCopy = await import("../../../provider/engine/domain-lock.js");
    expect(secondCopy.withDomainLock).not.toBe(withDomainLock);
    const log: string[] = [];
    let releaseFirst: () => void = () => undefined;
    const first = withDomainLock("copy-test", async () => {
      log.push("first start");
      await new Promise<void>((resolve) => {
        releaseFirst = resolve;
      });
      log.push("first end");
    });
    const second = secondCopy.withDomainLock("copy-test", async () => {
      log.push("second");
    });
    await tick();
    expect(secondCopy.isDomainLocked("copy-test")).toBe(true);
    releaseFirst();
    await Promise.all([first, second]);
    expect(log).toEqual(["first start", "first end", "second"]);
  });
});
