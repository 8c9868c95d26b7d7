// === Stuck turns: the turn timeout, abandon, and calls that wait for their own key
//
// A turn that outlives `turnTimeout` has its signal aborted and is reported once (G7). Under
// `onStuck: "abandon"` the key and the concurrency slot are freed at once and the turn's fence is
// stale; under `"wait"` the key stays held until the handler settles.
//
// A handler that awaits work on its own key (`guard.run(key, …)`, an awaited `submit`) waits for
// itself: the call waits for the turn, the turn for the call. When the call is made while the
// handler runs synchronously the guard knows it at once; otherwise, at the turn's timeout, every
// call that waits behind the stuck turn settles with a `CycleError`, so the handler can go on and
// the key moves on. An awaited submit's input stays queued (it runs, detached); a lane is withdrawn.

import type { Engine } from "./engine.js";
import { type GuardEntry, rejectWaiter } from "./entry.js";
import { CycleError, TurnTimeoutError } from "./errors.js";
import type { TurnState } from "./turn.js";

export class Stuck<I> {
  readonly #engine: Engine<I>;

  constructor(engine: Engine<I>) {
    this.#engine = engine;
  }

  /**
   * `turnTimeout` elapsed for a running turn — also one whose key this guard already let go (a
   * lease lost, a `close()` from inside the handler): its signal is still aborted and reported (G7).
   */
  timedOut(turn: TurnState<I>): void {
    if (turn.phase !== "running" || turn.extra?.overdue) return;
    const engine = this.#engine;
    const { onStuck, turnTimeout } = engine.options;
    const abandon = onStuck === "abandon";
    const error = new TurnTimeoutError(turn.key, turn.fence, turnTimeout, abandon);
    turn.more().overdue = true;
    turn.abort(error);
    engine.report.error(error, turn.key, turn.fence, turn.inputs);
    if (engine.events.has("stuck")) {
      engine.events.emit("stuck", { key: turn.key, fence: turn.fence, error, abandoned: abandon });
    }
    if (!abandon) {
      const behind = turn.behind;
      turn.behind = undefined;
      if (behind !== undefined) for (const entry of behind) this.cycle(entry, turn, false);
      return;
    }
    // The handler ignores its signal: free the key and the slot for the next turn; this one's
    // fence is stale, and whatever it does when it settles changes nothing.
    for (const entry of turn.entries) engine.ends.failed(turn.key, entry, error, turn.fence);
    engine.leases?.stop(turn);
    engine.freeSlot(turn);
    if (turn.released) return;
    turn.released = true;
    engine.finish(turn);
  }

  /**
   * `entry`'s caller waits for `turn` to end. Behind a turn that already timed out (and is waited
   * for), it may be what that turn waits for: it settles at once; otherwise, at the timeout.
   */
  waiting(turn: TurnState<I>, entry: GuardEntry<I>): void {
    if (turn.extra?.overdue && turn.phase === "running") {
      this.cycle(entry, turn, false);
    } else (turn.behind ??= []).push(entry);
  }

  /**
   * `entry`'s caller waits for `turn`'s key and may be the turn itself (`known`: it called from the
   * handler's synchronous part). The caller settles with a `CycleError`; the entry of an input
   * stays queued, a lane is withdrawn so that it never runs after its caller gave up.
   */
  cycle(entry: GuardEntry<I>, turn: TurnState<I>, known = true): void {
    const waiter = entry.waiter;
    if (entry.outcome === "ended" || waiter === undefined) return;
    const error = new CycleError(turn.key, turn.fence, known);
    if (entry.lane) {
      this.#engine.lanes.giveUp(turn.key, entry, error);
      return;
    }
    entry.waiter = undefined;
    rejectWaiter(waiter, error);
  }
}
