/**
 * libvirt's keepalive rule, as a clock-driven state machine with no I/O and no timers of its own: when the peer
 * has been silent for `intervalMs`, ping it (again every `intervalMs`); when it has been silent through `count`
 * pings and one more interval, it is dead. Any message from the peer counts as a sign of life, as in libvirt.
 */

export interface KeepaliveSettings {
  /** Silence in milliseconds before the first ping, and between pings. */
  readonly intervalMs: number;
  /** Unanswered pings after which the peer is declared dead. */
  readonly count: number;
}

/**
 * libvirt's own default (keepalive_interval = 5, keepalive_count = 5 in libvirtd.conf): a peer is declared
 * dead after 30 s of silence, so an ssh or network stall of a few seconds does not kill a connection in the
 * middle of a merge.
 */
export const DEFAULT_KEEPALIVE: KeepaliveSettings = { intervalMs: 5000, count: 5 };

/** What the connection should do after a tick. */
export type KeepaliveAction = "none" | "ping" | "dead";

export class KeepaliveMonitor {
  private lastHeardAt: number;
  private lastPingAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly settings: KeepaliveSettings,
    now: number,
  ) {
    this.lastHeardAt = now;
  }

  /** Records a message from the peer. */
  heard(now: number): void {
    this.lastHeardAt = now;
    this.lastPingAt = Number.NEGATIVE_INFINITY;
  }

  /** Milliseconds the peer has been silent, as of `now`. */
  silentFor(now: number): number {
    return now - this.lastHeardAt;
  }

  /** Decides, at time `now`, whether to ping or to give up. */
  tick(now: number): KeepaliveAction {
    const { intervalMs, count } = this.settings;
    const silent = now - this.lastHeardAt;
    if (silent >= intervalMs * (count + 1)) return "dead";
    if (silent >= intervalMs && now - this.lastPingAt >= intervalMs) {
      this.lastPingAt = now;
      return "ping";
    }
    return "none";
  }
}
