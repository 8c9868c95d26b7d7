// === Entries: one admitted input as the guard tracks it
//
// The store sees only `id`, `alone`, `expiresAt`, `group` and `settle`; the rest is the guard's.
// `run` is the closure of the call that admitted the input; an entry that arrives without one
// (admitted by another replica) is run by the guard's registered handler. `waiter` exists only for
// callers that wait for the input's fate (`awaitTurn`, lanes), so the detached path allocates no
// promise. `ended` makes every end of an entry happen once (see `endings.ts`).

import type { StoreEntry } from "../stores/store.js";
import type { Mode } from "./modes.js";
import type { Drop, Handler } from "./options.js";
import type { SubmitOptions } from "./types.js";

/**
 * Settles the promise of a caller that waits for an entry's fate: a lane's pair of callbacks, or an
 * awaited submit's resolve function alone. The submit's failures travel as a rejected promise its
 * promise adopts, so its reject function is not kept alive beside every waiting input.
 */
export type Waiter =
  | { resolve(value: unknown): void; reject(error: unknown): void }
  | ((value: unknown) => void);

/** Resolve a waiting caller with `value`. */
export function resolveWaiter(waiter: Waiter, value: unknown): void {
  if (typeof waiter === "function") waiter(value);
  else waiter.resolve(value);
}

/** Reject a waiting caller with `error`. */
export function rejectWaiter(waiter: Waiter, error: unknown): void {
  if (typeof waiter === "function") waiter(Promise.reject(error));
  else waiter.reject(error);
}

export interface GuardEntry<I> extends StoreEntry {
  // `group`, `settle` and `onDrop` are own properties only of the entries that have them: a
  // pending input without them is three fields (24 bytes) smaller.
  group?: string | undefined;
  settle?: number | undefined;
  data: string | undefined;
  /** Swapped in place when the user edits a pending input (`guard.replace`). */
  input: I;
  readonly run: Handler<I> | undefined;
  /** A lane (`guard.run`): not an input, so not in `turn.inputs` and never reported to onDrop. */
  readonly lane: boolean;
  /**
   * How the entry was admitted (what an awaiting `submit` resolves with), until its life is over
   * here — handled, failed, dropped, or run by another replica: then `"ended"` (see `endings.ts`).
   */
  outcome: "started" | "queued" | "ended";
  waiter: Waiter | undefined;
  /** The busy mode a mode function chose for it (own property only then). */
  mode?: Mode | undefined;
  /** The submit's own drop callback (`SubmitOptions.onDrop`). */
  onDrop?: ((drop: Drop<I>) => void) | undefined;
}

/**
 * Ids of the guard's own entries (lanes) start with a lone surrogate. The door refuses ill-formed
 * strings as user ids, so no user input can ever share one (a withdrawal by id is exact).
 */
export const LANE_ID_PREFIX = "\uD800lane:";

/** An entry of an input or lane, with the fields every entry has, in the same order. */
export function newEntry<I>(
  id: string | undefined,
  input: I,
  run: Handler<I> | undefined,
  lane: boolean,
  alone: boolean,
  expiresAt: number,
): GuardEntry<I> {
  return {
    id,
    alone,
    expiresAt,
    data: undefined,
    input,
    run,
    lane,
    outcome: "started",
    waiter: undefined,
  };
}

/**
 * The entry of a submitted input. `ttl`: the guard's `pendingTtl`; the entry expires at the
 * earlier of `now + ttl` and the submit's own `expiresAt`.
 */
export function submitted<I>(
  input: I,
  run: Handler<I>,
  options: SubmitOptions<I> | undefined,
  ttl: number,
): GuardEntry<I> {
  if (options === undefined) {
    const expiresAt = ttl === Number.POSITIVE_INFINITY ? ttl : Date.now() + ttl;
    return newEntry(undefined, input, run, false, false, expiresAt);
  }
  let expiresAt = options.expiresAt ?? Number.POSITIVE_INFINITY;
  if (ttl !== Number.POSITIVE_INFINITY) expiresAt = Math.min(expiresAt, Date.now() + ttl);
  const entry = newEntry(options.id, input, run, false, options.alone === true, expiresAt);
  if (options.group !== undefined) {
    entry.group = options.group;
    entry.settle = options.settle;
  }
  if (options.onDrop !== undefined) entry.onDrop = options.onDrop;
  return entry;
}

/**
 * End the entry's life here, once: answers how it was admitted, or `undefined` when it had ended
 * already (a second end is a no-op).
 */
export function end<I>(entry: GuardEntry<I>): "started" | "queued" | undefined {
  const outcome = entry.outcome;
  if (outcome === "ended") return undefined;
  entry.outcome = "ended";
  return outcome;
}
