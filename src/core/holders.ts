// === Which turn holds each key, as the guard sees it
//
// The guard needs the current turn of every key it holds (to queue input behind it, stop it, close
// it). Kept in a map of the guard's own, that is a second map beside the store's for every key,
// with a write on claim and a lookup and a delete on release, on the path every input takes.
//
// A store whose claims live in this process (the memory store) already has that map: it offers
// `claimOf` and `claims`, and the guard writes its turn on the claim (`Claim.holder`). A key's
// turn is then one lookup in the store's map and nothing to delete. A shared store keeps its claims
// elsewhere, so the guard keeps its own map for it.

import type { Claim, Store } from "../stores/store.js";

/** A turn as the holders need it: the key, and the claim it holds the key with. */
export interface Holder {
  readonly key: string;
  readonly claim: Claim;
}

/** The turns a guard holds, by key. */
export interface Holders<T extends Holder> {
  /** The turn holding `key` for this guard, if any. */
  get(key: string): T | undefined;
  /**
   * `turn` now holds its key; `previous`, if given, was the key's turn until now (a next batch
   * under a new claim, a takeover).
   */
  set(turn: T, previous: T | undefined): void;
  /** `turn` no longer holds its key; false if it did not (already released or replaced). */
  delete(turn: T): boolean;
  /** Keys held. */
  readonly size: number;
  /** Every turn held, as a list that later changes do not affect. */
  list(): T[];
}

/** Holders in a map of the guard's own (a store shared with other processes). */
export class MapHolders<T extends Holder> implements Holders<T> {
  readonly #turns = new Map<string, T>();

  get(key: string): T | undefined {
    return this.#turns.get(key);
  }

  set(turn: T): void {
    this.#turns.set(turn.key, turn);
  }

  delete(turn: T): boolean {
    if (this.#turns.get(turn.key) !== turn) return false;
    this.#turns.delete(turn.key);
    return true;
  }

  get size(): number {
    return this.#turns.size;
  }

  list(): T[] {
    return [...this.#turns.values()];
  }
}

/**
 * Holders written on the claims of a store that keeps them in this process. `owner` tells this
 * guard's turns from those of another guard on the same store.
 */
export class ClaimHolders<T extends Holder> implements Holders<T> {
  readonly #store: LocalClaims;
  readonly #owns: (turn: T) => boolean;
  #size = 0;

  constructor(store: LocalClaims, owns: (turn: T) => boolean) {
    this.#store = store;
    this.#owns = owns;
  }

  get(key: string): T | undefined {
    const holder = this.#store.claimOf(key)?.holder as T | undefined;
    return holder !== undefined && this.#owns(holder) ? holder : undefined;
  }

  set(turn: T, previous: T | undefined): void {
    if (previous !== undefined && previous.claim.holder === previous) {
      previous.claim.holder = undefined;
    } else this.#size++;
    turn.claim.holder = turn;
  }

  delete(turn: T): boolean {
    if (turn.claim.holder !== turn) return false;
    turn.claim.holder = undefined;
    this.#size--;
    return true;
  }

  get size(): number {
    return this.#size;
  }

  list(): T[] {
    const turns: T[] = [];
    for (const claim of this.#store.claims()) {
      const holder = claim.holder as T | undefined;
      if (holder !== undefined && this.#owns(holder)) turns.push(holder);
    }
    return turns;
  }
}

/** A store that keeps its claims in this process and lets the guard read them. */
export type LocalClaims = Required<Pick<Store, "claimOf" | "claims">>;

/** The store's claims can carry the guard's turns (`Store.claimOf` and `Store.claims`). */
export function hasLocalClaims(store: Store<never>): store is Store<never> & LocalClaims {
  return !store.shared && typeof store.claimOf === "function" && typeof store.claims === "function";
}
