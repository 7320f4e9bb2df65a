import { explainTimeout, messageOf, PROBE_TIMEOUT_SECONDS, timeoutSignal } from "./abort";
import { diffSnapshot } from "./diff";
import { createSnapshotRequest, type SnapshotHostFactory } from "./host";
import { checkSnapshotInputs, DEFAULT_TIMEOUTS_SECONDS, type SnapshotInputs } from "./inputs";
import {
  buildSnapshotOutputs,
  factsFromOutputs,
  inputsFromOutputs,
  readSnapshotOutputs,
  type SnapshotFacts,
  type SnapshotOutputs,
  snapshotId,
  unconfirmedSnapshotOutputs,
} from "./outputs";
import { effectiveUri, providerDefaultUri, redactUri, URI_CONFIG_KEY } from "./uri";

/**
 * The implementation of the `Snapshot` resource's methods, in the shape of Pulumi's
 * `dynamic.ResourceProvider`. The serialized shim in sdk/ calls these at run time; they live once per plugin
 * process, with the provider default URI, the connection cache and the engine's per-domain locks.
 *
 * Failure contract, per method:
 * - create: a failure before the snapshot exists rejects plainly (nothing to record). A failure once the
 *   snapshot exists on the host (an error or a timeout after libvirt made it) rejects with a
 *   `PartialCreateError` carrying `id`, `properties` and `reasons`, so Pulumi records the snapshot instead of
 *   orphaning it. When the create failed and reading the snapshot back failed too, the snapshot may exist:
 *   the `PartialCreateError` records it `unconfirmed` (see SnapshotOutputs), never leaves it out.
 *   Idempotent: a retry adopts the snapshot the host already has (see SnapshotHost.create).
 * - read: never changes the host; `{ id: "" }` when the snapshot or its domain is gone; an unconfirmed
 *   snapshot that exists reads as confirmed.
 * - diff: an unconfirmed snapshot is a change, whatever the inputs.
 * - update: only the description touches the host; a failure there leaves the old description. An unconfirmed
 *   snapshot is created again (adopted when it exists), with the failure contract of create.
 * - delete: merges and forgets the snapshot; already gone counts as success (also for an unconfirmed one).
 * Timeouts (`timeouts.create` for create/read/update, `timeouts.delete` for delete) abort the host calls.
 */

/** Pulumi's view of configuration in `configure`. */
export interface ProviderConfig {
  get(key: string): string | undefined;
}

type Props = Record<string, unknown>;

/** The methods the plugin calls; the same names and arguments as Pulumi's `dynamic.ResourceProvider`. */
export interface SnapshotProviderImplementation {
  configure(request: { config: ProviderConfig }): Promise<void>;
  check(
    olds: Props,
    news: Props,
  ): Promise<{ inputs: Props; failures: { property: string; reason: string }[] }>;
  diff(
    id: string,
    olds: Props,
    news: Props,
  ): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }>;
  create(inputs: Props): Promise<{ id: string; outs: SnapshotOutputs }>;
  read(id: string, props: Props): Promise<{ id: string; props?: SnapshotOutputs }>;
  update(id: string, olds: Props, news: Props): Promise<{ outs: SnapshotOutputs }>;
  delete(id: string, props: Props): Promise<void>;
}

/**
 * Rejection of `create` after the snapshot was made: the plugin turns `id`, `properties` and `reasons` into
 * `pulumirpc.ErrorResourceInitFailed`, and the engine records the resource with these outputs.
 */
export class PartialCreateError extends Error {
  override readonly name = "PartialCreateError";
  constructor(
    message: string,
    readonly id: string,
    readonly properties: Props,
    readonly reasons: string[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface SnapshotProviderOptions {
  readonly hostFor: SnapshotHostFactory;
  /** Where `LIBVIRT_DEFAULT_URI` is read from at configure time. */
  readonly env?: NodeJS.ProcessEnv;
  /** Progress lines; the plugin's console output is shown to the user. */
  readonly log?: (line: string) => void;
}

/** Builds the implementation around a host factory; `snapshotProvider` in index.ts is the one the plugin uses. */
export function createSnapshotProvider(options: SnapshotProviderOptions): SnapshotProviderImplementation {
  const log = options.log ?? ((line: string) => console.log(line));
  let defaultUri = providerDefaultUri(undefined, options.env ?? process.env);

  const uriOf = (uri: string | null | undefined) => effectiveUri(uri, defaultUri);

  async function createSnapshot(inputs: SnapshotInputs, provider: unknown) {
    const uri = uriOf(inputs.uri);
    const host = options.hostFor(uri);
    // Whether the name is taken before this call decides, after a failure, whether a snapshot found under
    // it is ours to record. A failure here leaves nothing behind, so it rejects plainly.
    const existedBefore =
      (await host.get(inputs.domain, inputs.name, timeoutSignal(PROBE_TIMEOUT_SECONDS))) !== null;
    const seconds = inputs.timeouts?.create ?? DEFAULT_TIMEOUTS_SECONDS.create;
    const signal = timeoutSignal(seconds);
    try {
      const request = createSnapshotRequest(inputs, {
        domain: inputs.domain,
        name: inputs.name,
        adopt: inputs.adopt,
        onProgress: (line) => log(`${inputs.domain}/${inputs.name}: ${line}`),
      });
      const facts = await host.create(request, signal);
      return { id: snapshotId(facts), outs: buildSnapshotOutputs(inputs, facts, redactUri(uri)) };
    } catch (error) {
      const explained = explainTimeout(
        error,
        signal,
        `creating snapshot ${inputs.name} of ${inputs.domain}`,
        "create",
        seconds,
      );
      // A snapshot that existed before belongs to someone else unless the host adopted it, and then create
      // would have succeeded; one that exists only now was made by this call and must be recorded.
      // When that cannot be read, it may exist (libvirtd may have finished a create the client gave up on),
      // and is recorded unconfirmed.
      if (!existedBefore) {
        let made: SnapshotFacts | null;
        try {
          made = await host.get(inputs.domain, inputs.name, timeoutSignal(PROBE_TIMEOUT_SECONDS));
        } catch (readError) {
          throw unconfirmedCreate(inputs, uri, provider, explained, readError);
        }
        if (made !== null) throw partialCreate(inputs, made, uri, provider, explained);
      }
      throw explained;
    }
  }

  function partialCreate(
    inputs: SnapshotInputs,
    facts: SnapshotFacts,
    uri: string,
    provider: unknown,
    error: unknown,
  ) {
    const outs = buildSnapshotOutputs(inputs, facts, redactUri(uri));
    const reason = messageOf(error);
    return new PartialCreateError(
      `snapshot ${facts.snapshotName} of ${facts.domainName} was created, but the operation failed afterwards: ` +
        `${reason}; the stack records the snapshot: run pulumi refresh to re-read it, and delete the resource ` +
        "to merge it away if it is not wanted",
      snapshotId(facts),
      { ...outs, __provider: provider },
      [reason],
      { cause: error },
    );
  }

  /** The rejection that records a snapshot that may exist: its create and the read back both failed. */
  function unconfirmedCreate(
    inputs: SnapshotInputs,
    uri: string,
    provider: unknown,
    error: unknown,
    readError: unknown,
  ) {
    const outs = unconfirmedSnapshotOutputs(inputs, redactUri(uri));
    const reason = messageOf(error);
    const unread =
      `snapshot ${inputs.name} of ${inputs.domain} may exist on the host, but reading it back failed ` +
      `(${messageOf(readError)}); the stack records it as unconfirmed: pulumi refresh or the next pulumi up ` +
      "re-reads it, and deleting the resource merges it if it exists";
    return new PartialCreateError(
      `creating snapshot ${inputs.name} of ${inputs.domain} failed: ${reason}; ${unread}`,
      snapshotId(outs),
      { ...outs, __provider: provider },
      [reason, unread],
      { cause: error },
    );
  }

  return {
    async configure(request) {
      // Read synchronously, before any await: the plugin may call other methods before this promise settles.
      defaultUri = providerDefaultUri(request.config.get(URI_CONFIG_KEY), options.env ?? process.env);
    },

    async check(_olds, news) {
      return checkSnapshotInputs(news);
    },

    async diff(_id, olds, news) {
      const old = readSnapshotOutputs(olds);
      const diff = diffSnapshot(old, news, defaultUri);
      // An unconfirmed snapshot is unfinished work: update adopts it, or takes it when it does not exist.
      return old.unconfirmed === true ? { ...diff, changes: true } : diff;
    },

    async create(inputs) {
      return createSnapshot(inputs as unknown as SnapshotInputs, inputs.__provider);
    },

    async read(_id, props) {
      const old = readSnapshotOutputs(props);
      const uri = uriOf(old.uri);
      const seconds = old.timeouts.create ?? DEFAULT_TIMEOUTS_SECONDS.create;
      const signal = timeoutSignal(seconds);
      const facts = await options
        .hostFor(uri)
        .get(old.domainUuid, old.snapshotName, signal)
        .catch((error: unknown) => {
          throw explainTimeout(error, signal, `reading snapshot ${old.snapshotName}`, "create", seconds);
        });
      if (facts === null) return { id: "" };
      return {
        id: snapshotId(facts),
        props: buildSnapshotOutputs(inputsFromOutputs(old), facts, redactUri(uri)),
      };
    },

    async update(_id, olds, news) {
      const old = readSnapshotOutputs(olds);
      const next = news as unknown as SnapshotInputs;
      if (old.unconfirmed === true) {
        // The create, again: it adopts the snapshot the earlier attempt made (the engine recorded it before
        // making it) or takes it now; a failure leaves the unconfirmed outputs recorded.
        return { outs: (await createSnapshot(next, news.__provider)).outs };
      }
      const uri = uriOf(next.uri);
      let facts = factsFromOutputs(old);
      const description = next.description ?? null;
      if (description !== old.description) {
        const seconds = next.timeouts?.create ?? DEFAULT_TIMEOUTS_SECONDS.create;
        const signal = timeoutSignal(seconds);
        facts = await options
          .hostFor(uri)
          .setDescription(old.domainUuid, old.snapshotName, description, signal)
          .catch((error: unknown) => {
            throw explainTimeout(error, signal, `updating snapshot ${old.snapshotName}`, "create", seconds);
          });
      }
      return { outs: buildSnapshotOutputs(next, facts, redactUri(uri)) };
    },

    async delete(_id, props) {
      const old = readSnapshotOutputs(props);
      const seconds = old.timeouts.delete ?? DEFAULT_TIMEOUTS_SECONDS.delete;
      const signal = timeoutSignal(seconds);
      const label = `${old.domainName}/${old.snapshotName}`;
      log(
        `${label}: deleting (${old.deleteStrategy}${old.bandwidth === null ? "" : `, ${old.bandwidth} bytes/s`})`,
      );
      await options
        .hostFor(uriOf(old.uri))
        .delete(
          {
            domain: old.domainUuid,
            name: old.snapshotName,
            strategy: old.deleteStrategy,
            ...(old.bandwidth === null ? {} : { bandwidth: old.bandwidth }),
            timeoutMs: seconds * 1000,
            onProgress: (line) => log(`${label}: ${line}`),
          },
          signal,
        )
        .catch((error: unknown) => {
          throw explainTimeout(error, signal, `deleting snapshot ${label}`, "delete", seconds);
        });
      log(`${label}: deleted`);
    },
  };
}
