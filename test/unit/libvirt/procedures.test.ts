import { describe, expect, it } from "vitest";
import * as D from "../../../provider/libvirt/domain-procedures";
import type { Procedure } from "../../../provider/libvirt/procedures";
import * as P from "../../../provider/libvirt/procedures";
import { XdrReader, XdrWriter } from "../../../provider/libvirt/xdr";
import { type Bytes, cat, domain, i32, optStr, str, u32, u64, uuid } from "./support/wire-bytes";

/**
 * The procedure table against libvirt's src/remote/remote_protocol.x: for every procedure this client calls,
 * the REMOTE_PROC_* number, the bytes of `remote_<name>_args` (built here field by field, independently of
 * the client's codec) and the decoding of `remote_<name>_ret` bytes. The numbers and field orders below are
 * facts read from remote_protocol.x, recorded as data.
 */

const UUID_A = "11111111-2222-3333-4444-555555555555";
const UUID_P = "99999999-8888-7777-6666-555555555555";
const vm = { name: "vm", uuid: UUID_A, id: 3 };
const snap = { name: "s1", domain: vm };
const pool = { name: "p", uuid: UUID_P };
const vol = { pool: "p", name: "d.qcow2", key: "/p/d.qcow2" };

// remote_nonnull_* references, built from their .x field lists.
const vmBytes = domain("vm", UUID_A, 3);
const snapBytes = cat(str("s1"), vmBytes); // { name; dom }
const poolBytes = cat(str("p"), uuid(UUID_P)); // { name; uuid }
const volBytes = cat(str("p"), str("d.qcow2"), str("/p/d.qcow2")); // { pool; name; key }

interface Row {
  // biome-ignore lint/suspicious/noExplicitAny: a table of procedures with different argument and result types
  readonly procedure: Procedure<any, any>;
  /** REMOTE_PROC_<name> in remote_protocol.x. */
  readonly number: number;
  readonly args: unknown;
  /** `remote_<name>_args` as wire bytes; empty for a procedure without arguments. */
  readonly argBytes: Bytes;
  /** `remote_<name>_ret` as wire bytes; empty for a procedure without a return value. */
  readonly retBytes: Bytes;
  readonly decoded: unknown;
}

// biome-ignore format: one procedure per row reads better
const TABLE: readonly Row[] = [
  { procedure: P.CONNECT_OPEN, number: 1, args: { name: "qemu:///system", flags: 1 }, argBytes: cat(optStr("qemu:///system"), u32(1)), retBytes: [], decoded: undefined },
  { procedure: P.CONNECT_CLOSE, number: 2, args: undefined, argBytes: [], retBytes: [], decoded: undefined },
  { procedure: P.CONNECT_GET_CAPABILITIES, number: 7, args: undefined, argBytes: [], retBytes: str("<capabilities/>"), decoded: "<capabilities/>" },
  { procedure: P.CONNECT_GET_HOSTNAME, number: 59, args: undefined, argBytes: [], retBytes: str("h"), decoded: "h" },
  { procedure: P.CONNECT_SUPPORTS_FEATURE, number: 60, args: 10, argBytes: i32(10), retBytes: i32(1), decoded: true },
  { procedure: P.AUTH_LIST, number: 66, args: undefined, argBytes: [], retBytes: cat(u32(2), i32(0), i32(2)), decoded: [0, 2] },
  { procedure: P.AUTH_POLKIT, number: 70, args: undefined, argBytes: [], retBytes: i32(1), decoded: true },
  { procedure: P.CONNECT_GET_LIB_VERSION, number: 157, args: undefined, argBytes: [], retBytes: u64(9_000_000n), decoded: 9_000_000 },
  // { int need_results; unsigned int flags; } -> { remote_nonnull_domain domains<>; unsigned int ret; }
  { procedure: P.CONNECT_LIST_ALL_DOMAINS, number: 273, args: 3, argBytes: cat(i32(1), u32(3)), retBytes: cat(u32(1), vmBytes, u32(1)), decoded: [vm] },
  { procedure: P.STORAGE_POOL_CREATE_XML, number: 76, args: { xml: "<pool/>", flags: 0 }, argBytes: cat(str("<pool/>"), u32(0)), retBytes: poolBytes, decoded: pool },
  { procedure: P.STORAGE_POOL_DESTROY, number: 80, args: pool, argBytes: poolBytes, retBytes: [], decoded: undefined },
  { procedure: P.STORAGE_POOL_REFRESH, number: 83, args: pool, argBytes: cat(poolBytes, u32(0)), retBytes: [], decoded: undefined },
  { procedure: P.STORAGE_POOL_GET_XML_DESC, number: 88, args: { pool, flags: 1 }, argBytes: cat(poolBytes, u32(1)), retBytes: str("<pool/>"), decoded: "<pool/>" },
  { procedure: P.CONNECT_LIST_ALL_STORAGE_POOLS, number: 281, args: 2, argBytes: cat(i32(1), u32(2)), retBytes: cat(u32(1), poolBytes, u32(1)), decoded: [pool] },
  { procedure: P.STORAGE_VOL_DELETE, number: 94, args: { volume: vol, flags: 0 }, argBytes: cat(volBytes, u32(0)), retBytes: [], decoded: undefined },
  { procedure: P.STORAGE_VOL_LOOKUP_BY_PATH, number: 97, args: "/p/d.qcow2", argBytes: str("/p/d.qcow2"), retBytes: volBytes, decoded: vol },
  // { char type; unsigned hyper capacity; unsigned hyper allocation; }: XDR carries the char as an int.
  { procedure: P.STORAGE_VOL_GET_INFO, number: 98, args: vol, argBytes: volBytes, retBytes: cat(i32(0), u64(1024n), u64(512n)), decoded: { type: 0, capacity: 1024n, allocation: 512n } },
  // { int eventID; remote_domain dom; } -> { int callbackID; }
  { procedure: P.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, number: 316, args: { eventId: 16, domain: vm }, argBytes: cat(i32(16), u32(1), vmBytes), retBytes: i32(7), decoded: 7 },
  { procedure: P.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, number: 317, args: 7, argBytes: i32(7), retBytes: [], decoded: undefined },

  { procedure: D.DOMAIN_GET_XML_DESC, number: 14, args: { domain: vm, flags: 2 }, argBytes: cat(vmBytes, u32(2)), retBytes: str("<domain/>"), decoded: "<domain/>" },
  { procedure: D.DOMAIN_LOOKUP_BY_NAME, number: 23, args: "vm", argBytes: str("vm"), retBytes: vmBytes, decoded: vm },
  { procedure: D.DOMAIN_LOOKUP_BY_UUID, number: 24, args: UUID_A, argBytes: uuid(UUID_A), retBytes: vmBytes, decoded: vm },
  { procedure: D.DOMAIN_RESUME, number: 28, args: vm, argBytes: vmBytes, retBytes: [], decoded: undefined },
  { procedure: D.DOMAIN_SUSPEND, number: 34, args: vm, argBytes: vmBytes, retBytes: [], decoded: undefined },
  { procedure: D.DOMAIN_SNAPSHOT_CREATE_XML, number: 185, args: { domain: vm, xml: "<domainsnapshot/>", flags: 16 }, argBytes: cat(vmBytes, str("<domainsnapshot/>"), u32(16)), retBytes: snapBytes, decoded: snap },
  { procedure: D.DOMAIN_SNAPSHOT_GET_XML_DESC, number: 186, args: { snapshot: snap, flags: 1 }, argBytes: cat(snapBytes, u32(1)), retBytes: str("<domainsnapshot/>"), decoded: "<domainsnapshot/>" },
  { procedure: D.DOMAIN_SNAPSHOT_LOOKUP_BY_NAME, number: 189, args: { domain: vm, name: "s1" }, argBytes: cat(vmBytes, str("s1"), u32(0)), retBytes: snapBytes, decoded: snap },
  { procedure: D.DOMAIN_SNAPSHOT_CURRENT, number: 191, args: { domain: vm, flags: 0 }, argBytes: cat(vmBytes, u32(0)), retBytes: snapBytes, decoded: snap },
  { procedure: D.DOMAIN_REVERT_TO_SNAPSHOT, number: 192, args: { snapshot: snap, flags: 4 }, argBytes: cat(snapBytes, u32(4)), retBytes: [], decoded: undefined },
  { procedure: D.DOMAIN_SNAPSHOT_DELETE, number: 193, args: { snapshot: snap, flags: 2 }, argBytes: cat(snapBytes, u32(2)), retBytes: [], decoded: undefined },
  // { remote_nonnull_domain dom; remote_nonnull_string path; unsigned int flags; } -> { allocation; capacity; physical; }
  { procedure: D.DOMAIN_GET_BLOCK_INFO, number: 194, args: { domain: vm, disk: "vda", flags: 0 }, argBytes: cat(vmBytes, str("vda"), u32(0)), retBytes: cat(u64(1n), u64(2n), u64(3n)), decoded: { allocation: 1n, capacity: 2n, physical: 3n } },
  { procedure: D.DOMAIN_CREATE_WITH_FLAGS, number: 196, args: { domain: vm, flags: 1 }, argBytes: cat(vmBytes, u32(1)), retBytes: vmBytes, decoded: vm },
  { procedure: D.DOMAIN_GET_STATE, number: 212, args: { domain: vm, flags: 0 }, argBytes: cat(vmBytes, u32(0)), retBytes: cat(i32(3), i32(1)), decoded: { state: 3, reason: 1 } },
  { procedure: D.DOMAIN_UNDEFINE_FLAGS, number: 231, args: { domain: vm, flags: 3 }, argBytes: cat(vmBytes, u32(3)), retBytes: [], decoded: undefined },
  // { remote_nonnull_string from; remote_string dxml; unsigned int flags; }
  { procedure: D.DOMAIN_RESTORE_FLAGS, number: 233, args: { file: "/m.mem", xml: null, flags: 4 }, argBytes: cat(str("/m.mem"), optStr(null), u32(4)), retBytes: [], decoded: undefined },
  { procedure: D.DOMAIN_DESTROY_FLAGS, number: 234, args: { domain: vm, flags: 0 }, argBytes: cat(vmBytes, u32(0)), retBytes: [], decoded: undefined },
  { procedure: D.DOMAIN_SAVE_IMAGE_GET_XML_DESC, number: 235, args: { file: "/m.mem", flags: 1 }, argBytes: cat(str("/m.mem"), u32(1)), retBytes: str("<domain/>"), decoded: "<domain/>" },
  { procedure: D.DOMAIN_BLOCK_JOB_ABORT, number: 237, args: { domain: vm, disk: "vda", flags: 2 }, argBytes: cat(vmBytes, str("vda"), u32(2)), retBytes: [], decoded: undefined },
  // -> { int found; int type; unsigned hyper bandwidth; unsigned hyper cur; unsigned hyper end; }
  { procedure: D.DOMAIN_GET_BLOCK_JOB_INFO, number: 238, args: { domain: vm, disk: "vda", flags: 0 }, argBytes: cat(vmBytes, str("vda"), u32(0)), retBytes: cat(i32(1), i32(4), u64(5n), u64(6n), u64(7n)), decoded: { type: 4, bandwidth: 5n, cur: 6n, end: 7n } },
  // { dom; int type; remote_string metadata; remote_string key; remote_string uri; unsigned int flags; }
  { procedure: D.DOMAIN_SET_METADATA, number: 264, args: { domain: vm, type: 2, metadata: "<m/>", key: "k", uri: "urn:x", flags: 1 }, argBytes: cat(vmBytes, i32(2), optStr("<m/>"), optStr("k"), optStr("urn:x"), u32(1)), retBytes: [], decoded: undefined },
  { procedure: D.DOMAIN_GET_METADATA, number: 265, args: { domain: vm, type: 2, uri: "urn:x", flags: 0 }, argBytes: cat(vmBytes, i32(2), optStr("urn:x"), u32(0)), retBytes: str("<m/>"), decoded: "<m/>" },
  // { dom; int need_results; unsigned int flags; } -> { remote_nonnull_domain_snapshot snapshots<>; int ret; }
  { procedure: D.DOMAIN_LIST_ALL_SNAPSHOTS, number: 274, args: { domain: vm, flags: 1024 }, argBytes: cat(vmBytes, i32(1), u32(1024)), retBytes: cat(u32(1), snapBytes, i32(1)), decoded: [snap] },
  // { dom; disk; remote_string base; remote_string top; unsigned hyper bandwidth; unsigned int flags; }
  { procedure: D.DOMAIN_BLOCK_COMMIT, number: 290, args: { domain: vm, disk: "vda", base: "vda[1]", top: null, bandwidth: 8n, flags: 4 }, argBytes: cat(vmBytes, str("vda"), optStr("vda[1]"), optStr(null), u64(8n), u32(4)), retBytes: [], decoded: undefined },
  { procedure: D.DOMAIN_DEFINE_XML_FLAGS, number: 350, args: { xml: "<domain/>", flags: 0 }, argBytes: cat(str("<domain/>"), u32(0)), retBytes: vmBytes, decoded: vm },
];

const hex = (bytes: Bytes | Buffer): string => Buffer.from(bytes).toString("hex");

describe("procedure table agrees with remote_protocol.x", () => {
  it.each(TABLE.map((row) => [row.procedure.name, row] as const))("%s", (_name, row) => {
    const writer = new XdrWriter();
    row.procedure.encode(writer, row.args);
    const reader = new XdrReader(Buffer.from(row.retBytes));
    const decoded = row.procedure.decode(reader);
    expect({
      number: row.procedure.number,
      args: hex(writer.toBuffer()),
      decoded,
      left: reader.remaining,
    }).toEqual({
      number: row.number,
      args: hex(row.argBytes),
      decoded: row.decoded,
      left: 0,
    });
  });

  it("every procedure the client defines has a row", () => {
    const defined = [...Object.values(P), ...Object.values(D)]
      .filter(
        (value): value is Procedure<unknown, unknown> =>
          typeof value === "object" && value !== null && "encode" in value,
      )
      .map((procedure) => procedure.name)
      .sort();
    expect(defined).toEqual(TABLE.map((row) => row.procedure.name).sort());
  });

  it("event message numbers", () => {
    expect(P.EventProcedure).toEqual({ DOMAIN_EVENT_CALLBACK_LIFECYCLE: 318, DOMAIN_EVENT_BLOCK_JOB_2: 339 });
  });
});
