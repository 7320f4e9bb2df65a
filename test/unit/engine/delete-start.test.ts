import { describe, expect, test } from "vitest";
import { journalForSteps } from "../../../provider/engine/delete-execute";
import {
  rollBackStart,
  startPausedForDelete,
  whileStartedPaused,
} from "../../../provider/engine/delete-start";
import { isEngineError } from "../../../provider/engine/errors";
import { OperationPhase, parseJournal, withJournal } from "../../../provider/engine/journal";
import { finishInterruptedOperations } from "../../../provider/engine/recover";
import { DomainState } from "../../../provider/libvirt/api";
import { FakeHost } from "./delete-fakes";

const starting = {
  ...journalForSteps("s1", [{ kind: "stop-domain" }], "op-1", new Date(0)),
  phase: OperationPhase.STARTING,
};

/** A host with the STARTING journal of a killed delete on it, the domain in `state`. */
function hostAfterKilledStart(state: DomainState): FakeHost {
  const host = new FakeHost({ vda: ["/i/a.s1", "/i/a"] }, ["s1"], []);
  host.domainState = state;
  host.metadata = withJournal(undefined, starting) ?? undefined;
  return host;
}

describe("a shut-off domain started paused for a delete", () => {
  test("recovery stops it while it is still paused as the delete left it, and clears the journal", async () => {
    const host = hostAfterKilledStart(DomainState.PAUSED);
    const report = await finishInterruptedOperations(host, host.domain);
    expect(host.mutations).toEqual(["destroy", "set-metadata"]);
    expect([host.domainState, host.metadata]).toEqual([DomainState.SHUTOFF, undefined]);
    expect(report?.messages).toEqual([expect.stringMatching(/it was shut off again and nothing was merged/)]);
  });

  test("recovery never stops it once someone resumed or started it: the journal is cleared with a note", async () => {
    const host = hostAfterKilledStart(DomainState.RUNNING);
    const report = await finishInterruptedOperations(host, host.domain);
    expect(host.mutations).toEqual(["set-metadata"]);
    expect([host.domainState, host.metadata]).toEqual([DomainState.RUNNING, undefined]);
    expect(report?.messages).toEqual([expect.stringMatching(/left running because it is no longer paused/)]);
  });

  test("a start that fails leaves no journal and destroys nothing", async () => {
    const host = new FakeHost({ vda: ["/i/a.s1", "/i/a"] }, ["s1"], []);
    host.domainState = DomainState.SHUTOFF;
    host.failAt = 1;
    const error = await startPausedForDelete(host, host.domain, starting).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/injected failure of start/);
    expect(host.mutations).toEqual(["set-metadata", "start", "set-metadata"]);
    expect([host.domainState, host.metadata]).toEqual([DomainState.SHUTOFF, undefined]);
  });

  test("rolling back a start that succeeded stops the paused domain and clears the journal", async () => {
    const host = new FakeHost({ vda: ["/i/a.s1", "/i/a"] }, ["s1"], []);
    host.domainState = DomainState.SHUTOFF;
    await startPausedForDelete(host, host.domain, starting);
    expect(host.domainState).toBe(DomainState.PAUSED);
    await rollBackStart(host, host.domain, starting);
    expect(host.mutations).toEqual(["set-metadata", "start", "destroy", "set-metadata"]);
    expect([host.domainState, host.metadata]).toEqual([DomainState.SHUTOFF, undefined]);
  });
});

describe("whileStartedPaused (the native delete of a shut-off domain)", () => {
  const shutOffHost = () => {
    const host = new FakeHost({ vda: ["/i/a.s1", "/i/a"] }, ["s1"], []);
    host.domainState = DomainState.SHUTOFF;
    return host;
  };

  test("journals the start, runs the action while paused, then stops the domain and clears the journal", async () => {
    const host = shutOffHost();
    const seen: string[] = [];
    await whileStartedPaused(host, host.domain, starting, async () => {
      seen.push(`${host.domainState} ${parseJournal(host.metadata)?.phase}`);
    });
    expect(seen).toEqual([`${DomainState.PAUSED} starting`]);
    expect(host.mutations).toEqual(["set-metadata", "start", "destroy", "set-metadata"]);
    expect([host.domainState, host.metadata]).toEqual([DomainState.SHUTOFF, undefined]);
  });

  test("a stop that fails does not hide the action's error: both are reported, the journal stays", async () => {
    const host = shutOffHost();
    host.failAt = 2;
    const error = await whileStartedPaused(host, host.domain, starting, async () => {
      throw new Error("libvirt could not delete snapshot s1");
    }).catch((e: unknown) => e);
    expect(isEngineError(error) && error.kind).toBe("libvirt");
    expect((error as Error).message).toMatch(
      /^libvirt could not delete snapshot s1; and then domain d, .* could not be shut off again \(injected failure of destroy\)/,
    );
    expect(parseJournal(host.metadata)).toEqual(starting);
    // The next operation stops it: it is still paused as the delete left it.
    await finishInterruptedOperations(host, host.domain);
    expect([host.domainState, host.metadata]).toEqual([DomainState.SHUTOFF, undefined]);
  });
});
