import { afterAll, beforeAll } from "vitest";
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { openLabConnection } from "./delete-support";

/**
 * One connection to the lab's daemon for a whole test file: opened before its first test, closed after its
 * last (also when tests fail). Call once at the top level of the file; the function it returns gives the
 * connection inside tests (and throws outside them, before the connection is open).
 */
export function labConnectionPerFile(): () => LibvirtConnection {
  let connection: LibvirtConnection | undefined;
  beforeAll(async () => {
    connection = await openLabConnection();
  });
  afterAll(() => connection?.close());
  return () => {
    if (connection === undefined)
      throw new Error("the lab connection is open only while the file's tests run");
    return connection;
  };
}
