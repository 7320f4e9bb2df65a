import type { SnapshotInputs, SnapshotOptions } from "./inputs";
import type { SnapshotFacts } from "./outputs";

/**
 * The host operations the Pulumi layer needs, in its own terms. `engine-host.ts` implements it with the
 * snapshot engine over a cached libvirt connection; unit tests implement it with a fake, so every failure
 * path of the resource methods is tested without libvirt.
 *
 * Every method takes an AbortSignal: aborting rejects the call (the engine then ends what it started, such
 * as block jobs, before rejecting) and never leaves a call hanging.
 */
export interface SnapshotHost {
  /**
   * Creates the snapshot, or adopts an existing one of that name when `adopt` is set or the engine
   * recognises it as its own earlier attempt at the same request. Resolves with the host's facts. Aborting
   * rejects only before the host was asked to create (nothing made); once it was, the create finishes and
   * resolves with the snapshot, so that a snapshot made at the last moment is recorded, never orphaned.
   */
  create(request: CreateSnapshotRequest, signal: AbortSignal): Promise<SnapshotFacts>;
  /** The snapshot's facts, or null when the domain or the snapshot does not exist. */
  get(domain: string, name: string, signal: AbortSignal): Promise<SnapshotFacts | null>;
  /** Rewrites the snapshot's description on the host (null removes it) and resolves with the new facts. */
  setDescription(
    domain: string,
    name: string,
    description: string | null,
    signal: AbortSignal,
  ): Promise<SnapshotFacts>;
  /**
   * Deletes the snapshot, merging its overlay. Resolves when it is gone; a snapshot that is already gone
   * resolves too (idempotent). `onProgress` receives human-readable lines. Aborting `signal` bounds the whole
   * delete: a running merge is cancelled (the chain stays consistent) and the promise rejects.
   */
  delete(request: DeleteSnapshotRequest, signal: AbortSignal): Promise<void>;
}

/** The options that steer a create, as `check` leaves them (absent when not set). */
export type SnapshotCreateOptions = Pick<
  SnapshotOptions,
  "description" | "memory" | "live" | "quiesce" | "disks" | "excludeDisks" | "overlayDir"
>;

/** Which snapshot a create makes, by the names of the Snapshot's inputs. */
type SnapshotTarget = Pick<SnapshotInputs, "domain" | "name">;

export interface CreateSnapshotRequest
  extends SnapshotTarget,
    SnapshotCreateOptions,
    Pick<SnapshotInputs, "adopt"> {
  /** Human-readable lines about waits and fallbacks (another operation on the domain, no guest agent). */
  readonly onProgress: (line: string) => void;
}

export interface DeleteSnapshotRequest extends SnapshotTarget, Pick<SnapshotOptions, "bandwidth"> {
  /** The `deleteStrategy` option. */
  readonly strategy: SnapshotOptions["deleteStrategy"];
  /** Budget of the merge in milliseconds; the engine cancels a block job that exceeds it. */
  readonly timeoutMs: number;
  readonly onProgress: (line: string) => void;
}

/**
 * The create request for `target` with the create options taken from `options` (which may hold more, such as
 * a resource's whole inputs); options absent there stay absent. Pure.
 */
export function createSnapshotRequest(
  options: SnapshotCreateOptions,
  target: Omit<CreateSnapshotRequest, keyof SnapshotCreateOptions>,
): CreateSnapshotRequest {
  const { description, disks, excludeDisks, overlayDir } = options;
  return {
    domain: target.domain,
    name: target.name,
    ...(description === undefined ? {} : { description }),
    memory: options.memory,
    live: options.live,
    quiesce: options.quiesce,
    ...(disks === undefined ? {} : { disks }),
    ...(excludeDisks === undefined ? {} : { excludeDisks }),
    ...(overlayDir === undefined ? {} : { overlayDir }),
    adopt: target.adopt,
    onProgress: target.onProgress,
  };
}

/** Gives the host behind a libvirt URI; the connection behind it is opened lazily and cached per URI. */
export type SnapshotHostFactory = (uri: string) => SnapshotHost;
