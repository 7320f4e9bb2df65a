/**
 * What Pulumi programs import: the resource classes and their argument and output types.
 */

export { snapshotResourceProvider } from "./provider-shim";
export { generationSuffix, RestorePoint, type RestorePointArgs } from "./restore-point";
export { Revert, type RevertArgs, type RevertTargetState, revertResourceProvider } from "./revert";
export {
  type DeleteStrategy,
  type QuiesceMode,
  Snapshot,
  type SnapshotArgs,
  type SnapshotDiskOutput,
} from "./snapshot";
