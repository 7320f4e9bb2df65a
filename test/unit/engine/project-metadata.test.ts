import { describe, expect, test } from "vitest";
import { ownerStamp } from "../../../provider/engine/operation-owner";
import {
  projectMetadataOwner,
  readProjectMetadata,
  writeProjectMetadata,
} from "../../../provider/engine/project-metadata";
import type { DomainRef, DomainStateInfo } from "../../../provider/libvirt/api";
import { DomainState } from "../../../provider/libvirt/api";
import { DomainMetadataType, DomainModificationImpact, ErrorCode } from "../../../provider/libvirt/flags";
import { libvirtError } from "./fake-libvirt";

const ref: DomainRef = { name: "d", uuid: "u", id: 1 };
const NS = "https://pulumi-libvirt-snapshot.dev/xmlns/v1";

function port(state: number, refuse: (flags: number) => number | undefined = () => undefined) {
  const sets: unknown[][] = [];
  return {
    sets,
    domainGetState: async (): Promise<DomainStateInfo> => ({
      state: state as DomainStateInfo["state"],
      reason: 0,
    }),
    domainGetMetadata: async (): Promise<string> => {
      throw libvirtError(ErrorCode.NO_DOMAIN_METADATA, "none");
    },
    domainSetMetadata: async (...args: unknown[]) => {
      const code = refuse(args[5] as number);
      if (code !== undefined) throw libvirtError(code, "refused");
      sets.push(args.slice(1));
    },
  };
}

describe("project metadata on the domain", () => {
  test.each([
    ["running", DomainState.RUNNING, [DomainModificationImpact.LIVE | DomainModificationImpact.CONFIG]],
    ["paused", DomainState.PAUSED, [DomainModificationImpact.LIVE | DomainModificationImpact.CONFIG]],
    ["shut off", DomainState.SHUTOFF, [DomainModificationImpact.CONFIG]],
    [
      "crashed and kept (on_crash=preserve)",
      DomainState.CRASHED,
      [DomainModificationImpact.LIVE | DomainModificationImpact.CONFIG],
    ],
  ])("%s: written to the definitions that exist", async (_what, state, flags) => {
    const p = port(state);
    await writeProjectMetadata(p, ref, "<state/>");
    const stamped = `<state owner="${ownerStamp()}"/>`;
    expect(p.sets).toEqual(flags.map((f) => [DomainMetadataType.ELEMENT, stamped, "lvsnap", NS, f]));
  });

  test("a transient domain (no persistent definition) gets the live one only", async () => {
    const p = port(DomainState.RUNNING, (flags) =>
      flags & DomainModificationImpact.CONFIG ? ErrorCode.OPERATION_INVALID : undefined,
    );
    await writeProjectMetadata(p, ref, null);
    expect(p.sets).toEqual([[DomainMetadataType.ELEMENT, null, "lvsnap", NS, DomainModificationImpact.LIVE]]);
  });

  test("other refusals are not swallowed; absent metadata reads as undefined", async () => {
    const p = port(DomainState.RUNNING, () => ErrorCode.OPERATION_FAILED);
    await expect(writeProjectMetadata(p, ref, "<state/>")).rejects.toMatchObject({
      code: ErrorCode.OPERATION_FAILED,
    });
    expect(await readProjectMetadata(p, ref)).toBeUndefined();
  });

  test("every write stamps this process as the owner, replacing the stamp the document had", async () => {
    const p = port(DomainState.SHUTOFF);
    await writeProjectMetadata(p, ref, '<state owner="pid=1 host=elsewhere"><journal version="1"/></state>');
    expect(p.sets).toEqual([
      [
        DomainMetadataType.ELEMENT,
        `<state owner="${ownerStamp()}"><journal version="1"/></state>`,
        "lvsnap",
        NS,
        DomainModificationImpact.CONFIG,
      ],
    ]);
  });

  test("the owner of a document: as written, with or without the namespace prefix, or undefined", () => {
    const stamp = "pid=12 host=h%20x";
    expect([
      projectMetadataOwner(`<state owner="${stamp}"><snapshot name="s"/></state>`),
      projectMetadataOwner(`<lvsnap:state xmlns:lvsnap="${NS}" owner="${stamp}"/>`),
      projectMetadataOwner("<state/>"),
      projectMetadataOwner(undefined),
      projectMetadataOwner(""),
    ]).toEqual([stamp, stamp, undefined, undefined, undefined]);
    expect(() => projectMetadataOwner("<state")).toThrow(/malformed/);
  });
});
