// === Running scripts: EVALSHA within the command timeout, and outages reported once
//
// Every script is sent as EVALSHA, and once more as EVAL when the server does not know it yet
// (after a restart or a failover). A failure of background work (probes, sweeps, the connections)
// is reported to the guard once per outage: the next is reported once a script answered again.

import type { Script } from "./lua/index.js";
import type { RedisPort } from "./port/index.js";

function isNoScript(error: unknown): boolean {
  return error instanceof Error && /NOSCRIPT/.test(error.message);
}

export class ScriptRunner {
  readonly #port: RedisPort;
  readonly #timeout: number;
  /** Where background failures go (the guard's `StoreHost.error`, once attached). */
  report: ((error: unknown, key: string | undefined) => void) | undefined;
  /** Where the end of a background outage goes (the guard's `StoreHost.recovered`). */
  recovered: (() => void) | undefined;
  /** The store is closed: nothing more is reported. */
  closed = false;
  /** An outage was reported; the next is reported once the connection came back. */
  #failing = false;

  constructor(port: RedisPort, timeout: number) {
    this.#port = port;
    this.#timeout = timeout;
  }

  /**
   * Run a script, `args` being `EVALSHA <sha> <numkeys> <keys…> <argv…>`: EVALSHA, and EVAL once
   * if the server does not know the script yet. `parse` reads the answer, and `sent` (epoch ms
   * before the first attempt was sent: a lease the script set began no earlier, see
   * `Claim.since`); `fail`, if given, sees the error first (and rethrows it).
   */
  eval<T>(
    script: Script,
    args: string[],
    parse: (reply: unknown, sent: number) => T | PromiseLike<T>,
    fail?: (error: unknown) => never,
  ): Promise<T> {
    const sent = Date.now();
    const deadline = sent + this.#timeout;
    const first = args[3] as string;
    const read = (reply: unknown) => parse(reply, sent);
    return this.#port.call(first, args, deadline).then(read, (error: unknown) => {
      if (!isNoScript(error)) {
        if (fail !== undefined) fail(error);
        throw error;
      }
      args[0] = "EVAL";
      args[1] = script.source;
      return this.#port.call(first, args, deadline).then(read, fail);
    });
  }

  /** `eval` with the keys and arguments given apart (the operations off the hot path). */
  call<T>(
    script: Script,
    keys: readonly string[],
    argv: readonly string[],
    parse: (reply: unknown, sent: number) => T,
  ): Promise<T> {
    const args = ["EVALSHA", script.sha, String(keys.length), ...keys, ...argv];
    return this.eval(script, args, (reply, sent) => {
      this.answered();
      return parse(reply, sent);
    });
  }

  /** A script answered (or the connection is back): the next outage is reported again. */
  answered(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.recovered?.();
  }

  /** Report a failure of background work once per outage. */
  background(error: unknown, key: string | undefined): void {
    if (this.#failing || this.closed) return;
    this.#failing = true;
    if (this.report !== undefined) this.report(error, key);
    else console.error("session-guard/redis: Redis failed:", error);
  }
}
