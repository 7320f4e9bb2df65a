/**
 * Child process of the preview integration test: starts a preview of `<snapshot>` on `<domain>`, prints
 * `previewing <saved snapshot>` and then waits until it is killed, so the test can kill it without any
 * cleanup and finish the preview from another process. Usage: `npx tsx preview-child.ts <domain> <snapshot>`.
 */
import { previewSnapshot } from "../../../provider/engine/preview";
import { openLabConnection } from "./delete-support";

async function main(): Promise<void> {
  const [domain, snapshot] = process.argv.slice(2);
  if (domain === undefined || snapshot === undefined)
    throw new Error("usage: preview-child.ts <domain> <snapshot>");
  const conn = await openLabConnection();
  const result = await previewSnapshot(conn, domain, snapshot);
  process.stdout.write(`previewing ${result.preview.saved}\n`);
  setInterval(() => undefined, 60_000);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
