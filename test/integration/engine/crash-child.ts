/**
 * Child process of crash.test.ts: deletes one snapshot with the blockcommit strategy and prints what happens as
 * JSON lines, so the parent can SIGKILL it at a chosen moment. `hangAt` makes the run stop for good right
 * before one call (the parent then kills it there, deterministically):
 *   commit       before the block commit is started (the journal already says the disk is merging)
 *   pivot        before the pivot of a READY active commit (the journal says pivoting)
 *   metadata     before the snapshot's metadata is deleted (chains merged)
 *   none         run on; the parent kills on progress
 * Besides progress it reports `pool` once its transient pool for file removal exists: the delete prepares that
 * pool in the background, so without the event the parent could not know whether a kill came before or after.
 * Usage: tsx crash-child.ts <domain> <snapshot> <bandwidth bytes/s> <hangAt>
 */
import { deleteSnapshot } from "../../../provider/engine/delete";
import { BlockJobAbortFlags } from "../../../provider/libvirt/flags";
import { openLabConnection } from "./delete-support";

const [domain = "", snapshot = "", bandwidth = "0", hangAt = "none"] = process.argv.slice(2);
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

function hangsBefore(call: string, args: unknown[]): boolean {
  if (hangAt === "commit") return call === "domainBlockCommit";
  if (hangAt === "pivot")
    return call === "domainBlockJobAbort" && (Number(args[2]) & BlockJobAbortFlags.PIVOT) !== 0;
  if (hangAt === "metadata") return call === "domainSnapshotDelete";
  return false;
}

async function main(): Promise<void> {
  const conn = await openLabConnection();
  const port = new Proxy(conn, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (hangsBefore(String(property), args)) {
          say({ event: "hang", at: hangAt });
          return new Promise(() => undefined);
        }
        const result = value.apply(target, args);
        if (property === "storagePoolCreateXML") {
          return (result as Promise<unknown>).then((pool) => {
            say({ event: "pool" });
            return pool;
          });
        }
        return result;
      };
    },
  });
  await deleteSnapshot(port, domain, snapshot, {
    bandwidthBytesPerSecond: Number(bandwidth),
    onProgress: (p) => say({ event: "progress", done: p.bytesDone, total: p.bytesTotal }),
  });
  say({ event: "done" });
  await conn.close();
}

main().catch((e: unknown) => {
  say({ event: "error", message: String(e) });
  process.exit(1);
});
