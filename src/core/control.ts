// === Control: stop a key, stop by prefix, close the guard
//
// Stop bypasses the queue (G8): the pending input of the key is dropped first, so a handler that
// reacts to the abort finds nothing left to take, then the turn is aborted — here at once, at
// another replica through the store (its next renewal, or a hint). A stop with an id is
// de-duplicated in the store like an input: a platform's redelivery of the same stop, perhaps to
// another replica, must not stop a later turn.
//
// Close stops admitting, lets running turns finish, and at the deadline aborts what remains. With
// a shared store a key whose handler still runs is never released to another replica (G1 outranks
// shutdown speed): its lease is kept, and renewed, until the handler settles; `close` resolves at
// the deadline all the same, so a process may exit (the lease then lapses as after a crash).

import type { Stopped } from "../stores/store.js";
import { current } from "./callers.js";
import { checkCloseOptions, checkKey, checkStopOptions } from "./check.js";
import type { Engine } from "./engine.js";
import type { GuardEntry } from "./entry.js";
import { StoreError, TurnAbortedError } from "./errors.js";
import type { Drop } from "./options.js";
import { cancel, type LongTimer, schedule } from "./timers.js";
import type { TurnState } from "./turn.js";
import type { CloseOptions, CloseReport, StopOptions } from "./types.js";

type Entry<I> = GuardEntry<I>;

export class Controls<I> {
  readonly #engine: Engine<I>;
  /** Set once `close()` was called. */
  closing: Promise<CloseReport<I>> | undefined = undefined;
  /** Turns that `close` no longer waits for (aborted at the deadline, or the caller's own). */
  readonly #lingering = new Set<TurnState<I>>();
  /** Called when every key but the lingering ones is released. */
  #whenReleased: (() => void) | undefined;

  constructor(engine: Engine<I>) {
    this.#engine = engine;
  }

  stop(key: string, options?: StopOptions): Promise<boolean> {
    const problem = checkKey("stop", key) ?? checkStopOptions("stop", options);
    if (problem !== undefined) return Promise.reject(problem);
    return this.#stop(key, options?.id).then((stopped) => stopped === true);
  }

  stopWhere(prefix: string, options?: StopOptions): Promise<boolean> {
    const problem = checkKey("stopWhere", prefix) ?? checkStopOptions("stopWhere", options);
    if (problem !== undefined)
      return Promise.reject(
        problem.message.includes('"key"')
          ? new TypeError(problem.message.replace('"key"', '"prefix"'))
          : problem,
      );
    const engine = this.#engine;
    const keys = new Set<string>();
    for (const turn of engine.keys.list()) if (turn.key.startsWith(prefix)) keys.add(turn.key);
    let listed: readonly string[] | Promise<readonly string[]>;
    try {
      listed = engine.store.keys?.(prefix) ?? [];
    } catch (error) {
      return Promise.reject(new StoreError("keys", prefix, error));
    }
    return Promise.resolve(listed).then(
      async (found) => {
        for (const key of found) keys.add(key);
        const all = [...keys];
        if (all.length === 0) return false;
        // The stop's id is checked once, with the first key: a redelivery stops nothing.
        const first = await this.#stop(all[0] as string, options?.id);
        if (first === "duplicate") return false;
        const rest = await Promise.all(all.slice(1).map((key) => this.#stop(key, undefined)));
        return first || rest.some((stopped) => stopped === true);
      },
      (error: unknown) => {
        throw new StoreError("keys", prefix, error);
      },
    );
  }

  /** Stop one key; answers whether there was anything to stop, or `"duplicate"`. */
  #stop(key: string, id: string | undefined): Promise<boolean | "duplicate"> {
    const engine = this.#engine;
    const store = engine.store;
    let answer: Stopped<Entry<I>> | Promise<Stopped<Entry<I>>>;
    try {
      answer =
        store.stop !== undefined
          ? store.stop(key, id, engine.options.dedupe)
          : cleared(store.clear(key));
    } catch (error) {
      return Promise.reject(new StoreError("stop", key, error));
    }
    // Pending input goes first (the store call above is on its way, ahead of any finish), then the
    // local turn stops: at once without an id; with one, once the store said the stop is new.
    let local = id === undefined ? this.#stopLocal(key) : false;
    const apply = (stopped: Stopped<Entry<I>>): boolean | "duplicate" => {
      if (stopped.status === "duplicate") return "duplicate";
      // The turn's own inputs are older than the pending ones: they are reported first.
      if (id !== undefined) local = this.#stopLocal(key);
      for (const entry of stopped.entries) engine.ends.dropped(key, entry, "stopped");
      return local || stopped.entries.length > 0 || stopped.held;
    };
    if (answer instanceof Promise) {
      return answer.then(apply, (error: unknown) => {
        throw new StoreError("stop", key, error);
      });
    }
    return Promise.resolve(apply(answer));
  }

  #stopLocal(key: string): boolean {
    const turn = this.#engine.keys.get(key);
    return turn === undefined ? false : this.#engine.exits.stop(turn);
  }

  close(options?: CloseOptions): Promise<CloseReport<I>> {
    if (this.closing !== undefined) return this.closing;
    const timeout = checkCloseOptions(options);
    if (typeof timeout !== "number") return Promise.reject(timeout);
    const engine = this.#engine;
    const dropped: Drop<I>[] = [];
    engine.ends.closeDrops = dropped;
    let aborted = 0;
    this.closing = new Promise<CloseReport<I>>((resolve) => {
      let timer: LongTimer | undefined;
      const done = () => {
        this.#whenReleased = undefined;
        cancel(timer);
        // Lanes waiting for a key held elsewhere will not get it now.
        engine.lanes.wakeAll();
        // Every key released (none lingers): the store's background work can stop.
        if (engine.keys.size === 0) engine.replicas?.detach();
        const handedOver = engine.replicas?.handedOver() ?? Promise.resolve();
        handedOver.then(() => resolve({ aborted, dropped }));
      };
      // Called from inside a handler: that turn cannot finish while its handler awaits close().
      const caller = current.turn as TurnState<I> | undefined;
      if (
        caller !== undefined &&
        caller.host === engine &&
        engine.keys.get(caller.key) === caller
      ) {
        if (engine.shared) this.#lingering.add(caller);
        else engine.exits.giveUp(caller);
      }
      if (this.#released()) return done();
      this.#whenReleased = done;
      timer = schedule(() => {
        for (const turn of engine.keys.list()) {
          if (this.#lingering.has(turn)) continue;
          const reason = new TurnAbortedError("shutdown", turn.key, turn.fence);
          turn.abort(reason);
          if (turn.phase === "running") {
            aborted++;
            // Cut short, its inputs fail: reported now, once (as a timeout is), so that `failed`
            // always comes with an error at `onError`; the handler rejecting with this reason later
            // is not reported again.
            engine.report.error(reason, turn.key, turn.fence, turn.inputs);
            for (const entry of turn.entries)
              engine.ends.failed(turn.key, entry, reason, turn.fence);
            if (engine.shared) {
              // Its handler still runs: the lease stays (renewed) until it settles.
              this.#lingering.add(turn);
              continue;
            }
          } else if (turn.phase === "claimed") {
            if (engine.shared) {
              engine.replicas?.handBack(turn);
              continue;
            }
            turn.released = true;
            engine.exits.discard(turn);
          }
          engine.exits.giveUp(turn);
        }
        if (this.#released()) done();
      }, timeout);
    });
    return this.closing;
  }

  /** A key was released while closing. */
  released(): void {
    const engine = this.#engine;
    if (this.#lingering.size > 0) {
      for (const turn of this.#lingering)
        if (engine.keys.get(turn.key) !== turn) this.#lingering.delete(turn);
    }
    if (this.#whenReleased !== undefined && this.#released()) this.#whenReleased();
    if (engine.keys.size === 0) engine.replicas?.detach();
  }

  #released(): boolean {
    return this.#engine.keys.size <= this.#lingering.size;
  }
}

/** A store without `stop`: its `clear` answers the entries; it cannot tell about other replicas. */
function cleared<E>(
  entries: readonly E[] | Promise<readonly E[]>,
): Stopped<E> | Promise<Stopped<E>> {
  const answer = (removed: readonly E[]): Stopped<E> => ({
    status: "stopped",
    entries: removed,
    held: false,
  });
  return entries instanceof Promise ? entries.then(answer) : answer(entries);
}
