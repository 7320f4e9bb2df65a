import { expect, test } from "vitest";

test("toolchain runs on the project's own Node", () => {
  expect(Number(process.versions.node.split(".")[0])).toBeGreaterThanOrEqual(22);
});
