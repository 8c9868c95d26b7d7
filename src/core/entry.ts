// === Entries: one admitted input as the guard tracks it
//
// The store sees only `id`, `alone` and `expiresAt`; the rest is the guard's. `run` is the closure
// of the call that admitted the input; an entry that arrives without one (admitted by another
// replica) is run by the guard's registered handler. `waiter` exists only for callers that wait for
// the input's fate (`awaitTurn`, lanes), so the detached path allocates no promise.

import type { StoreEntry } from "../stores/store.js";
import type { Handler } from "./options.js";

/** Settles the promise of a caller that waits for an entry's fate. */
export interface Waiter {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export interface GuardEntry<I> extends StoreEntry {
  readonly input: I;
  readonly run: Handler<I> | undefined;
  /** A lane (`guard.run`): not an input, so not in `turn.inputs` and never reported to onDrop. */
  readonly lane: boolean;
  /** How the entry was admitted: what an awaiting `submit` resolves with. */
  outcome: "started" | "queued";
  waiter: Waiter | undefined;
}
