// === The engine: admission → turn → finish, the hot path of a guard
//
// One turn per key at a time. `submit` claims the key or queues the input in one synchronous store
// call (for the memory store), so nothing can slip between "is a turn running?" and "register the
// turn" — the await gap that makes other guards start duplicate runs. The turn then runs detached;
// when it settles, `finish` atomically hands back the next batch (keeping the claim) or releases
// the key, so input is never stranded between "queue empty" and "released".
//
// This file is the hot path and nothing else: no allocation or indirection per input beyond what it
// needs. Every input ends in `endings.ts`, every turn in `retire`. The concerns beside the hot path
// are collaborators that `guard.ts` builds once (lanes, settle windows, the lease watchdog, the
// expiry timer, stuck turns, the other exits of a turn, replicas, stop and close, reporting).

import type pLimit from "p-limit";
import type { Admission, AdmitPolicy, Finish, Store } from "../stores/store.js";
import { callHandler } from "./call-handler.js";
import { awaited, current, noHandler, OUTCOMES } from "./callers.js";
import type { Carrier } from "./carry.js";
import { checkKey, checkSubmitOptions } from "./check.js";
import type { Controls } from "./control.js";
import type { Deadlines } from "./deadlines.js";
import type { Endings } from "./endings.js";
import { type GuardEntry, submitted } from "./entry.js";
import { StoreError, TurnAbortedError } from "./errors.js";
import type { Emitter, GuardEvents } from "./events.js";
import type { Exits } from "./exits.js";
import type { ExpiryTimer } from "./expiry.js";
import type { Holders } from "./holders.js";
import type { Lanes } from "./lanes.js";
import type { LeaseWatchdog } from "./lease-watch.js";
import type { ModeChoice } from "./mode-choice.js";
import { MODES, type ModeBehaviour } from "./modes.js";
import type { Handler, ResolvedOptions } from "./options.js";
import type { Replicas } from "./replicas.js";
import type { Reporter } from "./report.js";
import type { SettleWindows } from "./settle.js";
import type { Stuck } from "./stuck.js";
import { type TurnHost, TurnState } from "./turn.js";
import type { SubmitOptions, SubmitOutcome } from "./types.js";

type Entry<I> = GuardEntry<I>;

const DONE: Promise<void> = Promise.resolve();

export abstract class Engine<I> implements TurnHost<I> {
  // What the engine works with; the guard (`guard.ts`) builds them, the collaborators after it.
  abstract readonly options: ResolvedOptions<I>;
  abstract readonly store: Store<Entry<I>>;
  /** Other processes share the store: inputs are serialized, keys handed over on close. */
  abstract readonly shared: boolean;
  abstract readonly mode: ModeBehaviour;
  abstract readonly admitPolicy: AdmitPolicy;
  /** With a mode function (`mode` per input): chooses each input's policy. */
  abstract readonly modes: ModeChoice<I> | undefined;
  abstract readonly events: Emitter<GuardEvents<I>>;
  abstract readonly report: Reporter<I>;
  abstract readonly ends: Endings<I>;
  /** The current turn of every key this guard holds. */
  abstract readonly keys: Holders<TurnState<I>>;
  /** Turns running at once (`concurrency`), unless unlimited. */
  abstract readonly limit: ReturnType<typeof pLimit> | undefined;
  abstract readonly deadlines: Deadlines<TurnState<I>> | undefined;
  abstract readonly settle: SettleWindows<I>;
  abstract readonly exits: Exits<I>;
  abstract readonly stuck: Stuck<I>;
  abstract readonly expiry: ExpiryTimer<I>;
  abstract readonly leases: LeaseWatchdog<I> | undefined;
  abstract readonly lanes: Lanes<I>;
  abstract readonly controls: Controls<I>;
  abstract readonly replicas: Replicas<I> | undefined;
  abstract readonly carrier: Carrier<I>;
  // What a turn asks of its guard (`TurnHost`), answered by the guard.
  abstract take(turn: TurnState<I>): Promise<I[]>;
  carry(turn: TurnState<I>, value: unknown): void {
    this.carrier.carry(turn, value);
  }
  abstract pendingCount(key: string): number;
  abstract listenerFailed(turn: TurnState<I>, error: unknown): void;
  #idleWaiters: (() => void)[] = [];

  /** Resolves when this guard holds no key. */
  idle(): Promise<void> {
    if (this.keys.size === 0) return DONE;
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  // --- admission

  submit(
    key: string,
    input: I,
    run?: Handler<I>,
    options?: SubmitOptions<I>,
  ): Promise<SubmitOutcome> {
    const badKey = checkKey("submit", key, this.options.namespace);
    if (badKey !== undefined) return Promise.reject(badKey);
    const handler = run ?? this.options.handler;
    if (typeof handler !== "function") return Promise.reject(noHandler("submit"));
    let awaitTurn = this.options.awaitTurn;
    if (options !== undefined) {
      const problem = checkSubmitOptions(options as SubmitOptions<unknown>);
      if (problem !== undefined) return Promise.reject(problem);
      awaitTurn = options.awaitTurn ?? awaitTurn;
    }
    const entry = submitted(input, handler, options, this.options.pendingTtl);
    if (this.shared) {
      try {
        // biome-ignore lint/style/noNonNullAssertion: a shared store always has replicas
        entry.data = this.replicas!.encode(input);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (this.controls.closing !== undefined) {
      this.ends.dropped(key, entry, "shutdown", true);
      return OUTCOMES.dropped;
    }
    if (entry.expiresAt !== Number.POSITIVE_INFINITY && entry.expiresAt <= Date.now()) {
      // Already past its deadline (a dying interaction token): it must not claim a free key.
      this.ends.dropped(key, entry, "expired", true);
      return OUTCOMES.dropped;
    }
    const settled = awaitTurn ? awaited(entry) : undefined;
    const policy = this.modes === undefined ? this.admitPolicy : this.modes.choose(key, entry);
    const outcome = this.admit(
      key,
      entry,
      entry.group === undefined ? policy : this.settle.policy(key, entry.group, policy),
    );
    const caller = current.turn as TurnState<I> | undefined;
    // Awaited from inside its own key's turn: it would wait for itself. The input stays admitted.
    if (awaitTurn && caller?.key === key && caller.host === this) this.stuck.cycle(entry, caller);
    if (typeof outcome === "string") return settled ?? OUTCOMES[outcome];
    return settled === undefined ? outcome : outcome.then(() => settled);
  }

  /** Admit an entry: claim or queue it in the store, then act on the answer. */
  admit(key: string, entry: Entry<I>, policy: AdmitPolicy): SubmitOutcome | Promise<SubmitOutcome> {
    let admission: Admission<Entry<I>> | Promise<Admission<Entry<I>>>;
    try {
      admission = this.store.acquireOrEnqueue(key, entry, policy);
    } catch (error) {
      return Promise.reject(new StoreError("acquireOrEnqueue", key, error));
    }
    if (admission instanceof Promise) {
      return admission.then(
        (answer) => this.admitted(key, entry, answer),
        (error: unknown) => {
          throw new StoreError("acquireOrEnqueue", key, error);
        },
      );
    }
    return this.admitted(key, entry, admission);
  }

  admitted(key: string, entry: Entry<I>, admission: Admission<Entry<I>>): SubmitOutcome {
    switch (admission.status) {
      case "acquired": {
        const turn = new TurnState(this, key, admission.claim, admission.batch);
        if (admission.carried !== undefined) turn.more().carriedIn = admission.carried;
        this.holds(key, turn);
        this.ends.droppedAll(key, admission.dropped);
        // A shared store may claim the key for input a dead holder left behind, older than this
        // entry: the entry then waits for the next batch of this guard's own turns.
        const outcome = this.shared && !admission.batch.includes(entry) ? "queued" : "started";
        entry.outcome = outcome;
        if (!entry.lane && this.events.has("admitted")) {
          this.events.emit("admitted", { key, id: entry.id, input: entry.input, outcome });
        }
        this.begin(turn, true);
        // A turn that did not start at once (a settle window, a concurrency slot, another
        // replica's batch first) leaves its input pending until it does (`running` is recorded
        // when the handler starts: the uncontended path records once).
        if (entry.id !== undefined && (turn.phase === "claimed" || outcome === "queued")) {
          this.ends.note(key, entry, "pending");
        }
        return outcome;
      }
      case "queued": {
        // (A replica's drop hint may have ended it before this answer came: it stays ended.)
        if (entry.outcome !== "ended") {
          entry.outcome = "queued";
          if (entry.id !== undefined) this.ends.note(key, entry, "pending");
        }
        this.ends.droppedAll(key, admission.dropped);
        if (!entry.lane && (this.events.has("admitted") || this.events.has("queued"))) {
          const { id, input } = entry;
          this.events.emit("admitted", { key, id, input, outcome: "queued" });
          this.events.emit("queued", { key, id, input, pending: admission.pending });
        }
        if (entry.expiresAt !== Number.POSITIVE_INFINITY) this.expiry.watch(key, entry.expiresAt);
        const turn = this.keys.get(key);
        if (turn !== undefined && !turn.stale) {
          if (entry.waiter !== undefined) this.stuck.waiting(turn, entry);
          if (entry.group !== undefined) this.settle.arrived(turn, entry.group);
          if (!entry.lane) {
            if (turn.watch !== undefined) turn.watch.knownPending = admission.pending;
            if (this.modes !== undefined && (turn.extra?.waitingSince ?? 0) === 0) {
              turn.more().waitingSince = Date.now();
            }
            const mode = entry.mode;
            this.pendingArrived(
              turn,
              admission.pending,
              mode === undefined ? undefined : MODES[mode],
            );
          }
        }
        return "queued";
      }
      case "rejected":
        this.ends.dropped(key, entry, admission.reason, true);
        return "dropped";
      default:
        this.ends.dropped(key, entry, "duplicate");
        return "duplicate";
    }
  }

  // --- turns

  /** A turn holds its key: watch its lease, wait out its settle window, then launch it. */
  begin(turn: TurnState<I>, admitted: boolean): void {
    this.leases?.watch(turn);
    this.settle.begin(turn, admitted);
  }

  launch(turn: TurnState<I>): void {
    const limit = this.limit;
    if (limit === undefined) {
      this.#invoke(turn);
      return;
    }
    limit(() => {
      if (turn.phase !== "claimed" || turn.released) return undefined;
      return new Promise<void>((resolve) => {
        turn.release = resolve;
        this.#invoke(turn);
      });
    });
  }

  /** Run the turn's handler. A turn aborted before it started drops its inputs instead. */
  #invoke(turn: TurnState<I>): void {
    if (turn.phase !== "claimed" || turn.released) return;
    if (turn.abortReason !== undefined) {
      this.exits.discard(turn);
      return;
    }
    if (turn.entries.length === 0) {
      // A shared store handed over a batch none of whose inputs could be rebuilt here (each was
      // reported to onError): nothing to run, the key moves on.
      this.retire(turn, "finish");
      return;
    }
    turn.phase = "running";
    if (this.modes !== undefined) turn.more().startedAt = Date.now();
    this.ends.running(turn.key, turn.entries, turn.fence);
    this.deadlines?.add(turn, this.options.turnTimeout);
    if (this.events.has("started")) {
      this.events.emit("started", { key: turn.key, fence: turn.fence, inputs: turn.inputs });
    }
    const entries = turn.entries;
    const last = entries[entries.length - 1] as Entry<I>;
    callHandler(this, turn, last.run ?? this.options.handler, last.input);
  }

  /** The handler returned or threw: report, end its entries, and retire the turn. */
  settleTurn(turn: TurnState<I>, value: unknown, failed: boolean): void {
    if (turn.phase === "settled") return;
    // An error that is the turn's own abort reason was expected (stop, interrupt) or was already
    // reported when it happened (timeout, lease loss).
    if (failed && (value !== turn.abortReason || turn.abortReason === undefined))
      this.report.error(value, turn.key, turn.fence, turn.inputs);
    const forget = this.ends.turnSettled(turn, value, failed, this.shared);
    if (forget !== undefined) this.exits.forget(turn, forget);
    if (this.events.has("finished")) {
      const { key, fence, inputs } = turn;
      this.events.emit("finished", { key, fence, inputs, failed });
    }
    this.retire(turn, "finish");
  }

  /**
   * Every turn ends here: its timers, deadline, lease watch and concurrency slot go, then its key
   * moves on — to the next batch or released (`finish`), or given up without running its pending
   * input here (`give-up`; `requeue`: the turn's own batch did not run either).
   */
  retire(turn: TurnState<I>, next: "finish" | "give-up" | "requeue"): void {
    turn.phase = "settled";
    this.settle.cancel(turn);
    this.deadlines?.delete(turn);
    this.leases?.stop(turn);
    turn.behind = undefined;
    this.freeSlot(turn);
    if (turn.released) return;
    if (next === "finish") this.finish(turn);
    else this.exits.giveUp(turn, next === "requeue");
  }

  /** Give back the turn's concurrency slot (p-limit), once. */
  freeSlot(turn: TurnState<I>): void {
    const release = turn.release;
    turn.release = undefined;
    release?.();
  }

  /** Hand the key to its next batch, or release it. */
  finish(turn: TurnState<I>): void {
    if (this.controls.closing !== undefined && this.shared) {
      // Across replicas a closing guard hands its keys over instead of draining them.
      this.exits.giveUp(turn);
      return;
    }
    // Every turn ends here, so no closure is made unless the store answers with a promise.
    let answer: Finish<Entry<I>> | Promise<Finish<Entry<I>>>;
    try {
      answer = this.store.finish(turn.key, turn.claim, this.mode.batch, this.carrier.on(turn));
    } catch (error) {
      this.exits.storeFailed(turn, "finish", error);
      return;
    }
    if (answer instanceof Promise) {
      answer.then(
        (finish) => this.#finished(turn, finish),
        (error: unknown) => this.exits.storeFailed(turn, "finish", error),
      );
    } else this.#finished(turn, answer);
  }

  /** The store answered `finish`: release the key, or start its next batch. */
  #finished(turn: TurnState<I>, finish: Finish<Entry<I>>): void {
    if (finish.status === "lost") {
      this.exits.refused(turn);
      return;
    }
    this.ends.droppedAll(turn.key, finish.dropped);
    if (finish.status === "released") {
      this.unhold(turn);
      return;
    }
    const next = new TurnState(this, turn.key, finish.claim, finish.batch);
    const carried = this.carrier.inStore ? finish.carried : this.carrier.passOn(turn);
    if (carried !== undefined) next.more().carriedIn = carried;
    // Input still waiting has waited since before this batch (a mode function reads its age).
    if (this.modes !== undefined && this.store.pendingCount(turn.key) > 0) {
      next.more().waitingSince = turn.extra?.waitingSince ?? 0;
    }
    this.holds(turn.key, next, turn);
    this.begin(next, false);
  }

  /** `turn` is now the key's holder here; a turn it replaces unexpectedly lost its claim. */
  holds(key: string, turn: TurnState<I>, previous?: TurnState<I>): void {
    if (this.shared) {
      const current = this.keys.get(key);
      if (current !== undefined && current !== previous) this.exits.leaseLost(current, true);
    }
    this.keys.set(turn, previous);
  }

  /** The store no longer knows this turn's claim. */
  lost(turn: TurnState<I>): void {
    turn.released = true;
    this.unhold(turn);
  }

  unhold(turn: TurnState<I>): void {
    if (!this.keys.delete(turn)) return;
    this.expiry.forget(turn.key);
    this.lanes.wake(turn.key);
    if (this.controls.closing !== undefined) this.controls.released();
    if (this.keys.size === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /**
   * Input is pending for a running turn: interrupt it (interrupt mode, or `mode`, the mode chosen
   * for the input that arrived) and tell its listeners.
   */
  pendingArrived(turn: TurnState<I>, pending: number, mode: ModeBehaviour = this.mode): void {
    // A lane (cron, recovery) is not a conversation turn: chat input never supersedes it.
    if (mode.interrupts && turn.phase === "running" && !(turn.entries[0] as Entry<I>).lane) {
      turn.abort(new TurnAbortedError("superseded", turn.key, turn.fence));
    }
    turn.notifyPending(pending);
  }
}
