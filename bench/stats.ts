/**
 * The statistics every benchmark of bench/ reports with, so figures of different files that feed one report
 * are computed the same way.
 */

/**
 * The median of `values` (any unit; the result is in the same unit): the middle value for an odd count, the
 * mean of the two middle values for an even count. Does not modify `values`. Throws on an empty list, which
 * is always a bug in the benchmark that calls it (a figure of no samples must not be reported as 0 or NaN).
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] as number;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] as number) + upper) / 2;
}

/**
 * `value` rounded to `digits` decimals, as a number (not a string) so the JSON line of a benchmark holds
 * numbers; the unit is the caller's.
 */
export function roundTo(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}
