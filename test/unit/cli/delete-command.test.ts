import { expect, test, vi } from "vitest";
import { deleteCommand } from "../../../cli/commands/delete";
import type { DeleteResult } from "../../../provider/engine/delete";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";

const KEPT =
  "kept merged overlay /images/vda.s1.qcow2: domain clone-1 still uses it; remove it once nothing uses it any more";

// The engine stands in with a delete that kept a file another domain uses.
vi.mock("../../../provider/engine/delete", () => ({
  deleteSnapshot: async (): Promise<DeleteResult> => ({
    domain: "web1",
    snapshot: "s1",
    outcome: "deleted",
    notes: ["merged /images/vda.s1.qcow2 into /images/vda.qcow2"],
    warnings: [KEPT],
  }),
}));

test("delete shows the engine's warnings in the JSON document and as text lines after the notes", async () => {
  const outcome = await deleteCommand(
    {
      connection: async () => ({}) as LibvirtConnection,
      stderr: { isTTY: false, write: () => true },
      signal: new AbortController().signal,
      now: () => new Date(0),
    },
    "web1",
    "s1",
    { strategy: "blockcommit" },
  );
  expect(outcome).toEqual({
    exitCode: 0,
    document: {
      domain: "web1",
      snapshot: "s1",
      outcome: "deleted",
      strategy: "blockcommit",
      recovered: null,
      notes: ["merged /images/vda.s1.qcow2 into /images/vda.qcow2"],
      warnings: [KEPT],
    },
    text: [
      "Deleted snapshot s1 of domain web1 (blockcommit).",
      "  merged /images/vda.s1.qcow2 into /images/vda.qcow2",
      `  warning: ${KEPT}`,
    ].join("\n"),
  });
});
