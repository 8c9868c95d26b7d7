// === Replicas: what a guard does for a store shared with other processes
//
// Inputs travel between replicas, so they are serialized at admission (`encode`) and rebuilt on
// the replica that runs them (`revive`). The store acts on its own through the host this builds:
// it hands over keys it claimed (a holder died or handed them over), relays hints (input arrived,
// stop, key freed), and tells which entries admitted here another replica took or dropped. On
// close, keys are handed over rather than drained, and the store's background work stops once
// every hand-over has reached it.

import type { CarriedRecord, Claim, StoreDrop, StoreEntry, StoreHost } from "../stores/store.js";
import type { Engine } from "./engine.js";
import { type GuardEntry, newEntry } from "./entry.js";
import { MODES } from "./modes.js";
import { tookOver } from "./observe.js";
import type { Codec } from "./options.js";
import { notPlainData } from "./plain-data.js";
import { TurnState } from "./turn.js";

type Entry<I> = GuardEntry<I>;

/** A namespace no key is under: keys are well-formed text, this is a lone surrogate. */
const NOWHERE = "\uD800";

/** The codec of a shared store when none is given: plain JSON data, anything else refused. */
const JSON_CODEC: Codec<unknown> = {
  encode(input) {
    const problem = notPlainData(input, "the input");
    if (problem !== undefined) throw new TypeError(`${problem}, not plain JSON data`);
    return input;
  },
  decode: (data) => data,
};

export class Replicas<I> {
  readonly #engine: Engine<I>;
  readonly #codec: Codec<I>;
  /** Hand-overs (`abandon`) still on their way to the store. */
  readonly #handOvers = new Set<Promise<void>>();
  /** Stops the store's background work (`Store.attach`). */
  readonly #detach: (() => void) | undefined;
  #detached = false;
  /** The guard's namespace function threw, and that was reported. */
  #namespaceFailed = false;

  constructor(engine: Engine<I>, codec: Codec<I> | undefined) {
    this.#engine = engine;
    this.#codec = (codec ?? JSON_CODEC) as Codec<I>;
    const detach: unknown = engine.store.attach?.(this.#host());
    // A store's answer is the function that stops its background work; anything else stops nothing.
    this.#detach = typeof detach === "function" ? (detach as () => void) : undefined;
  }

  /** The input as JSON text for the store; a TypeError that says how to fix it otherwise. */
  encode(input: I): string {
    let text: string | undefined;
    let cause: unknown;
    try {
      text = JSON.stringify(this.#codec.encode(input));
    } catch (error) {
      cause = error;
    }
    if (typeof text !== "string") {
      const why = cause instanceof Error ? cause.message : "it encodes to nothing";
      throw new TypeError(
        `submit: the input cannot be serialized for a shared store (${why}). Inputs travel between replicas: pass a codec ({ encode, decode }) to createGuard, or use an adapter that serializes its inputs.`,
        { cause },
      );
    }
    return text;
  }

  /** A hand-over starts; call the answer once it has reached the store (or failed). */
  handingOver(): () => void {
    let done!: () => void;
    const handed = new Promise<void>((resolve) => {
      done = resolve;
    });
    this.#handOvers.add(handed);
    handed.then(() => this.#handOvers.delete(handed));
    return done;
  }

  /** Resolves once every hand-over in flight has reached the store. */
  handedOver(): Promise<void> {
    if (this.#handOvers.size === 0) return Promise.resolve();
    return Promise.all(this.#handOvers).then(() => this.handedOver());
  }

  /** The guard holds no key any more while closing: stop the store's background work. */
  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    const detach = this.#detach;
    if (detach === undefined) return;
    this.handedOver().then(() => {
      try {
        detach();
      } catch (error) {
        this.#engine.report.incident("detach", error);
      }
    });
  }

  /** A claimed turn that never ran, on a closing guard: another replica runs its batch. */
  handBack(turn: TurnState<I>): void {
    for (const entry of turn.entries) this.#engine.ends.departed(turn.key, entry);
    this.#engine.retire(turn, "requeue");
  }

  #host(): StoreHost<Entry<I>> {
    const engine = this.#engine;
    const replicas = this;
    return {
      get closed() {
        return engine.controls.closing !== undefined;
      },
      get namespace() {
        const namespace = engine.options.namespace;
        if (typeof namespace !== "function") return namespace;
        // Not known yet: a prefix no key has (keys are well-formed text), so nothing is taken.
        try {
          const known = namespace();
          replicas.#namespaceFailed = false;
          return typeof known === "string" ? known : NOWHERE;
        } catch (error) {
          // A function that throws until the bot knows itself: nothing is taken over meanwhile,
          // and the error is reported once (again only after the function worked in between).
          if (!replicas.#namespaceFailed) engine.report.error(error, "", undefined);
          replicas.#namespaceFailed = true;
          return NOWHERE;
        }
      },
      revive: (stored) => this.#revive(stored),
      acquired: (key, claim, batch, dropped, carried) =>
        this.#takenOver(key, claim, batch, dropped, carried),
      dropped: (key, dropped) => engine.ends.droppedAll(key, dropped),
      pending: (key, token, pending, interrupt) => {
        const turn = engine.keys.get(key);
        if (turn === undefined || turn.claim.token !== token || turn.stale) return;
        if (turn.watch !== undefined) turn.watch.knownPending = pending;
        // An input admitted in interrupt mode at another replica aborts the turn here too.
        engine.pendingArrived(turn, pending, interrupt === true ? MODES.interrupt : undefined);
      },
      stopped: (key, token) => {
        const turn = engine.keys.get(key);
        if (turn !== undefined && turn.claim.token === token) engine.exits.stop(turn);
      },
      revised: (key, token, id, data) => {
        const turn = engine.keys.get(key);
        if (turn === undefined || turn.claim.token !== token || turn.stale) return;
        let input: I | undefined;
        if (data !== undefined) {
          try {
            input = this.#codec.decode(JSON.parse(data));
          } catch (error) {
            engine.report.error(error, key, turn.fence);
            return;
          }
        }
        if (turn.phase === "claimed") {
          // Waiting out its settle window or for a slot: its handler has not seen its inputs, so
          // they change, as `guard.replace`/`withdraw` change them in a turn of this process.
          const index = turn.entries.findIndex((entry) => entry.id === id && !entry.lane);
          const entry = turn.entries[index];
          if (entry !== undefined) {
            turn.refresh();
            if (input === undefined) {
              turn.entries.splice(index, 1);
              engine.ends.dropped(key, entry, "withdrawn");
            } else {
              entry.input = input;
              entry.data = data;
            }
            return;
          }
        }
        turn.revise({ id, input });
      },
      freed: (key) => engine.lanes.wake(key),
      departed: (entries) => {
        for (const entry of entries) engine.ends.departed("", entry);
      },
      droppedElsewhere: (key, drops) => {
        for (const { entry, reason } of drops) engine.ends.droppedElsewhere(key, entry, reason);
      },
      error: (error, key) => engine.report.incident(operationOf(error), error, key),
      recovered: (operation) => engine.report.recovered(operation),
    };
  }

  /** An entry admitted by another process, rebuilt here to run through the guard's handler. */
  #revive(stored: StoreEntry & { readonly data: string }): Entry<I> {
    const input = this.#codec.decode(JSON.parse(stored.data));
    const { id, alone, expiresAt, data, group, settle } = stored;
    const entry = newEntry(id, input, undefined, false, alone, expiresAt);
    entry.data = data;
    entry.group = group;
    entry.settle = settle;
    entry.outcome = "queued";
    return entry;
  }

  /** The store claimed a key on its own (takeover, hand-over): run its batch here. */
  #takenOver(
    key: string,
    claim: Claim,
    batch: Entry<I>[],
    dropped: readonly StoreDrop<Entry<I>>[],
    carried: readonly CarriedRecord[] | undefined,
  ): void {
    const engine = this.#engine;
    const turn = new TurnState(engine, key, claim, batch);
    if (carried !== undefined) turn.more().carriedIn = carried;
    engine.ends.droppedAll(key, dropped);
    if (engine.controls.closing !== undefined) {
      this.handBack(turn);
      return;
    }
    engine.holds(key, turn);
    tookOver(engine, key);
    engine.begin(turn, false);
  }
}

/** The store operation a background error names (a `StoreError`'s), for its incident. */
function operationOf(error: unknown): string {
  const operation = (error as { operation?: unknown } | null)?.operation;
  return typeof operation === "string" ? operation : "background";
}
