/**
 * Building and editing XML with @xmldom/xmldom: the documents this project sends to libvirt (snapshot create
 * XML, the project's metadata element, revert's domain definitions, a snapshot XML with a new description).
 * Reading is xml-read.ts's job: an edit starts from the read tree of the old document (`parseForEdit`,
 * `appendCopy`), so there is one way to read XML in the project. The query helpers here (`child`,
 * `childElements`, `attr`, `localName`) find the nodes to change in a document being built or edited; like
 * their namesakes in xml-read.ts they match by local name. A read element that only needs writing out, unchanged,
 * goes through `serializeRead` instead of a DOM copy (same text, a fraction of the cost). Everything here is
 * pure: strings and read trees in, DOM nodes or strings out.
 */
import { DOMImplementation, type Document, type Element, XMLSerializer } from "@xmldom/xmldom";
import {
  isElement,
  ModelXmlError,
  namespaceUri,
  parseRoot as parseReadRoot,
  localName as readLocalName,
  type XmlElement,
} from "./xml-read";

export { isModelXmlError, ModelXmlError } from "./xml-read";

/**
 * Parses a complete document (with xml-read.ts's parser and its errors, ModelXmlError) into a new DOM whose
 * root is returned for editing. Element and attribute names, namespaces (declarations included), attribute
 * values and text are kept; CDATA becomes text (same characters); comments and processing instructions are
 * dropped (libvirt sends none).
 */
export function parseForEdit(xml: string, expectedRoot: string, what: string): Element {
  return toDomDocument(parseReadRoot(xml, expectedRoot, what));
}

/** A read element as the root of a new DOM document, namespaces kept (ready for `serialize`). */
export function toDomDocument(el: XmlElement): Element {
  const root = newDocumentRoot(el.name, namespaceUri(el) ?? null);
  copyContent(root, el, "keep");
  return root;
}

/**
 * The read element `el` and its subtree as a standalone document, written straight from the read tree: what
 * `serialize(toDomDocument(el))` (namespaces "keep") or a copy by `appendCopy(..., "drop")` would write, without
 * building a DOM, which costs several times more than the writing. With "keep" the element also gets the
 * declarations of the namespaces its subtree uses that are declared on its ancestors (after its attributes,
 * where `serialize` puts them). Values are escaped as `serialize` escapes them (carriage returns as character
 * references, and tabs and line feeds too inside attribute values), so the document reads back as the same
 * tree. Text and CDATA are written as text; read trees hold no comments, and processing instructions are left
 * out as `appendCopy` leaves them.
 */
export function serializeRead(el: XmlElement, namespaces: "keep" | "drop" = "keep"): string {
  const out: string[] = [];
  writeRead(out, el, namespaces, namespaces === "keep" ? inheritedDeclarations(el) : "");
  return out.join("");
}

function writeRead(out: string[], el: XmlElement, namespaces: "keep" | "drop", declarations: string): void {
  const name = namespaces === "keep" ? el.name : readLocalName(el);
  out.push("<", name);
  for (const [attrName, value] of attributesToWrite(el, namespaces)) {
    out.push(" ", attrName, '="', escapeAttribute(value), '"');
  }
  out.push(declarations);
  const open = out.push(">");
  for (const n of el.children) {
    if (isElement(n)) writeRead(out, n, namespaces, "");
    else if ("text" in n) out.push(escapeText(n.text));
  }
  if (out.length === open) out[open - 1] = "/>";
  else out.push("</", name, ">");
}

/** With "drop": no declarations, local names, a later duplicate wins in the first one's place (as setAttribute). */
function attributesToWrite(el: XmlElement, namespaces: "keep" | "drop"): Iterable<[string, string]> {
  const all = Object.entries(el.attributes);
  if (namespaces === "keep" || !all.some(([name]) => name.includes(":") || name === "xmlns")) return all;
  const plain = new Map<string, string>();
  for (const [name, value] of all) {
    if (!isDeclaration(name)) plain.set(readLocalName(name), value);
  }
  return plain;
}

function isDeclaration(attributeName: string): boolean {
  return attributeName === "xmlns" || attributeName.startsWith("xmlns:");
}

/**
 * ` xmlns:p="uri"` for every prefix (`xmlns="uri"` for no prefix) that an element or attribute name in `root`'s
 * subtree uses without a declaration inside the subtree, resolved on `root`'s ancestors; nothing for a prefix
 * declared nowhere or a default namespace undeclared with `xmlns=""`.
 */
function inheritedDeclarations(root: XmlElement): string {
  const needed = new Set<string>();
  collectUndeclaredPrefixes(root, new Set(), needed);
  let out = "";
  for (const prefix of needed) {
    const uri = namespaceUri(root, prefix === "" ? "x" : `${prefix}:x`);
    if (uri !== undefined) out += ` ${prefix === "" ? "xmlns" : `xmlns:${prefix}`}="${escapeAttribute(uri)}"`;
  }
  return out;
}

/** Adds to `needed` the prefixes ("" for none) used in `el`'s subtree that neither `declared` nor it declares. */
function collectUndeclaredPrefixes(el: XmlElement, declared: ReadonlySet<string>, needed: Set<string>): void {
  let scope = declared;
  for (const name in el.attributes) {
    if (isDeclaration(name)) scope = new Set(scope).add(name === "xmlns" ? "" : name.slice("xmlns:".length));
  }
  const elementPrefix = prefixOf(el.name) ?? "";
  if (elementPrefix !== "xml" && !scope.has(elementPrefix)) needed.add(elementPrefix);
  for (const name in el.attributes) {
    const prefix = isDeclaration(name) ? undefined : prefixOf(name);
    if (prefix !== undefined && prefix !== "xml" && !scope.has(prefix)) needed.add(prefix);
  }
  for (const n of el.children) if (isElement(n)) collectUndeclaredPrefixes(n, scope, needed);
}

function prefixOf(qualifiedName: string): string | undefined {
  const colon = qualifiedName.indexOf(":");
  return colon < 0 ? undefined : qualifiedName.slice(0, colon);
}

const TEXT_ESCAPES: Readonly<Record<string, string>> = {
  "<": "&lt;",
  ">": "&gt;",
  "&": "&amp;",
  "\r": "&#13;",
};
const ATTRIBUTE_ESCAPES: Readonly<Record<string, string>> = {
  ...TEXT_ESCAPES,
  '"': "&quot;",
  "\t": "&#9;",
  "\n": "&#10;",
};

function escapeText(text: string): string {
  return text.replace(/[<>&\r]/g, (c) => TEXT_ESCAPES[c] ?? c);
}

function escapeAttribute(value: string): string {
  return value.replace(/[<>&"\t\n\r]/g, (c) => ATTRIBUTE_ESCAPES[c] ?? c);
}

/**
 * Appends to `parent` a deep copy of the read element `el` and returns the copy. With `namespaces: "drop"`
 * the copy is plain XML: local names only, no namespace declarations, prefixed attributes by local name.
 */
export function appendCopy(parent: Element, el: XmlElement, namespaces: "keep" | "drop" = "keep"): Element {
  const doc = documentOf(parent);
  const uri = namespaces === "keep" ? namespaceUri(el) : undefined;
  const name = namespaces === "keep" ? el.name : readLocalName(el);
  const copy = uri === undefined ? doc.createElement(name) : doc.createElementNS(uri, name);
  parent.appendChild(copy);
  copyContent(copy, el, namespaces);
  return copy;
}

const XMLNS_NAMESPACE = "http://www.w3.org/2000/xmlns/";

function copyContent(target: Element, el: XmlElement, namespaces: "keep" | "drop"): void {
  for (const [name, value] of Object.entries(el.attributes)) {
    const declaration = name === "xmlns" || name.startsWith("xmlns:");
    if (namespaces === "drop") {
      if (!declaration) target.setAttribute(readLocalName(name), value);
    } else if (declaration) {
      target.setAttributeNS(XMLNS_NAMESPACE, name, value);
    } else if (name.includes(":")) {
      target.setAttributeNS(namespaceUri(el, name) ?? null, name, value);
    } else {
      target.setAttribute(name, value);
    }
  }
  const doc = documentOf(target);
  for (const n of el.children) {
    if (isElement(n)) appendCopy(target, n, namespaces);
    else if ("text" in n) target.appendChild(doc.createTextNode(n.text));
  }
}

function documentOf(el: Element): Document {
  const doc = el.ownerDocument;
  if (doc === null) throw new ModelXmlError(`<${localName(el)}> belongs to no document`);
  return doc;
}

/** The local name of an element being built or edited (`lvsnap:state` -> `state`). */
export function localName(el: Element): string {
  return el.localName ?? el.nodeName;
}

/** Direct child elements of an element being built or edited, optionally only those with a local name. */
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
  const doc = documentOf(parent);
  const el = parent.namespaceURI ? doc.createElementNS(parent.namespaceURI, name) : doc.createElement(name);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined) el.setAttribute(key, value);
  }
  if (text !== undefined) el.appendChild(doc.createTextNode(text));
  parent.appendChild(el);
  return el;
}

/**
 * Serializes an element built or copied by these helpers.
 *
 * Quirk: XMLSerializer of @xmldom/xmldom writes a carriage return inside text as a raw byte, and every XML
 * parser (libvirt's libxml2 included) turns a raw CR into LF, so "a\r\nb" would come back as "a\nb". Our
 * builders and copies create no comments, CDATA or processing instructions, so a raw CR in the output can only
 * come from text or an attribute value; writing it as a character reference makes it survive the round trip.
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
