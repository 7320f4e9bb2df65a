import { createHash } from "node:crypto";

/**
 * Pure check of the records file that the Linux test guest's writer appends (see
 * linux-guest/lvsnap-writer): one line per record, "<seq> <md5 of body> <body>", body "rec-<seq>-" + 400
 * zeros, seq from 1 without gaps.
 */

/** The padding the writer appends to each record body. */
const padding = "0".repeat(400);

/** Outcome of checking a records file: how many records verified, and the first problem if any. */
export interface RecordsVerdict {
  records: number;
  problem: string | null;
}

/**
 * Checks every record of `text` (checksum, body, sequence) and that exactly `expectedCount` records are
 * there. Returns the number of records that verified before the first problem, and that problem (null when
 * all is well). Pure.
 */
export function verifyRecordsText(text: string, expectedCount: number): RecordsVerdict {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (const [index, line] of lines.entries()) {
    const seq = index + 1;
    const [seqText, sum, body, ...rest] = line.split(" ");
    const expectedBody = `rec-${seq}-${padding}`;
    const problem =
      rest.length > 0 || body === undefined
        ? "malformed line"
        : seqText !== String(seq)
          ? `sequence ${seqText} where ${seq} was expected`
          : body !== expectedBody
            ? "body does not match its sequence number"
            : sum !== createHash("md5").update(`${body}\n`).digest("hex")
              ? "checksum mismatch"
              : null;
    if (problem) return { records: index, problem: `record ${seq}: ${problem}` };
  }
  if (lines.length !== expectedCount) {
    return { records: lines.length, problem: `${lines.length} records, ${expectedCount} expected` };
  }
  return { records: lines.length, problem: null };
}
