/**
 * Child process of the revert crash tests: runs an operation on `<domain>` and kills itself with SIGKILL right
 * after one chosen libvirt call returned, so the operation stops at a known point with no cleanup at all.
 * Operations: `revert` (default) and `revert-discard` revert to `<snapshot>` (the latter with discardNewer);
 * `preview-commit` previews `<snapshot>` and then commits the preview. Points: `helper-overlays` (the helper
 * created the overlays), `user-define` (the user's domain was redefined), `snapshot-delete` (the first
 * snapshot metadata was deleted).
 * Usage: `npx tsx revert-child.ts <domain> <snapshot> <point> [operation]`.
 */
import { commitPreview, previewSnapshot } from "../../../provider/engine/preview";
import { revertSnapshot } from "../../../provider/engine/revert";
import { HELPER_DOMAIN_PREFIX } from "../../../provider/engine/revert-recipe";
import type { DomainRef } from "../../../provider/libvirt/api";
import { openLabConnection } from "./delete-support";

async function main(): Promise<void> {
  const [domain, snapshot, point, operation = "revert"] = process.argv.slice(2);
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
        if (point === "snapshot-delete" && key === "domainSnapshotDelete") die();
        return result;
      };
    },
  });
  if (operation === "preview-commit") {
    await previewSnapshot(port, domain, snapshot);
    await commitPreview(port, domain);
  } else {
    await revertSnapshot(port, domain, snapshot, { discardNewer: operation === "revert-discard" });
  }
  throw new Error(`the ${operation} finished before the chosen point`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
