import { expect, test } from "vitest";
import { createSnapshot } from "../../../provider/engine/create";
import { getSnapshot } from "../../../provider/engine/inspect";
import { revertSnapshot } from "../../../provider/engine/revert";
import { lab } from "../../support/lab";
import { labConnectionPerFile } from "./lab-connection";

const conn = labConnectionPerFile();

test("a revert to the newest snapshot gives it the revert overlays and its record follows them", async () => {
  const dom = await lab.domain({ disks: [{ sizeMiB: 16 }], state: "shutoff" });
  await createSnapshot(conn(), { domain: dom.name, name: "s1", quiesce: "off" });
  const created = await createSnapshot(conn(), { domain: dom.name, name: "s2", quiesce: "off" });
  const recorded = { quiesced: created.quiesced, quiesceNote: created.quiesceNote };
  expect(recorded.quiesced).toBe(false);

  const reverted = await revertSnapshot(conn(), dom.name, "s2");
  const overlay = dom.path("vda.s2.revert-1.qcow2");
  expect(reverted.overlays.map((o) => o.path)).toEqual([overlay]);

  const { snapshot } = await getSnapshot(conn(), dom.name, "s2");
  // The snapshot now owns the revert overlay (it is merged away with it) and is still known as the engine's.
  expect([snapshot.disks.map((d) => d.overlay.path), snapshot.quiesced, snapshot.quiesceNote]).toEqual([
    [overlay],
    recorded.quiesced,
    recorded.quiesceNote,
  ]);
});
