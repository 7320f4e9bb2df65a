import { describe, expect, test } from "vitest";
import {
  defaultMemoryName,
  defaultOverlayName,
  descriptionProblem,
  hostPathProblem,
  snapshotNameProblem,
} from "../../../provider/engine/placement";

describe("snapshot names", () => {
  test.each(["s1", "pre-deploy_2026-11-22", "v1.2.3", "a+b", "_x", "A".repeat(100)])(
    "%s is accepted",
    (name) => {
      expect(snapshotNameProblem(name)).toBeUndefined();
    },
  );
  test.each([
    ["", "empty"],
    [".hidden", "must start with"],
    ["-x", "must start with"],
    ["a/b", "may only contain"],
    ["../etc", "may only contain"],
    ["a b", "may only contain"],
    ["a<b>&'\"", "may only contain"],
    ["$(id)", "may only contain"],
    ["ü", "may only contain"],
    ["A".repeat(101), "101 characters"],
  ])("%j is rejected (%s)", (name, why) => {
    expect(snapshotNameProblem(name)).toContain(why);
  });
});

describe("descriptions", () => {
  test("anything XML can carry is accepted, up to the limit", () => {
    expect(descriptionProblem(`<>&'" $(id) ü 🙂 \n\t${"x".repeat(1000)}`)).toBeUndefined();
    expect(descriptionProblem("x".repeat(10_001))).toContain("10001 characters");
    expect(descriptionProblem("bell \u0007")).toBe(
      "the description contains U+0007 at position 5, which XML (and so libvirt) cannot store",
    );
  });
});

test("Quirk: a carriage return in a description is refused, because libvirt hands it back as a line feed", () => {
  expect(descriptionProblem("a\r\nb")).toBe(
    "the description contains a carriage return at position 1, which libvirt cannot keep (use \\n line breaks)",
  );
});

describe("host paths", () => {
  test.each(["/", "/var/lib/libvirt/images", "/a b/c'd"])("%j is accepted", (path) => {
    expect(hostPathProblem(path, "dir")).toBeUndefined();
  });
  test.each([
    ["relative/dir", "not an absolute path"],
    ["/a/../etc", "not normalised"],
    ["/a/./b", "not normalised"],
    ["/a//b", "not normalised"],
    ["/a/b/", "not normalised"],
    ["/a/\u0001", "control character"],
  ])("%j is rejected", (path, why) => {
    expect(hostPathProblem(path, "dir")).toContain(why);
  });
});

describe("default file names", () => {
  test("overlay stem drops the extension and suffixes of existing snapshots", () => {
    const existing = new Set(["s1", "s2"]);
    expect(defaultOverlayName("/i/vda.qcow2", "s1", new Set())).toBe("vda.s1.qcow2");
    expect(defaultOverlayName("/i/vda.s2.qcow2", "s3", existing)).toBe("vda.s3.qcow2");
    expect(defaultOverlayName("/i/vda.s1.s2.qcow2", "s3", existing)).toBe("vda.s3.qcow2");
    expect(defaultOverlayName("/i/ubuntu-22.04.img", "s1", existing)).toBe("ubuntu-22.04.s1.qcow2");
    expect(defaultOverlayName("/i/vda.s2.revert-1.qcow2", "b1", existing)).toBe("vda.b1.qcow2");
    expect(defaultOverlayName("/i/vda.s1.s2.revert-12.qcow2", "b1", existing)).toBe("vda.b1.qcow2");
    expect(defaultOverlayName("/i/vda.s9.revert-1.qcow2", "b1", existing)).toBe("vda.s9.revert-1.b1.qcow2");
    expect(defaultOverlayName("/dev/vg/lv0", "s1", existing)).toBe("lv0.s1.qcow2");
    expect(defaultMemoryName("web", "s1")).toBe("web.s1.mem");
  });
});
