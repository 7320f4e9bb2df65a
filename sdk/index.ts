/**
 * What Pulumi programs import: the resource classes and their argument and output types.
 */

export { snapshotResourceProvider } from "./provider-shim";
export {
  type ConsistencyMode,
  type Generation,
  type GenerationSnapshot,
  RestorePoint,
  type RestorePointArgs,
  restorePointResourceProvider,
} from "./restore-point";
export { Revert, type RevertArgs, type RevertTargetState, revertResourceProvider } from "./revert";
export {
  type DeleteStrategy,
  type QuiesceMode,
  Snapshot,
  type SnapshotArgs,
  type SnapshotDiskOutput,
} from "./snapshot";
export type { SnapshotOptionArgs } from "./snapshot-options";
