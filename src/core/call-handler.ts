// === Calling a turn's handler
//
// Whatever the handler does — returns a promise, a value or a foreign thenable, or throws — the turn
// settles exactly once, on a later tick, never inside the call that started it: a queue of
// synchronous handlers must not recurse through finish → next turn → handler. While the handler's
// synchronous part runs, `current.turn` names its turn (see `callers.ts`: awaiting one's own key).

import { current, noHandler } from "./callers.js";
import type { Handler } from "./options.js";
import type { TurnState } from "./turn.js";

/** What settles a turn: the engine. */
export interface Settler<I> {
  settleTurn(turn: TurnState<I>, value: unknown, failed: boolean): void;
}

export function callHandler<I>(
  engine: Settler<I>,
  turn: TurnState<I>,
  run: Handler<I> | undefined,
  input: I,
): void {
  const outer = current.turn;
  current.turn = turn as TurnState<unknown>;
  try {
    if (run === undefined) throw noHandler(`the turn for key "${turn.key}"`);
    const result = run(turn, input);
    current.turn = outer;
    if (result instanceof Promise) {
      result.then(
        (value) => engine.settleTurn(turn, value, false),
        (error) => engine.settleTurn(turn, error, true),
      );
    } else if (result !== null && (typeof result === "object" || typeof result === "function")) {
      // Perhaps a foreign thenable: a native promise adopts it, so a `then` that throws, a `then`
      // getter that throws or a `then` that calls back twice is one settlement, never a throw here.
      Promise.resolve(result).then(
        (value) => engine.settleTurn(turn, value, false),
        (error) => engine.settleTurn(turn, error, true),
      );
    } else {
      queueMicrotask(() => engine.settleTurn(turn, result, false));
    }
  } catch (error) {
    current.turn = outer;
    queueMicrotask(() => engine.settleTurn(turn, error, true));
  }
}
