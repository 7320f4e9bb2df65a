/**
 * Snapshot names and where a snapshot's files go, as pure functions over strings. Paths are POSIX paths on the
 * hypervisor host (which may be another machine), so `path.posix` is used, never the local platform's rules.
 */
import { posix } from "node:path";
import { findNonXmlCharacter } from "../model/xml";

/** Longest accepted snapshot name; it becomes part of file names, which are limited to 255 bytes. */
export const MAX_SNAPSHOT_NAME_LENGTH = 100;
/** Longest accepted description, in UTF-16 code units (a bound, so metadata stays small). */
export const MAX_DESCRIPTION_LENGTH = 10_000;

const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;

/**
 * Why `name` is not a valid snapshot name, or undefined when it is. libvirt refuses `/` and a leading `.`; on
 * top of that the engine accepts only ASCII letters, digits and `_ . + -` (not first: `. + -`), at most
 * MAX_SNAPSHOT_NAME_LENGTH characters, because the name becomes part of overlay and memory file names and
 * appears in shell sessions of operators.
 */
export function snapshotNameProblem(name: string): string | undefined {
  if (name.length === 0) return "the snapshot name is empty";
  if (name.length > MAX_SNAPSHOT_NAME_LENGTH) {
    return `the snapshot name is ${name.length} characters long; at most ${MAX_SNAPSHOT_NAME_LENGTH} are allowed`;
  }
  if (!NAME_PATTERN.test(name)) {
    return (
      `the snapshot name ${JSON.stringify(name)} may only contain ASCII letters, digits, '_', '.', '+' and '-', ` +
      "and must start with a letter, a digit or '_'"
    );
  }
  return undefined;
}

/** Why `description` cannot be stored exactly, or undefined when it can. */
export function descriptionProblem(description: string): string | undefined {
  if (description.length > MAX_DESCRIPTION_LENGTH) {
    return `the description is ${description.length} characters long; at most ${MAX_DESCRIPTION_LENGTH} are allowed`;
  }
  // Quirk: libvirt 9.0 writes a carriage return of a description back raw (not as `&#13;`), and every XML
  // parser, libvirt's own when it reloads its snapshot metadata included, reads a raw CR as LF: "a\r\nb" would
  // come back as "a\nb". Refused, so that what is stored is always exactly what was given.
  const cr = description.indexOf("\r");
  if (cr >= 0) {
    return `the description contains a carriage return at position ${cr}, which libvirt cannot keep (use \\n line breaks)`;
  }
  const bad = findNonXmlCharacter(description);
  if (bad !== undefined) {
    const code = description.codePointAt(bad)?.toString(16).padStart(4, "0");
    return `the description contains U+${code} at position ${bad}, which XML (and so libvirt) cannot store`;
  }
  return undefined;
}

/**
 * Why `path` is not acceptable as a host path for a snapshot file or directory, or undefined. It must be
 * absolute and already normalised (no `.`/`..` segments, no `//`, no trailing `/`), so that what libvirt gets is
 * what the user wrote and traversal cannot hide in it.
 */
export function hostPathProblem(path: string, what: string): string | undefined {
  if (!posix.isAbsolute(path)) return `${what} ${JSON.stringify(path)} is not an absolute path`;
  if (path.includes("\u0000")) return `${what} ${JSON.stringify(path)} contains a NUL character`;
  const segments = path.split("/").slice(1);
  if (path !== "/" && segments.some((s) => s === "" || s === "." || s === "..")) {
    return `${what} ${JSON.stringify(path)} is not normalised (empty, '.' or '..' segments, or a trailing '/')`;
  }
  if (findNonXmlCharacter(path) !== undefined)
    return `${what} ${JSON.stringify(path)} contains a control character`;
  return undefined;
}

/**
 * The default overlay file name of a disk for a snapshot: `<stem>.<snapshot>.qcow2`, where the stem is the
 * active image's file name without its extension and without the `.<name>` suffixes of existing snapshots
 * and the `.<name>.revert-<n>` suffixes of the overlays a revert to one of them made (`vda.s1.qcow2` and
 * `vda.s1.revert-2.qcow2` with snapshot s1 existing both give stem `vda`), so names stay short along a chain,
 * after reverts too, and the name is deterministic given the host's state.
 */
export function defaultOverlayName(
  activeImagePath: string,
  snapshot: string,
  existingSnapshots: ReadonlySet<string>,
): string {
  return `${imageStem(activeImagePath, existingSnapshots)}.${snapshot}.qcow2`;
}

/** The default memory file name: `<domain>.<snapshot>.mem`. */
export function defaultMemoryName(domainName: string, snapshot: string): string {
  return `${domainName.replaceAll("/", "_")}.${snapshot}.mem`;
}

/** The `.revert-<n>` suffix revert-plan.ts gives the overlays it makes after a snapshot's name. */
const REVERT_SUFFIX = /\.revert-\d+$/;

function imageStem(imagePath: string, existingSnapshots: ReadonlySet<string>): string {
  const base = posix.basename(imagePath);
  let stem = base.replace(/\.(qcow2|qcow|img|raw)$/i, "");
  for (;;) {
    const unreverted = stem.replace(REVERT_SUFFIX, "");
    const dot = unreverted.lastIndexOf(".");
    if (dot <= 0 || !existingSnapshots.has(unreverted.slice(dot + 1))) break;
    stem = unreverted.slice(0, dot);
  }
  return stem === "" ? base : stem;
}

/** The directory holding a host path. */
export function hostDirname(path: string): string {
  return posix.dirname(path);
}

/** `dir` joined with a plain file name. */
export function hostJoin(dir: string, fileName: string): string {
  return posix.join(dir, fileName);
}
