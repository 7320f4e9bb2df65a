import {
  type CreateProgress,
  type CreateSnapshotResult,
  createSnapshot,
  createSnapshotWhileLocked,
} from "../engine/create";
import type { CreateSnapshotRequest as EngineCreateRequest } from "../engine/create-plan";
import { deleteSnapshot } from "../engine/delete";
import { updateSnapshotDescription } from "../engine/describe";
import { EngineErrorKind, isEngineError } from "../engine/errors";
import { type DomainIdentity, getSnapshot, type SnapshotDetails } from "../engine/inspect";
import type { DomainRef } from "../libvirt/api";
import type { LibvirtConnection } from "../libvirt/connection";
import type { SnapshotView } from "../model/snapshot-tree";
import { givenUpOnAbort } from "./abort";
import type { ConnectionCache } from "./connections";
import type { CreateSnapshotRequest, SnapshotHost, SnapshotHostFactory } from "./host";
import type { SnapshotFacts } from "./outputs";

/**
 * SnapshotHost on top of the snapshot engine: translates requests and results, and nothing else. The engine
 * serializes operations per domain and re-reads the host before it acts.
 *
 * Timeouts: create passes the signal to the engine, which gives up before the libvirt create call (nothing is
 * made) and otherwise finishes and reports the snapshot; this layer then returns it even after the deadline,
 * so a snapshot made at the last moment is recorded, not orphaned. The description update waits (at most
 * SETTLE_GRACE_MS) for the engine call in flight to settle before it gives up, so a later read sees the final
 * state. Delete passes the signal to the engine, so the delete's timeout bounds the whole delete: on abort the
 * engine cancels the running block job (the chain stays consistent) and rejects; `timeoutMs` still bounds each
 * disk's job.
 */

/** How long an aborted update or delete waits for the engine call in flight; libvirt calls time out at 60 s. */
const SETTLE_GRACE_MS = 65_000;
const PROGRESS_STEP_PERCENT = 25;

function isGone(error: unknown): boolean {
  return (
    isEngineError(error) &&
    (error.kind === EngineErrorKind.SNAPSHOT_NOT_FOUND || error.kind === EngineErrorKind.DOMAIN_NOT_FOUND)
  );
}

function versionString(version: number): string {
  return `${Math.floor(version / 1_000_000)}.${Math.floor(version / 1000) % 1000}.${version % 1000}`;
}

/** Daemon version and host name, read once per connection. */
const hostInfo = new WeakMap<LibvirtConnection, Promise<{ libvirtVersion: string; hostname: string }>>();

function infoOf(connection: LibvirtConnection): Promise<{ libvirtVersion: string; hostname: string }> {
  let info = hostInfo.get(connection);
  if (info === undefined) {
    info = Promise.all([connection.connectGetLibVersion(), connection.connectGetHostname()]).then(
      ([version, hostname]) => ({ libvirtVersion: versionString(version), hostname }),
    );
    hostInfo.set(connection, info);
    info.catch(() => hostInfo.delete(connection));
  }
  return info;
}

function factsOf(
  domain: DomainIdentity,
  view: SnapshotView,
  quiesce: { quiesced: boolean | undefined; note: string | undefined },
  info: { libvirtVersion: string; hostname: string },
): SnapshotFacts {
  return {
    domainUuid: domain.uuid,
    domainName: domain.name,
    snapshotName: view.name,
    creationTime: new Date(view.creationTime * 1000).toISOString(),
    state: view.state,
    parent: view.parent ?? null,
    description: view.description ?? null,
    disks: view.disks.map((disk) => ({
      target: disk.target,
      overlay: disk.overlay.path ?? disk.overlay.name ?? "",
      pointInTimeImage: disk.pointInTime?.path ?? disk.pointInTime?.name ?? null,
    })),
    memoryFile: view.memory.file ?? null,
    quiesced: quiesce.quiesced === true,
    quiesceSkippedReason:
      quiesce.note ??
      (quiesce.quiesced === undefined
        ? "unknown: the snapshot was not created by pulumi-libvirt-snapshot"
        : null),
    ...info,
  };
}

/** The facts of a snapshot as inspection reports it, quiesce state from the engine's record. */
async function detailsFacts(details: SnapshotDetails, connection: LibvirtConnection): Promise<SnapshotFacts> {
  const view = details.snapshot;
  return factsOf(
    details.domain,
    view,
    { quiesced: view.quiesced, note: view.quiesceNote },
    await infoOf(connection),
  );
}

/** The engine's form of a create request. */
function engineCreateRequest(request: CreateSnapshotRequest): EngineCreateRequest {
  const { disks, excludeDisks } = request;
  return {
    domain: request.domain,
    name: request.name,
    ...(request.description === undefined ? {} : { description: request.description }),
    ...(disks || excludeDisks
      ? {
          disks: { ...(disks ? { include: disks } : {}), ...(excludeDisks ? { exclude: excludeDisks } : {}) },
        }
      : {}),
    memory: request.memory ? (request.live ? "memory-live" : "memory") : "disk-only",
    quiesce: request.quiesce,
    ...(request.overlayDir === undefined ? {} : { overlayDir: request.overlayDir }),
  };
}

/** The create events a user wants to hear about: waiting for the domain, and quiesce falling back. */
function reportCreate(event: CreateProgress, onProgress: (line: string) => void): void {
  if (event.kind === "waiting-for-lock") onProgress("waiting for another operation on the domain to finish");
  else if (event.kind === "quiesce-fallback") onProgress(event.reason);
  else if (event.kind === "adopted") onProgress("a matching snapshot already exists: adopted it");
}

/** The facts of a create's result; a snapshot someone else made is refused unless the request adopts. */
async function createdFacts(
  result: CreateSnapshotResult,
  request: CreateSnapshotRequest,
  connection: LibvirtConnection,
): Promise<SnapshotFacts> {
  // A snapshot the engine did not record was made by someone else: take it over only when asked.
  if (result.adopted && result.quiesced === undefined && !request.adopt) {
    throw new Error(
      `domain ${result.domain.name} already has a snapshot ${request.name} that pulumi-libvirt-snapshot ` +
        "did not create; set adopt: true to take it over (it will be merged away when the resource is " +
        "deleted), or choose another name",
    );
  }
  return factsOf(
    result.domain,
    result.snapshot,
    { quiesced: result.quiesced, note: result.quiesceNote },
    await infoOf(connection),
  );
}

/**
 * `SnapshotHost.create` for a caller that already holds the domain lock of `ref` (the lock is not re-entrant:
 * the host's own create would wait for the caller for ever), such as a RestorePoint keeping a domain paused
 * from its pause to its resume. Same results, errors and abort semantics as `create`.
 */
export async function createSnapshotWhileHolding(
  connection: LibvirtConnection,
  ref: DomainRef,
  request: CreateSnapshotRequest,
  signal: AbortSignal,
): Promise<SnapshotFacts> {
  const result = await createSnapshotWhileLocked(connection, ref, engineCreateRequest(request), {
    onProgress: (event) => reportCreate(event, request.onProgress),
    signal,
  });
  return createdFacts(result, request, connection);
}

/** Turns the engine's byte counts into a line at each quarter of each disk's merge. */
function progressReporter(onProgress: (line: string) => void) {
  const reported = new Map<string, number>();
  return ({ disk, bytesDone, bytesTotal }: { disk: string; bytesDone: number; bytesTotal: number }) => {
    const percent = bytesTotal > 0 ? Math.floor((bytesDone / bytesTotal) * 100) : 0;
    const step = Math.floor(percent / PROGRESS_STEP_PERCENT) * PROGRESS_STEP_PERCENT;
    if (step <= (reported.get(disk) ?? -1)) return;
    reported.set(disk, step);
    onProgress(`merging ${disk}: ${step}% (${bytesDone} of ${bytesTotal} bytes)`);
  };
}

/** The host factory the plugin uses: every URI's operations go through one cached connection. */
export function engineHostFactory(connections: ConnectionCache): SnapshotHostFactory {
  return (uri) => {
    const host: SnapshotHost = {
      async create(request, signal) {
        const connection = await givenUpOnAbort(connections.get(uri), signal, 0);
        const result = await createSnapshot(connection, engineCreateRequest(request), {
          onProgress: (event) => reportCreate(event, request.onProgress),
          signal,
        });
        return createdFacts(result, request, connection);
      },

      async get(domain, name, signal) {
        const work = (async () => {
          const connection = await connections.get(uri);
          try {
            return await detailsFacts(await getSnapshot(connection, domain, name), connection);
          } catch (error) {
            if (isGone(error)) return null;
            throw error;
          }
        })();
        return givenUpOnAbort(work, signal, 0);
      },

      async setDescription(domain, name, description, signal) {
        const work = (async () => {
          const connection = await connections.get(uri);
          return detailsFacts(
            await updateSnapshotDescription(connection, domain, name, description),
            connection,
          );
        })();
        return givenUpOnAbort(work, signal, SETTLE_GRACE_MS);
      },

      async delete(request, signal) {
        const connection = await givenUpOnAbort(connections.get(uri), signal, 0);
        const result = await givenUpOnAbort(
          deleteSnapshot(connection, request.domain, request.name, {
            strategy: request.strategy,
            ...(request.bandwidth === undefined ? {} : { bandwidthBytesPerSecond: request.bandwidth }),
            timeoutMs: request.timeoutMs,
            onProgress: progressReporter(request.onProgress),
            signal,
          }),
          signal,
          SETTLE_GRACE_MS,
        );
        for (const note of result.notes) request.onProgress(note);
        // Files kept because another domain uses them: the user has to act, so they reach the log too.
        for (const warning of result.warnings) request.onProgress(`warning: ${warning}`);
      },
    };
    return host;
  };
}
