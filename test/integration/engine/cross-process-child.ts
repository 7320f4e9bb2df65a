/**
 * Child process of cross-process.test.ts: an operation of another process that is still running. It runs an
 * operation on `<domain>` whose libvirt connection stops answering for good right before one call, after the
 * operation recorded itself on the domain, prints `{"event":"hang","pid":<its pid>}` and waits there until the
 * parent kills it.
 * - `delete <snapshot>`: hangs before the block commit (the journal says the disk is merging);
 * - `revert <snapshot>`: hangs before the domain's definition is switched to the new overlays (the revert
 *   record says defining; the overlays exist).
 * Usage: `npx tsx cross-process-child.ts <domain> <operation> <snapshot>`.
 */
import { deleteSnapshot } from "../../../provider/engine/delete";
import { revertSnapshot } from "../../../provider/engine/revert";
import { openLabConnection } from "./delete-support";

const [domain = "", operation = "", snapshot = ""] = process.argv.slice(2);

function hangsBefore(call: string, args: readonly unknown[]): boolean {
  if (operation === "delete") return call === "domainBlockCommit";
  return call === "domainDefineXMLFlags" && String(args[0]).includes(`<name>${domain}</name>`);
}

async function main(): Promise<void> {
  const conn = await openLabConnection();
  const port = new Proxy(conn, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (!hangsBefore(String(property), args)) return value.apply(target, args);
        process.stdout.write(`${JSON.stringify({ event: "hang", pid: process.pid })}\n`);
        return new Promise(() => undefined);
      };
    },
  });
  if (operation === "delete") await deleteSnapshot(port, domain, snapshot);
  else if (operation === "revert") await revertSnapshot(port, domain, snapshot);
  else throw new Error(`unknown operation ${operation}`);
  throw new Error(`the ${operation} finished before the point where it should hang`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
