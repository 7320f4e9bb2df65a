import { describe, expect, it } from "vitest";
import { withSnapshotDescription } from "../../../provider/engine/describe";

const SNAPSHOT_XML = `<domainsnapshot>
  <name>pre</name>
  <description>old</description>
  <state>disk-snapshot</state>
  <creationTime>1795313902</creationTime>
</domainsnapshot>`;

describe("withSnapshotDescription", () => {
  it("replaces the description and keeps everything else", () => {
    expect(withSnapshotDescription(SNAPSHOT_XML, "new <&> 'text'")).toBe(
      SNAPSHOT_XML.replace(
        "<description>old</description>",
        "<description>new &lt;&amp;&gt; 'text'</description>",
      ),
    );
  });

  it("removes it for null, and adds one right after the name when there was none", () => {
    const without = withSnapshotDescription(SNAPSHOT_XML, null);
    expect(without).not.toContain("description");
    expect(withSnapshotDescription(without, "back")).toMatch(
      /<name>pre<\/name><description>back<\/description>/,
    );
  });
});
