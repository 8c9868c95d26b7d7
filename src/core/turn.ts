// === The turn handed to handlers
//
// A turn is one run of the handler over one or more inputs of one key. It is created when the key
// is claimed (synchronously, at admission), so input that arrives while the handler is still
// preparing finds the turn there and waits as pending input. Its AbortController is created only
// when someone reads `signal`: the uncontended path never pays for one.

import { setMaxListeners } from "node:events";
import type { Claim } from "../stores/store.js";
import { type Carried, decodeCarried } from "./carry.js";
import type { Timed } from "./deadlines.js";
import type { GuardEntry } from "./entry.js";
import type { LongTimer } from "./timers.js";
import { TurnExtra } from "./turn-extra.js";

/**
 * One run of the handler over the inputs of one key.
 *
 * @example
 * ```ts
 * guard.submit(chatId, message, async (turn) => {
 *   const prompt = turn.inputs.map((m) => m.text).join("\n");
 *   const unsubscribe = turn.onPending(() => console.log("more input is waiting"));
 *   try {
 *     return await agent(prompt, { signal: turn.signal });
 *   } finally {
 *     unsubscribe();
 *   }
 * });
 * ```
 */
export interface Turn<I> {
  /** The key this turn holds. */
  readonly key: string;
  /** Every input of the turn, oldest first (coalesced inputs, then those `take()` moved in). */
  readonly inputs: readonly I[];
  /** The de-duplication ids of `inputs`, in the same order. */
  readonly ids: readonly (string | undefined)[];
  /**
   * Aborted when the turn is stopped, interrupted (superseded), times out, loses its lease or the
   * guard shuts down; `signal.reason` is a `TurnAbortedError` saying which. A standard AbortSignal:
   * pass it to `fetch`, AI SDKs and bot API calls.
   */
  readonly signal: AbortSignal;
  /**
   * Grows with every claim of the key. Store it with what the turn writes and refuse writes that
   * carry a lower fence than one already stored: a turn that was abandoned or lost its lease can
   * then never overwrite the work of the turn that replaced it.
   */
  readonly fence: number;
  /** Inputs of this key waiting right now (as far as this process knows). */
  readonly pendingCount: number;
  /**
   * True once this turn no longer holds its key (it settled, was abandoned or lost its lease).
   * From then on `fence` is stale: another turn of the key may run with a higher one.
   */
  readonly stale: boolean;
  /**
   * Move the pending inputs into this turn (steer): resolves with the inputs moved, oldest first,
   * which are also appended to `inputs`. Inputs that must run alone (interactions, lanes) stay
   * pending. Resolves with `[]` when nothing is pending or the turn no longer holds its key.
   */
  take(): Promise<I[]>;
  /**
   * Record work for the key's next turn (call it as often as you like; the last value wins): if
   * this turn is cut short — superseded by new input (`interrupt`), timed out, its lease lost, or
   * handed over on shutdown — the next turn reads it in `carried`. If this turn ends otherwise
   * (returns, fails on its own, or is stopped), everything carried is discarded. The value must be
   * plain JSON data (a snapshot is taken now); `undefined` withdraws this turn's carry. Throws a
   * `CarryTooLargeError` past `maxCarry` and a `TypeError` for a value that is not plain data.
   *
   * @example
   * ```ts
   * let answer = "";
   * for await (const chunk of stream) {
   *   answer += chunk;
   *   turn.carry({ partial: answer });
   * }
   * ```
   */
  carry(value: unknown): void;
  /**
   * The work of the turns of this key that were cut short since the last turn that ended
   * otherwise, oldest first: `{ value, fence, reason }`. Empty when there is none.
   *
   * @example
   * ```ts
   * const earlier = turn.carried.map((c) => c.value as { partial: string });
   * const prompt = [...earlier.map((e) => `(you were saying: ${e.partial})`), ...texts].join("\n");
   * ```
   */
  readonly carried: readonly Carried[];
  /**
   * Call `listener` when an input of this turn is edited (`revision.input` holds the new input) or
   * deleted (`revision.input` is `undefined`) while the turn runs (`guard.replace`/`withdraw`
   * answered `"in-turn"`): the turn's `inputs` do not change, so an agent can restart or adjust.
   * Revisions that came before `listener` subscribed (the turn had started, the handler had not
   * reached this call yet) are not lost: it hears the latest one of each such input on a microtask
   * after subscribing. Returns the function that unsubscribes.
   *
   * @example
   * ```ts
   * turn.onRevision(({ id, input }) => {
   *   if (input === undefined) controller.abort(); // the question was deleted: stop answering it
   * });
   * ```
   */
  onRevision(listener: (revision: Revision<I>) => void): () => void;
  /**
   * Call `listener` with the pending count whenever input for this key arrives during the turn.
   * Returns the function that unsubscribes.
   */
  onPending(listener: (pending: number) => void): () => void;
}

/** An edit (`input`) or deletion (`input` is `undefined`) of an input of a running turn. */
export interface Revision<I> {
  /** The id the input was submitted with. */
  readonly id: string;
  /** The edited input, or `undefined` when the input was deleted (withdrawn). */
  readonly input: I | undefined;
}

/** What a turn needs from the guard that runs it. */
export interface TurnHost<I> {
  take(turn: TurnState<I>): Promise<I[]>;
  carry(turn: TurnState<I>, value: unknown): void;
  pendingCount(key: string): number;
  /** An `onPending` listener threw: report it (`onError`). */
  listenerFailed(turn: TurnState<I>, error: unknown): void;
}

/** A turn's lease watchdog, on a store whose claims expire unless renewed. */
export interface LeaseWatch<I = unknown> extends Timed {
  /** The turn watched. */
  readonly turn: TurnState<I>;
  /** Epoch ms at which the claim was last known to be renewed. */
  renewedAt: number;
  /** A renewal is in flight. */
  renewing: boolean;
  /** Pending count last reported to `onPending` listeners by a renewal or a hint. */
  knownPending: number;
}

/** `turn.carried` of a turn that nothing was handed on to. */
const NOTHING_CARRIED: readonly Carried[] = Object.freeze([]);

/**
 * Where a turn is in its life: `claimed` (waiting for the settle window or a concurrency slot),
 * `running` (the handler runs), `settled` (the handler returned or threw).
 */
export type Phase = "claimed" | "running" | "settled";

/** The guard's side of a turn; handlers see it through the `Turn` interface. */
export class TurnState<I> implements Turn<I>, Timed {
  readonly key: string;
  claim: Claim;
  readonly entries: GuardEntry<I>[];
  phase: Phase = "claimed";
  /** The guard no longer counts this turn as the key's holder (abandoned, lease lost). */
  released = false;
  /**
   * The claim's lease was not renewed for a whole lease (a shared store): the turn is aborted and
   * stale, though the guard still asks the store to finish it (refused unless the claim survived).
   */
  lost = false;
  /** Lease watchdog state; only turns on a store with a lease have one. */
  watch: LeaseWatch<I> | undefined = undefined;
  /** Why the signal was aborted; set even before anyone read `signal`. */
  abortReason: unknown = undefined;
  /** When `turnTimeout` elapses, in the guard's deadline clock (see `Deadlines`). */
  deadline = 0;
  /** Links of the guard's deadline list (see `Deadlines`). */
  newer: TurnState<I> | undefined = undefined;
  older: TurnState<I> | undefined = undefined;
  queued = false;
  /** The settle-window timer, while the turn waits for a burst or a group to complete. */
  timer: LongTimer | undefined = undefined;
  /**
   * Entries of this key with a waiting caller (an awaited submit, a lane) admitted behind this turn
   * while it ran: if the turn times out, they may be what it waits for (a cycle).
   */
  behind: GuardEntry<I>[] | undefined = undefined;
  /** What only some turns need (`turn-extra.ts`); made by `more()` the first time it is written. */
  extra: TurnExtra<I> | undefined = undefined;
  /** Resolves the concurrency slot (p-limit) once the turn settles. */
  release: (() => void) | undefined = undefined;
  /** The guard that runs this turn. */
  readonly host: TurnHost<I>;
  #controller: AbortController | undefined = undefined;
  #inputs: I[] | undefined = undefined;
  #listeners: Set<(pending: number) => void> | undefined = undefined;

  constructor(host: TurnHost<I>, key: string, claim: Claim, entries: GuardEntry<I>[]) {
    this.host = host;
    this.key = key;
    this.claim = claim;
    this.entries = entries;
  }

  /** What `JSON.stringify` writes for a turn (a logged context carries it): not the guard's links. */
  toJSON(): { key: string; fence: number } {
    return { key: this.key, fence: this.fence };
  }

  /** What `console.log` shows for a turn. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `Turn { key: ${JSON.stringify(this.key)}, fence: ${this.fence}, phase: "${this.phase}" }`;
  }

  get fence(): number {
    return this.claim.fence;
  }

  /** The turn's rare state, made now if it has none yet (see `turn-extra.ts`). */
  more(): TurnExtra<I> {
    this.extra ??= new TurnExtra<I>();
    return this.extra;
  }

  get inputs(): readonly I[] {
    if (this.#inputs === undefined) {
      const entries = this.entries;
      const first = entries[0];
      // The common turn, one input: an array of its exact size (a push would reserve 17 slots).
      if (entries.length === 1 && first !== undefined && !first.lane) this.#inputs = [first.input];
      else {
        const inputs: I[] = [];
        for (const entry of entries) if (!entry.lane) inputs.push(entry.input);
        this.#inputs = inputs;
      }
    }
    return this.#inputs;
  }

  get ids(): readonly (string | undefined)[] {
    const ids: (string | undefined)[] = [];
    for (const entry of this.entries) if (!entry.lane) ids.push(entry.id);
    return ids;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      // A turn passes its signal to every API call it makes, and some clients (grammY's among
      // them) never remove their abort listener: a long turn would trip Node's leak warning at
      // 11 listeners. The signal lives only as long as the turn, so its listeners are not a leak.
      setMaxListeners(0, this.#controller.signal);
      if (this.abortReason !== undefined) this.#controller.abort(this.abortReason);
    }
    return this.#controller.signal;
  }

  get pendingCount(): number {
    return this.released ? 0 : this.host.pendingCount(this.key);
  }

  get stale(): boolean {
    return this.released || this.lost || this.phase === "settled";
  }

  take(): Promise<I[]> {
    return this.host.take(this);
  }

  carry(value: unknown): void {
    this.host.carry(this, value);
  }

  get carried(): readonly Carried[] {
    const extra = this.extra;
    // Nothing handed on (the common turn): no rare state is made just to read that.
    if (extra?.carriedIn === undefined) return NOTHING_CARRIED;
    extra.carried ??= decodeCarried(extra.carriedIn);
    return extra.carried;
  }

  onPending(listener: (pending: number) => void): () => void {
    if (typeof listener !== "function") {
      throw new TypeError("turn.onPending(listener): listener must be a function.");
    }
    const listeners = (this.#listeners ??= new Set());
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  }

  onRevision(listener: (revision: Revision<I>) => void): () => void {
    if (typeof listener !== "function") {
      throw new TypeError("turn.onRevision(listener): listener must be a function.");
    }
    const extra = this.more();
    const listeners = (extra.revisionListeners ??= new Set());
    listeners.add(listener);
    const earlier = extra.revisions;
    if (earlier !== undefined && earlier.size > 0) {
      // Told after subscribing returns (the listener may use what it returns), each unless a
      // later revision of the same input reached the listener first.
      const missed = [...earlier.values()];
      queueMicrotask(() => {
        for (const revision of missed) {
          if (!listeners.has(listener) || earlier.get(revision.id) !== revision) continue;
          try {
            listener(revision);
          } catch (error) {
            this.host.listenerFailed(this, error);
          }
        }
      });
    }
    return () => {
      listeners.delete(listener);
    };
  }

  /** Tell `onRevision` listeners of an edit or deletion; a throwing listener goes to `onError`. */
  revise(revision: Revision<I>): void {
    const extra = this.more();
    if (revision.input === undefined) {
      // Deleting an input twice is deleting it once (a listener that withdraws what it hears of).
      extra.deleted ??= new Set();
      if (extra.deleted.has(revision.id)) return;
      extra.deleted.add(revision.id);
    }
    // The latest revision of each input, for listeners that subscribe later (see `onRevision`).
    (extra.revisions ??= new Map()).set(revision.id, revision);
    const listeners = extra.revisionListeners;
    if (listeners === undefined) return;
    if (extra.revising !== undefined) {
      // A listener revised while listeners are being told: no recursion, it is told next.
      extra.revising.push(revision);
      return;
    }
    const queue: Revision<I>[] = [revision];
    extra.revising = queue;
    try {
      for (let i = 0; i < queue.length; i++) {
        for (const listener of listeners) {
          try {
            listener(queue[i] as Revision<I>);
          } catch (error) {
            this.host.listenerFailed(this, error);
          }
        }
      }
    } finally {
      extra.revising = undefined;
    }
  }

  /** An entry's input changed or an entry left before the handler ran: `inputs` are read anew. */
  refresh(): void {
    this.#inputs = undefined;
  }

  /** Add entries moved in by `take()`; answers their inputs. */
  append(entries: readonly GuardEntry<I>[]): I[] {
    const moved: I[] = [];
    for (const entry of entries) {
      this.entries.push(entry);
      if (!entry.lane) moved.push(entry.input);
    }
    this.#inputs?.push(...moved);
    return moved;
  }

  /** Abort the signal once; later reasons are ignored. Answers whether this call aborted it. */
  abort(reason: unknown): boolean {
    if (this.abortReason !== undefined) return false;
    this.abortReason = reason;
    this.#controller?.abort(reason);
    return true;
  }

  /** Tell `onPending` listeners that input arrived; a throwing listener goes to `onError`. */
  notifyPending(pending: number): void {
    if (this.#listeners === undefined) return;
    for (const listener of this.#listeners) {
      try {
        listener(pending);
      } catch (error) {
        this.host.listenerFailed(this, error);
      }
    }
  }
}
