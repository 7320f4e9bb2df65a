import type { BlockInfo, BlockJobType, DomainRef, DomainState, DomainStateInfo, SnapshotRef } from "./api";
import { LONG_RUNNING, noReply, procedure, readString, writeName, writeXmlFlags } from "./procedures";
import {
  MIN_SNAPSHOT_BYTES,
  readDomain,
  readSnapshot,
  UUID_BYTES,
  uuidToBytes,
  writeDomain,
  writeSnapshot,
} from "./wire-types";
import type { XdrReader, XdrWriter } from "./xdr";

/**
 * The domain, snapshot and block-job procedures of libvirt's remote program (see procedures.ts for the shape
 * of a definition), written from src/remote/remote_protocol.x. No I/O.
 */

interface DomainFlags {
  readonly domain: DomainRef;
  readonly flags: number;
}
interface SnapshotFlags {
  readonly snapshot: SnapshotRef;
  readonly flags: number;
}
interface DiskArgs {
  readonly domain: DomainRef;
  readonly disk: string;
  readonly flags: number;
}

const writeDomainFlags = (w: XdrWriter, a: DomainFlags): void => {
  writeDomain(w, a.domain);
  w.uint(a.flags);
};
const writeDomainOnly = (w: XdrWriter, a: DomainRef): void => writeDomain(w, a);
const writeSnapshotFlags = (w: XdrWriter, a: SnapshotFlags): void => {
  writeSnapshot(w, a.snapshot);
  w.uint(a.flags);
};
const writeDiskArgs = (w: XdrWriter, a: DiskArgs): void => {
  writeDomain(w, a.domain);
  w.string(a.disk);
  w.uint(a.flags);
};
const readSnapshotList = (r: XdrReader): SnapshotRef[] => {
  const snapshots = r.array(readSnapshot, MIN_SNAPSHOT_BYTES);
  r.int(); // the count again, as the C API's return value
  return snapshots;
};

// Domains.
export const DOMAIN_LOOKUP_BY_NAME = procedure(23, "DOMAIN_LOOKUP_BY_NAME", writeName, readDomain);
export const DOMAIN_LOOKUP_BY_UUID = procedure(
  24,
  "DOMAIN_LOOKUP_BY_UUID",
  (w, uuid: string) => w.fixedOpaque(uuidToBytes(uuid), UUID_BYTES),
  readDomain,
);
export const DOMAIN_GET_XML_DESC = procedure(14, "DOMAIN_GET_XML_DESC", writeDomainFlags, readString);
export const DOMAIN_GET_STATE = procedure(
  212,
  "DOMAIN_GET_STATE",
  writeDomainFlags,
  (r): DomainStateInfo => ({ state: r.int() as DomainState, reason: r.int() }),
);
export const DOMAIN_DEFINE_XML_FLAGS = procedure(350, "DOMAIN_DEFINE_XML_FLAGS", writeXmlFlags, readDomain);
export const DOMAIN_CREATE_WITH_FLAGS = procedure(
  196,
  "DOMAIN_CREATE_WITH_FLAGS",
  writeDomainFlags,
  readDomain,
  LONG_RUNNING, // starts QEMU, or restores a managed save image
);
export const DOMAIN_DESTROY_FLAGS = procedure(234, "DOMAIN_DESTROY_FLAGS", writeDomainFlags, noReply);
export const DOMAIN_SUSPEND = procedure(34, "DOMAIN_SUSPEND", writeDomainOnly, noReply);
export const DOMAIN_RESUME = procedure(28, "DOMAIN_RESUME", writeDomainOnly, noReply);
export const DOMAIN_UNDEFINE_FLAGS = procedure(231, "DOMAIN_UNDEFINE_FLAGS", writeDomainFlags, noReply);
export const DOMAIN_SET_METADATA = procedure(
  264,
  "DOMAIN_SET_METADATA",
  (
    w,
    a: {
      readonly domain: DomainRef;
      readonly type: number;
      readonly metadata: string | null;
      readonly key: string | null;
      readonly uri: string | null;
      readonly flags: number;
    },
  ) => {
    writeDomain(w, a.domain);
    w.int(a.type);
    w.optionalString(a.metadata);
    w.optionalString(a.key);
    w.optionalString(a.uri);
    w.uint(a.flags);
  },
  noReply,
);
export const DOMAIN_GET_METADATA = procedure(
  265,
  "DOMAIN_GET_METADATA",
  (
    w,
    a: {
      readonly domain: DomainRef;
      readonly type: number;
      readonly uri: string | null;
      readonly flags: number;
    },
  ) => {
    writeDomain(w, a.domain);
    w.int(a.type);
    w.optionalString(a.uri);
    w.uint(a.flags);
  },
  readString,
);

// Snapshots.
export const DOMAIN_SNAPSHOT_CREATE_XML = procedure(
  185,
  "DOMAIN_SNAPSHOT_CREATE_XML",
  (w, a: { readonly domain: DomainRef; readonly xml: string; readonly flags: number }) => {
    writeDomain(w, a.domain);
    w.string(a.xml);
    w.uint(a.flags);
  },
  readSnapshot,
  LONG_RUNNING, // a memory snapshot writes the guest's RAM
);
export const DOMAIN_SNAPSHOT_LOOKUP_BY_NAME = procedure(
  189,
  "DOMAIN_SNAPSHOT_LOOKUP_BY_NAME",
  (w, a: { readonly domain: DomainRef; readonly name: string }) => {
    writeDomain(w, a.domain);
    w.string(a.name);
    w.uint(0);
  },
  readSnapshot,
);
export const DOMAIN_SNAPSHOT_GET_XML_DESC = procedure(
  186,
  "DOMAIN_SNAPSHOT_GET_XML_DESC",
  writeSnapshotFlags,
  readString,
);
export const DOMAIN_LIST_ALL_SNAPSHOTS = procedure(
  274,
  "DOMAIN_LIST_ALL_SNAPSHOTS",
  (w, a: DomainFlags) => {
    writeDomain(w, a.domain);
    w.int(1); // need_results
    w.uint(a.flags);
  },
  readSnapshotList,
);
export const DOMAIN_SNAPSHOT_CURRENT = procedure(
  191,
  "DOMAIN_SNAPSHOT_CURRENT",
  writeDomainFlags,
  readSnapshot,
);
// libvirt >= 9.0 merges an external snapshot's overlay (a block commit) inside this call.
export const DOMAIN_SNAPSHOT_DELETE = procedure(
  193,
  "DOMAIN_SNAPSHOT_DELETE",
  writeSnapshotFlags,
  noReply,
  LONG_RUNNING,
);
export const DOMAIN_REVERT_TO_SNAPSHOT = procedure(
  192,
  "DOMAIN_REVERT_TO_SNAPSHOT",
  writeSnapshotFlags,
  noReply,
  LONG_RUNNING, // loads a memory snapshot's RAM
);

// Block jobs and disks.
export const DOMAIN_BLOCK_COMMIT = procedure(
  290,
  "DOMAIN_BLOCK_COMMIT",
  (
    w,
    a: {
      readonly domain: DomainRef;
      readonly disk: string;
      readonly base: string | null;
      readonly top: string | null;
      readonly bandwidth: bigint;
      readonly flags: number;
    },
  ) => {
    writeDomain(w, a.domain);
    w.string(a.disk);
    w.optionalString(a.base);
    w.optionalString(a.top);
    w.uhyper(a.bandwidth);
    w.uint(a.flags);
  },
  noReply,
);
export const DOMAIN_GET_BLOCK_JOB_INFO = procedure(238, "DOMAIN_GET_BLOCK_JOB_INFO", writeDiskArgs, (r) => {
  const found = r.int() !== 0;
  const type = r.int() as BlockJobType;
  const bandwidth = r.uhyper();
  const cur = r.uhyper();
  const end = r.uhyper();
  return found ? { type, bandwidth, cur, end } : null;
});
// Without the ASYNC flag the call waits for the job to end: a pivot, or a cancel draining in-flight writes.
export const DOMAIN_BLOCK_JOB_ABORT = procedure(
  237,
  "DOMAIN_BLOCK_JOB_ABORT",
  writeDiskArgs,
  noReply,
  LONG_RUNNING,
);
export const DOMAIN_GET_BLOCK_INFO = procedure(
  194,
  "DOMAIN_GET_BLOCK_INFO",
  writeDiskArgs,
  (r): BlockInfo => {
    const allocation = r.uhyper();
    const capacity = r.uhyper();
    return { capacity, allocation, physical: r.uhyper() };
  },
);
export const DOMAIN_SAVE_IMAGE_GET_XML_DESC = procedure(
  235,
  "DOMAIN_SAVE_IMAGE_GET_XML_DESC",
  (w, a: { readonly file: string; readonly flags: number }) => {
    w.string(a.file);
    w.uint(a.flags);
  },
  readString,
);
export const DOMAIN_RESTORE_FLAGS = procedure(
  233,
  "DOMAIN_RESTORE_FLAGS",
  (w, a: { readonly file: string; readonly xml: string | null; readonly flags: number }) => {
    w.string(a.file);
    w.optionalString(a.xml);
    w.uint(a.flags);
  },
  noReply,
  LONG_RUNNING, // reads the guest's RAM back and starts it
);
