// === Replay across replicas, written once
//
// With a shared store, a turn may hold an input that another replica admitted. Its framework
// object was rebuilt here from the serialized payload, but the framework's "rest of the pipeline"
// (grammY's `next`, Bolt's `next`, the user's command routing on discord.js) belongs to the update
// as the framework dispatches it. So the replica runs such a turn by dispatching the input again
// through its own framework object (`bot.handleUpdate`, `app.processEvent`, `client.emit`) with a
// marker the adapter recognises: the adapter then attaches the running turn instead of admitting
// the input a second time, and the user's middleware and listeners see it like any update.
//
// What differs per platform is only the dispatch call and what serves as the marker (the update,
// the request body, the interaction object). This file holds the rest: the record, the lookup
// that attaches once, and how the turn's own outcome is told apart from the framework's wrapping
// of it (grammY's `BotError`, Bolt's `app.error`).

import type { Turn } from "session-guard";

/** A turn being dispatched again, by its marker. */
interface Replay<T> {
  readonly turn: T;
  /** The adapter attached the turn (else the framework never reached the adapter). */
  reached: boolean;
  /** What the attached handler returned: the turn's own outcome. */
  result: Promise<unknown> | undefined;
}

/**
 * The turns this adapter replays, keyed by marker object.
 *
 * @example
 * ```ts
 * const replays = new Replays<Turn<C>>();
 * // the guard's handler for turns whose latest input came from another replica:
 * const handler = (turn) => replays.run(update, turn, () => bot.handleUpdate(update), unreached);
 * // in the middleware, first:
 * const turn = replays.attach(ctx.update);
 * if (turn !== undefined) return replays.settle(ctx.update, runWith(turn));
 * ```
 */
export class Replays<T = Turn<unknown>> {
  readonly #byMarker = new WeakMap<object, Replay<T>>();

  /**
   * Dispatch `marker` again for `turn` and resolve with the turn's own outcome: what the attached
   * handler resolved with, or its rejection (not the framework's wrapping of it). Rejects with
   * `unreached()` if the dispatch never reached the adapter.
   */
  async run(
    marker: object,
    turn: T,
    dispatch: () => unknown,
    unreached: () => Error,
  ): Promise<unknown> {
    const entry: Replay<T> = { turn, reached: false, result: undefined };
    this.#byMarker.set(marker, entry);
    try {
      await dispatch();
    } catch (error) {
      // The framework's wrapping of the handler's error: report the turn's own, as a local turn.
      if (entry.result === undefined) throw error;
    } finally {
      this.#byMarker.delete(marker);
    }
    if (!entry.reached) throw unreached();
    return entry.result;
  }

  /**
   * The turn to attach if `marker` is being replayed and no adapter wrapper has attached it yet;
   * `undefined` for an ordinary update (admit it) — or for a second wrapper the routing reaches.
   */
  attach(marker: object): T | undefined {
    const entry = this.#byMarker.get(marker);
    if (entry === undefined || entry.reached) return undefined;
    entry.reached = true;
    return entry.turn;
  }

  /** True while `marker` is being replayed (attached or not). */
  has(marker: object): boolean {
    return this.#byMarker.has(marker);
  }

  /**
   * Record what the attached handler returned as the turn's outcome; returns it settled quietly,
   * for the framework (which must not see the turn's error: `onError` gets it once, via the guard).
   */
  settle(marker: object, result: unknown): Promise<void> {
    const promise = Promise.resolve(result);
    const entry = this.#byMarker.get(marker);
    if (entry !== undefined) entry.result = promise;
    return promise.then(NOOP, NOOP);
  }
}

const NOOP = (): void => {};
