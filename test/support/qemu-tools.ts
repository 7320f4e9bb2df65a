import { z } from "zod";
import { RunError, run } from "./run";

/**
 * Independent oracles on image files: qemu-img and qemu-io, run as child processes. They read the files
 * themselves, so they check what libvirt (and the product code) claims about chains and data.
 */

/** Image formats the lab creates and reads. */
export type ImageFormat = "qcow2" | "raw";

/** One image of a backing chain, as qemu-img reports it. */
export interface ChainImage {
  /** Path of the image file, as written in the chain (absolute for everything the lab and libvirt create). */
  file: string;
  format: string;
}

/** A pattern write or check: every byte of [offset, offset + length) is `pattern`. Units are bytes. */
export interface PatternRange {
  /** Byte value, 0..255. */
  pattern: number;
  offset: number;
  length: number;
}

const qemuImgChainSchema = z.array(z.object({ filename: z.string(), format: z.string() }).loose()).min(1);

/**
 * Parses `qemu-img info --backing-chain --output=json` into the chain, active (top) image first, base last.
 * Throws if the JSON is not such a chain. Pure.
 */
export function parseBackingChain(json: string): ChainImage[] {
  return qemuImgChainSchema
    .parse(JSON.parse(json))
    .map((image) => ({ file: image.filename, format: image.format }));
}

/**
 * Reads the backing chain of `image` from the files (with -U, so it works while QEMU has the image open).
 * Returns the images top first. Read-only.
 */
export async function backingChain(image: string): Promise<ChainImage[]> {
  const { stdout } = await run("qemu-img", ["info", "--backing-chain", "--output=json", "-U", image]);
  return parseBackingChain(stdout);
}

/**
 * Creates an empty image of `sizeMiB` MiB, optionally as an overlay of `backing` (format `backingFormat`).
 * Fails if qemu-img fails; a partly created file may then remain (the lab removes its whole directory).
 */
export async function createImage(
  path: string,
  format: ImageFormat,
  sizeMiB: number,
  backing?: { file: string; format: ImageFormat },
): Promise<void> {
  const args = ["create", "-q", "-f", format];
  if (backing) args.push("-b", backing.file, "-F", backing.format);
  args.push(path, `${sizeMiB}M`);
  await run("qemu-img", args);
}

function patternCommand(verb: "write" | "read", range: PatternRange): string {
  if (!Number.isInteger(range.pattern) || range.pattern < 0 || range.pattern > 255) {
    throw new RangeError(`pattern must be a byte value 0..255, got ${range.pattern}`);
  }
  for (const value of [range.offset, range.length]) {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new RangeError(`offset/length must be >= 0, got ${value}`);
  }
  return `${verb} -P 0x${range.pattern.toString(16).padStart(2, "0")} ${range.offset} ${range.length}`;
}

/**
 * Writes `range.pattern` over the range of `image` (the top layer: a write to an overlay lands in the overlay).
 * The image must not be open read-write by a running QEMU (qemu-io takes the write lock). Throws on failure.
 */
export async function writePattern(
  image: string,
  range: PatternRange,
  format: ImageFormat = "qcow2",
): Promise<void> {
  await run("qemu-io", ["-f", format, "-c", patternCommand("write", range), image]);
}

/**
 * Checks whether every byte of the range, read through the whole backing chain of `image`, equals the pattern.
 * Returns false on a mismatch; throws (RunError) when the image cannot be read at all. Read-only (-r -U).
 */
export async function checkPattern(
  image: string,
  range: PatternRange,
  format: ImageFormat = "qcow2",
): Promise<boolean> {
  try {
    await run("qemu-io", ["-r", "-U", "-f", format, "-c", patternCommand("read", range), image]);
    return true;
  } catch (error) {
    if (error instanceof RunError && error.stdout.includes("Pattern verification failed")) return false;
    throw error;
  }
}
