// Stand-in for provider/libvirt/flags.ts and errors.ts until they land; removed then.
export const BlockCommitFlags = {
  SHALLOW: 1,
  DELETE: 2,
  ACTIVE: 4,
  RELATIVE: 8,
  BANDWIDTH_BYTES: 16,
} as const;
export const BlockJobAbortFlags = { ASYNC: 1, PIVOT: 2 } as const;
export const SnapshotDeleteFlags = { CHILDREN: 1, METADATA_ONLY: 2, CHILDREN_ONLY: 4 } as const;
export const DomainMetadataType = { DESCRIPTION: 0, TITLE: 1, ELEMENT: 2 } as const;
export const DomainModificationImpact = { CURRENT: 0, LIVE: 1, CONFIG: 2 } as const;
export const DomainCreateFlags = { START_PAUSED: 1 } as const;
export const DomainXMLFlags = { SECURE: 1, INACTIVE: 2 } as const;
export const ConnectListAllStoragePoolsFlags = { ACTIVE: 2 } as const;
export const ErrorCode = {
  OPERATION_FAILED: 9,
  INVALID_ARG: 8,
  NO_DOMAIN: 42,
  NO_STORAGE_POOL: 49,
  NO_STORAGE_VOL: 50,
  OPERATION_INVALID: 55,
  NO_DOMAIN_SNAPSHOT: 72,
  NO_DOMAIN_METADATA: 80,
  BLOCK_COPY_ACTIVE: 83,
  OPERATION_UNSUPPORTED: 84,
} as const;
export function libvirtErrorCode(e: unknown): number | undefined {
  if (typeof e !== "object" || e === null || !("code" in e)) return undefined;
  return typeof e.code === "number" ? e.code : undefined;
}
