import type {
  BlockInfo,
  BlockJobType,
  DomainRef,
  DomainState,
  DomainStateInfo,
  SnapshotRef,
  StoragePoolRef,
  StorageVolInfo,
  StorageVolRef,
} from "./api";
import {
  MIN_POOL_BYTES,
  MIN_SNAPSHOT_BYTES,
  readDomain,
  readPool,
  readSnapshot,
  readVolume,
  UUID_BYTES,
  uuidToBytes,
  writeDomain,
  writeOptionalDomain,
  writePool,
  writeSnapshot,
  writeVolume,
} from "./wire-types";
import type { XdrReader, XdrWriter } from "./xdr";

/**
 * The procedures of libvirt's remote program that this client calls: number, libvirt's name (without
 * `REMOTE_PROC_`), and typed encoders of `remote_<name>_args` / decoders of `remote_<name>_ret`, written from
 * src/remote/remote_protocol.x. Procedures never see frames or sockets. No I/O.
 */
export interface Procedure<A, R> {
  readonly number: number;
  readonly name: string;
  readonly encode: (writer: XdrWriter, args: A) => void;
  readonly decode: (reader: XdrReader) => R;
}

function procedure<A, R>(
  number: number,
  name: string,
  encode: (writer: XdrWriter, args: A) => void,
  decode: (reader: XdrReader) => R,
): Procedure<A, R> {
  return { number, name, encode, decode };
}

const noArgs = (_writer: XdrWriter, _args: undefined): void => {};
const noReply = (_reader: XdrReader): void => {};
const readString = (reader: XdrReader): string => reader.string();
const readInt = (reader: XdrReader): number => reader.int();
/** Versions travel as unsigned hyper but are small (major * 1e6 + minor * 1e3 + micro). */
const readVersion = (reader: XdrReader): number => Number(reader.uhyper());

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
const writeXmlFlags = (w: XdrWriter, a: { readonly xml: string; readonly flags: number }): void => {
  w.string(a.xml);
  w.uint(a.flags);
};
const writeName = (w: XdrWriter, name: string): void => w.string(name);
const readSnapshotList = (r: XdrReader): SnapshotRef[] => {
  const snapshots = r.array(readSnapshot, MIN_SNAPSHOT_BYTES);
  r.int(); // the count again, as the C API's return value
  return snapshots;
};
const writeFreezeArgs = (
  w: XdrWriter,
  a: { readonly domain: DomainRef; readonly mountpoints: string[] },
): void => {
  writeDomain(w, a.domain);
  w.stringArray(a.mountpoints);
  w.uint(0);
};

// Connection and authentication.
export const AUTH_LIST = procedure(66, "AUTH_LIST", noArgs, (r) => r.array(readInt, 4));
export const AUTH_POLKIT = procedure(70, "AUTH_POLKIT", noArgs, (r) => r.int() !== 0);
export const CONNECT_OPEN = procedure(
  1,
  "CONNECT_OPEN",
  (w, a: { readonly name: string | null; readonly flags: number }) => {
    w.optionalString(a.name);
    w.uint(a.flags);
  },
  noReply,
);
export const CONNECT_CLOSE = procedure(2, "CONNECT_CLOSE", noArgs, noReply);
export const CONNECT_SUPPORTS_FEATURE = procedure(
  60,
  "CONNECT_SUPPORTS_FEATURE",
  (w, feature: number) => w.int(feature),
  (r) => r.int() !== 0,
);
export const CONNECT_GET_LIB_VERSION = procedure(157, "CONNECT_GET_LIB_VERSION", noArgs, readVersion);
export const CONNECT_GET_VERSION = procedure(4, "CONNECT_GET_VERSION", noArgs, readVersion);
export const CONNECT_GET_CAPABILITIES = procedure(7, "CONNECT_GET_CAPABILITIES", noArgs, readString);
export const CONNECT_GET_HOSTNAME = procedure(59, "CONNECT_GET_HOSTNAME", noArgs, readString);

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
export const DOMAIN_SNAPSHOT_LIST_ALL_CHILDREN = procedure(
  275,
  "DOMAIN_SNAPSHOT_LIST_ALL_CHILDREN",
  (w, a: SnapshotFlags) => {
    writeSnapshot(w, a.snapshot);
    w.int(1); // need_results
    w.uint(a.flags);
  },
  readSnapshotList,
);
export const DOMAIN_SNAPSHOT_GET_PARENT = procedure(
  244,
  "DOMAIN_SNAPSHOT_GET_PARENT",
  writeSnapshotFlags,
  readSnapshot,
);
export const DOMAIN_SNAPSHOT_CURRENT = procedure(
  191,
  "DOMAIN_SNAPSHOT_CURRENT",
  writeDomainFlags,
  readSnapshot,
);
export const DOMAIN_SNAPSHOT_DELETE = procedure(193, "DOMAIN_SNAPSHOT_DELETE", writeSnapshotFlags, noReply);
export const DOMAIN_REVERT_TO_SNAPSHOT = procedure(
  192,
  "DOMAIN_REVERT_TO_SNAPSHOT",
  writeSnapshotFlags,
  noReply,
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
export const DOMAIN_BLOCK_JOB_ABORT = procedure(237, "DOMAIN_BLOCK_JOB_ABORT", writeDiskArgs, noReply);
export const DOMAIN_BLOCK_JOB_SET_SPEED = procedure(
  239,
  "DOMAIN_BLOCK_JOB_SET_SPEED",
  (w, a: DiskArgs & { readonly bandwidth: bigint }) => {
    writeDomain(w, a.domain);
    w.string(a.disk);
    w.uhyper(a.bandwidth);
    w.uint(a.flags);
  },
  noReply,
);
export const DOMAIN_BLOCK_REBASE = procedure(
  266,
  "DOMAIN_BLOCK_REBASE",
  (w, a: DiskArgs & { readonly base: string | null; readonly bandwidth: bigint }) => {
    writeDomain(w, a.domain);
    w.string(a.disk);
    w.optionalString(a.base);
    w.uhyper(a.bandwidth);
    w.uint(a.flags);
  },
  noReply,
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
export const DOMAIN_FSFREEZE = procedure(335, "DOMAIN_FSFREEZE", writeFreezeArgs, readInt);
export const DOMAIN_FSTHAW = procedure(336, "DOMAIN_FSTHAW", writeFreezeArgs, readInt);
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
);

// Storage.
export const STORAGE_POOL_LOOKUP_BY_NAME = procedure(84, "STORAGE_POOL_LOOKUP_BY_NAME", writeName, readPool);
export const STORAGE_POOL_LOOKUP_BY_VOLUME = procedure(
  86,
  "STORAGE_POOL_LOOKUP_BY_VOLUME",
  writeVolume,
  readPool,
);
export const STORAGE_POOL_CREATE_XML = procedure(76, "STORAGE_POOL_CREATE_XML", writeXmlFlags, readPool);
export const STORAGE_POOL_DESTROY = procedure(80, "STORAGE_POOL_DESTROY", writePool, noReply);
export const STORAGE_POOL_REFRESH = procedure(
  83,
  "STORAGE_POOL_REFRESH",
  (w, pool: StoragePoolRef) => {
    writePool(w, pool);
    w.uint(0);
  },
  noReply,
);
export const CONNECT_LIST_ALL_STORAGE_POOLS = procedure(
  281,
  "CONNECT_LIST_ALL_STORAGE_POOLS",
  (w, flags: number) => {
    w.int(1); // need_results
    w.uint(flags);
  },
  (r) => {
    const pools = r.array(readPool, MIN_POOL_BYTES);
    r.uint(); // the count again
    return pools;
  },
);
export const STORAGE_POOL_GET_XML_DESC = procedure(
  88,
  "STORAGE_POOL_GET_XML_DESC",
  (w, a: { readonly pool: StoragePoolRef; readonly flags: number }) => {
    writePool(w, a.pool);
    w.uint(a.flags);
  },
  readString,
);
export const STORAGE_VOL_LOOKUP_BY_PATH = procedure(97, "STORAGE_VOL_LOOKUP_BY_PATH", writeName, readVolume);
export const STORAGE_VOL_GET_INFO = procedure(
  98,
  "STORAGE_VOL_GET_INFO",
  writeVolume,
  (r): StorageVolInfo => {
    const type = r.int(); // XDR encodes the C `char` as a full int
    const capacity = r.uhyper();
    return { type, capacity, allocation: r.uhyper() };
  },
);
export const STORAGE_VOL_DELETE = procedure(
  94,
  "STORAGE_VOL_DELETE",
  (w, a: { readonly volume: StorageVolRef; readonly flags: number }) => {
    writeVolume(w, a.volume);
    w.uint(a.flags);
  },
  noReply,
);

// Events.
export const CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY = procedure(
  316,
  "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY",
  (w, a: { readonly eventId: number; readonly domain: DomainRef | null }) => {
    w.int(a.eventId);
    writeOptionalDomain(w, a.domain);
  },
  readInt,
);
export const CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY = procedure(
  317,
  "CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY",
  (w, callbackId: number) => w.int(callbackId),
  noReply,
);

/** Procedure numbers of the event messages the client decodes (events.ts). */
export const EventProcedure = {
  DOMAIN_EVENT_CALLBACK_LIFECYCLE: 318,
  DOMAIN_EVENT_BLOCK_JOB_2: 339,
} as const;

/** virDomainEventID values of the events the client subscribes to. */
export const DomainEventId = { LIFECYCLE: 0, BLOCK_JOB_2: 16 } as const;

/** VIR_DRV_FEATURE_PROGRAM_KEEPALIVE: asking for it also tells the daemon that we answer its pings. */
export const FEATURE_PROGRAM_KEEPALIVE = 10;

/** VIR_CONNECT_RO, the CONNECT_OPEN flag of a read-only connection. */
export const CONNECT_OPEN_READ_ONLY = 1;

/** REMOTE_AUTH_* values of AUTH_LIST. */
export const AuthType = { NONE: 0, SASL: 1, POLKIT: 2 } as const;
