/**
 * For the integration tests of revert and preview failures: the lab connection with every call recorded, and
 * one chosen call answered by the test instead of the daemon (failed before it is sent, or sent and its reply
 * replaced by an error, as a reply lost to a timeout is).
 */
import type { LibvirtConnection } from "../../../provider/libvirt/connection";
import { LibvirtError, localError } from "../../../provider/libvirt/errors";
import { ErrorCode } from "../../../provider/libvirt/flags";

/** What the connection saw. */
export interface InterceptedPort {
  /** The connection to hand to the engine. */
  readonly port: LibvirtConnection;
  /** Every call made through `port`, by name, in order. */
  readonly calls: string[];
  /** The project metadata documents written through `port` (domainSetMetadata), in order. */
  readonly writes: string[];
  /** How many of the rules answered a call so far. */
  readonly intercepted: () => number;
}

/** One call to answer instead of the daemon: the first call that `picks` holds for, answered by `answer`. */
export interface InterceptRule {
  readonly picks: (name: string, args: readonly unknown[]) => boolean;
  /** `send` makes the real call. */
  readonly answer: (send: () => Promise<unknown>) => Promise<unknown>;
}

/**
 * `connection`, except that each rule answers one call, in the order of the rules: the first answers the
 * first call it picks, the second the first call it picks after that, and so on. The other calls go to the
 * daemon.
 */
export function interceptInOrder(
  connection: LibvirtConnection,
  rules: readonly InterceptRule[] = [],
): InterceptedPort {
  const calls: string[] = [];
  const writes: string[] = [];
  let intercepted = 0;
  const port = new Proxy(connection, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const name = String(property);
        const send = () => Promise.resolve(Reflect.apply(value, target, args));
        calls.push(name);
        if (name === "domainSetMetadata") writes.push(String(args[2]));
        const rule = rules[intercepted];
        if (rule?.picks(name, args)) {
          intercepted++;
          return rule.answer(send);
        }
        return Reflect.apply(value, target, args);
      };
    },
  });
  return { port, calls, writes, intercepted: () => intercepted };
}

/** A rule that refuses the call as the daemon would, before it is sent. */
export const refuse = (picks: InterceptRule["picks"], message: string): InterceptRule => ({
  picks,
  answer: async () => {
    throw daemonRefusal(message);
  },
});

/** An error as the daemon sends it (the call was refused: nothing happened). */
export function daemonRefusal(message: string): LibvirtError {
  return new LibvirtError({
    kind: "remote",
    code: ErrorCode.INTERNAL_ERROR,
    domain: 10,
    message: `injected: ${message}`,
    level: 2,
    str1: null,
    str2: null,
    str3: null,
    int1: 0,
    int2: 0,
    procedure: null,
  });
}

/** The error of a call whose deadline passed: the daemon may still carry it out (here: it did). */
export function deadlinePassed(procedure: string): LibvirtError {
  return localError("timeout", ErrorCode.OPERATION_TIMEOUT, `injected: ${procedure} timed out`, procedure);
}

/** Whether a domainDefineXMLFlags call defines the domain named `name` (not a helper domain). */
export function definesDomain(name: string, args: readonly unknown[]): boolean {
  return String(args[0]).includes(`<name>${name}</name>`);
}
