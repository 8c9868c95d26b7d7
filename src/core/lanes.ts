// === Lanes: non-chat work on a key (`guard.run`)
//
// Cron, heartbeats and recovery share a session with chat input; a lane runs as a turn of its own
// that never overlaps one (DESIGN.md, failure 4). When the key is busy a lane waits (bounded by
// `waitTimeout`), skips, or throws a `ContendedError`. A lane cannot travel to another process, so
// with a shared store a waiting lane is never queued there: it is refused while the key is held
// elsewhere and tries again once the key may be free (released here, a release hint, or at the
// latest every lease). A lane's id lives outside the ids users can give (see `LANE_ID_PREFIX`).

import type { Admission, AdmitPolicy } from "../stores/store.js";
import { current } from "./callers.js";
import { checkKey } from "./check.js";
import type { Engine } from "./engine.js";
import { end, type GuardEntry, LANE_ID_PREFIX, newEntry, rejectWaiter } from "./entry.js";
import { ContendedError, CycleError, DroppedError, isA, StoreError } from "./errors.js";
import type { Handler } from "./options.js";
import { invalid } from "./options.js";
import { settleWith } from "./settle-with.js";
import { cancel, type LongTimer, schedule } from "./timers.js";
import type { Turn, TurnState } from "./turn.js";
import type { RunOptions } from "./types.js";

const RUN_OPTIONS = ["onBusy", "waitTimeout"];

export class Lanes<I> {
  readonly #engine: Engine<I>;
  /** A lane waits for the key: queued behind it (one process), never evicting chat input. */
  readonly #waitPolicy: AdmitPolicy;
  /** A lane that will not wait, and a waiting lane on a shared store: refused while held. */
  readonly #tryPolicy: AdmitPolicy;
  /** Lanes waiting for a key held in a shared store, retried when the key may be free. */
  readonly #waits = new Map<string, Set<() => void>>();
  #seq = 0;

  constructor(engine: Engine<I>, base: AdmitPolicy) {
    this.#engine = engine;
    // A lane never evicts chat input and is never de-duplicated.
    this.#tryPolicy = { ...base, whenHeld: "reject", dedupe: 0, notifyFree: engine.shared };
    this.#waitPolicy = engine.shared
      ? this.#tryPolicy
      : { ...base, overflow: "drop-newest", whenHeld: "enqueue", dedupe: 0 };
  }

  run<T>(key: string, fn: (turn: Turn<I>) => T | Promise<T>, options?: RunOptions): Promise<T> {
    const engine = this.#engine;
    const badKey = checkKey("run", key);
    if (badKey !== undefined) return Promise.reject(badKey);
    if (typeof fn !== "function") {
      return Promise.reject(new TypeError("run: pass the lane's work as a function (turn) => …."));
    }
    let onBusy: "wait" | "skip" | "throw" = "wait";
    let waitTimeout = Number.POSITIVE_INFINITY;
    try {
      if (options !== undefined) {
        if (typeof options !== "object" || options === null) {
          invalid("run", "options", 'an object such as { onBusy: "skip" }', options);
        }
        for (const name of Object.keys(options)) {
          if (!RUN_OPTIONS.includes(name)) {
            throw new TypeError(
              `run: unknown option ${JSON.stringify(name)}. Known options: ${RUN_OPTIONS.join(", ")}.`,
            );
          }
        }
        onBusy = options.onBusy ?? onBusy;
        waitTimeout = options.waitTimeout ?? waitTimeout;
      }
      if (!["wait", "skip", "throw"].includes(onBusy)) {
        invalid("run", "onBusy", '"wait", "skip" or "throw"', onBusy);
      }
      const whole = Number.isInteger(waitTimeout) || waitTimeout === Number.POSITIVE_INFINITY;
      if (!(typeof waitTimeout === "number" && waitTimeout >= 0 && whole)) {
        invalid(
          "run",
          "waitTimeout",
          "an integer number of ms (0 or more) or Infinity",
          waitTimeout,
        );
      }
    } catch (error) {
      return Promise.reject(error);
    }
    if (engine.controls.closing !== undefined)
      return Promise.reject(new DroppedError(key, "shutdown"));
    const wait = onBusy === "wait";
    const caller = current.turn as TurnState<I> | undefined;
    if (wait && caller !== undefined && caller.key === key && caller.host === engine) {
      // Called from its own key's turn: waiting would wait for itself.
      return Promise.reject(new CycleError(key, caller.fence, true));
    }
    // On a shared store a lane never waits in the store's queue, so it needs no id there.
    const id = engine.shared ? undefined : `${LANE_ID_PREFIX}${++this.#seq}`;
    const entry = newEntry(
      id,
      undefined as I,
      fn as Handler<I>,
      true,
      true,
      Number.POSITIVE_INFINITY,
    );
    let timer: LongTimer | undefined;
    const result = new Promise<T>((resolve, reject) => {
      entry.waiter = {
        resolve: (value) => {
          cancel(timer);
          resolve(value as T);
        },
        reject: (error) => {
          cancel(timer);
          reject(error);
        },
      };
    });
    if (wait && engine.shared) {
      this.#waitShared(key, entry, Date.now(), waitTimeout);
      return result;
    }
    const admitted = engine.admit(key, entry, wait ? this.#waitPolicy : this.#tryPolicy);
    if (wait && waitTimeout !== Number.POSITIVE_INFINITY) {
      const giveUp = (outcome: string) => {
        if (outcome !== "queued") return;
        timer = schedule(
          () => this.#withdraw(key, entry, new ContendedError(key, waitTimeout)),
          waitTimeout,
        );
      };
      if (typeof admitted === "string") giveUp(admitted);
      else admitted.then(giveUp, () => {});
    }
    if (typeof admitted !== "string") admitted.catch((error) => this.#fail(entry, error));
    if (wait) return result;
    return result.catch((error: unknown) => {
      if (!(isA(error, DroppedError) && error.reason === "busy")) throw error;
      if (onBusy === "throw") throw new ContendedError(key, 0);
      return undefined as T;
    });
  }

  /** A lane's caller gave up (a cycle): withdraw the lane so that it never runs, then tell it. */
  giveUp(key: string, entry: GuardEntry<I>, error: unknown): void {
    if (this.#engine.shared) this.#fail(entry, error);
    else this.#withdraw(key, entry, error);
  }

  /** Let the lanes waiting for `key` on a shared store try again (it was released). */
  wake(key: string): void {
    if (this.#waits.size === 0) return;
    const waits = this.#waits.get(key);
    if (waits === undefined) return;
    for (const retry of [...waits]) retry();
  }

  /** Every waiting lane tries again (the guard is closing: they fail). */
  wakeAll(): void {
    for (const retry of [...this.#waits.values()].flatMap((set) => [...set])) retry();
  }

  #fail(entry: GuardEntry<I>, error: unknown): void {
    if (end(entry) === undefined) return;
    const waiter = entry.waiter;
    entry.waiter = undefined;
    if (waiter !== undefined) rejectWaiter(waiter, error);
  }

  /** A waiting lane gives up: withdraw it if it is still pending (else it started: let it run). */
  #withdraw(key: string, entry: GuardEntry<I>, error: unknown): void {
    const engine = this.#engine;
    const removed = (withdrawn: GuardEntry<I> | undefined) => {
      if (withdrawn !== undefined) this.#fail(entry, error);
    };
    const failed = (cause: unknown) =>
      engine.report.error(new StoreError("withdraw", key, cause), key, undefined);
    try {
      settleWith(engine.store.withdraw(key, entry.id as string), removed, failed);
    } catch (cause) {
      failed(cause);
    }
  }

  /**
   * A waiting lane on a shared store: try to claim the key; while it is held elsewhere, wait here
   * (not queued in the store, so not FIFO with chat input across replicas) and try again when the
   * key may be free, until `waitTimeout`.
   */
  #waitShared(key: string, entry: GuardEntry<I>, since: number, waitTimeout: number): void {
    const engine = this.#engine;
    if (entry.outcome === "ended") return;
    if (engine.controls.closing !== undefined) {
      this.#fail(entry, new DroppedError(key, "shutdown"));
      return;
    }
    let answer: Admission<GuardEntry<I>> | Promise<Admission<GuardEntry<I>>>;
    try {
      answer = engine.store.acquireOrEnqueue(key, entry, this.#waitPolicy);
    } catch (error) {
      this.#fail(entry, new StoreError("acquireOrEnqueue", key, error));
      return;
    }
    settleWith(
      answer,
      (admission) => {
        if (admission.status !== "rejected" || admission.reason !== "busy") {
          engine.admitted(key, entry, admission);
          return;
        }
        const waited = Date.now() - since;
        if (waited >= waitTimeout) return this.#fail(entry, new ContendedError(key, waited));
        if (engine.controls.closing !== undefined) {
          return this.#fail(entry, new DroppedError(key, "shutdown"));
        }
        // Held here: if that turn times out, this lane may be what it waits for.
        const holder = engine.keys.get(key);
        if (holder !== undefined) engine.stuck.waiting(holder, entry);
        let waits = this.#waits.get(key);
        if (waits === undefined) this.#waits.set(key, (waits = new Set()));
        const set = waits;
        let timer: LongTimer | undefined;
        const retry = () => {
          if (!set.delete(retry)) return;
          if (set.size === 0 && this.#waits.get(key) === set) this.#waits.delete(key);
          cancel(timer);
          this.#waitShared(key, entry, since, waitTimeout);
        };
        set.add(retry);
        timer = schedule(
          retry,
          Math.min(
            engine.leases === undefined ? 1_000 : (engine.store.lease ?? 1_000),
            waitTimeout - waited,
          ),
        );
      },
      (error: unknown) => this.#fail(entry, new StoreError("acquireOrEnqueue", key, error)),
    );
  }
}
