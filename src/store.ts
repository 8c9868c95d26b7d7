// === The store seam
//
// The guard talks to its store through a handful of atomic operations, so the in-memory store and
// a shared store (Redis) are interchangeable and the guard's logic exists once. Every operation may
// answer synchronously (the memory store does, which keeps the uncontended path free of promises)
// or with a promise (a networked store). A claim can be lost (a lease expires): operations that
// take a claim answer `lost` rather than throwing.
//
// Entries are opaque to the store except for the fields of `StoreEntry`; the memory store keeps the
// objects themselves, a shared store serializes them.

import type { DropReason } from "./errors.js";

/** A value or a promise of it: memory stores answer synchronously, networked stores do not. */
export type MaybePromise<T> = T | Promise<T>;

/** The fields of an admitted input that a store reads. */
export interface StoreEntry {
  /** De-duplication id, or `undefined` (never de-duplicated, not addressable). */
  readonly id: string | undefined;
  /** Never coalesced with other entries: it becomes a turn of its own, in FIFO order. */
  readonly alone: boolean;
  /** Epoch milliseconds after which the entry is dropped as `expired` rather than run. */
  readonly expiresAt: number;
}

/** Proof that the caller holds a key: the store's token and the fence of that claim. */
export interface Claim {
  readonly token: string;
  /** Strictly higher for every claim of a key. */
  readonly fence: number;
}

/** An entry the store removed without running it, and why. */
export interface StoreDrop<E> {
  readonly entry: E;
  readonly reason: DropReason;
}

/** How an input is admitted when its key is already held. */
export interface AdmitPolicy {
  /**
   * `enqueue`: keep as pending. `latest`: keep as pending and drop the earlier pending inputs that
   * could have been coalesced with it (`superseded`). `reject`: drop it (`busy`).
   */
  readonly whenHeld: "enqueue" | "latest" | "reject";
  /** Pending entries per key. */
  readonly maxPending: number;
  /** At `maxPending`: evict the oldest pending entry, or refuse the new one. */
  readonly overflow: "drop-oldest" | "drop-newest";
  /** Pending entries across all keys; past it the new entry is refused (`overflow`). */
  readonly maxPendingTotal: number;
  /** De-duplication window in ms; 0 turns it off for this admission. */
  readonly dedupe: number;
}

/** How pending entries are grouped into a turn. */
export type BatchPolicy = "all" | "one";

/** Common part of answers that may have dropped entries on the way (expired, evicted, superseded). */
interface WithDrops<E> {
  readonly dropped: readonly StoreDrop<E>[];
}

/** Answer of `acquireOrEnqueue`. */
export type Admission<E> =
  | (WithDrops<E> & {
      readonly status: "acquired";
      readonly claim: Claim;
      /**
       * The entries of the first turn, oldest first. Usually the admitted entry alone; a shared
       * store also hands over input left behind by a holder that died.
       */
      readonly batch: E[];
    })
  | (WithDrops<E> & { readonly status: "queued"; readonly pending: number })
  | { readonly status: "rejected"; readonly reason: "busy" | "overflow" }
  | { readonly status: "duplicate" };

/** Answer of `finish`. */
export type Finish<E> =
  | (WithDrops<E> & { readonly status: "released" })
  | (WithDrops<E> & { readonly status: "next"; readonly claim: Claim; readonly batch: E[] })
  | { readonly status: "lost" };

/** Answer of `take`. */
export type Take<E> =
  | (WithDrops<E> & { readonly status: "taken"; readonly entries: E[] })
  | { readonly status: "lost" };

/** Answer of `renew`. */
export type Renewal =
  | { readonly status: "held"; readonly pending: number }
  | { readonly status: "lost" };

/**
 * The operations a guard needs from its store. Implement it to add a backend; use
 * `memoryStore()` in one process and `redisStore()` across replicas.
 */
export interface Store<E extends StoreEntry = StoreEntry> {
  /**
   * True when other processes share this store: the guard then hands keys over on close instead
   * of draining them, and inputs must be serializable.
   */
  readonly shared: boolean;

  /**
   * Claim the key for a new turn, or keep the entry as pending input of the turn that holds it —
   * atomically, with de-duplication of `entry.id` inside the same step.
   */
  acquireOrEnqueue(key: string, entry: E, policy: AdmitPolicy): MaybePromise<Admission<E>>;

  /** Keep the claim alive; report how much input is pending. */
  renew(key: string, claim: Claim): MaybePromise<Renewal>;

  /** Move pending entries into the running turn (steer; a settle window). */
  take(key: string, claim: Claim, batch: BatchPolicy): MaybePromise<Take<E>>;

  /**
   * End the turn: release the key, or, when input is pending, keep the claim and hand back the next
   * batch under a new fence, so no input is stranded between "queue empty" and "released".
   */
  finish(key: string, claim: Claim, batch: BatchPolicy): MaybePromise<Finish<E>>;

  /**
   * Release the key without running its pending input here (shutdown, an abandoned turn on close).
   * A shared store leaves the pending input for another replica and answers no orphans; a store no
   * one else reads answers the pending entries, which the guard then drops as `shutdown`.
   */
  abandon(key: string, claim: Claim): MaybePromise<readonly E[]>;

  /** Remove every pending entry of the key (stop). Answers the removed entries, oldest first. */
  clear(key: string): MaybePromise<readonly E[]>;

  /** Remove one pending entry by id (a lane that gave up waiting, an input withdrawn). */
  withdraw(key: string, id: string): MaybePromise<E | undefined>;

  /** Forget de-duplication ids, so their redelivery is admitted again (a failed awaited turn). */
  forget(ids: readonly string[]): MaybePromise<void>;

  /** Pending entries of the key, as far as this process knows, without I/O. */
  pendingCount(key: string): number;
}
