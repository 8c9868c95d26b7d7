// === Outcomes: what became of each input, by id
//
// Every input with an id has one record here from its admission on: `pending`, then `running`
// (with the fence of its turn), then one final state — `handled`, `failed` or `dropped` (with the
// reason). The record changes in place; `guard.outcome(id)` reads it and the `settled` event
// reports the final state once (see `endings.ts`, where every input ends).
//
// Records live as long as de-duplication ids do (the guard's `dedupe` window; 10 minutes when
// de-duplication is off), past their last change; one still pending or running lives on (an input
// may wait longer than a window). Past the ledger's cap the oldest go early: memory stays bounded
// (G6). The ledger is written for every input with an id, so it keeps no object per record: an
// index from id to a sequence number (`id-index.ts`, typed arrays too), and the records in typed
// arrays, a ring in the order they were made, where a record's slot is its sequence number masked —
// the garbage collector has nothing per record to trace or move but the id and key strings, and
// growing the ring moves no index entry.
//
// The memory store keeps its de-duplication ids here too (`seen`, `forget`): one index entry and one
// slot per id instead of one in the store and one in the guard. An id seen but never run (a stop's
// id, or an input refused before it was admitted) has a record with no state, which `get` does not
// answer. The store makes the ledger and the guard writes its outcomes into it (`LEDGER`).
//
// With a shared store that keeps outcomes (`Store.record`/`Store.outcome`, Redis), the records of
// this process are also written there, so that any replica can answer; this ledger then answers
// only what the store does not know yet.

import type { DropReason } from "./errors.js";
import { IdIndex, type IdSource } from "./id-index.js";

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

/** Records kept at most by a guard's own ledger; past it the oldest go first. */
const MAX_RECORDS = 200_000;
/** Live records `#trim` moves out of the way per call (see there). */
const MOVES_PER_TRIM = 4;
/** How long final records live when de-duplication is off. */
const DEFAULT_WINDOW = 10 * 60_000;
const INITIAL_SLOTS = 1024;
/** Sequence numbers wrap here: a small integer always, and a multiple of every ring size. */
const SEQ_MASK = 0x3fffffff;

/**
 * Where a store that keeps its de-duplication ids in a `Ledger` offers it, so that the guard
 * records outcomes in the same one (internal: the memory store).
 */
export const LEDGER: unique symbol = Symbol("session-guard ledger");

/** The window of a guard's outcome records: its `dedupe` window, or 10 minutes when off. */
export function outcomeWindow(dedupe: number): number {
  return dedupe > 0 && Number.isFinite(dedupe) ? dedupe : DEFAULT_WINDOW;
}

/** The final states: the record of such an input no longer changes. */
export function isFinal(state: OutcomeState): boolean {
  return state === "handled" || state === "failed" || state === "dropped";
}

// States and reasons as the small numbers the slots hold (0: no reason). `NONE`: an id seen for
// de-duplication only.
const STATES: readonly OutcomeState[] = ["pending", "running", "handled", "failed", "dropped"];
const STATE_CODES: Readonly<Record<OutcomeState, number>> = {
  pending: 0,
  running: 1,
  handled: 2,
  failed: 3,
  dropped: 4,
};
const FIRST_FINAL = 2;
const NONE = 5;
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

export class Ledger implements IdSource {
  readonly #cap: number;
  /** Id → the sequence number of its record. */
  readonly #index = new IdIndex(this);
  // The ring: the record with sequence number s sits at slot s & (capacity - 1); the oldest has
  // `#first`, and `#length` records follow it. A slot whose id is `undefined` was left behind (its
  // id began a new record) and only waits to go.
  #ids: (string | undefined)[] = new Array(INITIAL_SLOTS);
  #keys: (string | undefined)[] = new Array(INITIAL_SLOTS);
  /** The id's hash (`hashId`), for leaving the index when the record goes. */
  #hashes = new Int32Array(INITIAL_SLOTS);
  #states = new Uint8Array(INITIAL_SLOTS);
  #reasons = new Uint8Array(INITIAL_SLOTS);
  /** The fence, or NaN for none. */
  #fences = new Float64Array(INITIAL_SLOTS);
  /** Epoch ms of the record's last change. */
  #at = new Float64Array(INITIAL_SLOTS);
  /**
   * Epoch ms until which a final record is kept: its last change plus its window. A live record
   * (pending, running) is kept for ever; past this time it only moves to the newest end.
   */
  #keep = new Float64Array(INITIAL_SLOTS);
  /** Epoch ms until which the id is a duplicate (0: not, or forgotten). */
  #seen = new Float64Array(INITIAL_SLOTS);
  #first = 0;
  #length = 0;
  /** Ids marked seen (expired marks included until their record goes). */
  #marks = 0;

  /** `cap`: records kept at most; past it the oldest go early. */
  constructor(cap: number = MAX_RECORDS) {
    this.#cap = cap;
  }

  /** Records held (for tests and the memory benchmark). */
  get size(): number {
    return this.#index.size;
  }

  /** Ids marked seen for de-duplication (expired ones included until they are dropped). */
  get marks(): number {
    return this.#marks;
  }

  /**
   * Set the state of `id`'s record, creating it when it has none (or its last one is final and a
   * new input with the same id begins: `pending`, or `running` without a pending state before, or
   * `arriving`: an input dropped as it arrived, whose first state is its last; such a drop leaves
   * a live record alone). `window`: how long the record is kept once final.
   */
  note(
    id: string,
    key: string,
    state: OutcomeState,
    now: number,
    window: number,
    fence?: number,
    reason?: DropReason,
    arriving = false,
  ): void {
    const code = STATE_CODES[state];
    const keep = now + window;
    const hash = this.#index.hash(id);
    const seq = this.#index.find(id, hash);
    let seen = 0;
    if (seq >= 0) {
      const slot = seq & (this.#ids.length - 1);
      const old = this.#states[slot] as number;
      const final = old >= FIRST_FINAL && old !== NONE;
      if (final && code >= FIRST_FINAL && !arriving) return; // an input ends once
      // Dropped at the door of a closed guard, or expired on arrival, before de-duplication: a
      // redelivery of an input that still lives, whose record it must not replace.
      if (arriving && old < FIRST_FINAL) return;
      if (!final) {
        this.#keys[slot] = key;
        this.#states[slot] = code;
        this.#reasons[slot] = reasonCode(reason);
        if (fence !== undefined) this.#fences[slot] = fence;
        this.#at[slot] = now;
        this.#keep[slot] = keep;
        return;
      }
      // The id begins a new record (its de-duplication mark goes with it); the old one only waits
      // to go.
      seen = this.#seen[slot] as number;
      this.#ids[slot] = undefined;
      this.#index.remove(hash, seq);
      if (seen !== 0) this.#marks--;
    }
    this.#trim(now);
    const fenceValue = fence ?? Number.NaN;
    this.#append(id, hash, key, code, reasonCode(reason), fenceValue, now, keep, seen);
  }

  /** The id of the record with sequence number `seq` (for the index). Internal. */
  idAt(seq: number): string | undefined {
    return this.#ids[seq & (this.#ids.length - 1)];
  }

  /** The sequence number of `id`'s record, or -1. */
  #find(id: string): number {
    return this.#index.find(id, this.#index.hash(id));
  }

  /**
   * De-duplication: true if `id` was seen within its window, or its input is still pending or
   * running (a redelivery of a message that waits longer than the window is still the same
   * message); otherwise marks it seen for `window` ms from `now` and answers false.
   */
  seen(id: string, window: number, now: number): boolean {
    const hash = this.#index.hash(id);
    const seq = this.#index.find(id, hash);
    if (seq >= 0) {
      const slot = seq & (this.#ids.length - 1);
      const until = this.#seen[slot] as number;
      if (until > now || (until !== 0 && (this.#states[slot] as number) < FIRST_FINAL)) {
        return true;
      }
      if (until === 0) this.#marks++;
      this.#seen[slot] = now + window;
      return false;
    }
    this.#trim(now);
    this.#append(id, hash, undefined, NONE, 0, Number.NaN, now, 0, now + window);
    return false;
  }

  /** De-duplication: `id` is no longer a duplicate (its outcome record stays). */
  forget(id: string): void {
    const seq = this.#find(id);
    if (seq < 0) return;
    const slot = seq & (this.#ids.length - 1);
    if (this.#seen[slot] === 0) return;
    this.#seen[slot] = 0;
    this.#marks--;
  }

  /** The record of `id`, or `undefined` when there is none (or it has expired). */
  get(id: string): Outcome | undefined {
    const seq = this.#find(id);
    if (seq < 0) return undefined;
    const slot = seq & (this.#ids.length - 1);
    const code = this.#states[slot] as number;
    if (code === NONE) return undefined;
    if (code >= FIRST_FINAL && Date.now() > (this.#keep[slot] as number)) return undefined;
    const fence = this.#fences[slot] as number;
    return outcomeOf({
      key: this.#keys[slot] as string,
      state: STATES[code] as OutcomeState,
      reason: REASONS[this.#reasons[slot] as number],
      fence: Number.isNaN(fence) ? undefined : fence,
      at: this.#at[slot] as number,
    });
  }

  /**
   * Let the oldest records go: those left behind, those whose mark and record have both expired,
   * and past the cap the oldest whatever they are — but never the record of an input that is
   * still pending or running (its outcome is asked for, a redelivery of it must stay a duplicate).
   * Such a live record in the way moves to the newest end, mark and all; a few per call
   * (`MOVES_PER_TRIM`), so that live records (more inputs waiting than the cap) cost each new
   * record O(1). The ring then holds the cap, or at most 1.25 × the live records (the records
   * that ended between them wait their turn to go): memory follows the inputs in flight (G6).
   */
  #trim(now: number): void {
    let moves = MOVES_PER_TRIM;
    const mask = this.#ids.length - 1;
    while (this.#length > 0) {
      const slot = this.#first & mask;
      const id = this.#ids[slot];
      if (id !== undefined) {
        if (this.#length < this.#cap) {
          if ((this.#seen[slot] as number) > now) return;
          if ((this.#keep[slot] as number) > now) return;
        }
        const state = this.#states[slot] as number;
        if (state < FIRST_FINAL) {
          if (moves-- <= 0) return;
          const seen = this.#seen[slot] as number;
          if (seen !== 0) this.#marks--;
          const key = this.#keys[slot];
          const reason = this.#reasons[slot] as number;
          const fence = this.#fences[slot] as number;
          const at = this.#at[slot] as number;
          // Kept (as far as `#trim` asks) as long after now as it was after its last change.
          const keep = now + (this.#keep[slot] as number) - at;
          const hash = this.#hashes[slot] as number;
          this.#index.remove(hash, this.#first);
          this.#pop(slot);
          this.#append(id, hash, key, state, reason, fence, at, keep, seen);
          continue;
        }
      }
      if (id !== undefined) {
        this.#index.remove(this.#hashes[slot] as number, this.#first);
        if (this.#seen[slot] !== 0) this.#marks--;
      }
      this.#pop(slot);
    }
  }

  /** Remove the oldest record (its typed fields stay until the slot is reused). */
  #pop(slot: number): void {
    this.#ids[slot] = undefined;
    this.#keys[slot] = undefined;
    this.#first = (this.#first + 1) & SEQ_MASK;
    this.#length--;
  }

  /** Add a record at the newest end (`hash`: its id's `hashId`). */
  #append(
    id: string,
    hash: number,
    key: string | undefined,
    state: number,
    reason: number,
    fence: number,
    at: number,
    keep: number,
    seen: number,
  ): void {
    if (this.#length === this.#ids.length) this.#grow();
    const seq = (this.#first + this.#length) & SEQ_MASK;
    const slot = seq & (this.#ids.length - 1);
    this.#ids[slot] = id;
    this.#hashes[slot] = hash;
    this.#keys[slot] = key;
    this.#states[slot] = state;
    this.#reasons[slot] = reason;
    this.#fences[slot] = fence;
    this.#at[slot] = at;
    this.#keep[slot] = keep;
    this.#seen[slot] = seen;
    if (seen !== 0) this.#marks++;
    this.#length++;
    this.#index.add(hash, seq);
  }

  /**
   * Double the ring (it is full); every record keeps its sequence number, so the index is left as
   * it is. Record s sits at slot s & (capacity - 1), so the doubled ring is the old one twice over:
   * slot i of the new ring holds what slot i & (old capacity - 1) held, which puts every record
   * where it belongs; its copy in the other half is cleared. All copies are native: growing is
   * rare, so a loop here would run unoptimized over every record.
   */
  #grow(): void {
    const from = this.#ids.length;
    const to = from * 2;
    // The full ring's records have sequence numbers first … first + from - 1: their copies are
    // the `from` slots that follow them (around the end of the new ring).
    const copies = (this.#first + from) & (to - 1);
    const ids = this.#ids.concat(this.#ids);
    const keys = this.#keys.concat(this.#keys);
    clearRun(ids, copies, from);
    clearRun(keys, copies, from);
    this.#ids = ids;
    this.#keys = keys;
    this.#hashes = doubled(this.#hashes, new Int32Array(to));
    this.#states = doubled(this.#states, new Uint8Array(to));
    this.#reasons = doubled(this.#reasons, new Uint8Array(to));
    this.#fences = doubled(this.#fences, new Float64Array(to));
    this.#at = doubled(this.#at, new Float64Array(to));
    this.#keep = doubled(this.#keep, new Float64Array(to));
    this.#seen = doubled(this.#seen, new Float64Array(to));
  }
}

/** `count` slots of a ring from `start` (wrapping around its end) hold nothing. */
function clearRun(ring: unknown[], start: number, count: number): void {
  const end = Math.min(ring.length, start + count);
  ring.fill(undefined, start, end);
  ring.fill(undefined, 0, count - (end - start));
}

/** `into` (twice `column`'s length) holding `column` twice over. */
function doubled<T extends Uint8Array | Int32Array | Float64Array>(column: T, into: T): T {
  into.set(column);
  into.set(column, column.length);
  return into;
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
