import { createHash } from "node:crypto";
import { describe, expect, test } from "vitest";
import { verifyRecordsText } from "../support/guest-records";

// Records built here the way the guest's writer (test/support/linux-guest/lvsnap-writer) builds them.
function record(seq: number): string {
  const body = `rec-${seq}-${"0".repeat(400)}`;
  return `${seq} ${createHash("md5").update(`${body}\n`).digest("hex")} ${body}\n`;
}

function records(count: number): string {
  return Array.from({ length: count }, (_, index) => record(index + 1)).join("");
}

describe("verifyRecordsText", () => {
  test("accepts a complete, gapless file", () => {
    expect(verifyRecordsText(records(50), 50)).toEqual({ records: 50, problem: null });
    expect(verifyRecordsText("", 0)).toEqual({ records: 0, problem: null });
  });

  test("reports records missing at the end", () => {
    expect(verifyRecordsText(records(49), 50)).toEqual({ records: 49, problem: "49 records, 50 expected" });
  });

  test("reports a gap in the sequence", () => {
    const text = records(3) + record(5);
    expect(verifyRecordsText(text, 4)).toEqual({
      records: 3,
      problem: "record 4: sequence 5 where 4 was expected",
    });
  });

  test("reports a record whose content changed", () => {
    const text = records(2) + record(3).replace("rec-3-0", "rec-3-1");
    expect(verifyRecordsText(text, 3)).toEqual({
      records: 2,
      problem: "record 3: body does not match its sequence number",
    });
  });

  test("reports a wrong checksum and a torn line", () => {
    const wrongSum = record(1).replace(/^1 [0-9a-f]{4}/, "1 ffff");
    expect(verifyRecordsText(wrongSum, 1)).toEqual({ records: 0, problem: "record 1: checksum mismatch" });
    expect(verifyRecordsText(`${records(1)}2 abc`, 2)).toEqual({
      records: 1,
      problem: "record 2: malformed line",
    });
  });
});
