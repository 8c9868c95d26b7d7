// === Carried work: an interrupted turn hands on what it already did
//
// Every peer's interrupt throws away what the aborted run did — the half-written answer, the
// finished tool calls. Here a turn records work for its key's next turn (`turn.carry(value)`; the
// last value wins) and the next turn reads `turn.carried`: the values of the turns cut short since
// the last turn that ended otherwise, oldest first. A turn hands on when it ends aborted for
// `superseded`, `timeout`, `lease-lost` or `shutdown` (a replica handing over on close); any other
// end — it returned, it failed on its own, it was `stopped` — discards everything carried so far.
// Carried work waits for the key's next turn while the key is held: a key released with nothing
// pending drops it (G6: idle keys cost nothing).
//
// Values are plain JSON data, kept as text: what the next turn reads is a snapshot of the value at
// the call, with any store. A store shared by processes keeps the text with the key (`Store.carry`)
// so that the holder that takes over after a crash gets it too; otherwise the guard passes it from
// turn to turn itself.

import { Buffer } from "node:buffer";
import type { CarriedRecord, CarryOn, CarryReason } from "../stores/store.js";
import type { Engine } from "./engine.js";
import { CarryTooLargeError, isA, StoreError, TurnAbortedError } from "./errors.js";
import { notPlainData } from "./plain-data.js";
import type { TurnState } from "./turn.js";

/** Work a turn cut short handed on (`turn.carried`). */
export interface Carried {
  /** What the turn passed to `turn.carry`, as plain JSON data. */
  readonly value: unknown;
  /** The fence of the turn that carried it. */
  readonly fence: number;
  /** Why that turn was cut short. */
  readonly reason: CarryReason;
}

const CARRIED: ReadonlySet<string> = new Set(["superseded", "timeout", "lease-lost", "shutdown"]);

/** The reason a turn aborted for hands its carried work on, or `undefined`: it is discarded. */
export function carryReason(abortReason: unknown): CarryReason | undefined {
  if (abortReason === undefined || !isA(abortReason, TurnAbortedError)) return undefined;
  return CARRIED.has(abortReason.code) ? (abortReason.code as CarryReason) : undefined;
}

/** Bytes of carried records. */
function bytesOf(records: readonly CarriedRecord[] | undefined): number {
  let bytes = 0;
  if (records !== undefined) for (const record of records) bytes += Buffer.byteLength(record.data);
  return bytes;
}

export class Carrier<I> {
  readonly #engine: Engine<I>;
  readonly #limit: number;
  /** The store keeps carried work (a shared store): the guard writes each carry there. */
  readonly inStore: boolean;

  constructor(engine: Engine<I>, limit: number) {
    this.#engine = engine;
    this.#limit = limit;
    this.inStore = typeof engine.store.carry === "function";
  }

  /** `turn.carry(value)`: check it, keep it as the turn's latest, and write it to a shared store. */
  carry(turn: TurnState<I>, value: unknown): void {
    if (turn.stale) return;
    let data: string | undefined;
    if (value !== undefined) {
      let problem: string | undefined;
      try {
        problem = notPlainData(value, "the carried value");
        if (problem === undefined) data = JSON.stringify(value);
      } catch (cause) {
        // A getter that throws, a revoked proxy: the value cannot be read, so it cannot travel.
        throw new TypeError("turn.carry(value): the carried value cannot be read as plain data.", {
          cause,
        });
      }
      if (problem !== undefined || data === undefined) {
        throw new TypeError(
          `turn.carry(value): ${problem ?? "the carried value"}, not plain JSON data. Carry strings, numbers, booleans, null, arrays and plain objects.`,
        );
      }
      const bytes = bytesOf(turn.extra?.carriedIn) + Buffer.byteLength(data);
      if (bytes > this.#limit) {
        throw new CarryTooLargeError(turn.key, turn.fence, bytes, this.#limit);
      }
    }
    turn.more().carryData = data;
    if (this.inStore) this.#write(turn);
  }

  /** What `finish` or `abandon` hands on for the turn, or `undefined`: its carried work goes. */
  on(turn: TurnState<I>): CarryOn | undefined {
    if (turn.abortReason === undefined) return undefined;
    const reason = carryReason(turn.abortReason);
    return reason === undefined ? undefined : { reason, data: turn.extra?.carryData };
  }

  /** With a store that does not keep carried work: what the key's next turn gets from `turn`. */
  passOn(turn: TurnState<I>): readonly CarriedRecord[] | undefined {
    const on = this.on(turn);
    if (on === undefined) return undefined;
    const before = turn.extra?.carriedIn ?? [];
    if (on.data === undefined) return before.length === 0 ? undefined : before;
    return [...before, { data: on.data, fence: turn.fence, reason: on.reason }];
  }

  /**
   * Write the turn's latest carry to the store: one write at a time per turn, then the latest value
   * if it changed meanwhile (a turn may carry at every streamed token).
   */
  #write(turn: TurnState<I>): void {
    const extra = turn.more();
    if (extra.carryWriting) {
      extra.carryDirty = true;
      return;
    }
    const engine = this.#engine;
    const store = engine.store;
    const data = extra.carryData;
    extra.carryWriting = true;
    extra.carryDirty = false;
    const done = () => {
      extra.carryWriting = false;
      if (extra.carryDirty && !turn.stale) this.#write(turn);
    };
    const failed = (error: unknown) => {
      engine.report.incident("carry", new StoreError("carry", turn.key, error), turn.key);
      done();
    };
    let answer: boolean | Promise<boolean>;
    try {
      answer = (store.carry as NonNullable<typeof store.carry>)(turn.key, turn.claim, data);
    } catch (error) {
      failed(error);
      return;
    }
    if (answer instanceof Promise) answer.then(done, failed);
    else done();
  }
}

/** The values of carried records, decoded. */
export function decodeCarried(records: readonly CarriedRecord[] | undefined): readonly Carried[] {
  if (records === undefined || records.length === 0) return [];
  return records.map(({ data, fence, reason }) => ({ value: JSON.parse(data), fence, reason }));
}
