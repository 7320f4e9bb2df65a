import { describe, expect, test } from "vitest";
import { parseDomainXml } from "../../../provider/model/domain";
import { parseSnapshotXml } from "../../../provider/model/snapshot";
import { PROJECT_XML_NAMESPACE } from "../../../provider/model/xml-namespace";
import {
  attr,
  child,
  childElements,
  childText,
  isModelXmlError,
  localName,
  namespaceUri,
  parseRoot,
  requiredAttr,
} from "../../../provider/model/xml-read";
import { fixture } from "./fixtures";

/** The ModelXmlError message `f` throws (fails the test when it throws something else or nothing). */
function modelXmlErrorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(isModelXmlError(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error("expected a ModelXmlError");
}

describe("namespaces", () => {
  const xml = `<domain xmlns:a="urn:outer"><metadata>
    <lvsnap:state xmlns:lvsnap="${PROJECT_XML_NAMESPACE}"><lvsnap:snapshot name="s1"/></lvsnap:state>
    <a:x/><state/><d xmlns="urn:default"><e/><f xmlns=""/></d><b:y/><p:z xmlns:p="urn:p" p:k="1" xml:lang="en"/>
  </metadata></domain>`;
  const metadata = child(parseRoot(xml, "domain", "t"), "metadata");

  test("elements are found by local name whatever their prefix; the namespace URI tells them apart", () => {
    if (metadata === undefined) throw new Error("no metadata");
    const found = childElements(metadata).map((el) => [el.name, localName(el), namespaceUri(el)]);
    expect(found).toEqual([
      ["lvsnap:state", "state", PROJECT_XML_NAMESPACE],
      ["a:x", "x", "urn:outer"],
      ["state", "state", undefined],
      ["d", "d", "urn:default"],
      ["b:y", "y", undefined],
      ["p:z", "z", "urn:p"],
    ]);
    expect(childElements(metadata, "state").map((el) => namespaceUri(el))).toEqual([
      PROJECT_XML_NAMESPACE,
      undefined,
    ]);
  });

  test("a default namespace applies to descendants until xmlns='' removes it; attributes resolve their prefix", () => {
    const d = metadata === undefined ? undefined : child(metadata, "d");
    const z = metadata === undefined ? undefined : child(metadata, "z");
    if (d === undefined || z === undefined) throw new Error("missing elements");
    expect(childElements(d).map((el) => namespaceUri(el))).toEqual(["urn:default", undefined]);
    expect([namespaceUri(z, "p:k"), namespaceUri(z, "xml:lang"), attr(z, "p:k")]).toEqual([
      "urn:p",
      "http://www.w3.org/XML/1998/namespace",
      "1",
    ]);
  });

  test("the project's element is extracted when its namespace is declared on the domain, not on itself", () => {
    const declaredAbove = fixture("domain-running-fresh.xml")
      .replace("<domain ", `<domain xmlns:own="${PROJECT_XML_NAMESPACE}" `)
      .replace(
        "</uuid>",
        "</uuid><metadata><own:state><own:preview snapshot='s&amp;1'/></own:state></metadata>",
      );
    expect(parseDomainXml(declaredAbove).projectMetadataXml).toBe(
      `<own:state xmlns:own="${PROJECT_XML_NAMESPACE}"><own:preview snapshot="s&amp;1"/></own:state>`,
    );
  });

  test("an element named like the project's but in another namespace is not the project's", () => {
    const foreign = fixture("domain-running-fresh.xml").replace(
      "</uuid>",
      "</uuid><metadata><lvsnap:state xmlns:lvsnap='urn:someone-else'/><state/></metadata>",
    );
    expect(parseDomainXml(foreign).projectMetadataXml).toBeUndefined();
  });
});

describe("text and attribute values", () => {
  test("CDATA, entities, character references and non-BMP characters read back exactly", () => {
    const root = parseRoot(
      `<domainsnapshot><name>s1</name><description>a <![CDATA[<b> & ]]]]><![CDATA[>]]> &lt;c&gt; &amp;amp; &#233;&#x1F600; ✓ 😀 日本</description></domainsnapshot>`,
      "domainsnapshot",
      "t",
    );
    expect(childText(root, "description")).toBe("a <b> & ]]> <c> &amp; é😀 ✓ 😀 日本");
    expect(
      parseSnapshotXml(
        `<domainsnapshot><name>s&#10;1</name><description><![CDATA[x\r\ny]]>&#13;</description></domainsnapshot>`,
      ),
    ).toMatchObject({
      name: "s\n1",
      description: "x\ny\r",
    });
  });

  test("an empty child reads as empty text, an absent one as undefined; attribute values are normalized", () => {
    const root = parseRoot(`<r a="x&#10;y" b="1&#9;\n2" c=""><e/><f>  </f></r>`, "r", "t");
    expect([childText(root, "e"), childText(root, "f"), childText(root, "g")]).toEqual(["", "  ", undefined]);
    expect([
      attr(root, "a"),
      attr(root, "b"),
      attr(root, "c"),
      attr(root, "d"),
      attr(root, "toString"),
    ]).toEqual(["x\ny", "1\t 2", "", undefined, undefined]);
  });

  test("comments and processing instructions are not text; whitespace and text between elements are", () => {
    const root = parseRoot(`<?xml version="1.0"?><r>a<!-- no --><?pi x?><e>b</e> c</r>`, "r", "t");
    expect(root.text).toBe("ab c");
    expect(childElements(root).map((el) => el.name)).toEqual(["e"]);
  });
});

describe("errors", () => {
  test("malformed XML is a ModelXmlError naming the document and the problem on one line", () => {
    const cases = [
      "<domain><name>x</domain>",
      "",
      "<domain",
      "<domain><a b='1' b='2'/></domain>",
      "<domain>&nope;</domain>",
      "<domain/><domain/>",
    ];
    expect(cases.map((xml) => modelXmlErrorOf(() => parseDomainXml(xml)))).toEqual([
      "domain XML: malformed XML (Missing end tag for element name (line 1, column 16))",
      "domain XML: malformed XML (Root element is missing or invalid (line 1, column 1))",
      "domain XML: malformed XML (Unclosed start tag for element `domain` (line 1, column 8))",
      "domain XML: malformed XML (Duplicate attribute: b (line 1, column 23))",
      "domain XML: malformed XML (Named entity isn't defined: &nope; (line 1, column 9))",
      "domain XML: malformed XML (Extra content at the end of the document (line 1, column 10))",
    ]);
  });

  test("a wrong root, a missing required attribute and a snapshot without a name are ModelXmlErrors", () => {
    expect(modelXmlErrorOf(() => parseSnapshotXml("<domain/>"))).toBe(
      "snapshot XML: expected a <domainsnapshot> document, got <domain>",
    );
    expect(modelXmlErrorOf(() => parseRoot("<p:pool xmlns:p='urn:p'/>", "domain", "pool XML"))).toBe(
      "pool XML: expected a <domain> document, got <pool>",
    );
    expect(modelXmlErrorOf(() => requiredAttr(parseRoot("<p:t/>", "t", "t"), "dev", "disk"))).toBe(
      "disk: <t> has no dev attribute",
    );
    expect(modelXmlErrorOf(() => parseSnapshotXml("<domainsnapshot><name/></domainsnapshot>"))).toBe(
      "snapshot XML: no <name>",
    );
    expect(modelXmlErrorOf(() => parseDomainXml("<domain><devices><disk/></devices></domain>"))).toBe(
      "domain : a <disk> has no <target>",
    );
  });
});

describe("reading a document again", () => {
  const shape = (root: ReturnType<typeof parseRoot>) =>
    childElements(root).map((el) => [localName(el), attr(el, "name"), el.text]);

  test("documents read in turn, one of them twice, each give their own content", () => {
    const a = "<state><snapshot name='a'>1</snapshot></state>";
    const b = "<state><snapshot name='b'>2</snapshot><journal/></state>";
    const reads = [a, b, a, a, b].map((xml) => shape(parseRoot(xml, "state", "t")));
    expect(reads).toEqual([
      [["snapshot", "a", "1"]],
      [
        ["snapshot", "b", "2"],
        ["journal", undefined, ""],
      ],
      [["snapshot", "a", "1"]],
      [["snapshot", "a", "1"]],
      [
        ["snapshot", "b", "2"],
        ["journal", undefined, ""],
      ],
    ]);
  });

  test("the root is checked on every read, and a malformed document fails every time", () => {
    const xml = "<state><snapshot name='a'/></state>";
    expect(localName(parseRoot(xml, "state", "t"))).toBe("state");
    expect(modelXmlErrorOf(() => parseRoot(xml, "domain", "domain XML"))).toBe(
      "domain XML: expected a <domain> document, got <state>",
    );
    const broken = "<state><snapshot></state>";
    const first = modelXmlErrorOf(() => parseRoot(broken, "state", "t"));
    expect(modelXmlErrorOf(() => parseRoot(broken, "state", "t"))).toBe(first);
    expect(first).toMatch(/^t: malformed XML \(/);
  });
});
