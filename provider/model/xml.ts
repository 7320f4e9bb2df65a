/**
 * Small, strict helpers over @xmldom/xmldom shared by the model's parsers and builders. Everything here is
 * pure: strings in, DOM nodes or strings out. Element lookups match by local name and ignore namespace
 * prefixes, because libvirt returns the same custom metadata with a prefix in `virDomainGetXMLDesc` and without
 * one in `virDomainGetMetadata`.
 */
import { DOMImplementation, DOMParser, type Element, XMLSerializer } from "@xmldom/xmldom";

/** Thrown when XML is malformed or lacks an element or attribute the model needs. Branded, not instanceof. */
export class ModelXmlError extends Error {
  readonly brand = "lvsnap.ModelXmlError" as const;
  override readonly name = "ModelXmlError";
}

/** True for a ModelXmlError from any copy of this package. */
export function isModelXmlError(e: unknown): e is ModelXmlError {
  return typeof e === "object" && e !== null && (e as { brand?: unknown }).brand === "lvsnap.ModelXmlError";
}

/**
 * Parses a complete XML document and returns its root element, checking the root's local name. Warnings and
 * errors of the parser are fatal: a half-understood document must never drive a host operation.
 */
export function parseRoot(xml: string, expectedRoot: string, what: string): Element {
  let problem: string | undefined;
  const parser = new DOMParser({
    onError: (level, message) => {
      problem ??= `${level}: ${message}`;
      throw new Error(message);
    },
  });
  let root: Element | null = null;
  try {
    root = parser.parseFromString(xml, "text/xml").documentElement;
  } catch (e) {
    throw new ModelXmlError(`${what}: malformed XML (${problem ?? String(e)})`, { cause: e });
  }
  if (root === null || localName(root) !== expectedRoot) {
    throw new ModelXmlError(
      `${what}: expected a <${expectedRoot}> document, got <${root ? localName(root) : ""}>`,
    );
  }
  return root;
}

/** The local name of an element (`lvsnap:state` -> `state`). */
export function localName(el: Element): string {
  return el.localName ?? el.nodeName;
}

/** Direct child elements, optionally only those with a given local name, in document order. */
export function childElements(parent: Element, name?: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n !== null; n = n.nextSibling) {
    if (n.nodeType === n.ELEMENT_NODE) {
      const el = n as Element;
      if (name === undefined || localName(el) === name) out.push(el);
    }
  }
  return out;
}

/** The first direct child element with this local name, or undefined. */
export function child(parent: Element, name: string): Element | undefined {
  return childElements(parent, name)[0];
}

/** An attribute's value, or undefined when absent (xmldom returns null or "" for absent ones). */
export function attr(el: Element | undefined, name: string): string | undefined {
  if (el === undefined || !el.hasAttribute(name)) return undefined;
  return el.getAttribute(name) ?? undefined;
}

/** Text content of a direct child element, or undefined when the child is absent. */
export function childText(parent: Element, name: string): string | undefined {
  const el = child(parent, name);
  return el === undefined ? undefined : (el.textContent ?? "");
}

/** A required attribute; a missing one is a ModelXmlError naming the element. */
export function requiredAttr(el: Element, name: string, what: string): string {
  const value = attr(el, name);
  if (value === undefined) throw new ModelXmlError(`${what}: <${localName(el)}> has no ${name} attribute`);
  return value;
}

/** A new, empty document whose root element has the given name (and namespace, when given). */
export function newDocumentRoot(rootName: string, namespaceUri: string | null = null): Element {
  const doc = new DOMImplementation().createDocument(namespaceUri, rootName, null);
  const root = doc.documentElement;
  if (root === null) throw new ModelXmlError(`cannot create <${rootName}>`);
  return root;
}

/** Appends a child element, sets its attributes (undefined values skipped) and optional text; returns it. */
export function appendElement(
  parent: Element,
  name: string,
  attributes: Readonly<Record<string, string | undefined>> = {},
  text?: string,
): Element {
  const doc = parent.ownerDocument;
  if (doc === null) throw new ModelXmlError(`<${localName(parent)}> belongs to no document`);
  const el = parent.namespaceURI ? doc.createElementNS(parent.namespaceURI, name) : doc.createElement(name);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined) el.setAttribute(key, value);
  }
  if (text !== undefined) el.appendChild(doc.createTextNode(text));
  parent.appendChild(el);
  return el;
}

/**
 * Serializes an element built by these helpers.
 *
 * Quirk: XMLSerializer of @xmldom/xmldom writes a carriage return inside text as a raw byte, and every XML
 * parser (libvirt's libxml2 included) turns a raw CR into LF, so "a\r\nb" would come back as "a\nb". Our
 * builders create no comments, CDATA or processing instructions, so a raw CR in the output can only come from
 * text; writing it as a character reference makes it survive the round trip.
 */
export function serialize(el: Element): string {
  return new XMLSerializer().serializeToString(el).replaceAll("\r", "&#13;");
}

/**
 * Characters XML 1.0 cannot carry at all (C0 controls other than tab, LF and CR; U+FFFE, U+FFFF; lone
 * surrogates). Text containing them cannot round-trip through libvirt, so callers reject it up front.
 */
export function findNonXmlCharacter(text: string): number | undefined {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || (c >= 0xdc00 && c <= 0xdfff)) return i;
    if (c === 0xfffe || c === 0xffff) return i;
  }
  return undefined;
}
