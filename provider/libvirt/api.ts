/**
 * The typed libvirt calls this project uses, named after the libvirt C API they map to, so that libvirt's own
 * documentation applies to each of them. `LibvirtConnection` implements this interface over libvirt's remote
 * protocol; the engine depends on narrow `Pick<>`s of it, so it can be tested by failing any call.
 *
 * Conventions
 * - Every call accepts `CallOptions` last: a call never waits forever; without options the connection's
 *   default deadline applies, except to the long-running state changes (domainSnapshotCreateXML,
 *   domainSnapshotDelete, domainRevertToSnapshot, domainRestoreFlags, domainBlockJobAbort,
 *   domainCreateWithFlags), which have no default deadline: keepalive detects a dead daemon, and a
 *   `timeoutMs` or AbortSignal given by the caller still applies.
 * - A call given up locally (its deadline passed, its signal aborted) is only given up by this client: the
 *   daemon still carries it out. A state-changing call that rejects with kind `timeout` or `aborted` may
 *   therefore have completed, partly or wholly (a snapshot created, an overlay merged, a job pivoted, a
 *   domain started); the caller must read the state back (look the snapshot up, get the domain's XML or
 *   block job) before retrying or reporting a failure.
 * - Failures reject with a `LibvirtError` (see errors.ts) that keeps everything the daemon sent.
 * - Sizes and offsets are `bigint` where libvirt sends 64-bit values that can exceed 2^53 (job cursors,
 *   capacities); versions and flags are plain numbers.
 */

/** A domain as the daemon identifies it on the wire (`remote_nonnull_domain`). */
export interface DomainRef {
  readonly name: string;
  /** Canonical lower-case form, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. */
  readonly uuid: string;
  /** Hypervisor id while running, -1 otherwise. */
  readonly id: number;
}

/** A snapshot (`remote_nonnull_domain_snapshot`). */
export interface SnapshotRef {
  readonly name: string;
  readonly domain: DomainRef;
}

/** A storage pool (`remote_nonnull_storage_pool`). */
export interface StoragePoolRef {
  readonly name: string;
  readonly uuid: string;
}

/** A storage volume (`remote_nonnull_storage_vol`). */
export interface StorageVolRef {
  readonly pool: string;
  readonly name: string;
  readonly key: string;
}

export interface CallOptions {
  /** Aborting rejects the call at once; the daemon may still complete it. */
  readonly signal?: AbortSignal;
  /**
   * Deadline in milliseconds for this call, overriding the connection's default (and the absence of one for
   * long-running calls). On expiry the call rejects with kind `timeout`; the daemon may still complete it.
   */
  readonly timeoutMs?: number;
}

export interface DomainStateInfo {
  readonly state: DomainState;
  /** Meaning depends on the state (virDomainRunningReason, virDomainShutoffReason, ...). */
  readonly reason: number;
}

/** `virDomainGetBlockJobInfo`: cursor and end are in bytes of the job's own progress scale. */
export interface BlockJobInfo {
  readonly type: BlockJobType;
  /**
   * MiB/s, however the job was started: the unit follows the flags of the info call, and
   * `domainGetBlockJobInfo` never asks for bytes.
   */
  readonly bandwidth: bigint;
  readonly cur: bigint;
  readonly end: bigint;
}

export interface BlockInfo {
  readonly capacity: bigint;
  readonly allocation: bigint;
  readonly physical: bigint;
}

export interface StorageVolInfo {
  readonly type: number;
  readonly capacity: bigint;
  readonly allocation: bigint;
}

export const DomainState = {
  NOSTATE: 0,
  RUNNING: 1,
  BLOCKED: 2,
  PAUSED: 3,
  SHUTDOWN: 4,
  SHUTOFF: 5,
  CRASHED: 6,
  PMSUSPENDED: 7,
} as const;
export type DomainState = (typeof DomainState)[keyof typeof DomainState];

export const BlockJobType = {
  UNKNOWN: 0,
  PULL: 1,
  COPY: 2,
  COMMIT: 3,
  ACTIVE_COMMIT: 4,
  BACKUP: 5,
} as const;
export type BlockJobType = (typeof BlockJobType)[keyof typeof BlockJobType];

export const BlockJobStatus = {
  COMPLETED: 0,
  FAILED: 1,
  CANCELED: 2,
  READY: 3,
} as const;
export type BlockJobStatus = (typeof BlockJobStatus)[keyof typeof BlockJobStatus];

/** VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2: the disk is named by its target (`vda`), not by path. */
export interface BlockJobEvent {
  readonly domain: DomainRef;
  readonly disk: string;
  readonly type: BlockJobType;
  readonly status: BlockJobStatus;
}

/** VIR_DOMAIN_EVENT_ID_LIFECYCLE. `event` is virDomainEventType (STARTED 2, STOPPED 5, ...). */
export interface LifecycleEvent {
  readonly domain: DomainRef;
  readonly event: number;
  readonly detail: number;
}

/**
 * A live event registration. Events are delivered to the listener in order, on a later turn of the event loop
 * than their arrival (reply routing never waits for a listener); a listener that throws does not stop delivery.
 * `close()` stops delivery at once and unregisters on the daemon (idempotent). A lost connection, or a listener
 * that falls more than the connection's event buffer behind, ends the subscription and calls
 * `SubscribeOptions.onEnd` with the reason.
 */
export interface EventSubscription {
  close(options?: CallOptions): Promise<void>;
}

/** Options of the subscribe calls: the registration call's options, plus how to learn that delivery ended. */
export interface SubscribeOptions extends CallOptions {
  /**
   * Called once if the subscription ends without `close()`: the LibvirtError says why (kind `closed` for a
   * lost connection, kind `overflow` (code OVERFLOW) for a listener that fell behind; the connection
   * stays open). No event is delivered after it.
   */
  readonly onEnd?: (reason: Error) => void;
}

export interface LibvirtApi {
  connectGetLibVersion(options?: CallOptions): Promise<number>;
  connectGetCapabilities(options?: CallOptions): Promise<string>;
  connectGetHostname(options?: CallOptions): Promise<string>;

  /** Active and inactive domains; `flags` 0 lists all (virConnectListAllDomainsFlags filter them). */
  connectListAllDomains(flags: number, options?: CallOptions): Promise<DomainRef[]>;
  domainLookupByName(name: string, options?: CallOptions): Promise<DomainRef>;
  domainLookupByUUID(uuid: string, options?: CallOptions): Promise<DomainRef>;
  domainGetXMLDesc(domain: DomainRef, flags: number, options?: CallOptions): Promise<string>;
  domainGetState(domain: DomainRef, options?: CallOptions): Promise<DomainStateInfo>;
  domainDefineXMLFlags(xml: string, flags: number, options?: CallOptions): Promise<DomainRef>;
  domainCreateWithFlags(domain: DomainRef, flags: number, options?: CallOptions): Promise<DomainRef>;
  domainDestroyFlags(domain: DomainRef, flags: number, options?: CallOptions): Promise<void>;
  domainSuspend(domain: DomainRef, options?: CallOptions): Promise<void>;
  domainResume(domain: DomainRef, options?: CallOptions): Promise<void>;
  domainUndefineFlags(domain: DomainRef, flags: number, options?: CallOptions): Promise<void>;
  /** `metadata` null removes the element. `type` is DomainMetadataType. */
  domainSetMetadata(
    domain: DomainRef,
    type: number,
    metadata: string | null,
    key: string | null,
    uri: string | null,
    flags: number,
    options?: CallOptions,
  ): Promise<void>;
  /** Rejects with NO_DOMAIN_METADATA (80) when the element is absent. */
  domainGetMetadata(
    domain: DomainRef,
    type: number,
    uri: string | null,
    flags: number,
    options?: CallOptions,
  ): Promise<string>;

  domainSnapshotCreateXML(
    domain: DomainRef,
    xml: string,
    flags: number,
    options?: CallOptions,
  ): Promise<SnapshotRef>;
  domainSnapshotLookupByName(domain: DomainRef, name: string, options?: CallOptions): Promise<SnapshotRef>;
  domainSnapshotGetXMLDesc(snapshot: SnapshotRef, flags: number, options?: CallOptions): Promise<string>;
  domainListAllSnapshots(domain: DomainRef, flags: number, options?: CallOptions): Promise<SnapshotRef[]>;
  /** Rejects with NO_DOMAIN_SNAPSHOT (72) when there is no current snapshot. */
  domainSnapshotCurrent(domain: DomainRef, options?: CallOptions): Promise<SnapshotRef>;
  domainSnapshotDelete(snapshot: SnapshotRef, flags: number, options?: CallOptions): Promise<void>;
  domainRevertToSnapshot(snapshot: SnapshotRef, flags: number, options?: CallOptions): Promise<void>;

  /** `bandwidth` is MiB/s unless flags include BANDWIDTH_BYTES. `base`/`top` null: libvirt's defaults. */
  domainBlockCommit(
    domain: DomainRef,
    disk: string,
    base: string | null,
    top: string | null,
    bandwidth: bigint,
    flags: number,
    options?: CallOptions,
  ): Promise<void>;
  /** null when no job runs on the disk. */
  domainGetBlockJobInfo(domain: DomainRef, disk: string, options?: CallOptions): Promise<BlockJobInfo | null>;
  domainBlockJobAbort(domain: DomainRef, disk: string, flags: number, options?: CallOptions): Promise<void>;
  domainGetBlockInfo(domain: DomainRef, disk: string, options?: CallOptions): Promise<BlockInfo>;
  domainSaveImageGetXMLDesc(file: string, flags: number, options?: CallOptions): Promise<string>;
  domainRestoreFlags(file: string, xml: string | null, flags: number, options?: CallOptions): Promise<void>;

  storagePoolCreateXML(xml: string, flags: number, options?: CallOptions): Promise<StoragePoolRef>;
  storagePoolDestroy(pool: StoragePoolRef, options?: CallOptions): Promise<void>;
  storagePoolRefresh(pool: StoragePoolRef, options?: CallOptions): Promise<void>;
  connectListAllStoragePools(flags: number, options?: CallOptions): Promise<StoragePoolRef[]>;
  storagePoolGetXMLDesc(pool: StoragePoolRef, flags: number, options?: CallOptions): Promise<string>;
  storageVolLookupByPath(path: string, options?: CallOptions): Promise<StorageVolRef>;
  storageVolGetInfo(volume: StorageVolRef, options?: CallOptions): Promise<StorageVolInfo>;
  storageVolDelete(volume: StorageVolRef, flags: number, options?: CallOptions): Promise<void>;

  /** Registers for block-job-2 events of one domain, or of all domains when `domain` is null. */
  subscribeBlockJobEvents(
    domain: DomainRef | null,
    listener: (event: BlockJobEvent) => void,
    options?: SubscribeOptions,
  ): Promise<EventSubscription>;
  subscribeLifecycleEvents(
    domain: DomainRef | null,
    listener: (event: LifecycleEvent) => void,
    options?: SubscribeOptions,
  ): Promise<EventSubscription>;

  close(): Promise<void>;
}
