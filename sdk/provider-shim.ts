import type * as pulumi from "@pulumi/pulumi";

/**
 * The provider objects handed to `pulumi.dynamic.Resource`. Pulumi serializes them to module text, stores
 * that text in the state of every resource (`__provider`) and loads it in its dynamic-provider plugin. So
 * they are thin shims: each method `require()`s this package when it is called and forwards to the
 * implementation. Nothing is captured (no connection, no native function, no module object), the text is a
 * few hundred bytes and identical across releases, and the implementation with its module state (connection
 * cache, per-domain locks) is loaded once per plugin process, from the program's node_modules.
 *
 * Contract with the package entry (provider/index.ts), kept across releases because old state holds these
 * shims: the entry exports `providerImplementations.<kind>` with the methods of
 * `pulumi.dynamic.ResourceProvider`.
 */

/**
 * The implementation of the Snapshot methods, loaded from the package installed in the program's folder.
 * Not exported, and it names the package literally: TypeScript compiles references to exported constants
 * into `exports.X`, which would make serialization capture this whole module.
 */
function snapshotImplementation() {
  return require("pulumi-libvirt-snapshot").providerImplementations.snapshot;
}

/**
 * The shim of the `Snapshot` resource (`pulumi-nodejs:dynamic/libvirt:Snapshot`). Exported for tests and
 * for programs that build their own `dynamic.Resource` around it.
 */
export const snapshotResourceProvider: pulumi.dynamic.ResourceProvider = {
  configure: async (req) => snapshotImplementation().configure(req),
  check: async (olds, news) => snapshotImplementation().check(olds, news),
  diff: async (id, olds, news) => snapshotImplementation().diff(id, olds, news),
  create: async (inputs) => snapshotImplementation().create(inputs),
  read: async (id, props) => snapshotImplementation().read(id, props),
  update: async (id, olds, news) => snapshotImplementation().update(id, olds, news),
  delete: async (id, props) => snapshotImplementation().delete(id, props),
};
