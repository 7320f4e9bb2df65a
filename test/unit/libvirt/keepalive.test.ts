import { expect, test } from "vitest";
import {
  DEFAULT_KEEPALIVE,
  type KeepaliveAction,
  KeepaliveMonitor,
} from "../../../provider/libvirt/keepalive";

/** Ticks a monitor at the given times (ms) and returns what it decided at each. */
function run(
  monitor: KeepaliveMonitor,
  times: number[],
  heardAt: number[] = [],
): [number, KeepaliveAction][] {
  return times.map((now) => {
    if (heardAt.includes(now)) monitor.heard(now);
    return [now, monitor.tick(now)];
  });
}

test("a silent peer is pinged once per interval, then declared dead after count pings and one more interval", () => {
  const monitor = new KeepaliveMonitor({ intervalMs: 1000, count: 3 }, 0);
  expect(run(monitor, [500, 1000, 1500, 2000, 2999, 3000, 3999, 4000])).toEqual([
    [500, "none"],
    [1000, "ping"],
    [1500, "none"],
    [2000, "ping"],
    [2999, "none"],
    [3000, "ping"],
    [3999, "none"],
    [4000, "dead"],
  ]);
});

test("any message from the peer resets the silence and the ping schedule", () => {
  const monitor = new KeepaliveMonitor({ intervalMs: 100, count: 2 }, 0);
  expect(run(monitor, [100, 150, 200, 250, 350, 400, 550], [150, 300])).toEqual([
    [100, "ping"],
    [150, "none"],
    [200, "none"],
    [250, "ping"],
    [350, "ping"],
    [400, "none"],
    [550, "dead"],
  ]);
  expect(monitor.silentFor(600)).toBe(450);
});

test("by default, as in libvirt, a peer silent for 29 s is still pinged, not dead; dead after 30 s", () => {
  const monitor = new KeepaliveMonitor(DEFAULT_KEEPALIVE, 0);
  expect(run(monitor, [4000, 5000, 10_000, 25_000, 29_999, 30_000])).toEqual([
    [4000, "none"],
    [5000, "ping"],
    [10_000, "ping"],
    [25_000, "ping"],
    [29_999, "none"],
    [30_000, "dead"],
  ]);
});
