/**
 * Verification of live backing chains after an operation: the engine never trusts that a call that returned
 * success did what was asked, it re-reads the domain and compares. Pure: the caller reads, this compares.
 */
import { type DomainModel, describeChain } from "../model/domain";

/** What the top of one disk's chain must be after an operation: paths, active image first. */
export interface ExpectedChainTop {
  readonly target: string;
  /** The first layers of the chain, in order (active first); deeper layers are not compared. */
  readonly top: readonly string[];
}

/**
 * Compares the chains of `domain` with the expectations and returns one sentence per disk that differs (empty
 * when all match). A missing disk is a mismatch, and so is a chain shorter than expected when libvirt marked
 * its end; when it did not (shut-off domains list only what they know, see DiskModel.chainTerminated), only
 * the layers listed are compared, and at least the active one must be.
 */
export function chainMismatches(domain: DomainModel, expected: readonly ExpectedChainTop[]): string[] {
  const problems: string[] = [];
  for (const want of expected) {
    const disk = domain.disks.find((d) => d.target === want.target);
    if (disk === undefined) {
      problems.push(`disk ${want.target} is no longer in domain ${domain.name}`);
      continue;
    }
    const actual = disk.chain.slice(0, want.top.length).map((image) => image.path);
    const longEnough = actual.length === want.top.length || (!disk.chainTerminated && actual.length > 0);
    if (longEnough && actual.every((path, i) => path === want.top[i])) continue;
    problems.push(
      `disk ${want.target}: expected the chain to start with ${want.top.join(" -> ")}, found ${describeChain(disk.chain)}`,
    );
  }
  return problems;
}
