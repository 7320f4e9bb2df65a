import { describe, expect, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import type { DomainRef, SnapshotRef } from "../../../provider/libvirt/api";
import { fixture } from "../model/fixtures";
import { FakeLibvirt } from "./fake-libvirt";

/**
 * Operations on different domains share one connection in the plugin (one per URI): nothing in the engine may
 * make one domain's operation wait for another domain's. Asserted by the order of events, never by timings:
 * domain A's create call is held open until domain B's whole create has finished.
 */

const UUID_A = "e05f0791-0f7f-464c-b062-3987d0676449";
const UUID_B = "7d1f2b4e-9a53-4c8e-8f0a-2b6c1d3e4f50";

/** A fake domain whose create call first runs `beforeCreate` (which may wait). */
class GatedFake extends FakeLibvirt {
  constructor(
    xml: string,
    uuid: string,
    private readonly beforeCreate: () => Promise<void>,
  ) {
    super(xml, uuid);
  }

  override async domainSnapshotCreateXML(
    domain: DomainRef,
    xml: string,
    flags: number,
  ): Promise<SnapshotRef> {
    await this.beforeCreate();
    return super.domainSnapshotCreateXML(domain, xml, flags);
  }
}

/** The fixture domain under another name and UUID. */
function domainXml(name: string, uuid: string): string {
  return fixture("domain-running-fresh.xml")
    .replace("<name>lvsnap-fixture</name>", `<name>${name}</name>`)
    .replace(`<uuid>${UUID_A}</uuid>`, `<uuid>${uuid}</uuid>`);
}

/** One port over several fake domains, as one connection serves several domains: calls go by domain. */
function routed(fakes: readonly FakeLibvirt[]): FakeLibvirt {
  const owner = (arg: unknown): FakeLibvirt => {
    const found = fakes.find((fake) => {
      if (typeof arg === "string") return fake.ref.name === arg || fake.ref.uuid === arg;
      const ref = arg as Partial<DomainRef> & Partial<SnapshotRef>;
      return fake.ref.uuid === (ref.domain?.uuid ?? ref.uuid);
    });
    if (found === undefined) throw new Error(`no fake domain for ${JSON.stringify(arg)}`);
    return found;
  };
  return new Proxy(fakes[0] as FakeLibvirt, {
    get(_target, property) {
      return (first: unknown, ...rest: unknown[]) => {
        const fake = owner(first);
        const method = Reflect.get(fake, property) as (...args: unknown[]) => unknown;
        return method.call(fake, first, ...rest);
      };
    },
  });
}

/** Resolves once `condition` holds, checking after each turn of the event loop. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

describe("operations on different domains through one port", () => {
  test("a create on domain B runs to its end while domain A's create call is still pending", async () => {
    const log: string[] = [];
    let releaseA: () => void = () => undefined;
    const gateA = new Promise<void>((resolve) => {
      releaseA = resolve;
    });
    const a = new GatedFake(domainXml("dom-a", UUID_A), UUID_A, async () => {
      log.push("A create call");
      await gateA;
    });
    const b = new GatedFake(domainXml("dom-b", UUID_B), UUID_B, async () => {
      log.push("B create call");
    });
    const port = routed([a, b]);

    const creatingA = createSnapshot(port, { domain: "dom-a", name: "s1", quiesce: "off" }).then((r) => {
      log.push("A done");
      return r;
    });
    await until(() => log.includes("A create call"));
    const createdB = await createSnapshot(port, { domain: "dom-b", name: "s1", quiesce: "off" });
    log.push("B done");
    releaseA();
    const createdA = await creatingA;

    expect(log).toEqual(["A create call", "B create call", "B done", "A done"]);
    expect([createdA.domain, createdB.domain]).toEqual([
      { name: "dom-a", uuid: UUID_A },
      { name: "dom-b", uuid: UUID_B },
    ]);
  });
});
