import { expect, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { withDomainLock } from "../../../provider/engine/domain-lock";
import { revertSnapshot } from "../../../provider/engine/revert";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { lab } from "../../support/lab";
import { labConnectionPerFile } from "./lab-connection";

const conn = labConnectionPerFile();

test("a revert with keepCurrent holds the domain lock once: an operation queued at its first read runs after it", async () => {
  const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
  await createSnapshot(conn(), { domain: dom.name, name: "s1", quiesce: "off" });

  let calls = 0;
  let queued: Promise<number> | undefined;
  // Every call is counted; the first domain read queues an operation on the domain behind the revert.
  const port = new Proxy(conn(), {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls++;
        if (property === "domainGetXMLDesc") queued ??= withDomainLock(dom.uuid, async () => calls);
        return value.apply(target, args);
      };
    },
  }) as LibvirtConnection;

  const result = await revertSnapshot(port, dom.name, "s1", { keepCurrent: true });
  const callsWhenRevertEnded = calls;
  expect(result.savedAs).toMatch(/^auto-before-revert-/);
  expect(await dom.snapshotParents()).toEqual({ s1: null, [result.savedAs as string]: "s1" });
  expect(await queued).toBe(callsWhenRevertEnded);
});
