/**
 * Flag and code values of the libvirt C API, as `as const` objects with value-union types (no `enum`: exported
 * const enums break file-by-file builds and Node's type stripping). Names drop libvirt's prefix:
 * `VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY` is `SnapshotCreateFlags.DISK_ONLY`. Values are part of libvirt's stable
 * ABI (include/libvirt/libvirt-domain.h, libvirt-domain-snapshot.h, libvirt-storage.h, virterror.h), so they
 * are valid for every libvirt version that knows the flag; older daemons reject unknown flags with
 * INVALID_ARG or ARGUMENT_UNSUPPORTED.
 *
 * Combine flags with `|`; every typed call takes the combined number.
 */

type ValueOf<T> = T[keyof T];

/** virDomainXMLFlags, for `domainGetXMLDesc`. */
export const DomainXMLFlags = {
  SECURE: 1 << 0,
  INACTIVE: 1 << 1,
  UPDATE_CPU: 1 << 2,
  MIGRATABLE: 1 << 3,
} as const;
export type DomainXMLFlags = ValueOf<typeof DomainXMLFlags>;

/** virDomainSnapshotCreateFlags, for `domainSnapshotCreateXML`. */
export const SnapshotCreateFlags = {
  REDEFINE: 1 << 0,
  CURRENT: 1 << 1,
  NO_METADATA: 1 << 2,
  HALT: 1 << 3,
  DISK_ONLY: 1 << 4,
  REUSE_EXT: 1 << 5,
  QUIESCE: 1 << 6,
  ATOMIC: 1 << 7,
  LIVE: 1 << 8,
  VALIDATE: 1 << 9,
} as const;
export type SnapshotCreateFlags = ValueOf<typeof SnapshotCreateFlags>;

/** virDomainSnapshotDeleteFlags, for `domainSnapshotDelete`. */
export const SnapshotDeleteFlags = {
  CHILDREN: 1 << 0,
  METADATA_ONLY: 1 << 1,
  CHILDREN_ONLY: 1 << 2,
} as const;
export type SnapshotDeleteFlags = ValueOf<typeof SnapshotDeleteFlags>;

/**
 * virDomainSnapshotListFlags, for `domainListAllSnapshots`. ROOTS and DESCENDANTS share bit 0: ROOTS for a
 * domain-wide list, DESCENDANTS for a children list (virDomainSnapshotListAllChildren, not used here).
 */
export const SnapshotListFlags = {
  ROOTS: 1 << 0,
  DESCENDANTS: 1 << 0,
  METADATA: 1 << 1,
  LEAVES: 1 << 2,
  NO_LEAVES: 1 << 3,
  NO_METADATA: 1 << 4,
  INACTIVE: 1 << 5,
  ACTIVE: 1 << 6,
  DISK_ONLY: 1 << 7,
  INTERNAL: 1 << 8,
  EXTERNAL: 1 << 9,
  TOPOLOGICAL: 1 << 10,
} as const;
export type SnapshotListFlags = ValueOf<typeof SnapshotListFlags>;

/** virDomainSnapshotXMLFlags, for `domainSnapshotGetXMLDesc`. */
export const SnapshotXMLFlags = { SECURE: 1 << 0 } as const;
export type SnapshotXMLFlags = ValueOf<typeof SnapshotXMLFlags>;

/** virDomainSnapshotRevertFlags, for `domainRevertToSnapshot`. */
export const SnapshotRevertFlags = {
  RUNNING: 1 << 0,
  PAUSED: 1 << 1,
  FORCE: 1 << 2,
  RESET_NVRAM: 1 << 3,
} as const;
export type SnapshotRevertFlags = ValueOf<typeof SnapshotRevertFlags>;

/** virDomainBlockCommitFlags, for `domainBlockCommit`. Bandwidth is MiB/s unless BANDWIDTH_BYTES. */
export const BlockCommitFlags = {
  SHALLOW: 1 << 0,
  DELETE: 1 << 1,
  ACTIVE: 1 << 2,
  RELATIVE: 1 << 3,
  BANDWIDTH_BYTES: 1 << 4,
} as const;
export type BlockCommitFlags = ValueOf<typeof BlockCommitFlags>;

/** virDomainBlockJobAbortFlags: PIVOT finishes a READY copy/active commit; without it the job is cancelled. */
export const BlockJobAbortFlags = { ASYNC: 1 << 0, PIVOT: 1 << 1 } as const;
export type BlockJobAbortFlags = ValueOf<typeof BlockJobAbortFlags>;

/** virDomainUndefineFlagsValues: a domain with snapshot metadata needs SNAPSHOTS_METADATA to be undefined. */
export const DomainUndefineFlags = {
  MANAGED_SAVE: 1 << 0,
  SNAPSHOTS_METADATA: 1 << 1,
  NVRAM: 1 << 2,
  KEEP_NVRAM: 1 << 3,
  CHECKPOINTS_METADATA: 1 << 4,
  TPM: 1 << 5,
  KEEP_TPM: 1 << 6,
} as const;
export type DomainUndefineFlags = ValueOf<typeof DomainUndefineFlags>;

/** virDomainCreateFlags, for `domainCreateWithFlags`. */
export const DomainCreateFlags = {
  NONE: 0,
  START_PAUSED: 1 << 0,
  START_AUTODESTROY: 1 << 1,
  START_BYPASS_CACHE: 1 << 2,
  START_FORCE_BOOT: 1 << 3,
  START_VALIDATE: 1 << 4,
  START_RESET_NVRAM: 1 << 5,
} as const;
export type DomainCreateFlags = ValueOf<typeof DomainCreateFlags>;

/** virDomainDestroyFlagsValues, for `domainDestroyFlags`. */
export const DomainDestroyFlags = { DEFAULT: 0, GRACEFUL: 1 << 0, REMOVE_LOGS: 1 << 1 } as const;
export type DomainDestroyFlags = ValueOf<typeof DomainDestroyFlags>;

/** virDomainMetadataType, the `type` argument of `domainSetMetadata` / `domainGetMetadata`. */
export const DomainMetadataType = { DESCRIPTION: 0, TITLE: 1, ELEMENT: 2 } as const;
export type DomainMetadataType = ValueOf<typeof DomainMetadataType>;

/** virDomainModificationImpact: which definition a change applies to (metadata, block job speed, ...). */
export const DomainModificationImpact = { CURRENT: 0, LIVE: 1 << 0, CONFIG: 1 << 1 } as const;
export type DomainModificationImpact = ValueOf<typeof DomainModificationImpact>;

/** virDomainSaveRestoreFlags, for `domainRestoreFlags` and `domainSaveImageGetXMLDesc`. */
export const SaveRestoreFlags = {
  BYPASS_CACHE: 1 << 0,
  RUNNING: 1 << 1,
  PAUSED: 1 << 2,
  RESET_NVRAM: 1 << 3,
} as const;
export type SaveRestoreFlags = ValueOf<typeof SaveRestoreFlags>;

/** virDomainDefineFlags, for `domainDefineXMLFlags`. */
export const DomainDefineFlags = { VALIDATE: 1 << 0 } as const;
export type DomainDefineFlags = ValueOf<typeof DomainDefineFlags>;

/** virDomainEventType: the `event` of a LifecycleEvent. */
export const DomainEventType = {
  DEFINED: 0,
  UNDEFINED: 1,
  STARTED: 2,
  SUSPENDED: 3,
  RESUMED: 4,
  STOPPED: 5,
  SHUTDOWN: 6,
  PMSUSPENDED: 7,
  CRASHED: 8,
} as const;
export type DomainEventType = ValueOf<typeof DomainEventType>;

/** virStorageVolDeleteFlags, for `storageVolDelete`. */
export const StorageVolDeleteFlags = { NORMAL: 0, ZEROED: 1 << 0, WITH_SNAPSHOTS: 1 << 1 } as const;
export type StorageVolDeleteFlags = ValueOf<typeof StorageVolDeleteFlags>;

/** virConnectListAllStoragePoolsFlags (the filters used here), for `connectListAllStoragePools`. */
export const ListStoragePoolsFlags = {
  INACTIVE: 1 << 0,
  ACTIVE: 1 << 1,
  PERSISTENT: 1 << 2,
  TRANSIENT: 1 << 3,
  AUTOSTART: 1 << 4,
  NO_AUTOSTART: 1 << 5,
  DIR: 1 << 6,
} as const;
export type ListStoragePoolsFlags = ValueOf<typeof ListStoragePoolsFlags>;

/** virStorageVolType: the `type` of StorageVolInfo. */
export const StorageVolType = { FILE: 0, BLOCK: 1, DIR: 2, NETWORK: 3, NETDIR: 4, PLOOP: 5 } as const;
export type StorageVolType = ValueOf<typeof StorageVolType>;

/**
 * virErrorNumber: the `code` of a LibvirtError. Stable numbers; names as in virterror.h without `VIR_ERR_`
 * (the VIR_WAR_* warnings keep a `WAR_` prefix).
 */
export const ErrorCode = {
  OK: 0,
  INTERNAL_ERROR: 1,
  NO_MEMORY: 2,
  NO_SUPPORT: 3,
  UNKNOWN_HOST: 4,
  NO_CONNECT: 5,
  INVALID_CONN: 6,
  INVALID_DOMAIN: 7,
  INVALID_ARG: 8,
  OPERATION_FAILED: 9,
  GET_FAILED: 10,
  POST_FAILED: 11,
  HTTP_ERROR: 12,
  SEXPR_SERIAL: 13,
  NO_XEN: 14,
  XEN_CALL: 15,
  OS_TYPE: 16,
  NO_KERNEL: 17,
  NO_ROOT: 18,
  NO_SOURCE: 19,
  NO_TARGET: 20,
  NO_NAME: 21,
  NO_OS: 22,
  NO_DEVICE: 23,
  NO_XENSTORE: 24,
  DRIVER_FULL: 25,
  CALL_FAILED: 26,
  XML_ERROR: 27,
  DOM_EXIST: 28,
  OPERATION_DENIED: 29,
  OPEN_FAILED: 30,
  READ_FAILED: 31,
  PARSE_FAILED: 32,
  CONF_SYNTAX: 33,
  WRITE_FAILED: 34,
  XML_DETAIL: 35,
  INVALID_NETWORK: 36,
  NETWORK_EXIST: 37,
  SYSTEM_ERROR: 38,
  RPC: 39,
  GNUTLS_ERROR: 40,
  WAR_NO_NETWORK: 41,
  NO_DOMAIN: 42,
  NO_NETWORK: 43,
  INVALID_MAC: 44,
  AUTH_FAILED: 45,
  INVALID_STORAGE_POOL: 46,
  INVALID_STORAGE_VOL: 47,
  WAR_NO_STORAGE: 48,
  NO_STORAGE_POOL: 49,
  NO_STORAGE_VOL: 50,
  WAR_NO_NODE: 51,
  INVALID_NODE_DEVICE: 52,
  NO_NODE_DEVICE: 53,
  NO_SECURITY_MODEL: 54,
  OPERATION_INVALID: 55,
  WAR_NO_INTERFACE: 56,
  NO_INTERFACE: 57,
  INVALID_INTERFACE: 58,
  MULTIPLE_INTERFACES: 59,
  WAR_NO_NWFILTER: 60,
  INVALID_NWFILTER: 61,
  NO_NWFILTER: 62,
  BUILD_FIREWALL: 63,
  WAR_NO_SECRET: 64,
  INVALID_SECRET: 65,
  NO_SECRET: 66,
  CONFIG_UNSUPPORTED: 67,
  OPERATION_TIMEOUT: 68,
  MIGRATE_PERSIST_FAILED: 69,
  HOOK_SCRIPT_FAILED: 70,
  INVALID_DOMAIN_SNAPSHOT: 71,
  NO_DOMAIN_SNAPSHOT: 72,
  INVALID_STREAM: 73,
  ARGUMENT_UNSUPPORTED: 74,
  STORAGE_PROBE_FAILED: 75,
  STORAGE_POOL_BUILT: 76,
  SNAPSHOT_REVERT_RISKY: 77,
  OPERATION_ABORTED: 78,
  AUTH_CANCELLED: 79,
  NO_DOMAIN_METADATA: 80,
  MIGRATE_UNSAFE: 81,
  OVERFLOW: 82,
  BLOCK_COPY_ACTIVE: 83,
  OPERATION_UNSUPPORTED: 84,
  SSH: 85,
  AGENT_UNRESPONSIVE: 86,
  RESOURCE_BUSY: 87,
  ACCESS_DENIED: 88,
  DBUS_SERVICE: 89,
  STORAGE_VOL_EXIST: 90,
  CPU_INCOMPATIBLE: 91,
  XML_INVALID_SCHEMA: 92,
  MIGRATE_FINISH_OK: 93,
  AUTH_UNAVAILABLE: 94,
  NO_SERVER: 95,
  NO_CLIENT: 96,
  AGENT_UNSYNCED: 97,
  LIBSSH: 98,
  DEVICE_MISSING: 99,
  INVALID_NWFILTER_BINDING: 100,
  NO_NWFILTER_BINDING: 101,
  INVALID_DOMAIN_CHECKPOINT: 102,
  NO_DOMAIN_CHECKPOINT: 103,
  NO_DOMAIN_BACKUP: 104,
  INVALID_NETWORK_PORT: 105,
  NETWORK_PORT_EXIST: 106,
  NO_NETWORK_PORT: 107,
  NO_HOSTNAME: 108,
  CHECKPOINT_INCONSISTENT: 109,
  MULTIPLE_DOMAINS: 110,
  NO_NETWORK_METADATA: 111,
} as const;
export type ErrorCode = ValueOf<typeof ErrorCode>;
export type ErrorCodeName = keyof typeof ErrorCode;
