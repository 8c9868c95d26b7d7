// === Events
//
// A tiny typed emitter in the p-queue manner: `guard.on("started", listener)` returns the function
// that unsubscribes. The guard asks `has(name)` before building a payload, so events nobody listens
// to cost nothing on the hot path.

import type { TurnTimeoutError } from "./errors.js";
import type { Drop } from "./options.js";
import type { Outcome } from "./outcomes.js";

/** The guard's lifecycle events and their payloads. */
export interface GuardEvents<I> {
  /** An input was admitted: it started a turn or is pending. */
  admitted: {
    /** The input's key. */
    key: string;
    /** Its de-duplication id, if it has one. */
    id: string | undefined;
    /** The input. */
    input: I;
    /** It claimed the key (`started`) or waits behind a running turn (`queued`). */
    outcome: "started" | "queued";
  };
  /** An input is pending behind a running turn. */
  queued: {
    /** The input's key. */
    key: string;
    /** Its de-duplication id, if it has one. */
    id: string | undefined;
    /** The input. */
    input: I;
    /** Inputs of the key waiting now, this one included. */
    pending: number;
  };
  /** A turn's handler is about to run. */
  started: {
    /** The turn's key. */
    key: string;
    /** The turn's fence. */
    fence: number;
    /** The turn's inputs, oldest first. */
    inputs: readonly I[];
  };
  /** A turn settled (its handler returned, threw or was abandoned). */
  finished: {
    /** The turn's key. */
    key: string;
    /** The turn's fence. */
    fence: number;
    /** The turn's inputs, oldest first. */
    inputs: readonly I[];
    /** The handler threw or rejected. */
    failed: boolean;
  };
  /** An input ended without being handled. */
  dropped: Drop<I>;
  /** A turn failed, or an error outside a turn; the same error went to `onError`. */
  error: {
    /** What was thrown. */
    error: unknown;
    /** The key involved (`""` when none is). */
    key: string;
    /** The fence of the turn that failed, if a turn did. */
    fence: number | undefined;
    /** The inputs involved. */
    inputs: readonly I[];
  };
  /** A turn outlived `turnTimeout`. */
  stuck: {
    /** The turn's key. */
    key: string;
    /** The turn's fence. */
    fence: number;
    /** The error reported to `onError` (also the signal's reason). */
    error: TurnTimeoutError;
    /** The key was released without waiting for the turn (`onStuck: "abandon"`). */
    abandoned: boolean;
  };
  /**
   * An input ended: handled, failed with its turn, or dropped (any reason but `duplicate`, which is
   * the same input again). Once per input, at the process that ended it.
   */
  settled: {
    /** The input's key. */
    key: string;
    /** Its de-duplication id, if it has one. */
    id: string | undefined;
    /** The input (as last replaced). */
    input: I;
    /** How it ended: as `guard.outcome(id)` answers from now on. */
    outcome: Outcome;
  };
}

/** A listener of one event (`guard.on(name, listener)`). */
export type Listener<T> = (payload: T) => void;

/** The names of the guard's events. */
export const EVENT_NAMES = [
  "admitted",
  "queued",
  "started",
  "finished",
  "dropped",
  "error",
  "stuck",
  "settled",
] as const satisfies readonly (keyof GuardEvents<unknown>)[];

export class Emitter<M> {
  #listeners: { [K in keyof M]?: Set<Listener<M[K]>> } = {};
  /** Listeners across all events: with none (the usual case) `has` answers without a lookup. */
  #total = 0;
  readonly #names: ReadonlySet<string>;
  readonly #onListenerError: (error: unknown, payload: M[keyof M]) => void;

  /**
   * `names`: the events there are (`on` refuses others). `onListenerError`: a listener threw; the
   * emitter goes on with the next listener.
   */
  constructor(
    names: readonly (keyof M & string)[],
    onListenerError: (error: unknown, payload: M[keyof M]) => void,
  ) {
    this.#names = new Set(names);
    this.#onListenerError = onListenerError;
  }

  on<K extends keyof M>(name: K, listener: Listener<M[K]>): () => void {
    if (!this.#names.has(name as string)) {
      throw new TypeError(
        `on(${JSON.stringify(name)}, listener): there is no such event. Events: ${[...this.#names].join(", ")}.`,
      );
    }
    if (typeof listener !== "function") {
      throw new TypeError(`on("${String(name)}", listener): listener must be a function.`);
    }
    const set = (this.#listeners[name] ??= new Set());
    if (!set.has(listener)) {
      set.add(listener);
      this.#total++;
    }
    return () => {
      if (set.delete(listener)) this.#total--;
    };
  }

  has(name: keyof M): boolean {
    if (this.#total === 0) return false;
    const set = this.#listeners[name];
    return set !== undefined && set.size > 0;
  }

  emit<K extends keyof M>(name: K, payload: M[K]): void {
    if (this.#total === 0) return;
    const set = this.#listeners[name];
    if (set === undefined) return;
    for (const listener of set) {
      try {
        listener(payload);
      } catch (error) {
        this.#onListenerError(error, payload);
      }
    }
  }
}
