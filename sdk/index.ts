/**
 * What Pulumi programs import: the resource classes and their argument and output types.
 */

export { snapshotResourceProvider } from "./provider-shim";
export {
  type DeleteStrategy,
  type QuiesceMode,
  Snapshot,
  type SnapshotArgs,
  type SnapshotDiskOutput,
} from "./snapshot";
