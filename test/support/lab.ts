import { onTestFinished } from "vitest";
import { removeLabDomain } from "./lab-cleanup";
import { createLabDomain, type LabDomainOptions, type LinuxLabDomainOptions, newLabName } from "./lab-create";
import type { LabDomain } from "./lab-domain";
import type { LinuxLabDomain } from "./linux-guest";

/**
 * The test lab: one call makes a throwaway libvirt domain for a test, and removes it (domain, metadata, files)
 * when the test finishes, passed or failed. See lab-create.ts for what a lab domain is.
 */

export * from "./lab-create";

/**
 * Creates a lab domain owned by the running test: it is removed when the test finishes, whether it passed,
 * failed or threw (cleanup is registered before anything is created). Must be called inside a test.
 */
function labDomain(options: LinuxLabDomainOptions): Promise<LinuxLabDomain>;
function labDomain(options?: LabDomainOptions): Promise<LabDomain>;
function labDomain(options: LabDomainOptions = {}): Promise<LabDomain> {
  const name = newLabName();
  onTestFinished(() => removeLabDomain(name));
  return createLabDomain(options, name);
}

/** The lab, for use inside Vitest tests. */
export const lab = {
  /** See labDomain: a lab domain removed when the running test finishes. */
  domain: labDomain,
};
