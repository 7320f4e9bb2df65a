import { openConnection } from "../libvirt/open";
import { ConnectionCache } from "./connections";
import { engineHostFactory } from "./engine-host";
import { restorePointHostFactory } from "./restore-point-host";
import {
  createRestorePointProvider,
  type RestorePointProviderImplementation,
} from "./restore-point-provider";
import {
  createRevertProvider,
  engineRevertHostFactory,
  type RevertProviderImplementation,
} from "./revert-provider";
import { createSnapshotProvider, type SnapshotProviderImplementation } from "./snapshot-provider";

/** Connections of this plugin process, one per URI, opened on first use and shared by every resource kind. */
const connections = new ConnectionCache((uri) => openConnection(uri));

/**
 * The implementations the serialized shims (sdk/provider-shim.ts, sdk/revert.ts) load by name from the
 * package entry, once per plugin process. The names are a contract with state written by every earlier
 * release: never rename.
 */
export const providerImplementations: {
  readonly snapshot: SnapshotProviderImplementation;
  readonly revert: RevertProviderImplementation;
  readonly restorePoint: RestorePointProviderImplementation;
} = {
  snapshot: createSnapshotProvider({ hostFor: engineHostFactory(connections) }),
  revert: createRevertProvider({ hostFor: engineRevertHostFactory(connections) }),
  restorePoint: createRestorePointProvider({ hostFor: restorePointHostFactory(connections) }),
};
