import { DOMImplementation, type Document, type Element, XMLSerializer } from "@xmldom/xmldom";

/**
 * Pure builder of the lab's domain XML. Every value goes in through the XML library (attributes and text
 * nodes), so names and paths with XML metacharacters stay data.
 */

/** One disk of a lab domain, in the order it is attached. */
export interface DiskSpec {
  target: string;
  file: string;
  format: "qcow2" | "raw";
  device: "disk" | "cdrom";
  bus: "virtio" | "sata";
  shareable?: boolean;
  readonly?: boolean;
  /** Per-disk default snapshot mode; omitted: libvirt's default (external for a disk-only snapshot). */
  snapshot?: "no" | "external";
}

/** Direct kernel boot (the Linux test guest); omitted: SeaBIOS with no OS. */
export interface KernelBootSpec {
  kernel: string;
  initrd: string;
  cmdline: string;
}

/** Everything that varies between lab domains. */
export interface DomainSpec {
  name: string;
  virtType: "kvm" | "qemu";
  memoryMiB: number;
  disks: DiskSpec[];
  guestAgentChannel: boolean;
  kernelBoot?: KernelBootSpec;
  /** File that receives the serial console (written by virtlogd). */
  consoleLog?: string;
}

function append(
  document: Document,
  parent: Element,
  tagName: string,
  attributes: Record<string, string> = {},
) {
  const element = document.createElement(tagName);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  parent.appendChild(element);
  return element;
}

function appendText(document: Document, parent: Element, tagName: string, text: string, attributes = {}) {
  const element = append(document, parent, tagName, attributes);
  element.appendChild(document.createTextNode(text));
  return element;
}

function appendDisk(document: Document, devices: Element, disk: DiskSpec): void {
  const attributes: Record<string, string> = { type: "file", device: disk.device };
  if (disk.snapshot) attributes.snapshot = disk.snapshot;
  const element = append(document, devices, "disk", attributes);
  // Shared disks need cache=none, or QEMU refuses to share them.
  const driver: Record<string, string> = { name: "qemu", type: disk.format };
  if (disk.shareable) driver.cache = "none";
  append(document, element, "driver", driver);
  append(document, element, "source", { file: disk.file });
  append(document, element, "target", { dev: disk.target, bus: disk.bus });
  if (disk.readonly) append(document, element, "readonly");
  if (disk.shareable) append(document, element, "shareable");
}

/** Builds the domain XML for `spec`. Pure; the result is a complete `<domain>` document. */
export function buildDomainXml(spec: DomainSpec): string {
  const document = new DOMImplementation().createDocument(null, "domain", null);
  const domain = document.documentElement;
  if (!domain) throw new Error("xmldom created no document element");
  domain.setAttribute("type", spec.virtType);
  appendText(document, domain, "name", spec.name);
  appendText(document, domain, "memory", String(spec.memoryMiB), { unit: "MiB" });
  appendText(document, domain, "vcpu", "1");
  const os = append(document, domain, "os");
  appendText(document, os, "type", "hvm", { arch: "x86_64", machine: "pc" });
  if (spec.kernelBoot) {
    appendText(document, os, "kernel", spec.kernelBoot.kernel);
    appendText(document, os, "initrd", spec.kernelBoot.initrd);
    appendText(document, os, "cmdline", spec.kernelBoot.cmdline);
  } else {
    append(document, os, "boot", { dev: "hd" });
  }
  append(document, append(document, domain, "features"), "acpi");
  appendText(document, domain, "on_poweroff", "destroy");
  appendText(document, domain, "on_reboot", "destroy");
  appendText(document, domain, "on_crash", "destroy");
  const devices = append(document, domain, "devices");
  for (const disk of spec.disks) appendDisk(document, devices, disk);
  if (spec.guestAgentChannel) {
    const channel = append(document, devices, "channel", { type: "unix" });
    append(document, channel, "target", { type: "virtio", name: "org.qemu.guest_agent.0" });
  }
  if (spec.consoleLog) {
    const serial = append(document, devices, "serial", { type: "pty" });
    append(document, serial, "log", { file: spec.consoleLog, append: "off" });
    append(document, serial, "target", { port: "0" });
  }
  // Quirk: libvirt adds a USB controller by default, and the Linux guest's kernel spends about a second of TCG
  // time on its PCI handoff quirk; no lab guest uses USB.
  if (spec.kernelBoot) append(document, devices, "controller", { type: "usb", model: "none" });
  append(document, devices, "memballoon", { model: "none" });
  return new XMLSerializer().serializeToString(document);
}
