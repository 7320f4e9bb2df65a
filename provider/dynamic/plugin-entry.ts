import type { SnapshotHostFactory } from "./host";
import { createSnapshotProvider, type SnapshotProviderImplementation } from "./snapshot-provider";

/**
 * Until the engine's create/read/delete are wired, every host operation fails with this explanation;
 * check and diff (pure) work.
 */
const engineHostFor: SnapshotHostFactory = () => {
  throw new Error("pulumi-libvirt-snapshot: host operations are not available in this build");
};

/**
 * The implementations the serialized shims of sdk/provider-shim.ts load by name from the package entry, once
 * per plugin process. The names are a contract with state written by every earlier release: never rename.
 */
export const providerImplementations: { readonly snapshot: SnapshotProviderImplementation } = {
  snapshot: createSnapshotProvider({ hostFor: engineHostFor }),
};
