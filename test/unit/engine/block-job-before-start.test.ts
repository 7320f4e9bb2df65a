import { describe, expect, test } from "vitest";
import { type BlockJobPort, runBlockCommit } from "../../../provider/engine/block-job";
import type { BlockJobEvent, DomainRef, EventSubscription } from "../../../provider/libvirt/api";
import { BlockJobStatus, BlockJobType } from "../../../provider/libvirt/api";

const domain: DomainRef = { name: "d", uuid: "00000000-0000-0000-0000-000000000002", id: 1 };
const spec = { domain, disk: "vda", top: "/i/s2.qcow2", base: "/i/s1.qcow2", active: false };

/** A settable promise, so a test decides when (and in which order) things settle. */
function later<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * A port whose event subscription settles when the test says; a started commit completes at once (event and
 * job gone). `log` records the calls and the subscription's close in order.
 */
function fakePort(subscribed: Promise<void>) {
  const log: string[] = [];
  let listener: ((e: BlockJobEvent) => void) | undefined;
  const port: BlockJobPort = {
    async subscribeBlockJobEvents(_d, l): Promise<EventSubscription> {
      log.push("subscribe");
      await subscribed;
      listener = l;
      return {
        close: async () => {
          log.push("close");
        },
      } as unknown as EventSubscription;
    },
    async domainBlockCommit() {
      log.push("commit");
      listener?.({ domain, disk: "vda", type: BlockJobType.COMMIT, status: BlockJobStatus.COMPLETED });
    },
    async domainGetBlockJobInfo() {
      return null;
    },
    async domainBlockJobAbort() {
      throw new Error("no job to abort");
    },
    async domainGetXMLDesc() {
      throw new Error("not read in these tests");
    },
  };
  return { port, log };
}

describe("runBlockCommit: beforeStart", () => {
  test("runs while the subscription opens, and both end before the job starts", async () => {
    const subscription = later<void>();
    const { port, log } = fakePort(subscription.promise);
    const before = later<void>();
    const running = runBlockCommit(port, spec, {
      beforeStart: async () => {
        log.push("beforeStart");
        await before.promise;
        log.push("beforeStart done");
      },
    });
    await new Promise((resolve) => setImmediate(resolve));
    // Both are pending at once: neither waited for the other.
    expect(log).toEqual(["beforeStart", "subscribe"]);
    subscription.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    expect(log).toEqual(["beforeStart", "subscribe"]);
    before.resolve();
    await running;
    expect(log).toEqual(["beforeStart", "subscribe", "beforeStart done", "commit", "close"]);
  });

  test("a failed beforeStart starts nothing and closes the subscription", async () => {
    const { port, log } = fakePort(Promise.resolve());
    const failure = new Error("journal write failed");
    const outcome = await runBlockCommit(port, spec, {
      beforeStart: () => Promise.reject(failure),
    }).catch((e: unknown) => e);
    expect([outcome, log]).toEqual([failure, ["subscribe", "close"]]);
  });

  test.each(["subscription first", "beforeStart first"] as const)(
    "when both fail, beforeStart's error is thrown whichever fails first (%s)",
    async (order) => {
      const subscription = later<void>();
      const before = later<void>();
      const { port, log } = fakePort(subscription.promise);
      const running = runBlockCommit(port, spec, { beforeStart: () => before.promise }).catch(
        (e: unknown) => e,
      );
      const failures = [
        () => subscription.reject(new Error("subscribe failed")),
        () => before.reject(new Error("journal write failed")),
      ];
      for (const fail of order === "subscription first" ? failures : failures.reverse()) {
        fail();
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect([((await running) as Error).message, log]).toEqual(["journal write failed", ["subscribe"]]);
    },
  );
});
