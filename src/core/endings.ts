// === The input's life ends here
//
// Every admitted entry ends exactly once, through one of these functions: handled in a turn,
// failed with its turn, dropped with a reason (here, or by another replica: `droppedElsewhere`),
// or gone to another replica that runs it. Each function first ends the entry (`end()`: its
// outcome becomes "ended"), so a second end (a turn that settles after it was abandoned, a stop
// racing a finish) is a no-op: G3 holds by construction, not by care at every branch. The waiting
// caller, the submit's own `onDrop`, the guard's `onDrop`, the `dropped` event and the shutdown
// report all hear of the end here and nowhere else — and so do the input's outcome record
// (`outcomes.ts`) and the `settled` event.

import type { OutcomeRecord, StoreDrop } from "../stores/store.js";
import { end, type GuardEntry, rejectWaiter, resolveWaiter } from "./entry.js";
import { DroppedError, type DropReason, isA, LeaseLostError, TurnAbortedError } from "./errors.js";
import type { Emitter, GuardEvents } from "./events.js";
import type { Drop } from "./options.js";
import type { Ledger, OutcomeState } from "./outcomes.js";
import { outcomeOf } from "./outcomes.js";
import type { Reporter } from "./report.js";
import type { TurnState } from "./turn.js";

/** Abort reasons after which a turn's inputs count as handled, not failed. */
function isGracefulAbort(reason: unknown): boolean {
  return (
    isA(reason, TurnAbortedError) && (reason.code === "stopped" || reason.code === "superseded")
  );
}

export class Endings<I> {
  readonly #onDrop: ((drop: Drop<I>) => void) | undefined;
  readonly #events: Emitter<GuardEvents<I>>;
  readonly #report: Reporter<I>;
  readonly #ledger: Ledger;
  /** How long final outcome records are kept (ms). */
  readonly #window: number;
  /** A shared store's `record`, bound, or `undefined`. */
  readonly #share: ((key: string, records: readonly OutcomeRecord[]) => void) | undefined;
  /** While the guard closes: the inputs it dropped, for the close report. */
  closeDrops: Drop<I>[] | undefined = undefined;

  constructor(
    onDrop: ((drop: Drop<I>) => void) | undefined,
    events: Emitter<GuardEvents<I>>,
    report: Reporter<I>,
    ledger: Ledger,
    window: number,
    share: ((key: string, records: readonly OutcomeRecord[]) => void) | undefined,
  ) {
    this.#window = window;
    this.#onDrop = onDrop;
    this.#events = events;
    this.#report = report;
    this.#ledger = ledger;
    this.#share = share;
  }

  /**
   * Record where an input is (`pending`, `running`) or how it ended, here and in a shared store
   * that keeps outcomes; a final state is also the `settled` event. Lanes are not inputs.
   * `arriving`: the input is dropped as it arrives, so this is its first record (its id may have
   * an earlier input's, which this one replaces).
   */
  note(
    key: string,
    entry: GuardEntry<I>,
    state: OutcomeState,
    fence?: number,
    reason?: DropReason,
    arriving = false,
  ): void {
    if (entry.lane) return;
    const id = entry.id;
    const settled = state !== "pending" && state !== "running" && this.#events.has("settled");
    if (id === undefined && !settled) return;
    const at = Date.now();
    if (id !== undefined) {
      this.#ledger.note(id, key, state, at, this.#window, fence, reason, arriving);
      this.#share?.(key, [{ id, state, reason, fence, at }]);
    }
    if (settled) {
      const outcome = outcomeOf({ key, state, reason, fence, at });
      this.#events.emit("settled", { key, id, input: entry.input, outcome });
    }
  }

  /** The entries of a turn that starts (or that a running turn took in) run now. */
  running(key: string, entries: readonly GuardEntry<I>[], fence: number): void {
    let records: OutcomeRecord[] | undefined;
    let at = 0;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as GuardEntry<I>;
      const id = entry.id;
      if (id === undefined || entry.lane) continue;
      if (at === 0) at = Date.now();
      this.#ledger.note(id, key, "running", at, this.#window, fence);
      if (this.#share !== undefined) (records ??= []).push({ id, state: "running", fence, at });
    }
    if (records !== undefined) this.#share?.(key, records);
  }

  /** The entry ran in a turn that ended well (or was stopped or superseded: handled too). */
  handled(key: string, entry: GuardEntry<I>, value: unknown, fence: number): void {
    const outcome = end(entry);
    if (outcome === undefined) return;
    this.note(key, entry, "handled", fence);
    const waiter = entry.waiter;
    if (waiter === undefined) return;
    entry.waiter = undefined;
    resolveWaiter(waiter, entry.lane ? value : outcome);
  }

  /** The entry ran in a turn that failed with `error`. */
  failed(key: string, entry: GuardEntry<I>, error: unknown, fence: number): void {
    if (end(entry) === undefined) return;
    this.note(key, entry, "failed", fence);
    const waiter = entry.waiter;
    if (waiter === undefined) return;
    entry.waiter = undefined;
    rejectWaiter(waiter, error);
  }

  /**
   * The entry ended without being handled, for `reason`. `arriving`: refused as it arrived (at
   * `submit`, or by the store), so its record begins here.
   */
  dropped(key: string, entry: GuardEntry<I>, reason: DropReason, arriving = false): void {
    if (!this.#endDropped(key, entry, reason)) return;
    // A duplicate is the same input again: the original's record stands.
    if (reason !== "duplicate") this.note(key, entry, "dropped", undefined, reason, arriving);
    const own = entry.onDrop;
    const onDrop = this.#onDrop;
    const closeDrops = reason === "shutdown" ? this.closeDrops : undefined;
    if (own === undefined && onDrop === undefined && closeDrops === undefined) {
      if (!this.#events.has("dropped")) return;
    }
    const drop: Drop<I> = { key, input: entry.input, id: entry.id, reason };
    closeDrops?.push(drop);
    if (own !== undefined) this.#callDrop(own, drop);
    if (onDrop !== undefined) this.#callDrop(onDrop, drop);
    this.#events.emit("dropped", drop);
  }

  /** Entries a store removed without running them, each with its reason. */
  droppedAll(key: string, drops: readonly StoreDrop<GuardEntry<I>>[]): void {
    for (let i = 0; i < drops.length; i++) {
      const { entry, reason } = drops[i] as StoreDrop<GuardEntry<I>>;
      this.dropped(key, entry, reason);
    }
  }

  /**
   * The entry, admitted here, was dropped for `reason` by another replica, which reported it to its
   * guard's `onDrop` and `dropped` event already: here only its caller learns it (an awaiting
   * submit resolves "dropped", a lane fails) and the submit's own `onDrop` is called, so the
   * guard-level count stays exactly once across replicas.
   */
  droppedElsewhere(key: string, entry: GuardEntry<I>, reason: DropReason): void {
    if (!this.#endDropped(key, entry, reason)) return;
    // The other replica recorded it in the store and emitted `settled`: only the local record.
    if (entry.id !== undefined)
      this.#ledger.note(entry.id, key, "dropped", Date.now(), this.#window, undefined, reason);
    const own = entry.onDrop;
    if (own !== undefined) this.#callDrop(own, { key, input: entry.input, id: entry.id, reason });
  }

  /**
   * The entry left this process: another replica runs it (it took the entry into its turn, or the
   * key was handed over). Its caller learns it was queued; a lane, which cannot travel, fails.
   */
  departed(key: string, entry: GuardEntry<I>, laneError?: unknown): void {
    if (end(entry) === undefined) return;
    const waiter = entry.waiter;
    if (waiter === undefined) return;
    entry.waiter = undefined;
    if (entry.lane) rejectWaiter(waiter, laneError ?? new DroppedError(key, "shutdown"));
    else resolveWaiter(waiter, "queued");
  }

  /**
   * A turn's handler settled with `value` (`failed`: it threw or rejected): end its entries.
   * Answers the ids to forget so that the platform's redelivery runs (an awaited input that
   * failed), or `undefined`.
   */
  turnSettled(
    turn: TurnState<I>,
    value: unknown,
    failed: boolean,
    shared: boolean,
  ): string[] | undefined {
    // A stopped or superseded turn handled its inputs: the platform must not redeliver them,
    // whatever the handler threw on abort (signal.reason, or an SDK's own abort error).
    const inputsFailed = failed && !isGracefulAbort(value) && !isGracefulAbort(turn.abortReason);
    // A turn that lost its lease on a shared store: the next holder runs its inputs again, so a
    // redelivery must stay a duplicate.
    const keepIds = shared && turn.abortReason instanceof LeaseLostError;
    const { key, fence } = turn;
    let forget: string[] | undefined;
    for (const entry of turn.entries) {
      if (entry.outcome === "ended") continue;
      if (entry.lane) {
        if (failed) this.failed(key, entry, value, fence);
        else this.handled(key, entry, value, fence);
      } else if (inputsFailed) {
        if (entry.waiter !== undefined && entry.id !== undefined && !keepIds) {
          (forget ??= []).push(entry.id);
        }
        this.failed(key, entry, value, fence);
      } else this.handled(key, entry, value, fence);
    }
    return forget;
  }

  /**
   * End a dropped entry and tell its caller. Answers whether the drop is still to be reported: not
   * when the entry had ended already, nor for a lane (not an input: its caller's rejection is all).
   */
  #endDropped(key: string, entry: GuardEntry<I>, reason: DropReason): boolean {
    if (end(entry) === undefined) return false;
    const waiter = entry.waiter;
    entry.waiter = undefined;
    if (entry.lane) {
      if (waiter !== undefined) rejectWaiter(waiter, new DroppedError(key, reason));
      return false;
    }
    // An awaiting submit resolves as a detached one would: a redelivery is "duplicate".
    if (waiter !== undefined)
      resolveWaiter(waiter, reason === "duplicate" ? "duplicate" : "dropped");
    return true;
  }

  #callDrop(onDrop: (drop: Drop<I>) => void, drop: Drop<I>): void {
    try {
      onDrop(drop);
    } catch (error) {
      // Like a listener's: to onError only, never re-emitted as an `error` event.
      this.#report.listenerFailed(error, drop.key);
    }
  }
}
