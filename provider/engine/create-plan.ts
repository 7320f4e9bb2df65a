/**
 * Planning of a snapshot create, as pure functions: the request is validated on its own (before anything is
 * sent to the host), then the live domain model, its state and the existing snapshot names turn it into the
 * exact XML, flags and file paths to use, or into an EngineError that says why not. No I/O.
 */
import { SnapshotCreateFlags } from "../libvirt/flags";
import { type DiskModel, type DomainModel, describeImage, type ImageSource } from "../model/domain";
import { buildSnapshotCreateXml, type SnapshotCreateDisk } from "../model/snapshot";
import { EngineError, EngineErrorKind } from "./errors";
import {
  defaultMemoryName,
  defaultOverlayName,
  descriptionProblem,
  hostDirname,
  hostJoin,
  hostPathProblem,
  snapshotNameProblem,
} from "./placement";

/** `disk-only` (default); `memory`: guest memory saved too, guest paused while it is written; `memory-live`:
 * memory saved while the guest runs, paused only at the end. */
export type MemoryMode = "disk-only" | "memory" | "memory-live";

/** `auto` (default): freeze guest file systems when an agent answers, else crash-consistent; `required`:
 * fail when they cannot be frozen; `off`: never try. */
export type QuiesceMode = "auto" | "required" | "off";

export interface CreateSnapshotRequest {
  /** Domain name or UUID. */
  readonly domain: string;
  /** Snapshot name: see `snapshotNameProblem` for the rules. */
  readonly name: string;
  /** Free text, stored exactly as given. */
  readonly description?: string;
  /** Which disks: by default every disk that can take an external snapshot. Give include or exclude, not both. */
  readonly disks?: { readonly include?: readonly string[]; readonly exclude?: readonly string[] };
  readonly memory?: MemoryMode;
  readonly quiesce?: QuiesceMode;
  /** Directory for overlays (and the memory file) instead of next to each disk's active image. Absolute. */
  readonly overlayDir?: string;
  /** Explicit absolute overlay path per disk target; wins over overlayDir. */
  readonly overlayPaths?: Readonly<Record<string, string>>;
  /** Explicit absolute path of the memory file (memory snapshots only). */
  readonly memoryFile?: string;
}

/** Why a disk is not part of the snapshot. */
export type DiskSkipReason =
  | "cdrom"
  | "no-source"
  | "read-only"
  | "shareable"
  | "lun"
  | "transient"
  | "unsupported-source"
  | "snapshot-policy"
  | "excluded"
  | "not-included";

export interface SkippedDisk {
  readonly target: string;
  readonly reason: DiskSkipReason;
  /** True when the user should hear about it (a writable disk left out of the snapshot without being asked). */
  readonly warning: boolean;
  readonly message: string;
}

export interface PlannedDisk {
  readonly target: string;
  /** The image the disk writes to now; it becomes the snapshot's point-in-time image. */
  readonly activeImage: ImageSource;
  /** Where the new overlay goes. */
  readonly overlayPath: string;
}

export interface DiskSelection {
  readonly selected: readonly DiskModel[];
  readonly skipped: readonly SkippedDisk[];
}

export interface QuiescePlan {
  /** Try with the QUIESCE flag first. */
  readonly attempt: boolean;
  /** A failed attempt fails the create (no fallback). */
  readonly required: boolean;
  /** Why no attempt is made, when `attempt` is false and quiescing was not turned off. */
  readonly note?: string;
}

/** The domain states a snapshot can be taken in. */
export type SnapshotDomainState = "running" | "paused" | "shutoff";

export interface CreatePlan {
  readonly name: string;
  readonly memory: MemoryMode;
  readonly memoryFile?: string;
  readonly disks: readonly PlannedDisk[];
  readonly skipped: readonly SkippedDisk[];
  readonly quiesce: QuiescePlan;
  /** Flags for virDomainSnapshotCreateXML without QUIESCE (added by the executor when it attempts it). */
  readonly flags: number;
  readonly xml: string;
}

function invalid(request: CreateSnapshotRequest, message: string, disk?: string): EngineError {
  return new EngineError({
    kind: EngineErrorKind.INVALID_REQUEST,
    domain: request.domain,
    snapshot: request.name,
    ...(disk === undefined ? {} : { disk }),
    message: `snapshot ${request.name} of domain ${request.domain}: ${message}`,
  });
}

/**
 * Checks everything that can be checked without the host: name, description, modes, paths, disk lists.
 * Throws EngineError INVALID_REQUEST; the host is never contacted for a request that fails here.
 */
export function validateCreateRequest(request: CreateSnapshotRequest): void {
  const nameProblem = snapshotNameProblem(request.name);
  if (nameProblem !== undefined) throw invalid(request, nameProblem);
  const descProblem = request.description === undefined ? undefined : descriptionProblem(request.description);
  if (descProblem !== undefined) throw invalid(request, descProblem);
  const memory = request.memory ?? "disk-only";
  if (!["disk-only", "memory", "memory-live"].includes(memory))
    throw invalid(request, `unknown memory mode ${memory}`);
  const quiesce = request.quiesce ?? "auto";
  if (!["auto", "required", "off"].includes(quiesce))
    throw invalid(request, `unknown quiesce mode ${quiesce}`);
  if (quiesce === "required" && memory !== "disk-only") {
    throw invalid(
      request,
      "quiesce 'required' cannot be combined with a memory snapshot (libvirt freezes only for disk-only ones)",
    );
  }
  if (request.memoryFile !== undefined && memory === "disk-only") {
    throw invalid(request, "a memory file was given for a disk-only snapshot");
  }
  const paths: [string, string][] = [
    ...(request.overlayDir === undefined
      ? []
      : [["overlay directory", request.overlayDir] as [string, string]]),
    ...(request.memoryFile === undefined ? [] : [["memory file", request.memoryFile] as [string, string]]),
    ...Object.entries(request.overlayPaths ?? {}).map(([t, p]): [string, string] => [
      `overlay path of disk ${t}`,
      p,
    ]),
  ];
  for (const [what, path] of paths) {
    const problem = hostPathProblem(path, what);
    if (problem !== undefined) throw invalid(request, problem);
  }
  const { include, exclude } = request.disks ?? {};
  if (include !== undefined && exclude !== undefined)
    throw invalid(request, "give disks.include or disks.exclude, not both");
  if (include !== undefined && include.length === 0) throw invalid(request, "disks.include is empty");
  for (const list of [include, exclude]) {
    const dup = list?.find((t, i) => list.indexOf(t) !== i);
    if (dup !== undefined) throw invalid(request, `disk ${dup} is listed twice`, dup);
  }
}

/** Why a disk cannot take an external snapshot (`warning`: a writable disk the user may expect to be saved). */
function ineligibility(disk: DiskModel): Omit<SkippedDisk, "target"> | undefined {
  const t = disk.target;
  if (disk.device === "cdrom" || disk.device === "floppy") {
    return { reason: "cdrom", warning: false, message: `disk ${t} is a ${disk.device}` };
  }
  const active = disk.chain[0];
  if (active === undefined) return { reason: "no-source", warning: false, message: `disk ${t} has no image` };
  if (disk.readOnly) return { reason: "read-only", warning: false, message: `disk ${t} is read-only` };
  if (disk.device === "lun") {
    return {
      reason: "lun",
      warning: true,
      message: `disk ${t} is a LUN passthrough, which cannot take an external snapshot`,
    };
  }
  if (disk.shareable) {
    return {
      reason: "shareable",
      warning: true,
      message: `disk ${t} is shareable, which libvirt cannot snapshot externally`,
    };
  }
  if (disk.transient) {
    return {
      reason: "transient",
      warning: true,
      message: `disk ${t} is transient, which cannot take an external snapshot`,
    };
  }
  if (active.kind !== "file" && active.kind !== "block") {
    return {
      reason: "unsupported-source",
      warning: true,
      message: `disk ${t} is a ${active.kind} disk; the engine snapshots only file and block disks`,
    };
  }
  if (disk.snapshotPolicy !== undefined && disk.snapshotPolicy !== "external") {
    return {
      reason: "snapshot-policy",
      warning: disk.snapshotPolicy !== "no",
      message: `disk ${t} is defined with snapshot='${disk.snapshotPolicy}'`,
    };
  }
  return undefined;
}

/**
 * Chooses the disks: every eligible disk by default; `include` names exactly the disks (each must be
 * eligible); `exclude` leaves some out. Unknown targets and ineligible included disks are INVALID_REQUEST
 * errors naming the disk and the reason; an empty selection is an error too.
 */
export function selectDisks(domain: DomainModel, request: CreateSnapshotRequest): DiskSelection {
  const { include, exclude } = request.disks ?? {};
  const targets = new Set(domain.disks.map((d) => d.target));
  for (const t of [...(include ?? []), ...(exclude ?? []), ...Object.keys(request.overlayPaths ?? {})]) {
    if (!targets.has(t)) {
      throw invalid(request, `domain ${domain.name} has no disk ${t} (disks: ${[...targets].join(", ")})`, t);
    }
  }
  const selected: DiskModel[] = [];
  const skipped: SkippedDisk[] = [];
  for (const disk of domain.disks) {
    const why = ineligibility(disk);
    if (include !== undefined) {
      if (!include.includes(disk.target)) {
        skipped.push({
          target: disk.target,
          reason: "not-included",
          warning: false,
          message: `disk ${disk.target} was not included`,
        });
        continue;
      }
      if (why !== undefined)
        throw invalid(request, `${why.message}; remove it from disks.include`, disk.target);
    } else if (exclude?.includes(disk.target)) {
      skipped.push({
        target: disk.target,
        reason: "excluded",
        warning: false,
        message: `disk ${disk.target} was excluded`,
      });
      continue;
    } else if (why !== undefined) {
      skipped.push({ target: disk.target, ...why });
      continue;
    }
    selected.push(disk);
  }
  for (const t of Object.keys(request.overlayPaths ?? {})) {
    if (!selected.some((d) => d.target === t))
      throw invalid(request, `an overlay path was given for disk ${t}, which is not part of the snapshot`, t);
  }
  if (selected.length === 0)
    throw invalid(request, `no disk of domain ${domain.name} can take an external snapshot`);
  return { selected, skipped };
}

/** Whether and how to quiesce, given the domain state. Throws for `required` when it cannot work. */
export function planQuiesce(state: SnapshotDomainState, request: CreateSnapshotRequest): QuiescePlan {
  const mode = request.quiesce ?? "auto";
  if (mode === "off") return { attempt: false, required: false };
  const memory = request.memory ?? "disk-only";
  let obstacle: string | undefined;
  if (memory !== "disk-only") obstacle = "quiescing is not possible with a memory snapshot";
  else if (state === "shutoff") obstacle = "the domain is shut off: there is no guest to freeze";
  else if (state === "paused") obstacle = "the domain is paused: its guest agent cannot answer";
  if (obstacle === undefined) return { attempt: true, required: mode === "required" };
  if (mode === "required") {
    throw new EngineError({
      kind: EngineErrorKind.DOMAIN_STATE,
      domain: request.domain,
      snapshot: request.name,
      message: `snapshot ${request.name} of domain ${request.domain}: quiesce is required but ${obstacle}`,
    });
  }
  return { attempt: false, required: false, note: obstacle };
}

/**
 * The full plan: disks and their overlay paths, memory file, flags and XML. Throws EngineError for a memory
 * snapshot of a shut-off domain, a block job on the domain, and paths that collide with each other or with an
 * image already in a chain.
 */
export function planCreate(
  domain: DomainModel,
  state: SnapshotDomainState,
  existingSnapshots: ReadonlySet<string>,
  request: CreateSnapshotRequest,
  selection: DiskSelection = selectDisks(domain, request),
): CreatePlan {
  const memory = request.memory ?? "disk-only";
  if (memory !== "disk-only" && state === "shutoff") {
    throw new EngineError({
      kind: EngineErrorKind.DOMAIN_STATE,
      domain: domain.name,
      snapshot: request.name,
      message: `snapshot ${request.name} of domain ${domain.name}: a memory snapshot needs a running or paused domain, and it is shut off; take a disk-only snapshot or start it`,
    });
  }
  const busy = domain.disks.find((d) => d.mirror !== undefined);
  if (busy?.mirror !== undefined) {
    throw new EngineError({
      kind: EngineErrorKind.BLOCK_JOB_ACTIVE,
      domain: domain.name,
      snapshot: request.name,
      disk: busy.target,
      message:
        `domain ${domain.name}: a block job (${busy.mirror.job}${busy.mirror.ready ? ", ready" : ""}) is running on disk ` +
        `${busy.target}; no snapshot can be taken until it is finished or cancelled`,
    });
  }
  const quiesce = planQuiesce(state, request);
  const disks = selection.selected.map((disk): PlannedDisk => {
    const activeImage = disk.chain[0] as ImageSource;
    return {
      target: disk.target,
      activeImage,
      overlayPath: overlayPathFor(disk, activeImage, existingSnapshots, request),
    };
  });
  const memoryFile = memory === "disk-only" ? undefined : memoryPathFor(domain, disks, request);
  checkCollisions(domain, disks, memoryFile, request);
  const createDisks: SnapshotCreateDisk[] = domain.disks.map((d) => {
    const planned = disks.find((p) => p.target === d.target);
    return planned === undefined
      ? { target: d.target, mode: "no" }
      : { target: d.target, mode: "external", overlayPath: planned.overlayPath };
  });
  let flags: number = SnapshotCreateFlags.ATOMIC;
  if (memory === "disk-only") flags |= SnapshotCreateFlags.DISK_ONLY;
  if (memory === "memory-live") flags |= SnapshotCreateFlags.LIVE;
  return {
    name: request.name,
    memory,
    ...(memoryFile === undefined ? {} : { memoryFile }),
    disks,
    skipped: selection.skipped,
    quiesce,
    flags,
    xml: buildSnapshotCreateXml({
      name: request.name,
      ...(request.description === undefined ? {} : { description: request.description }),
      ...(memoryFile === undefined ? {} : { memoryFile }),
      disks: createDisks,
    }),
  };
}

function overlayPathFor(
  disk: DiskModel,
  active: ImageSource,
  existing: ReadonlySet<string>,
  request: CreateSnapshotRequest,
): string {
  const explicit = request.overlayPaths?.[disk.target];
  if (explicit !== undefined) return explicit;
  const activePath = active.path ?? describeImage(active);
  const name = defaultOverlayName(activePath, request.name, existing);
  if (request.overlayDir !== undefined) return hostJoin(request.overlayDir, name);
  if (active.kind !== "file") {
    throw invalid(
      request,
      `disk ${disk.target} is a ${active.kind} device: give overlayDir or an overlay path for it`,
      disk.target,
    );
  }
  return hostJoin(hostDirname(activePath), name);
}

function memoryPathFor(
  domain: DomainModel,
  disks: readonly PlannedDisk[],
  request: CreateSnapshotRequest,
): string {
  if (request.memoryFile !== undefined) return request.memoryFile;
  const dir = request.overlayDir ?? hostDirname(disks[0]?.overlayPath ?? "/");
  return hostJoin(dir, defaultMemoryName(domain.name, request.name));
}

function checkCollisions(
  domain: DomainModel,
  disks: readonly PlannedDisk[],
  memoryFile: string | undefined,
  request: CreateSnapshotRequest,
): void {
  const inUse = new Map<string, string>();
  for (const d of domain.disks)
    for (const image of d.chain) if (image.path !== undefined) inUse.set(image.path, d.target);
  const planned = new Map<string, string>();
  const claims: [string, string][] = disks.map((d) => [d.overlayPath, `the overlay of disk ${d.target}`]);
  if (memoryFile !== undefined) claims.push([memoryFile, "the memory file"]);
  for (const [path, what] of claims) {
    const user = inUse.get(path);
    if (user !== undefined)
      throw invalid(request, `${what} would be ${path}, which disk ${user} already uses`);
    const other = planned.get(path);
    if (other !== undefined) throw invalid(request, `${what} and ${other} would both be ${path}`);
    planned.set(path, what);
  }
}
