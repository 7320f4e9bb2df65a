import type { DeleteStrategy, QuiesceMode } from "./inputs";
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

export interface CreateSnapshotRequest {
  readonly domain: string;
  readonly name: string;
  readonly description?: string;
  readonly memory: boolean;
  readonly live: boolean;
  readonly quiesce: QuiesceMode;
  readonly disks?: readonly string[];
  readonly excludeDisks?: readonly string[];
  readonly overlayDir?: string;
  readonly adopt: boolean;
  /** Human-readable lines about waits and fallbacks (another operation on the domain, no guest agent). */
  readonly onProgress: (line: string) => void;
}

export interface DeleteSnapshotRequest {
  readonly domain: string;
  readonly name: string;
  readonly strategy: DeleteStrategy;
  /** Bytes per second; absent means unlimited. */
  readonly bandwidth?: number;
  /** Budget of the merge in milliseconds; the engine cancels a block job that exceeds it. */
  readonly timeoutMs: number;
  readonly onProgress: (line: string) => void;
}

/** Gives the host behind a libvirt URI; the connection behind it is opened lazily and cached per URI. */
export type SnapshotHostFactory = (uri: string) => SnapshotHost;
