// === Outcomes: what became of each input, by id
//
// Every input with an id has one record here from its admission on: `pending`, then `running`
// (with the fence of its turn), then one final state — `handled`, `failed` or `dropped` (with the
// reason). The record changes in place; `guard.outcome(id)` reads it and the `settled` event
// reports the final state once (see `endings.ts`, where every input ends).
//
// Records live as long as de-duplication ids do (the guard's `dedupe` window; 10 minutes when
// de-duplication is off), past their last change; one still pending or running lives on (an input
// may wait longer than a window). Past `MAX_RECORDS` the oldest go early: memory stays bounded
// (G6). The ledger is written for every input with an id, so it keeps no object per record: a map
// from id to a slot, and the slots in typed arrays, a ring in the order the records were made
// (like the log of `SeenIds`) — the garbage collector then has nothing per record to trace or move.
//
// With a shared store that keeps outcomes (`Store.record`/`Store.outcome`, Redis), the records of
// this process are also written there, so that any replica can answer; this ledger then answers
// only what the store does not know yet.

import type { DropReason } from "./errors.js";

/** Where an input is in its life, or how it ended. */
export type OutcomeState = "pending" | "running" | "handled" | "failed" | "dropped";

/** What became of an input (`guard.outcome(id)`, the `settled` event). */
export interface Outcome {
  /** The key the input was admitted for. */
  readonly key: string;
  /** `pending` (waiting), `running` (its turn runs), or how it ended. */
  readonly state: OutcomeState;
  /** With `dropped`: why. */
  readonly reason?: DropReason;
  /** With `running`, `handled` and `failed`: the fence of the turn that ran it. */
  readonly fence?: number;
  /** Epoch ms at which the input entered this state. */
  readonly at: number;
}

/** Records kept at most; past it the oldest go first. */
const MAX_RECORDS = 200_000;
/** How long final records live when de-duplication is off. */
const DEFAULT_WINDOW = 10 * 60_000;
const INITIAL_SLOTS = 1024;

/** The final states: the record of such an input no longer changes. */
export function isFinal(state: OutcomeState): boolean {
  return state === "handled" || state === "failed" || state === "dropped";
}

// States and reasons as the small numbers the slots hold (0: no reason).
const STATES: readonly OutcomeState[] = ["pending", "running", "handled", "failed", "dropped"];
const STATE_CODES: Readonly<Record<OutcomeState, number>> = {
  pending: 0,
  running: 1,
  handled: 2,
  failed: 3,
  dropped: 4,
};
const FIRST_FINAL = 2;
const REASONS: readonly (DropReason | undefined)[] = [
  undefined,
  "overflow",
  "stopped",
  "duplicate",
  "busy",
  "superseded",
  "shutdown",
  "expired",
  "withdrawn",
];
const reasonCode = (reason: DropReason | undefined): number =>
  reason === undefined ? 0 : Math.max(0, REASONS.indexOf(reason));

export class Ledger {
  readonly #window: number;
  /** Id → its record's slot. */
  readonly #slots = new Map<string, number>();
  // The ring of slots, oldest record first: slot (head + i) & (capacity - 1) for i < length. A slot
  // whose id is `undefined` was left behind (its id began a new record) and only waits to go.
  #ids: (string | undefined)[] = new Array(INITIAL_SLOTS);
  #keys: (string | undefined)[] = new Array(INITIAL_SLOTS);
  #states = new Uint8Array(INITIAL_SLOTS);
  #reasons = new Uint8Array(INITIAL_SLOTS);
  /** The fence, or NaN for none. */
  #fences = new Float64Array(INITIAL_SLOTS);
  /** Epoch ms of the record's last change. */
  #at = new Float64Array(INITIAL_SLOTS);
  #head = 0;
  #length = 0;

  /** `window`: the de-duplication window in ms (0 when off). */
  constructor(window: number) {
    this.#window = window > 0 && Number.isFinite(window) ? window : DEFAULT_WINDOW;
  }

  /** How long final records live, in ms. */
  get window(): number {
    return this.#window;
  }

  /** Records held (for tests and the memory benchmark). */
  get size(): number {
    return this.#slots.size;
  }

  /**
   * Set the state of `id`'s record, creating it when it has none (or its last one is final and a
   * new input with the same id begins: `pending`, or `running` without a pending state before).
   */
  note(
    id: string,
    key: string,
    state: OutcomeState,
    now: number,
    fence?: number,
    reason?: DropReason,
  ): void {
    const code = STATE_CODES[state];
    const slot = this.#slots.get(id);
    if (slot !== undefined) {
      const final = (this.#states[slot] as number) >= FIRST_FINAL;
      if (final && code >= FIRST_FINAL) return; // an input ends once
      if (!final) {
        this.#keys[slot] = key;
        this.#states[slot] = code;
        this.#reasons[slot] = reasonCode(reason);
        if (fence !== undefined) this.#fences[slot] = fence;
        this.#at[slot] = now;
        return;
      }
      this.#ids[slot] = undefined; // the id begins a new record: the old one only waits to go
    }
    this.#trim(now);
    this.#slots.set(id, this.#append(id, key, code, reasonCode(reason), fence ?? Number.NaN, now));
  }

  /** The record of `id`, or `undefined` when there is none (or it has expired). */
  get(id: string): Outcome | undefined {
    const slot = this.#slots.get(id);
    if (slot === undefined) return undefined;
    const code = this.#states[slot] as number;
    const at = this.#at[slot] as number;
    if (code >= FIRST_FINAL && Date.now() - at > this.#window) return undefined;
    const fence = this.#fences[slot] as number;
    return outcomeOf({
      key: this.#keys[slot] as string,
      state: STATES[code] as OutcomeState,
      reason: REASONS[this.#reasons[slot] as number],
      fence: Number.isNaN(fence) ? undefined : fence,
      at,
    });
  }

  /** Forget every record (the guard closed and its store is gone with it). */
  clear(): void {
    this.#slots.clear();
    this.#ids.fill(undefined);
    this.#keys.fill(undefined);
    this.#head = 0;
    this.#length = 0;
  }

  /**
   * Let the oldest records go: those left behind, final ones past their window, and past
   * `MAX_RECORDS` the oldest whatever they are. A live record past its window moves to the newest
   * end (at most once per record per call), so it outlives the records behind it.
   */
  #trim(now: number): void {
    let moves = this.#length;
    while (this.#length > 0) {
      const slot = this.#head;
      const id = this.#ids[slot];
      const over = this.#length >= MAX_RECORDS;
      if (id !== undefined && !over) {
        if (now - (this.#at[slot] as number) <= this.#window) return;
        const state = this.#states[slot] as number;
        if (state < FIRST_FINAL) {
          if (moves-- <= 0) return;
          const key = this.#keys[slot] as string;
          const reason = this.#reasons[slot] as number;
          const fence = this.#fences[slot] as number;
          const at = this.#at[slot] as number;
          this.#pop();
          this.#slots.set(id, this.#append(id, key, state, reason, fence, at));
          continue;
        }
      }
      if (id !== undefined) this.#slots.delete(id);
      this.#pop();
    }
  }

  /** Remove the oldest slot of the ring (its fields stay until the slot is reused). */
  #pop(): void {
    this.#ids[this.#head] = undefined;
    this.#keys[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#ids.length - 1);
    this.#length--;
  }

  /** Add a record at the newest end; answers its slot. */
  #append(
    id: string,
    key: string,
    state: number,
    reason: number,
    fence: number,
    at: number,
  ): number {
    if (this.#length === this.#ids.length) this.#grow();
    const slot = (this.#head + this.#length) & (this.#ids.length - 1);
    this.#ids[slot] = id;
    this.#keys[slot] = key;
    this.#states[slot] = state;
    this.#reasons[slot] = reason;
    this.#fences[slot] = fence;
    this.#at[slot] = at;
    this.#length++;
    return slot;
  }

  /** Double the ring, oldest record first at slot 0, and point every id at its new slot. */
  #grow(): void {
    const capacity = this.#ids.length * 2;
    const ids: (string | undefined)[] = new Array(capacity);
    const keys: (string | undefined)[] = new Array(capacity);
    const states = new Uint8Array(capacity);
    const reasons = new Uint8Array(capacity);
    const fences = new Float64Array(capacity);
    const at = new Float64Array(capacity);
    const mask = this.#ids.length - 1;
    for (let i = 0; i < this.#length; i++) {
      const from = (this.#head + i) & mask;
      const id = this.#ids[from];
      ids[i] = id;
      keys[i] = this.#keys[from];
      states[i] = this.#states[from] as number;
      reasons[i] = this.#reasons[from] as number;
      fences[i] = this.#fences[from] as number;
      at[i] = this.#at[from] as number;
      if (id !== undefined) this.#slots.set(id, i);
    }
    this.#ids = ids;
    this.#keys = keys;
    this.#states = states;
    this.#reasons = reasons;
    this.#fences = fences;
    this.#at = at;
    this.#head = 0;
  }
}

/** A record as the immutable answer users get. */
export function outcomeOf(record: {
  key: string;
  state: OutcomeState;
  reason?: DropReason | undefined;
  fence?: number | undefined;
  at: number;
}): Outcome {
  const outcome: { -readonly [K in keyof Outcome]: Outcome[K] } = {
    key: record.key,
    state: record.state,
    at: record.at,
  };
  if (record.reason !== undefined) outcome.reason = record.reason;
  if (record.fence !== undefined) outcome.fence = record.fence;
  return outcome;
}
