import { DOMParser, type Element } from "@xmldom/xmldom";
import type { ChainImage } from "./qemu-tools";
import { RunError, run } from "./run";

/**
 * virsh as an independent oracle and remote control for tests: what libvirt itself reports, through its own
 * client, without the project's protocol client in the way. Every call is one `virsh -c <uri>` process.
 */

/** The libvirt URI the lab uses: LAB_URI, else qemu:///system. */
export const labUri = process.env.LAB_URI ?? "qemu:///system";

/** Runs `virsh -c <labUri> ...args` and returns its stdout. Throws RunError on a non-zero exit. */
export async function virsh(...args: string[]): Promise<string> {
  return (await run("virsh", ["-c", labUri, ...args])).stdout;
}

/** Domain states as the lab names them; anything else virsh prints is passed through. */
export type DomainState = "running" | "paused" | "shutoff" | (string & {});

/** The domain's state (`virsh domstate`), with "shut off" written "shutoff". */
export async function domainState(domain: string): Promise<DomainState> {
  const state = (await virsh("domstate", domain)).trim();
  return state === "shut off" ? "shutoff" : state;
}

/** Whether a domain of that name is defined (or running transiently). */
export async function domainExists(domain: string): Promise<boolean> {
  try {
    await virsh("domuuid", domain);
    return true;
  } catch (error) {
    if (error instanceof RunError && /failed to get domain|Domain not found/i.test(error.stderr))
      return false;
    throw error;
  }
}

/** One row of `virsh domblklist --details`. `source` is null for an empty drive ("-"). */
export interface BlockListEntry {
  type: string;
  device: string;
  target: string;
  source: string | null;
}

/** Parses `virsh domblklist --details` output. Pure. Sources containing spaces are kept whole. */
export function parseBlockList(text: string): BlockListEntry[] {
  const rows: BlockListEntry[] = [];
  for (const line of text.split("\n").slice(2)) {
    const match = /^\s*(\S+)\s+(\S+)\s+(\S+)\s+(.*?)\s*$/.exec(line);
    if (!match) continue;
    const [, type = "", device = "", target = "", source = ""] = match;
    rows.push({ type, device, target, source: source === "-" ? null : source });
  }
  return rows;
}

/** The live (or, for a shut-off domain, persistent) disks as `virsh domblklist --details` shows them. */
export async function blockList(domain: string, inactive = false): Promise<BlockListEntry[]> {
  const args = ["domblklist", "--details", domain];
  if (inactive) args.push("--inactive");
  return parseBlockList(await virsh(...args));
}

function childElements(parent: Element, tagName: string): Element[] {
  const found: Element[] = [];
  for (let node = parent.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === node.ELEMENT_NODE && (node as Element).tagName === tagName)
      found.push(node as Element);
  }
  return found;
}

function sourcePath(element: Element): string | null {
  const source = childElements(element, "source")[0];
  if (!source) return null;
  return source.getAttribute("file") ?? source.getAttribute("dev") ?? source.getAttribute("name");
}

/**
 * Parses domain XML into each disk's chain as libvirt records it: target -> images, active first, following
 * the nested `<backingStore>` elements. A chain ends at an empty `<backingStore/>` or where libvirt stopped
 * describing it. Pure.
 */
export function parseDiskChains(domainXml: string): Record<string, ChainImage[]> {
  const document = new DOMParser().parseFromString(domainXml, "text/xml");
  const chains: Record<string, ChainImage[]> = {};
  for (const disk of Array.from(document.getElementsByTagName("disk"))) {
    const target = childElements(disk, "target")[0]?.getAttribute("dev");
    if (!target) continue;
    const chain: ChainImage[] = [];
    let layer: Element | undefined = disk;
    while (layer) {
      const file = sourcePath(layer);
      if (!file) break;
      const format =
        childElements(layer, layer === disk ? "driver" : "format")[0]?.getAttribute("type") ?? "unknown";
      chain.push({ file, format });
      layer = childElements(layer, "backingStore")[0];
    }
    chains[target] = chain;
  }
  return chains;
}

/** The domain XML (`virsh dumpxml`, live when running; `inactive` for the persistent definition). */
export async function domainXml(domain: string, inactive = false): Promise<string> {
  return inactive ? virsh("dumpxml", "--inactive", domain) : virsh("dumpxml", domain);
}

/** Each disk's chain as libvirt sees it now: target -> images, active first. */
export async function liveChains(domain: string, inactive = false): Promise<Record<string, ChainImage[]>> {
  return parseDiskChains(await domainXml(domain, inactive));
}

/** Snapshot names of the domain, parents before children (`snapshot-list --name --topological`). */
export async function snapshotNames(domain: string): Promise<string[]> {
  const text = await virsh("snapshot-list", "--name", "--topological", domain);
  return text.split("\n").filter((line) => line.length > 0);
}

/**
 * The snapshot tree as virsh sees it: snapshot name -> parent name (null for a root). One `snapshot-parent`
 * call per snapshot, so names are never split out of a table.
 */
export async function snapshotParents(domain: string): Promise<Record<string, string | null>> {
  const parents: Record<string, string | null> = {};
  for (const name of await snapshotNames(domain)) {
    try {
      parents[name] = (await virsh("snapshot-parent", domain, "--snapshotname", name)).trim();
    } catch (error) {
      if (!(error instanceof RunError && /has no parent|does not have a parent/i.test(error.stderr)))
        throw error;
      parents[name] = null;
    }
  }
  return parents;
}

/** `virsh snapshot-list --tree`, verbatim, for failure messages. */
export async function snapshotTreeText(domain: string): Promise<string> {
  return virsh("snapshot-list", "--tree", domain);
}

/** The current snapshot's name, or null when the domain has none. */
export async function currentSnapshot(domain: string): Promise<string | null> {
  try {
    return (await virsh("snapshot-current", "--name", domain)).trim() || null;
  } catch (error) {
    if (error instanceof RunError && /no current snapshot/i.test(error.stderr)) return null;
    throw error;
  }
}
