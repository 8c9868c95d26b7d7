// === What the guard knows of its callers
//
// A detached `submit` resolves with a promise made once per outcome; an awaited one gets a promise
// whose resolve function becomes the entry's waiter (a failure resolves it with a rejected promise,
// see `rejectWaiter`), made by one shared executor (an executor closing over its entry would be one
// more allocation per awaited input). `current.turn` is the turn whose
// handler runs synchronously right now: a call made from inside it (`close`, a lane or an awaited
// submit on its own key) is recognised by it.

import type { GuardEntry } from "./entry.js";
import type { TurnState } from "./turn.js";
import type { SubmitOutcome } from "./types.js";

export const OUTCOMES: Readonly<Record<SubmitOutcome, Promise<SubmitOutcome>>> = {
  started: Promise.resolve("started"),
  queued: Promise.resolve("queued"),
  duplicate: Promise.resolve("duplicate"),
  dropped: Promise.resolve("dropped"),
};

/** The turn whose handler is executing synchronously right now, if any. */
export const current: { turn: TurnState<unknown> | undefined } = { turn: undefined };

/** The resolve function `captureWaiter` took from the promise being constructed. */
let captured: GuardEntry<unknown>["waiter"];

function captureWaiter(resolve: (value: SubmitOutcome) => void) {
  captured = resolve as (value: unknown) => void;
}

/** A promise that settles with the entry's fate: its resolve function becomes the entry's waiter. */
export function awaited<I>(entry: GuardEntry<I>): Promise<SubmitOutcome> {
  const promise = new Promise<SubmitOutcome>(captureWaiter);
  entry.waiter = captured;
  return promise;
}

/** The handler to run, or the TypeError that says where to give one. */
export function noHandler(where: string): TypeError {
  return new TypeError(
    `${where}: pass the turn handler as the third argument, or register one with createGuard({ handler }).`,
  );
}
