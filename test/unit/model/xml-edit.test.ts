import { describe, expect, test } from "vitest";
import {
  appendCopy,
  newDocumentRoot,
  parseForEdit,
  serialize,
  toDomDocument,
} from "../../../provider/model/xml";
import { child, parseRoot } from "../../../provider/model/xml-read";

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
