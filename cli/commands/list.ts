/**
 * `list <domain>`: the snapshot tree, per snapshot its creation time, state, memory mode, quiesce state and per
 * disk the overlay with its allocated size on the host. Reads only (the size lookup may create and destroy a
 * transient storage pool; see host-images.ts).
 */
import { resolveDomain } from "../../provider/engine/domain-ref";
import { type DomainSnapshots, listSnapshots } from "../../provider/engine/inspect";
import { describeImage } from "../../provider/model/domain";
import type { ConsistencyProblem, SnapshotView } from "../../provider/model/snapshot-tree";
import type { CommandContext, CommandOutcome } from "../context";
import { formatAge, formatBytes, formatTime, isoTime } from "../format";
import { type ActiveLayer, type HostImageInfo, readHostImages } from "../host-images";

/** One disk of a snapshot in `list --json`. */
export interface ListedDisk {
  readonly target: string;
  /** Location of the overlay the snapshot created (a path, or `protocol:name` / `pool/volume`). */
  readonly overlay: string;
  /** The image that holds the disk's data as of the snapshot; null when the overlay left the live chain. */
  readonly pointInTime: string | null;
  /** Whether the overlay is the disk's active layer (the guest writes to it now). */
  readonly active: boolean;
  /** Bytes the overlay occupies on the host; null when unknown (see `sizeNote`). */
  readonly allocationBytes: number | null;
  readonly sizeNote?: string;
}

/** One snapshot in `list --json`, parents before children. */
export interface ListedSnapshot {
  readonly name: string;
  readonly parent: string | null;
  readonly children: readonly string[];
  /** ISO 8601 UTC creation time. */
  readonly createdAt: string;
  /** The domain state libvirt recorded at the snapshot (`running`, `shutoff`, `disk-snapshot`...). */
  readonly state: string;
  /** `memory`: the snapshot holds the guest's RAM too; `disk-only` otherwise. */
  readonly kind: "memory" | "disk-only";
  readonly memoryFile: string | null;
  /** Whether file systems were frozen; null when the snapshot was not made by this project. */
  readonly quiesced: boolean | null;
  readonly quiesceNote?: string;
  readonly description?: string;
  readonly disks: readonly ListedDisk[];
}

/** The `list --json` document. */
export interface ListDocument {
  readonly domain: { readonly name: string; readonly uuid: string };
  readonly snapshots: readonly ListedSnapshot[];
  /** Where libvirt's snapshot metadata and the real chains disagree. */
  readonly problems: readonly ConsistencyProblem[];
}

/** Runs `list`. Exit 0 when read (even with problems: `verify` is the check that fails on them). */
export async function listCommand(context: CommandContext, domain: string): Promise<CommandOutcome> {
  const connection = await context.connection();
  const forest = await listSnapshots(connection, domain);
  const ref = await resolveDomain(connection, forest.domain.uuid);
  const overlays = forest.snapshots.flatMap((s) => s.disks.flatMap((d) => (d.overlay.path ? [d] : [])));
  const active = new Map<string, ActiveLayer>(
    overlays.flatMap((d) =>
      d.chainPosition === 0 && d.overlay.path ? [[d.overlay.path, { domain: ref, disk: d.target }]] : [],
    ),
  );
  const sizes = await readHostImages(
    connection,
    overlays.flatMap((d) => (d.overlay.path ? [d.overlay.path] : [])),
    active,
  );
  const document = listDocument(forest, sizes);
  return { exitCode: 0, document, text: renderList(document, context.now()) };
}

/** The document for a forest and the sizes read for its overlays. Pure. */
export function listDocument(
  forest: DomainSnapshots,
  sizes: ReadonlyMap<string, HostImageInfo>,
): ListDocument {
  return {
    domain: forest.domain,
    snapshots: forest.snapshots.map((s) => listedSnapshot(s, sizes)),
    problems: forest.problems,
  };
}

function listedSnapshot(view: SnapshotView, sizes: ReadonlyMap<string, HostImageInfo>): ListedSnapshot {
  return {
    name: view.name,
    parent: view.parent ?? null,
    children: view.children,
    createdAt: isoTime(view.creationTime),
    state: view.state,
    kind: view.memory.mode === "external" ? "memory" : "disk-only",
    memoryFile: view.memory.file ?? null,
    quiesced: view.quiesced ?? null,
    ...(view.quiesceNote === undefined ? {} : { quiesceNote: view.quiesceNote }),
    ...(view.description === undefined ? {} : { description: view.description }),
    disks: view.disks.map((d): ListedDisk => {
      const size = d.overlay.path === undefined ? undefined : sizes.get(d.overlay.path);
      return {
        target: d.target,
        overlay: describeImage(d.overlay),
        pointInTime: d.pointInTime === undefined ? null : describeImage(d.pointInTime),
        active: d.chainPosition === 0,
        allocationBytes: size?.kind === "present" ? size.allocationBytes : null,
        ...(size === undefined || size.kind === "present"
          ? size === undefined
            ? { sizeNote: "not a file" }
            : {}
          : { sizeNote: size.kind === "missing" ? "the file does not exist" : size.reason }),
      };
    }),
  };
}

/** The human tree. Pure. */
export function renderList(document: ListDocument, now: Date): string {
  const lines = [`Snapshots of domain ${document.domain.name} (${document.domain.uuid}):`];
  if (document.snapshots.length === 0) lines.push("  (none)");
  const byName = new Map(document.snapshots.map((s) => [s.name, s]));
  const roots = document.snapshots.filter((s) => s.parent === null || !byName.has(s.parent));
  const placed = new Set<string>();
  const render = (snapshot: ListedSnapshot, prefix: string, branch: string, childPrefix: string) => {
    if (placed.has(snapshot.name)) return;
    placed.add(snapshot.name);
    lines.push(`${prefix}${branch}${snapshot.name}  ${summary(snapshot, now)}`);
    const children = snapshot.children.flatMap((name) => byName.get(name) ?? []);
    const detail = `${prefix}${childPrefix}${children.length > 0 ? "│  " : "   "}`;
    if (snapshot.description !== undefined) lines.push(`${detail}description: ${snapshot.description}`);
    for (const disk of snapshot.disks) lines.push(`${detail}${diskLine(disk)}`);
    if (snapshot.memoryFile !== null) lines.push(`${detail}memory   ${snapshot.memoryFile}`);
    children.forEach((child, index) => {
      const last = index === children.length - 1;
      render(child, `${prefix}${childPrefix}`, last ? "└─ " : "├─ ", last ? "   " : "│  ");
    });
  };
  for (const root of roots) render(root, "  ", "", "");
  if (document.problems.length > 0) {
    lines.push("Problems (metadata and chains disagree; see `libvirt-snapshot verify`):");
    for (const problem of document.problems) lines.push(`  - ${problem.message}`);
  }
  return lines.join("\n");
}

function summary(snapshot: ListedSnapshot, now: Date): string {
  const created = Date.parse(snapshot.createdAt) / 1000;
  const quiesce =
    snapshot.quiesced === null ? "quiesce unknown" : snapshot.quiesced ? "quiesced" : "not quiesced";
  return [`${formatTime(created)} (${formatAge(created, now)})`, snapshot.state, snapshot.kind, quiesce].join(
    "  ",
  );
}

function diskLine(disk: ListedDisk): string {
  const size =
    disk.allocationBytes === null
      ? `size unknown: ${disk.sizeNote ?? ""}`
      : formatBytes(disk.allocationBytes);
  return `${disk.target}  ${disk.overlay}  ${size}${disk.active ? "  (active layer)" : ""}`;
}
