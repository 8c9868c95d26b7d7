// === The other ways out of a turn
//
// A turn normally ends when its handler settles (`Engine.settleTurn`). These are the exits beside
// that one — a turn stopped or shut down before it ran, a key given up (shutdown, hand-over), a
// lease that was lost, a store call that failed — each ending the turn through `Engine.retire` and
// its inputs through `Endings`, like the normal exit.

import type { StoreDrop } from "../stores/store.js";
import type { Engine } from "./engine.js";
import type { GuardEntry } from "./entry.js";
import { LeaseLostError, StoreError, TurnAbortedError } from "./errors.js";
import { settleWith } from "./settle-with.js";
import type { TurnState } from "./turn.js";

export class Exits<I> {
  readonly #engine: Engine<I>;

  constructor(engine: Engine<I>) {
    this.#engine = engine;
  }

  /** A turn stopped or shut down before its handler ran: its inputs end without it. */
  discard(turn: TurnState<I>): void {
    const { ends } = this.#engine;
    const reason = turn.abortReason;
    if (reason instanceof LeaseLostError) {
      // The claim moved to another holder before the handler ran, with these inputs (a shared
      // store hands a lost claim's batch to the next holder): they are not dropped, and a batch
      // that did not run is given back, never finished.
      for (const entry of turn.entries) ends.departed(turn.key, entry, reason);
      this.#engine.retire(turn, "requeue");
      return;
    }
    const why =
      reason instanceof TurnAbortedError && reason.code === "shutdown" ? "shutdown" : "stopped";
    for (const entry of turn.entries) ends.dropped(turn.key, entry, why);
    this.#engine.retire(turn, "finish");
  }

  /** Stop a turn held here: abort it; one that has not started drops its inputs. */
  stop(turn: TurnState<I>): boolean {
    const stopped = turn.abort(new TurnAbortedError("stopped", turn.key, turn.fence));
    if (turn.phase === "claimed") this.discard(turn);
    return stopped;
  }

  /**
   * Release the key without running its pending input here; drop what no one else will run.
   * `requeue`: the turn never ran; a shared store leaves its batch for another replica.
   */
  giveUp(turn: TurnState<I>, requeue = false): void {
    const engine = this.#engine;
    turn.released = true;
    engine.leases?.stop(turn);
    const done = engine.replicas?.handingOver() ?? noop;
    engine.unhold(turn);
    this.storeCall(
      turn,
      "abandon",
      () => engine.store.abandon(turn.key, turn.claim, requeue, engine.carrier.on(turn)),
      (orphans: readonly GuardEntry<I>[]) => {
        for (const entry of orphans) engine.ends.dropped(turn.key, entry, "shutdown");
        done();
      },
      done,
    );
  }

  /**
   * The turn's claim is gone (`confirmed`: the store said so) or overdue: abort its signal with a
   * `LeaseLostError`, report it once, and treat the turn as stale. A confirmed loss frees the key
   * here at once; an overdue one still lets the turn's finish ask the store, which refuses it
   * unless the claim survived.
   */
  leaseLost(turn: TurnState<I>, confirmed: boolean): void {
    const engine = this.#engine;
    engine.leases?.stop(turn);
    if (turn.released) return;
    const first = !turn.lost;
    turn.lost = true;
    const error = new LeaseLostError(turn.key, turn.fence);
    if (first && turn.phase !== "settled") {
      turn.abort(error);
      engine.report.error(error, turn.key, turn.fence, turn.inputs);
    }
    if (confirmed) {
      turn.released = true;
      engine.unhold(turn);
      if (turn.phase === "claimed") this.discard(turn);
    }
  }

  /**
   * The store refused to finish the turn: its lease ran out before the finish arrived, so another
   * replica may run its inputs again. At-least-once, but never silently: a lease loss.
   */
  refused(turn: TurnState<I>): void {
    const engine = this.#engine;
    if (engine.shared && !turn.lost) {
      engine.report.error(
        new LeaseLostError(turn.key, turn.fence),
        turn.key,
        turn.fence,
        turn.inputs,
      );
    }
    engine.lost(turn);
  }

  /** Forget the de-duplication ids of a failed awaited turn, so that the redelivery runs. */
  forget(turn: TurnState<I>, ids: readonly string[]): void {
    this.storeCall(turn, "forget", () => this.#engine.store.forget(turn.key, ids), noop);
  }

  /** A store operation for a turn failed: report it; without finish or abandon, let go. */
  storeFailed(turn: TurnState<I>, operation: string, error: unknown): void {
    const engine = this.#engine;
    engine.report.error(
      new StoreError(operation, turn.key, error),
      turn.key,
      turn.fence,
      turn.inputs,
    );
    // Without an answer to finish or abandon the claim is gone for this process; a shared
    // store's lease then expires and another replica takes the key over.
    if (operation === "finish" || operation === "abandon") engine.lost(turn);
  }

  /** Run a store operation for a turn; a failure is reported (`storeFailed`), then `onFailure`. */
  storeCall<T>(
    turn: TurnState<I>,
    operation: string,
    call: () => T | Promise<T>,
    onValue: (value: T) => void,
    onFailure?: () => void,
  ): void {
    const fail = (error: unknown) => {
      this.storeFailed(turn, operation, error);
      onFailure?.();
    };
    let value: T | Promise<T>;
    try {
      value = call();
    } catch (error) {
      fail(error);
      return;
    }
    settleWith(value, onValue, fail);
  }

  /**
   * Entries a store moved into a turn that can no longer run them (it was stopped, or settled,
   * while the `take` was on its way): a stopped or shut-down turn drops them like its own inputs;
   * otherwise they go back to the store, to run in a later turn of the key.
   */
  late(turn: TurnState<I>, entries: readonly GuardEntry<I>[]): void {
    const engine = this.#engine;
    const reason = turn.abortReason;
    const code = reason instanceof TurnAbortedError ? reason.code : undefined;
    const policy = { ...engine.admitPolicy, whenHeld: "enqueue" as const, dedupe: 0 };
    for (const entry of entries) {
      if (entry.outcome === "ended") continue;
      if (code === "stopped" || code === "shutdown") {
        engine.ends.dropped(turn.key, entry, code === "stopped" ? "stopped" : "shutdown");
        continue;
      }
      const admitted = engine.admit(turn.key, entry, policy);
      if (typeof admitted !== "string") {
        admitted.catch((error: unknown) => {
          engine.report.error(error, turn.key, undefined, [entry.input]);
          engine.ends.dropped(turn.key, entry, "shutdown");
        });
      }
    }
  }

  /** Drops a store answered along the way. */
  drops(key: string, drops: readonly StoreDrop<GuardEntry<I>>[]): void {
    this.#engine.ends.droppedAll(key, drops);
  }
}

function noop(): void {}
