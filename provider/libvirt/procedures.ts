import type { DomainRef, StoragePoolRef, StorageVolInfo, StorageVolRef } from "./api";
import {
  MIN_DOMAIN_BYTES,
  MIN_POOL_BYTES,
  readDomain,
  readPool,
  readVolume,
  writeOptionalDomain,
  writePool,
  writeVolume,
} from "./wire-types";
import type { XdrReader, XdrWriter } from "./xdr";

/**
 * The procedures of libvirt's remote program that this client calls: number, libvirt's name (without
 * `REMOTE_PROC_`), and typed encoders of `remote_<name>_args` / decoders of `remote_<name>_ret`, written from
 * src/remote/remote_protocol.x. Procedures never see frames or sockets. No I/O. The domain, snapshot and
 * block-job procedures are in domain-procedures.ts.
 */
export interface Procedure<A, R> {
  readonly number: number;
  readonly name: string;
  readonly encode: (writer: XdrWriter, args: A) => void;
  readonly decode: (reader: XdrReader) => R;
  /**
   * A state change the daemon may spend minutes on (a memory snapshot, a merge inside a snapshot delete, a
   * restore, a pivot). Such a call gets no default deadline: a deadline passing would report a failure while
   * the daemon still completes the change. Keepalive still detects a dead daemon, and a caller's own
   * `timeoutMs` or AbortSignal still applies.
   */
  readonly longRunning: boolean;
}

/** Builds a procedure definition; `longRunning` as in `Procedure`, default false. */
export function procedure<A, R>(
  number: number,
  name: string,
  encode: (writer: XdrWriter, args: A) => void,
  decode: (reader: XdrReader) => R,
  options: { readonly longRunning?: boolean } = {},
): Procedure<A, R> {
  return { number, name, encode, decode, longRunning: options.longRunning ?? false };
}

/** The option of `procedure` that marks a long-running state change. */
export const LONG_RUNNING = { longRunning: true } as const;

/** Encoder of a procedure without arguments. */
export const noArgs = (_writer: XdrWriter, _args: undefined): void => {};
/** Decoder of a procedure without a return value. */
export const noReply = (_reader: XdrReader): void => {};
/** Decoder of a `remote_nonnull_string` return value. */
export const readString = (reader: XdrReader): string => reader.string();
/** Decoder of an `int` return value. */
export const readInt = (reader: XdrReader): number => reader.int();
/** Versions travel as unsigned hyper but are small (major * 1e6 + minor * 1e3 + micro). */
const readVersion = (reader: XdrReader): number => Number(reader.uhyper());
/** Encoder of `{ remote_nonnull_string xml; unsigned int flags; }`. */
export const writeXmlFlags = (w: XdrWriter, a: { readonly xml: string; readonly flags: number }): void => {
  w.string(a.xml);
  w.uint(a.flags);
};
/** Encoder of a single `remote_nonnull_string` argument. */
export const writeName = (w: XdrWriter, name: string): void => w.string(name);

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
export const CONNECT_GET_CAPABILITIES = procedure(7, "CONNECT_GET_CAPABILITIES", noArgs, readString);
export const CONNECT_GET_HOSTNAME = procedure(59, "CONNECT_GET_HOSTNAME", noArgs, readString);
export const CONNECT_LIST_ALL_DOMAINS = procedure(
  273,
  "CONNECT_LIST_ALL_DOMAINS",
  (w, flags: number) => {
    w.int(1); // need_results
    w.uint(flags);
  },
  (r) => {
    const domains = r.array(readDomain, MIN_DOMAIN_BYTES);
    r.uint(); // the count again
    return domains;
  },
);

// Storage.
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
