/** Small formatting helpers for human output. Pure. */

/** `1.5 MiB`, `196 KiB`, `12 B`: binary units, one decimal below 10. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** `2026-11-22 02:40:01 UTC` for seconds since the epoch. */
export function formatTime(epochSeconds: number): string {
  return `${new Date(epochSeconds * 1000).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`; a time in the future (clock skew) is `in the future`. */
export function formatAge(epochSeconds: number, now: Date): string {
  const seconds = Math.floor(now.getTime() / 1000) - epochSeconds;
  if (seconds < 0) return "in the future";
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

/** Seconds since the epoch as an ISO 8601 UTC time. */
export function isoTime(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString();
}
