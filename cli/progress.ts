/**
 * Progress of a merge on stderr: on a terminal one bar redrawn in place, otherwise plain lines (one per disk
 * and per 10 % step), so logs of non-interactive runs stay short and readable.
 */
import type { ProgressStream } from "./context";
import { formatBytes } from "./format";

/** One progress report: bytes of the job's own scale (see the engine's BlockJobProgress). */
export interface MergeProgress {
  readonly disk: string;
  readonly bytesDone: number;
  readonly bytesTotal: number;
}

const BAR_WIDTH = 30;
/** Erase the current terminal line and return to its start. */
const CLEAR_LINE = "\r\x1b[2K";

/** Writes progress of `label` (`merging s2`) to `stream`. Call `done()` before writing anything else. */
export class ProgressReporter {
  private drawn = false;
  private lastDisk: string | undefined;
  private lastStep = -1;

  constructor(
    private readonly stream: ProgressStream,
    private readonly label: string,
  ) {}

  /** Reports one sample; never throws. */
  update(progress: MergeProgress): void {
    const fraction = progress.bytesTotal > 0 ? Math.min(1, progress.bytesDone / progress.bytesTotal) : 0;
    const percent = Math.floor(fraction * 100);
    const amount = `${formatBytes(progress.bytesDone)}/${formatBytes(progress.bytesTotal)}`;
    if (this.stream.isTTY) {
      const filled = Math.round(fraction * BAR_WIDTH);
      const bar = `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]`;
      const line = `${this.label} ${progress.disk} ${bar} ${String(percent).padStart(3)}% ${amount}`;
      // A terminal that reports no size (0 columns: a fresh pty, a serial console) gets the usual 80.
      const width = this.stream.columns !== undefined && this.stream.columns > 0 ? this.stream.columns : 80;
      this.stream.write(`${CLEAR_LINE}${line.slice(0, Math.max(1, width - 1))}`);
      this.drawn = true;
      return;
    }
    const step = Math.floor(percent / 10);
    if (progress.disk === this.lastDisk && step === this.lastStep) return;
    this.lastDisk = progress.disk;
    this.lastStep = step;
    this.stream.write(`${this.label} ${progress.disk}: ${percent}% (${amount})\n`);
  }

  /** Ends the bar's line on a terminal, so later output starts on a fresh line. Idempotent. */
  done(): void {
    if (this.drawn) this.stream.write("\n");
    this.drawn = false;
  }
}
