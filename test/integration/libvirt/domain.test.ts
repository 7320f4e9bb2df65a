import { describe, expect, onTestFinished, test } from "vitest";
import { DomainState } from "../../../provider/libvirt/api";
import {
  DomainCreateFlags,
  DomainDefineFlags,
  DomainDestroyFlags,
  DomainMetadataType,
  DomainModificationImpact,
  DomainUndefineFlags,
  DomainXMLFlags,
  SaveRestoreFlags,
} from "../../../provider/libvirt/flags";
import { lab, newLabName } from "../../support/lab";
import { removeLabDomain } from "../../support/lab-cleanup";
import { libvirtRejection } from "../../support/rejections";
import { virsh } from "../../support/virsh";
import { openForTest } from "./support/connect";

/** virsh's state names by virDomainState. */
const VIRSH_STATE: Record<number, string> = {
  [DomainState.RUNNING]: "running",
  [DomainState.PAUSED]: "paused",
  [DomainState.SHUTOFF]: "shut off",
};

async function virshState(name: string): Promise<string> {
  return (await virsh("domstate", name)).trim();
}

describe("domain calls agree with virsh", () => {
  test("lookup, XML (live and inactive), state through suspend/resume and destroy/create", async () => {
    const dom = await lab.domain({ state: "running" });
    const connection = await openForTest();
    const ref = await connection.domainLookupByName(dom.name);
    expect(ref).toEqual({
      name: dom.name,
      uuid: dom.uuid,
      id: Number((await virsh("domid", dom.name)).trim()),
    });
    expect(await connection.domainLookupByUUID(dom.uuid)).toEqual(ref);
    expect(await connection.domainLookupByUUID(dom.uuid.toUpperCase())).toEqual(ref);

    expect((await connection.domainGetXMLDesc(ref, 0)).trimEnd()).toBe(
      (await virsh("dumpxml", dom.name)).trimEnd(),
    );
    expect((await connection.domainGetXMLDesc(ref, DomainXMLFlags.INACTIVE)).trimEnd()).toBe(
      (await virsh("dumpxml", "--inactive", dom.name)).trimEnd(),
    );

    const states: [string, string][] = [];
    const record = async () => {
      const { state } = await connection.domainGetState(ref);
      states.push([VIRSH_STATE[state] ?? `state ${state}`, await virshState(dom.name)]);
    };
    await record();
    await connection.domainSuspend(ref);
    await record();
    await connection.domainResume(ref);
    await record();
    await connection.domainDestroyFlags(ref, DomainDestroyFlags.DEFAULT);
    await record();
    const started = await connection.domainCreateWithFlags(ref, DomainCreateFlags.START_PAUSED);
    await record();
    expect(states).toEqual([
      ["running", "running"],
      ["paused", "paused"],
      ["running", "running"],
      ["shut off", "shut off"],
      ["paused", "paused"],
    ]);
    expect(started).toEqual({ ...ref, id: Number((await virsh("domid", dom.name)).trim()) });
  });

  test("metadata: set and get an element (hostile text kept as data), remove it, NO_DOMAIN_METADATA when absent", async () => {
    const dom = await lab.domain({ state: "shutoff" });
    const connection = await openForTest();
    const ref = await connection.domainLookupByName(dom.name);
    const uri = "https://example.org/lvsnap-tmp-b/test";
    const element = "<state>a &lt;b&gt; &amp; 'c' \"d\" ../../etc</state>";
    await connection.domainSetMetadata(
      ref,
      DomainMetadataType.ELEMENT,
      element,
      "t",
      uri,
      DomainModificationImpact.CONFIG,
    );
    const ours = await connection.domainGetMetadata(
      ref,
      DomainMetadataType.ELEMENT,
      uri,
      DomainModificationImpact.CONFIG,
    );
    expect(ours).toBe((await virsh("metadata", dom.name, uri, "--config")).trimEnd());
    expect(ours).toContain("a &lt;b&gt; &amp; 'c' \"d\" ../../etc");

    await connection.domainSetMetadata(ref, DomainMetadataType.TITLE, "title <&>", null, null, 0);
    expect(await connection.domainGetMetadata(ref, DomainMetadataType.TITLE, null, 0)).toBe("title <&>");

    await connection.domainSetMetadata(
      ref,
      DomainMetadataType.ELEMENT,
      null,
      null,
      uri,
      DomainModificationImpact.CONFIG,
    );
    const error = await libvirtRejection(
      connection.domainGetMetadata(ref, DomainMetadataType.ELEMENT, uri, DomainModificationImpact.CONFIG),
    );
    expect({ code: error.code, codeName: error.codeName }).toEqual({
      code: 80,
      codeName: "NO_DOMAIN_METADATA",
    });
  });

  test("define (validated) and undefine a domain; it is then NO_DOMAIN", async () => {
    const connection = await openForTest();
    const name = newLabName();
    onTestFinished(() => removeLabDomain(name));
    const xml = `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>`;
    const ref = await connection.domainDefineXMLFlags(xml, DomainDefineFlags.VALIDATE);
    expect(ref).toEqual({ name, uuid: (await virsh("domuuid", name)).trim(), id: -1 });
    const invalid = await libvirtRejection(
      connection.domainDefineXMLFlags("<domain><bogus/></domain>", DomainDefineFlags.VALIDATE),
    );
    expect(invalid.kind).toBe("remote");
    await connection.domainUndefineFlags(
      ref,
      DomainUndefineFlags.SNAPSHOTS_METADATA | DomainUndefineFlags.NVRAM,
    );
    const gone = await libvirtRejection(connection.domainLookupByName(name));
    expect({ code: gone.code, codeName: gone.codeName }).toEqual({ code: 42, codeName: "NO_DOMAIN" });
  });

  test("save image XML matches virsh; restore from it starts the domain paused", async () => {
    const dom = await lab.domain({ state: "running" });
    const connection = await openForTest();
    const file = dom.path("saved.img");
    await virsh("save", dom.name, file);
    const xml = await connection.domainSaveImageGetXMLDesc(file, 0);
    expect(xml.trimEnd()).toBe((await virsh("save-image-dumpxml", file)).trimEnd());
    await connection.domainRestoreFlags(file, null, SaveRestoreFlags.PAUSED);
    expect(await virshState(dom.name)).toBe("paused");
  });
});
