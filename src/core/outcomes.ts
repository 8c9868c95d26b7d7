// === Outcomes: what became of each input, by id
//
// Every input with an id has one record here from its admission on: `pending`, then `running`
// (with the fence of its turn), then one final state — `handled`, `failed` or `dropped` (with the
// reason). The record changes in place; `guard.outcome(id)` reads it and the `settled` event
// reports the final state once (see `endings.ts`, where every input ends).
//
// Records live as long as de-duplication ids do (the guard's `dedupe` window; 10 minutes when
// de-duplication is off), in two generations of maps like `SeenIds`: the current one takes new
// records, and once it is a window old it becomes the previous one and the old previous one is
// dropped whole — except the records still pending or running, which move on (an input may wait
// longer than a window). Past `MAX_RECORDS` the oldest generation goes early: memory stays bounded
// (G6).
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

/** A record as kept here: an outcome that changes in place. */
interface Record {
  key: string;
  state: OutcomeState;
  reason: DropReason | undefined;
  fence: number | undefined;
  at: number;
}

/** Records kept at most (both generations); the oldest generation goes first past it. */
const MAX_RECORDS = 200_000;
/** How long final records live when de-duplication is off. */
const DEFAULT_WINDOW = 10 * 60_000;

/** The final states: the record of such an input no longer changes. */
export function isFinal(state: OutcomeState): boolean {
  return state === "handled" || state === "failed" || state === "dropped";
}

export class Ledger {
  readonly #window: number;
  #current = new Map<string, Record>();
  #previous = new Map<string, Record>();
  #rotateAt = 0;

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
    return this.#current.size + this.#previous.size;
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
    let record = this.#current.get(id);
    if (record === undefined) {
      record = this.#previous.get(id);
      if (record !== undefined) {
        // A live record of the previous generation moves on: it must outlive the rotation.
        this.#previous.delete(id);
        this.#current.set(id, record);
      }
    }
    if (record === undefined || (isFinal(record.state) && !isFinal(state))) {
      if (now >= this.#rotateAt) this.#rotate(now);
      record = { key, state, reason, fence, at: now };
      this.#current.set(id, record);
      if (this.#current.size + this.#previous.size > MAX_RECORDS) this.#rotate(now);
      return;
    }
    if (isFinal(record.state)) return; // an input ends once
    record.key = key;
    record.state = state;
    record.reason = reason;
    if (fence !== undefined) record.fence = fence;
    record.at = now;
  }

  /** The record of `id`, or `undefined` when there is none (or it has expired). */
  get(id: string): Outcome | undefined {
    const record = this.#current.get(id) ?? this.#previous.get(id);
    if (record === undefined) return undefined;
    if (isFinal(record.state) && Date.now() - record.at > this.#window) return undefined;
    return outcomeOf(record);
  }

  /** Forget every record (the guard closed and its store is gone with it). */
  clear(): void {
    this.#current.clear();
    this.#previous.clear();
  }

  /** The current generation becomes the previous one; the old previous one goes, but its live records. */
  #rotate(now: number): void {
    const survivors = new Map<string, Record>();
    for (const [id, record] of this.#previous)
      if (!isFinal(record.state)) survivors.set(id, record);
    this.#previous = this.#current;
    this.#current = survivors;
    this.#rotateAt = now + this.#window;
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
