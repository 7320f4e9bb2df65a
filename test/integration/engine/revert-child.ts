/**
 * Child process of the revert crash test: reverts `<domain>` to `<snapshot>` and kills itself with SIGKILL
 * right after one chosen libvirt call returned, so the revert stops at a known point with no cleanup at all.
 * Usage: `npx tsx revert-child.ts <domain> <snapshot> <helper-overlays|user-define>`.
 */
import { revertSnapshot } from "../../../provider/engine/revert";
import { HELPER_DOMAIN_PREFIX } from "../../../provider/engine/revert-recipe";
import type { DomainRef } from "../../../provider/libvirt/api";
import { openLabConnection } from "./delete-support";

async function main(): Promise<void> {
  const [domain, snapshot, point] = process.argv.slice(2);
  if (domain === undefined || snapshot === undefined || point === undefined)
    throw new Error("missing arguments");
  const conn = await openLabConnection();
  const die = () => process.kill(process.pid, "SIGKILL");
  const port = new Proxy(conn, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        const result = await value.apply(target, args);
        const ref = args[0] as DomainRef;
        if (
          point === "helper-overlays" &&
          key === "domainSnapshotCreateXML" &&
          ref.name.startsWith(HELPER_DOMAIN_PREFIX)
        )
          die();
        if (
          point === "user-define" &&
          key === "domainDefineXMLFlags" &&
          String(args[0]).includes(`<name>${domain}</name>`)
        )
          die();
        return result;
      };
    },
  });
  await revertSnapshot(port, domain, snapshot);
  throw new Error("the revert finished before the chosen point");
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
