// === The lease watchdog (stores whose claims expire unless renewed)
//
// Every turn on such a store renews its claim every lease/3. A renewal also brings what the holder
// must know even if no hint reaches it: input that arrived (interrupt, `onPending`), a stop made at
// another replica, and the earliest expiry of pending input. A turn whose claim was lost, or not
// renewed for a whole lease, is aborted with a `LeaseLostError`: another replica may hold the key.
// A renewal that fails is a store incident, reported once until renewals work again.
//
// The checks of all turns share one timer: a `Deadlines` list of the turns' watches, where every
// renewal comes `lease/3` after the last, so a watch re-armed goes to the newest end. A turn costs
// no timer of its own, and a guard whose turns all ended is not kept alive by its watchdog.

import type { Renewal } from "../stores/store.js";
import { Deadlines } from "./deadlines.js";
import type { Engine } from "./engine.js";
import { StoreError } from "./errors.js";
import { settleWith } from "./settle-with.js";
import type { LeaseWatch, TurnState } from "./turn.js";

export class LeaseWatchdog<I> {
  readonly #engine: Engine<I>;
  readonly #lease: number;
  readonly #interval: number;
  /** The next check of every watched turn, soonest first. */
  readonly #checks: Deadlines<LeaseWatch<I>>;

  constructor(engine: Engine<I>, lease: number) {
    this.#engine = engine;
    this.#lease = lease;
    this.#interval = Math.max(1, Math.floor(lease / 3));
    this.#checks = new Deadlines((watch: LeaseWatch<I>) => this.#check(watch.turn));
  }

  /** Start renewing the turn's claim. */
  watch(turn: TurnState<I>): void {
    // The lease began when the store sent the claim's command (`Claim.since`), a round trip or
    // more ago: counting the first lease from now would give the turn up that much after Redis
    // let the key go, while another replica may already run it. A store that does not say (or
    // says something that is not a time before now) counts from now.
    const now = Date.now();
    const since = turn.claim.since;
    const watch: LeaseWatch<I> = {
      turn,
      renewedAt: typeof since === "number" && Number.isFinite(since) && since <= now ? since : now,
      renewing: false,
      // Input already pending when the turn began is not news (interrupt reacts to new input).
      knownPending: this.#engine.store.pendingCount(turn.key),
      deadline: 0,
      newer: undefined,
      older: undefined,
      queued: false,
    };
    turn.watch = watch;
    // The turn's own work keeps the process alive, not its watchdog (the list's timer is unref'd).
    this.#checks.add(watch, this.#interval);
  }

  /** Stop renewing (the turn ended, or its key was given up). */
  stop(turn: TurnState<I>): void {
    const watch = turn.watch;
    if (watch !== undefined) this.#checks.delete(watch);
  }

  #arm(turn: TurnState<I>, delay: number): void {
    const watch = turn.watch as LeaseWatch<I>;
    this.#checks.delete(watch);
    this.#checks.add(watch, delay);
  }

  /** Renew the claim, or give the turn up once a whole lease passed without a renewal. */
  #check(turn: TurnState<I>): void {
    const watch = turn.watch as LeaseWatch<I>;
    if (turn.released || turn.lost || turn.phase === "settled") return;
    const engine = this.#engine;
    const now = Date.now();
    const expires = watch.renewedAt + this.#lease;
    if (now >= expires) {
      // No renewal succeeded for a whole lease: another replica may hold the key by now.
      engine.exits.leaseLost(turn, false);
      return;
    }
    // Next check: the next renewal, or the expiry if renewals keep failing.
    this.#arm(turn, Math.max(1, Math.min(this.#interval, expires - now)));
    if (watch.renewing) return;
    watch.renewing = true;
    const onAnswer = (renewal: Renewal) => {
      watch.renewing = false;
      engine.report.recovered("renew");
      if (turn.released || turn.lost || turn.phase === "settled") return;
      if (renewal.status === "lost") {
        engine.exits.leaseLost(turn, true);
        return;
      }
      watch.renewedAt = now;
      this.#arm(turn, this.#interval);
      if (renewal.stopped === true) engine.exits.stop(turn);
      if (renewal.expires !== undefined && renewal.expires !== Number.POSITIVE_INFINITY) {
        engine.expiry.watch(turn.key, renewal.expires);
      }
      // Hints may be lost: the renewal's pending count is the fallback for interrupt and onPending.
      const pending = renewal.pending;
      if (pending > watch.knownPending && !turn.stale) engine.pendingArrived(turn, pending);
      watch.knownPending = pending;
    };
    const onError = (error: unknown) => {
      watch.renewing = false;
      engine.report.incident("renew", new StoreError("renew", turn.key, error), turn.key);
      if (turn.released || turn.lost || turn.phase === "settled") return;
      // Try again soon; the expiry check above gives up once the lease is over.
      this.#arm(turn, Math.max(1, Math.min(Math.floor(this.#interval / 2), expires - Date.now())));
    };
    let answer: Renewal | Promise<Renewal>;
    try {
      answer = engine.store.renew(turn.key, turn.claim);
    } catch (error) {
      onError(error);
      return;
    }
    settleWith(answer, onAnswer, onError);
  }
}
