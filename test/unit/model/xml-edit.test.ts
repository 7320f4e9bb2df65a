import { describe, expect, test } from "vitest";
import {
  appendCopy,
  newDocumentRoot,
  parseForEdit,
  serialize,
  serializeRead,
  toDomDocument,
} from "../../../provider/model/xml";
import {
  child,
  childElements,
  isElement,
  namespaceUri,
  parseRoot,
  type XmlElement,
} from "../../../provider/model/xml-read";

const QEMU = "http://libvirt.org/schemas/domain/qemu/1.0";
const DOCUMENT =
  `<domain type="kvm" xmlns:qemu="${QEMU}"><metadata><d xmlns="urn:default"><e a="1"/><f xmlns=""/></d>` +
  `<p:z xmlns:p="urn:p" p:k="1" xml:lang="en">t&#13;<![CDATA[<c> &]]><!-- dropped --><?pi dropped?></p:z>` +
  `</metadata><qemu:commandline><qemu:arg value="-x &quot;y&quot;"/></qemu:commandline></domain>`;

describe("documents edited from the read tree", () => {
  test("parseForEdit keeps names, namespaces, attributes and text; CDATA becomes text, comments and PIs go", () => {
    const root = parseForEdit(DOCUMENT, "domain", "domain XML");
    expect(serialize(root)).toBe(
      `<domain type="kvm" xmlns:qemu="${QEMU}"><metadata><d xmlns="urn:default"><e a="1"/><f xmlns=""/></d>` +
        `<p:z xmlns:p="urn:p" p:k="1" xml:lang="en">t&#13;&lt;c&gt; &amp;</p:z>` +
        `</metadata><qemu:commandline><qemu:arg value="-x &quot;y&quot;"/></qemu:commandline></domain>`,
    );
    expect([root.namespaceURI, root.lastChild?.namespaceURI]).toEqual([null, QEMU]);
  });

  test("a copy reads back as the same tree", () => {
    const again = parseRoot(serialize(parseForEdit(DOCUMENT, "domain", "t")), "domain", "t");
    const z = child(child(again, "metadata") ?? again, "z");
    expect([z?.attributes, z?.text]).toEqual([
      { "xmlns:p": "urn:p", "p:k": "1", "xml:lang": "en" },
      "t\r<c> &",
    ]);
  });

  test("an element whose namespace is declared on an ancestor gets the declaration in its own document", () => {
    const commandline = child(parseRoot(DOCUMENT, "domain", "t"), "commandline");
    if (commandline === undefined) throw new Error("no commandline");
    expect(serialize(toDomDocument(commandline))).toBe(
      `<qemu:commandline xmlns:qemu="${QEMU}"><qemu:arg value="-x &quot;y&quot;"/></qemu:commandline>`,
    );
  });

  test("appendCopy without namespaces writes plain XML: local names, no declarations", () => {
    const root = newDocumentRoot("state");
    appendCopy(root, parseRoot(DOCUMENT, "domain", "t"), "drop");
    expect(serialize(root)).toBe(
      `<state><domain type="kvm"><metadata><d><e a="1"/><f/></d><z k="1" lang="en">t&#13;&lt;c&gt; &amp;</z>` +
        `</metadata><commandline><arg value="-x &quot;y&quot;"/></commandline></domain></state>`,
    );
  });
});

/** Every element of a read tree, document order. */
function allElements(root: XmlElement): XmlElement[] {
  return [root, ...childElements(root).flatMap(allElements)];
}

/** A read tree with every element and attribute name resolved to its namespace URI, and its text. */
function resolved(el: XmlElement): unknown {
  return {
    name: [namespaceUri(el) ?? null, el.name.slice(el.name.indexOf(":") + 1)],
    attributes: Object.keys(el.attributes)
      .filter((a) => a !== "xmlns" && !a.startsWith("xmlns:"))
      .map((a) => [
        a.includes(":") ? namespaceUri(el, a) : null,
        a.slice(a.indexOf(":") + 1),
        el.attributes[a],
      ]),
    children: el.children.map((n) => (isElement(n) ? resolved(n) : "text" in n ? n.text : null)),
  };
}

describe("read trees written without a DOM", () => {
  test("serializeRead writes, for every element, what serialize writes of its DOM copy, with and without namespaces", () => {
    for (const el of allElements(parseRoot(DOCUMENT, "domain", "t"))) {
      const dropped = newDocumentRoot("state");
      appendCopy(dropped, el, "drop");
      expect([serializeRead(el), `<state>${serializeRead(el, "drop")}</state>`]).toEqual([
        serialize(toDomDocument(el)),
        serialize(dropped),
      ]);
    }
  });

  test("hostile values and namespaces declared above, beside and below read back as the same tree", () => {
    const hostile =
      `<a xmlns="urn:a" xmlns:q="urn:q"><m><s q:x="&#9;&#10;&#13;&lt;&gt;&amp;&quot;'" y='a"b'>` +
      `x&#13;y&#10;&lt;/s&gt;&amp;"' 😀 ]]&gt;<![CDATA[<b>]]></s><q:t/><u xmlns="urn:u"><v/></u>` +
      `<w xmlns=""><q:z/></w></m></a>`;
    const m = child(parseRoot(hostile, "a", "t"), "m");
    if (m === undefined) throw new Error("no m");
    const written = serializeRead(m);
    expect(written).toBe(
      `<m xmlns="urn:a" xmlns:q="urn:q"><s q:x="&#9;&#10;&#13;&lt;&gt;&amp;&quot;'" y="a&quot;b">` +
        `x&#13;y\n&lt;/s&gt;&amp;"' 😀 ]]&gt;&lt;b&gt;</s><q:t/><u xmlns="urn:u"><v/></u><w xmlns=""><q:z/></w></m>`,
    );
    expect(resolved(parseRoot(written, "m", "t"))).toEqual(resolved(m));
  });
});
