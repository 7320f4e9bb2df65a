import type { Duplex } from "node:stream";
import type {
  BlockInfo,
  BlockJobEvent,
  BlockJobInfo,
  CallOptions,
  DomainRef,
  DomainStateInfo,
  EventSubscription,
  LibvirtApi,
  LifecycleEvent,
  SnapshotRef,
  StoragePoolRef,
  StorageVolInfo,
  StorageVolRef,
  SubscribeOptions,
} from "./api";
import * as D from "./domain-procedures";
import { type LibvirtError, localError } from "./errors";
import { EventRegistrar } from "./event-registrations";
import { DEFAULT_EVENT_BUFFER, EventHub } from "./events";
import { ErrorCode } from "./flags";
import { DEFAULT_KEEPALIVE, type KeepaliveSettings } from "./keepalive";
import * as P from "./procedures";
import { RpcClient } from "./rpc-client";

/** Options of `LibvirtConnection.open`. */
export interface OpenOptions {
  /** The URI the daemon should open, as sent in CONNECT_OPEN (`qemu:///system`). */
  readonly name: string;
  /** Open read-only (VIR_CONNECT_RO); the daemon then refuses every call that changes state. */
  readonly readonly?: boolean;
  /**
   * Default deadline of every call, handshake included, in milliseconds; long-running state changes (see
   * `Procedure.longRunning`) have none. Default 60 000.
   */
  readonly callTimeoutMs?: number;
  /**
   * Keepalive: ping the daemon after `intervalMs` of silence, declare it dead after `count` unanswered pings
   * (all pending calls then fail). Default `{ intervalMs: 5000, count: 5 }` (libvirt's); `false` disables it.
   */
  readonly keepalive?: KeepaliveSettings | false;
  /** Bound of undelivered events per subscription (see events.ts for the overflow policy). Default 1024. */
  readonly eventBufferSize?: number;
}

const DEFAULT_CALL_TIMEOUT_MS = 60_000;
/** Deadline of the CONNECT_CLOSE courtesy call made by `close()`. */
const CLOSE_TIMEOUT_MS = 2000;

const AUTH_NAMES: Readonly<Record<number, string>> = { 0: "none", 1: "sasl", 2: "polkit" };

/**
 * A connection to a libvirt daemon over an already-open byte stream (unix socket, ssh channel, TLS socket:
 * see open.ts for URIs and transports), implementing the typed calls of `LibvirtApi`.
 *
 * Many calls may be in flight at once; replies are matched by serial. Every call ends: by its reply, its
 * deadline, its AbortSignal, keepalive declaring the daemon dead, or the stream closing. After the stream
 * closes (asked for or not) every call rejects with a LibvirtError of kind `closed` (`protocol` when the
 * daemon sent bytes that broke the protocol) and every event subscription ends with that error.
 */
export class LibvirtConnection implements LibvirtApi {
  private readonly rpc: RpcClient;
  private readonly events = new EventHub();
  private readonly registrar: EventRegistrar;
  /** The close under way or done, once `close()` was called. */
  private closing: Promise<void> | null = null;
  private resolveClosed!: (reason: LibvirtError) => void;
  /** Resolves (never rejects) with the reason once the connection has closed, for whatever reason. */
  readonly whenClosed: Promise<LibvirtError>;

  private constructor(stream: Duplex, options: OpenOptions) {
    this.whenClosed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.rpc = new RpcClient(stream, {
      callTimeoutMs,
      onEvent: (procedure, reader) => this.events.dispatch(procedure, reader),
      onClose: (reason) => {
        this.events.endAll(reason);
        this.resolveClosed(reason);
      },
    });
    const eventBufferSize = options.eventBufferSize ?? DEFAULT_EVENT_BUFFER;
    this.registrar = new EventRegistrar(this.rpc, this.events, eventBufferSize, callTimeoutMs);
  }

  /**
   * Runs libvirt's handshake on `stream` and resolves with an open connection: AUTH_LIST; AUTH_POLKIT when the
   * daemon asks for polkit; then CONNECT_OPEN with `options.name` and, in the same round trip,
   * CONNECT_SUPPORTS_FEATURE(PROGRAM_KEEPALIVE), which also tells the daemon that this client answers pings.
   *
   * Fails with a LibvirtError: kind `auth` (code AUTH_UNAVAILABLE) when the daemon only offers SASL, `remote`
   * when the daemon refuses the open, `timeout` / `closed` / `protocol` otherwise. On failure the stream is
   * destroyed; nothing else is left behind.
   */
  static async open(stream: Duplex, options: OpenOptions): Promise<LibvirtConnection> {
    const connection = new LibvirtConnection(stream, options);
    try {
      await connection.handshake(options);
    } catch (error) {
      connection.rpc.close(
        localError("closed", ErrorCode.NO_CONNECT, "libvirt handshake failed", null, error),
      );
      throw error;
    }
    return connection;
  }

  private async handshake(options: OpenOptions): Promise<void> {
    const offered = await this.rpc.call(P.AUTH_LIST, undefined);
    if (offered.length > 0 && !offered.includes(P.AuthType.NONE)) {
      if (!offered.includes(P.AuthType.POLKIT)) {
        const names = offered.map((type) => AUTH_NAMES[type] ?? `type ${type}`).join(", ");
        throw localError(
          "auth",
          ErrorCode.AUTH_UNAVAILABLE,
          `libvirt daemon requires authentication this client does not support (offered: ${names})`,
          P.AUTH_LIST.name,
        );
      }
      if (!(await this.rpc.call(P.AUTH_POLKIT, undefined))) {
        throw localError(
          "auth",
          ErrorCode.AUTH_FAILED,
          "polkit authentication did not complete",
          P.AUTH_POLKIT.name,
        );
      }
    }
    // Quirk: the daemon answers CONNECT_SUPPORTS_FEATURE(PROGRAM_KEEPALIVE) before its "connection not open"
    // check (remoteDispatchConnectSupportsFeature in libvirt's src/remote/remote_daemon_dispatch.c), though
    // only after AUTH_LIST. So it travels with CONNECT_OPEN: one round trip fewer per open.
    const keepalive = options.keepalive ?? DEFAULT_KEEPALIVE;
    const [, keepaliveSupported] = await Promise.all([
      this.rpc.call(P.CONNECT_OPEN, {
        name: options.name,
        flags: options.readonly ? P.CONNECT_OPEN_READ_ONLY : 0,
      }),
      keepalive === false ? false : this.rpc.call(P.CONNECT_SUPPORTS_FEATURE, P.FEATURE_PROGRAM_KEEPALIVE),
    ]);
    if (keepalive !== false && keepaliveSupported) this.rpc.startKeepalive(keepalive);
  }

  /** Why the connection closed, or null while it is open. */
  get closedReason(): LibvirtError | null {
    return this.rpc.closed;
  }

  connectGetLibVersion(options?: CallOptions): Promise<number> {
    return this.rpc.call(P.CONNECT_GET_LIB_VERSION, undefined, options);
  }
  connectGetCapabilities(options?: CallOptions): Promise<string> {
    return this.rpc.call(P.CONNECT_GET_CAPABILITIES, undefined, options);
  }
  connectGetHostname(options?: CallOptions): Promise<string> {
    return this.rpc.call(P.CONNECT_GET_HOSTNAME, undefined, options);
  }

  connectListAllDomains(flags: number, options?: CallOptions): Promise<DomainRef[]> {
    return this.rpc.call(P.CONNECT_LIST_ALL_DOMAINS, flags, options);
  }
  domainLookupByName(name: string, options?: CallOptions): Promise<DomainRef> {
    return this.rpc.call(D.DOMAIN_LOOKUP_BY_NAME, name, options);
  }
  domainLookupByUUID(uuid: string, options?: CallOptions): Promise<DomainRef> {
    return this.rpc.call(D.DOMAIN_LOOKUP_BY_UUID, uuid, options);
  }
  domainGetXMLDesc(domain: DomainRef, flags: number, options?: CallOptions): Promise<string> {
    return this.rpc.call(D.DOMAIN_GET_XML_DESC, { domain, flags }, options);
  }
  domainGetState(domain: DomainRef, options?: CallOptions): Promise<DomainStateInfo> {
    return this.rpc.call(D.DOMAIN_GET_STATE, { domain, flags: 0 }, options);
  }
  domainDefineXMLFlags(xml: string, flags: number, options?: CallOptions): Promise<DomainRef> {
    return this.rpc.call(D.DOMAIN_DEFINE_XML_FLAGS, { xml, flags }, options);
  }
  domainCreateWithFlags(domain: DomainRef, flags: number, options?: CallOptions): Promise<DomainRef> {
    return this.rpc.call(D.DOMAIN_CREATE_WITH_FLAGS, { domain, flags }, options);
  }
  domainDestroyFlags(domain: DomainRef, flags: number, options?: CallOptions): Promise<void> {
    return this.rpc.call(D.DOMAIN_DESTROY_FLAGS, { domain, flags }, options);
  }
  domainSuspend(domain: DomainRef, options?: CallOptions): Promise<void> {
    return this.rpc.call(D.DOMAIN_SUSPEND, domain, options);
  }
  domainResume(domain: DomainRef, options?: CallOptions): Promise<void> {
    return this.rpc.call(D.DOMAIN_RESUME, domain, options);
  }
  domainUndefineFlags(domain: DomainRef, flags: number, options?: CallOptions): Promise<void> {
    return this.rpc.call(D.DOMAIN_UNDEFINE_FLAGS, { domain, flags }, options);
  }
  domainSetMetadata(
    domain: DomainRef,
    type: number,
    metadata: string | null,
    key: string | null,
    uri: string | null,
    flags: number,
    options?: CallOptions,
  ): Promise<void> {
    return this.rpc.call(D.DOMAIN_SET_METADATA, { domain, type, metadata, key, uri, flags }, options);
  }
  domainGetMetadata(
    domain: DomainRef,
    type: number,
    uri: string | null,
    flags: number,
    options?: CallOptions,
  ): Promise<string> {
    return this.rpc.call(D.DOMAIN_GET_METADATA, { domain, type, uri, flags }, options);
  }

  domainSnapshotCreateXML(
    domain: DomainRef,
    xml: string,
    flags: number,
    options?: CallOptions,
  ): Promise<SnapshotRef> {
    return this.rpc.call(D.DOMAIN_SNAPSHOT_CREATE_XML, { domain, xml, flags }, options);
  }
  domainSnapshotLookupByName(domain: DomainRef, name: string, options?: CallOptions): Promise<SnapshotRef> {
    return this.rpc.call(D.DOMAIN_SNAPSHOT_LOOKUP_BY_NAME, { domain, name }, options);
  }
  domainSnapshotGetXMLDesc(snapshot: SnapshotRef, flags: number, options?: CallOptions): Promise<string> {
    return this.rpc.call(D.DOMAIN_SNAPSHOT_GET_XML_DESC, { snapshot, flags }, options);
  }
  domainListAllSnapshots(domain: DomainRef, flags: number, options?: CallOptions): Promise<SnapshotRef[]> {
    return this.rpc.call(D.DOMAIN_LIST_ALL_SNAPSHOTS, { domain, flags }, options);
  }
  domainSnapshotCurrent(domain: DomainRef, options?: CallOptions): Promise<SnapshotRef> {
    return this.rpc.call(D.DOMAIN_SNAPSHOT_CURRENT, { domain, flags: 0 }, options);
  }
  domainSnapshotDelete(snapshot: SnapshotRef, flags: number, options?: CallOptions): Promise<void> {
    return this.rpc.call(D.DOMAIN_SNAPSHOT_DELETE, { snapshot, flags }, options);
  }
  domainRevertToSnapshot(snapshot: SnapshotRef, flags: number, options?: CallOptions): Promise<void> {
    return this.rpc.call(D.DOMAIN_REVERT_TO_SNAPSHOT, { snapshot, flags }, options);
  }

  domainBlockCommit(
    domain: DomainRef,
    disk: string,
    base: string | null,
    top: string | null,
    bandwidth: bigint,
    flags: number,
    options?: CallOptions,
  ): Promise<void> {
    return this.rpc.call(D.DOMAIN_BLOCK_COMMIT, { domain, disk, base, top, bandwidth, flags }, options);
  }
  domainGetBlockJobInfo(
    domain: DomainRef,
    disk: string,
    options?: CallOptions,
  ): Promise<BlockJobInfo | null> {
    return this.rpc.call(D.DOMAIN_GET_BLOCK_JOB_INFO, { domain, disk, flags: 0 }, options);
  }
  domainBlockJobAbort(domain: DomainRef, disk: string, flags: number, options?: CallOptions): Promise<void> {
    return this.rpc.call(D.DOMAIN_BLOCK_JOB_ABORT, { domain, disk, flags }, options);
  }
  domainGetBlockInfo(domain: DomainRef, disk: string, options?: CallOptions): Promise<BlockInfo> {
    return this.rpc.call(D.DOMAIN_GET_BLOCK_INFO, { domain, disk, flags: 0 }, options);
  }
  domainSaveImageGetXMLDesc(file: string, flags: number, options?: CallOptions): Promise<string> {
    return this.rpc.call(D.DOMAIN_SAVE_IMAGE_GET_XML_DESC, { file, flags }, options);
  }
  domainRestoreFlags(file: string, xml: string | null, flags: number, options?: CallOptions): Promise<void> {
    return this.rpc.call(D.DOMAIN_RESTORE_FLAGS, { file, xml, flags }, options);
  }

  storagePoolCreateXML(xml: string, flags: number, options?: CallOptions): Promise<StoragePoolRef> {
    return this.rpc.call(P.STORAGE_POOL_CREATE_XML, { xml, flags }, options);
  }
  storagePoolDestroy(pool: StoragePoolRef, options?: CallOptions): Promise<void> {
    return this.rpc.call(P.STORAGE_POOL_DESTROY, pool, options);
  }
  storagePoolRefresh(pool: StoragePoolRef, options?: CallOptions): Promise<void> {
    return this.rpc.call(P.STORAGE_POOL_REFRESH, pool, options);
  }
  connectListAllStoragePools(flags: number, options?: CallOptions): Promise<StoragePoolRef[]> {
    return this.rpc.call(P.CONNECT_LIST_ALL_STORAGE_POOLS, flags, options);
  }
  storagePoolGetXMLDesc(pool: StoragePoolRef, flags: number, options?: CallOptions): Promise<string> {
    return this.rpc.call(P.STORAGE_POOL_GET_XML_DESC, { pool, flags }, options);
  }
  storageVolLookupByPath(path: string, options?: CallOptions): Promise<StorageVolRef> {
    return this.rpc.call(P.STORAGE_VOL_LOOKUP_BY_PATH, path, options);
  }
  storageVolGetInfo(volume: StorageVolRef, options?: CallOptions): Promise<StorageVolInfo> {
    return this.rpc.call(P.STORAGE_VOL_GET_INFO, volume, options);
  }
  storageVolDelete(volume: StorageVolRef, flags: number, options?: CallOptions): Promise<void> {
    return this.rpc.call(P.STORAGE_VOL_DELETE, { volume, flags }, options);
  }

  subscribeBlockJobEvents(
    domain: DomainRef | null,
    listener: (event: BlockJobEvent) => void,
    options?: SubscribeOptions,
  ): Promise<EventSubscription> {
    return this.registrar.subscribe(P.DomainEventId.BLOCK_JOB_2, domain, listener, options);
  }
  subscribeLifecycleEvents(
    domain: DomainRef | null,
    listener: (event: LifecycleEvent) => void,
    options?: SubscribeOptions,
  ): Promise<EventSubscription> {
    return this.registrar.subscribe(P.DomainEventId.LIFECYCLE, domain, listener, options);
  }

  /**
   * Closes the connection: a CONNECT_CLOSE courtesy call (short deadline, failure ignored), then the stream is
   * destroyed. From the moment it is called, new calls reject with kind `closed` (code INVALID_CONN) without
   * being sent; calls still pending when the stream is destroyed reject the same way; subscriptions end.
   * Idempotent: every call returns the same promise, which never rejects.
   */
  close(): Promise<void> {
    this.closing ??= this.rpc.closeAfter(
      P.CONNECT_CLOSE,
      CLOSE_TIMEOUT_MS,
      localError("closed", ErrorCode.INVALID_CONN, "libvirt connection closed by the client"),
    );
    return this.closing;
  }
}
