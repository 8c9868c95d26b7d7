// === Revisions: pending input follows edits and deletions
//
// A user who fixes a typo or deletes a message while the agent is busy changes what the next turn
// sees. Pending input is addressable by the id it was submitted with; an edit swaps its content in
// place (same position, same id), a deletion removes it and ends it as a drop (`withdrawn`). Where
// the input stands decides the answer, looked up in this order:
//
//   1. in a turn of this process: a turn still waiting out its settle window or for a slot has not
//      shown its inputs to the handler yet, so they change; a running turn's do not — its
//      `onRevision` listeners are told ("in-turn");
//   2. pending in the store (any replica's input, with a shared store): "replaced" / "withdrawn";
//   3. in a turn at another replica (a shared store that can tell): "in-turn", that replica's turn
//      is told through a hint;
//   4. otherwise its outcome record says whether it ended ("ended") or was never seen ("unknown").

import { checkKey, checkReplaceOptions, checkRequiredId } from "./check.js";
import type { Engine } from "./engine.js";
import type { GuardEntry } from "./entry.js";
import { StoreError } from "./errors.js";
import { isFinal, type Ledger, type Outcome } from "./outcomes.js";
import { settleWith } from "./settle-with.js";
import type { ReplaceOptions, RevisionResult } from "./types.js";

type Entry<I> = GuardEntry<I>;

/** Read anew after `from` ran: it may have ended the input (a withdrawal, a stop of its key). */
function hasEnded(entry: { outcome?: string | undefined }): boolean {
  return entry.outcome === "ended";
}

function isThenable(value: unknown): boolean {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/** Call the store and take its answer, synchronous or not; a synchronous throw is an error too. */
function ask<T>(
  call: () => T | Promise<T>,
  onValue: (value: T) => void,
  onError: (error: unknown) => void,
): void {
  let value: T | Promise<T>;
  try {
    value = call();
  } catch (error) {
    onError(error);
    return;
  }
  settleWith(value, onValue, onError);
}

const RESULTS: { [R in RevisionResult]: Promise<R> } = {
  replaced: Promise.resolve("replaced"),
  withdrawn: Promise.resolve("withdrawn"),
  "in-turn": Promise.resolve("in-turn"),
  ended: Promise.resolve("ended"),
  unknown: Promise.resolve("unknown"),
};

export class Revisions<I> {
  readonly #engine: Engine<I>;
  readonly #ledger: Ledger;

  constructor(engine: Engine<I>, ledger: Ledger) {
    this.#engine = engine;
    this.#ledger = ledger;
  }

  replace(key: string, id: string, input: I, options?: ReplaceOptions<I>): Promise<RevisionResult> {
    const engine = this.#engine;
    const problem =
      checkKey("replace", key) ?? checkRequiredId("replace", id) ?? checkReplaceOptions(options);
    if (problem !== undefined) return Promise.reject(problem);
    const from = options?.from;
    let data: string | undefined;
    if (engine.shared) {
      try {
        // biome-ignore lint/style/noNonNullAssertion: a shared store always has replicas
        data = engine.replicas!.encode(input);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const here = this.#inTurnHere(key, id, input, data, from);
    if (here !== undefined) return RESULTS[here];
    const store = engine.store;
    if (store.replace === undefined) return this.#elsewhere(key, id, data, input, from);
    const apply = (entry: Entry<I>) => this.#apply(key, entry, input, data, from);
    return new Promise((resolve, reject) => {
      ask(
        () => (store.replace as NonNullable<typeof store.replace>)(key, id, data, apply),
        (entry: Entry<I> | undefined) => {
          // `from` may have ended the input itself (a withdrawal or a stop of its key).
          if (entry !== undefined) resolve(hasEnded(entry) ? "ended" : "replaced");
          else this.#elsewhere(key, id, data, input, from).then(resolve, reject);
        },
        (error: unknown) => reject(new StoreError("replace", key, error)),
      );
    });
  }

  withdraw(key: string, id: string): Promise<RevisionResult> {
    const engine = this.#engine;
    const problem = checkKey("withdraw", key) ?? checkRequiredId("withdraw", id);
    if (problem !== undefined) return Promise.reject(problem);
    const here = this.#inTurnHere(key, id, undefined, undefined);
    if (here !== undefined) return RESULTS[here];
    return new Promise((resolve, reject) => {
      ask(
        () => engine.store.withdraw(key, id),
        (entry: Entry<I> | undefined) => {
          if (entry === undefined || entry.lane) {
            this.#elsewhere(key, id, undefined, undefined).then(resolve, reject);
            return;
          }
          engine.ends.dropped(key, entry, "withdrawn");
          resolve("withdrawn");
        },
        (error: unknown) => reject(new StoreError("withdraw", key, error)),
      );
    });
  }

  outcome(id: string): Promise<Outcome | undefined> {
    const problem = checkRequiredId("outcome", id);
    if (problem !== undefined) return Promise.reject(problem);
    const local = this.#ledger.get(id);
    const store = this.#engine.store;
    if (store.outcome === undefined) return Promise.resolve(local);
    return new Promise((resolve, reject) => {
      ask(
        () => (store.outcome as NonNullable<typeof store.outcome>)(id),
        // The store answers for every replica, but a write of this one may still be on its way:
        // an end known here outranks a state the store has not seen end yet.
        (stored: Outcome | undefined) =>
          resolve(
            stored === undefined ||
              (local !== undefined && isFinal(local.state) && !isFinal(stored.state))
              ? local
              : stored,
          ),
        (error: unknown) => reject(new StoreError("outcome", undefined, error)),
      );
    });
  }

  /**
   * The input belongs to a turn of this process: change it if the handler has not seen it yet,
   * else tell the turn. `input` `undefined`: a deletion. Answers `undefined` when no turn here has it.
   */
  #inTurnHere(
    key: string,
    id: string,
    input: I | undefined,
    data: string | undefined,
    from?: (pending: I) => I,
  ): RevisionResult | undefined {
    const engine = this.#engine;
    const turn = engine.keys.get(key);
    if (turn === undefined || turn.released) return undefined;
    const entries = turn.entries;
    let index = -1;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as Entry<I>;
      if (entry.id === id && !entry.lane) {
        index = i;
        break;
      }
    }
    if (index < 0) return undefined;
    const entry = entries[index] as Entry<I>;
    if (entry.outcome === "ended" || turn.phase === "settled") return "ended";
    if (turn.phase === "claimed") {
      // Waiting out its settle window or for a slot: the handler has not seen its inputs.
      turn.refresh();
      if (input === undefined) {
        entries.splice(index, 1);
        engine.ends.dropped(key, entry, "withdrawn");
        return "withdrawn";
      }
      this.#apply(key, entry, input, data, from);
      return hasEnded(entry) ? "ended" : "replaced";
    }
    turn.revise({ id, input });
    return "in-turn";
  }

  /**
   * Swap a pending entry's content: `input`, or what `from` derives from the entry's input (a
   * `from` that throws leaves `input` there and goes to `onError`).
   */
  #apply(
    key: string,
    entry: Entry<I>,
    input: I,
    data: string | undefined,
    from: ((pending: I) => I) | undefined,
  ): void {
    let next = input;
    if (from !== undefined) {
      try {
        const derived = from(entry.input);
        if (derived === undefined || isThenable(derived)) {
          const got =
            derived === undefined
              ? "undefined (a block body without return?)"
              : "a promise (an async function?)";
          throw new TypeError(
            `replace: "from" must return the new input itself, got ${got}; the input ${JSON.stringify(entry.id)} of key ${JSON.stringify(key)} took the input given instead.`,
          );
        }
        next = derived;
      } catch (error) {
        this.#engine.report.error(error, key, undefined, [entry.input]);
      }
    }
    entry.input = next;
    if (data !== undefined) entry.data = data;
  }

  /** Neither here nor pending: in a turn at another replica, ended, or never seen. */
  #elsewhere(
    key: string,
    id: string,
    data: string | undefined,
    input: I | undefined,
    from?: (pending: I) => I,
  ): Promise<RevisionResult> {
    const engine = this.#engine;
    const store = engine.store;
    const fromRecord = (outcome: Outcome | undefined): RevisionResult => {
      if (outcome === undefined || outcome.key !== key) return "unknown";
      return isFinal(outcome.state) ? "ended" : "in-turn";
    };
    const recorded = () => this.outcome(id).then(fromRecord);
    if (!engine.shared || store.reviseRunning === undefined) {
      // A turn of this process that took the input in while the store was asked (steer).
      const here = this.#inTurnHere(key, id, input, data, from);
      return here === undefined ? recorded() : RESULTS[here];
    }
    return new Promise((resolve, reject) => {
      ask(
        () => (store.reviseRunning as NonNullable<typeof store.reviseRunning>)(key, id, data),
        (running: boolean) => {
          if (running) resolve("in-turn");
          else recorded().then(resolve, reject);
        },
        (error: unknown) => reject(new StoreError("reviseRunning", key, error)),
      );
    });
  }
}
