import { describe, expect, test } from "vitest";
import { referencesOutside } from "../../../provider/engine/delete-references";
import { finishBranch } from "../../../provider/engine/revert-finish";
import { runRecipe } from "../../../provider/engine/revert-recipe";
import { scanMark } from "../../../provider/engine/scan-sharing";
import type { DomainRef } from "../../../provider/libvirt/api";
import { plan, RecipeHost } from "./recipe-host";

/** The recipe host with a listing of all domains (how every reference scan starts) held until `open()`. */
class GatedListing extends RecipeHost {
  listings = 0;
  private opened = false;
  private readonly held: (() => void)[] = [];
  override async connectListAllDomains(): Promise<DomainRef[]> {
    this.listings += 1;
    if (!this.opened) await new Promise<void>((resolve) => this.held.push(resolve));
    return super.connectListAllDomains();
  }
  open(): void {
    this.opened = true;
    for (const release of this.held.splice(0)) release();
  }
}

/**
 * Resolves once every callback the fake's calls queued has run: they all settle as microtasks (no timer, no
 * I/O), so an operation has then gone as far as it can and waits on a held listing or a shared scan.
 */
const untilBlocked = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A recipe revert of d to s2 that discards s3, with a domain clone-1 on the host whose disk is s2's overlay. */
async function reverted() {
  const host = new GatedListing();
  host.others.set("clone-1", { vda: "/i/vda.s2.qcow2" });
  const done = await runRecipe(host.port(), host.ref, plan(), () => plan("/i/vda.s2.revert-2.qcow2"), ["s3"]);
  return { host, record: done.record };
}

const clone: DomainRef = { name: "clone-1", uuid: "uuid-of-clone-1", id: -1 };

/** What finishing the revert does on that host, whichever scan it reads: clone-1's file is kept. */
const finished = {
  dropped: ["s3"],
  removedFiles: ["/i/vda.s3.qcow2"],
  warnings: ["kept /i/vda.s2.qcow2: domain clone-1 still uses it; remove it once nothing uses it any more"],
};

describe("the finishing phase's reference scan", () => {
  test("joins the scan a concurrent operation started after the revert held its domain lock", async () => {
    const { host, record } = await reverted();
    const lockedAt = scanMark();
    // A delete of clone-1 (say) starts its scan while the revert holds d's lock.
    const other = referencesOutside(host.port(), clone);
    const finishing = finishBranch(host.port(), host.ref, record, { lockedAt });
    await untilBlocked();
    host.open();
    await other;
    expect([await finishing, host.listings]).toEqual([finished, 1]);
  });

  test("does not join a scan that started before the revert held its lock: it reads the host again", async () => {
    const { host, record } = await reverted();
    const other = referencesOutside(host.port(), clone);
    const lockedAt = scanMark();
    const finishing = finishBranch(host.port(), host.ref, record, { lockedAt });
    await untilBlocked();
    const listingsHeld = host.listings;
    host.open();
    await other;
    expect([listingsHeld, await finishing, host.listings]).toEqual([2, finished, 2]);
  });
});
