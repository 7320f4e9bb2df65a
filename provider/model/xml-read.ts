/**
 * The one way this project reads XML: libvirt's documents are parsed with @rgrove/parse-xml into a read-only
 * tree, and the strict helpers below query it. Reading is the engine's main CPU cost (every operation re-reads
 * the domain and snapshot XML), and this parser builds its tree several times faster than a DOM. Documents
 * that are built or edited go through xml.ts (a DOM) instead. Pure: strings in, read-only elements or strings
 * out.
 *
 * Element lookups match by local name and ignore namespace prefixes, because libvirt returns the same custom
 * metadata with a prefix in `virDomainGetXMLDesc` and without one in `virDomainGetMetadata`; where a namespace
 * matters (the project's element inside `<metadata>`), `namespaceUri` resolves it from the declarations in
 * scope, as a namespace-aware parser would.
 */
import { parseXml, type XmlElement, XmlError, XmlNode } from "@rgrove/parse-xml";

/** A read-only element of a parsed document: `name` (qualified), `attributes`, `children`, `text`. */
export type { XmlElement } from "@rgrove/parse-xml";

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
 * The tree of the last document parsed. Callers often read one document several times in a row (the project
 * metadata of a create: once to look for an interrupted operation, in two sections, then to add a record), and
 * reading is the engine's main CPU cost; an identical string gives the identical tree, so it is parsed once.
 * Sharing trees is why nothing may change one. Malformed documents are not kept (each read throws).
 */
let lastParsed: { readonly xml: string; readonly root: XmlElement | null } | undefined;

/**
 * Parses a complete XML document and returns its root element, checking the root's local name. Every
 * well-formedness error is fatal (ModelXmlError): a half-understood document must never drive a host
 * operation. Comments and processing instructions are not kept; CDATA sections read as text. The tree is
 * read-only: reading the same document again may return the very same tree.
 */
export function parseRoot(xml: string, expectedRoot: string, what: string): XmlElement {
  let root: XmlElement | null;
  if (lastParsed !== undefined && lastParsed.xml === xml) {
    root = lastParsed.root;
  } else {
    try {
      root = parseXml(xml).root;
    } catch (e) {
      // parse-xml appends an excerpt of the document on further lines; the first line says what is wrong.
      const problem = e instanceof XmlError ? (e.message.split("\n")[0] ?? e.message) : String(e);
      throw new ModelXmlError(`${what}: malformed XML (${problem})`, { cause: e });
    }
    lastParsed = { xml, root };
  }
  if (root === null || localName(root) !== expectedRoot) {
    throw new ModelXmlError(
      `${what}: expected a <${expectedRoot}> document, got <${root ? localName(root) : ""}>`,
    );
  }
  return root;
}

/** The local name of an element or attribute name (`lvsnap:state` -> `state`). */
export function localName(el: XmlElement | string): string {
  const name = typeof el === "string" ? el : el.name;
  return name.slice(name.indexOf(":") + 1);
}

const XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace";

/**
 * The namespace URI of a qualified name used on `el` (its own name by default): the nearest declaration of
 * its prefix (`xmlns:p`, or `xmlns` without a prefix) on `el` or an ancestor. Undefined when no namespace
 * applies (no prefix and no default namespace, an undeclared prefix, or `xmlns=""`).
 */
export function namespaceUri(el: XmlElement, qualifiedName: string = el.name): string | undefined {
  const colon = qualifiedName.indexOf(":");
  const prefix = colon < 0 ? undefined : qualifiedName.slice(0, colon);
  if (prefix === "xml") return XML_NAMESPACE;
  const declaration = prefix === undefined ? "xmlns" : `xmlns:${prefix}`;
  for (let n: XmlElement | undefined = el; n !== undefined; n = parentElement(n)) {
    const uri = attr(n, declaration);
    if (uri !== undefined) return uri === "" ? undefined : uri;
  }
  return undefined;
}

function parentElement(el: XmlElement): XmlElement | undefined {
  return el.parent !== null && isElement(el.parent) ? el.parent : undefined;
}

/** Direct child elements, optionally only those with a given local name, in document order. */
export function childElements(parent: XmlElement, name?: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const n of parent.children) {
    if (isElement(n) && (name === undefined || localName(n) === name)) out.push(n);
  }
  return out;
}

/** The first direct child element with this local name, or undefined. */
export function child(parent: XmlElement, name: string): XmlElement | undefined {
  for (const n of parent.children) {
    if (isElement(n) && localName(n) === name) return n;
  }
  return undefined;
}

/** An attribute's value (entities and character references resolved), or undefined when absent. */
export function attr(el: XmlElement | undefined, name: string): string | undefined {
  if (el === undefined || !Object.hasOwn(el.attributes, name)) return undefined;
  return el.attributes[name];
}

/** Text content (text and CDATA, descendants included) of a direct child element; undefined when absent. */
export function childText(parent: XmlElement, name: string): string | undefined {
  return child(parent, name)?.text;
}

/** A required attribute; a missing one is a ModelXmlError naming the element. */
export function requiredAttr(el: XmlElement, name: string, what: string): string {
  const value = attr(el, name);
  if (value === undefined) throw new ModelXmlError(`${what}: <${localName(el)}> has no ${name} attribute`);
  return value;
}

/** True for an element node (by its type tag, so trees from another copy of the parser are recognised too). */
export function isElement(n: { readonly type: string }): n is XmlElement {
  return n.type === XmlNode.TYPE_ELEMENT;
}
