// === The store seam
//
// The guard talks to its store through a handful of atomic operations, so the in-memory store and
// a shared store (Redis) are interchangeable and the guard's logic exists once. Every operation may
// answer synchronously (the memory store does, which keeps the uncontended path free of promises)
// or with a promise (a networked store). A claim can be lost (a lease expires): operations that
// take a claim answer `lost` rather than throwing.
//
// Entries are opaque to the store except for the fields of `StoreEntry`; the memory store keeps the
// objects themselves, a shared store serializes them (`data`, which the guard fills in for a
// shared store) and keeps the objects it admitted in a per-process map, so that an entry that comes
// back to the process that admitted it keeps its `run` closure and waiter.
//
// A shared store also acts on its own (`attach`): it takes over keys whose holder died or handed
// them over, and relays hints from other processes (input arrived, stop, key released).

import type { Outcome } from "../core/outcomes.js";
import type {
  Admission,
  CarriedRecord,
  CarryOn,
  Expiry,
  Finish,
  OutcomeRecord,
  Renewal,
  Stopped,
  StoreDrop,
  Take,
} from "./answers.js";

export type {
  Admission,
  CarriedRecord,
  CarryOn,
  CarryReason,
  Expiry,
  Finish,
  OutcomeRecord,
  Renewal,
  Stopped,
  StoreDrop,
  Take,
  WithDrops,
} from "./answers.js";

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
  /**
   * Entries of one key that share a group always run in the same turn, whatever the batch policy
   * (the photos of an album): a batch that takes one of them takes every pending one, and a
   * `latest` newcomer never supersedes entries of its own group. `undefined`: no group.
   */
  readonly group?: string | undefined;
  /**
   * With `group`: ms the turn that holds the group waits after the last entry of the group it knows
   * of, before it runs (the rest of an album may still be arriving, on any replica).
   */
  readonly settle?: number | undefined;
  /**
   * The busy mode a mode function chose for the input (`undefined`: the guard's own mode). A shared
   * store carries `interrupt` to the process whose turn holds the key (`StoreHost.pending`), so
   * the input aborts that turn whatever that process's own mode is.
   */
  readonly mode?: string | undefined;
  /**
   * The input as JSON text, for a shared store to carry to other processes. The guard sets it when
   * `store.shared`; `undefined` there means the entry cannot leave this process (a lane), so a
   * shared store never hands it to another one.
   */
  readonly data?: string | undefined;
}

/** Proof that the caller holds a key: the store's token and the fence of that claim. */
export interface Claim {
  /** The store's proof of this claim, which every later operation on the key presents. */
  readonly token: string;
  /** Strictly higher for every claim of a key. */
  readonly fence: number;
  /**
   * The guard's state for the turn that holds this claim, written by the guard on the claims of a
   * store that offers `claimOf`: such a store creates its claims as writable objects with it
   * `undefined`, and never reads it.
   */
  holder?: unknown;
  /**
   * A store whose claims expire (`lease`): epoch ms, by this process's clock, no later than the
   * moment the store began the claim's lease (when it sent the command that set it). The guard
   * gives a turn up once a lease has passed since then without a renewal; without it, the guard
   * counts from when it got the claim, which is late by the time the answer took to arrive, and
   * another process could claim the key before this turn is aborted (a value that is not a finite
   * time before now counts as absent).
   */
  readonly since?: number;
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
  /**
   * How pending entries are grouped when the claim also hands over input left behind (a shared
   * store taking over from a holder that died). Default `"all"`.
   */
  readonly batch?: BatchPolicy;
  /**
   * With `whenHeld: "reject"`: ask the store to announce the key's release (`StoreHost.freed`),
   * for a caller that will try again (a waiting lane on a shared store).
   */
  readonly notifyFree?: boolean;
}

/** How pending entries are grouped into a turn. */
export type BatchPolicy = "all" | "one";

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

  /**
   * Move pending entries into the running turn (steer; a settle window). With `group`, only the
   * pending entries of that group, wherever they stand (the rest of an album, once its window is
   * over); a store that predates groups may ignore it only if it never stores `group`.
   */
  take(key: string, claim: Claim, batch: BatchPolicy, group?: string): MaybePromise<Take<E>>;

  /**
   * End the turn: release the key, or, when input is pending, keep the claim and hand back the next
   * batch under a new fence, so no input is stranded between "queue empty" and "released".
   * `carry` (a store that keeps carried work): the turn was cut short and hands on what it carried,
   * after what earlier turns cut short handed on (`carried` of the answer); without it, everything
   * carried so far is discarded. A released key discards it too.
   */
  finish(key: string, claim: Claim, batch: BatchPolicy, carry?: CarryOn): MaybePromise<Finish<E>>;

  /**
   * Release the key without running its pending input here (shutdown, an abandoned turn on close).
   * A shared store leaves the pending input for another replica and answers no orphans; a store no
   * one else reads answers the pending entries, which the guard then drops as `shutdown`.
   * `requeue`: the claim's batch never ran; a shared store leaves it pending for another replica
   * too (a store no one else reads ignores it: the guard drops that batch itself).
   */
  abandon(
    key: string,
    claim: Claim,
    requeue?: boolean,
    carry?: CarryOn,
  ): MaybePromise<readonly E[]>;

  /**
   * For a store shared by processes: keep the running turn's latest carried value (`undefined`
   * removes it) with the key, so that the next holder gets it — with reason `lease-lost` — even if
   * this process dies. A store that implements it keeps carried work: it answers `carried` with
   * the batches it hands out and takes `carry` in `finish` and `abandon`. Without it the guard keeps
   * carried work itself, in process. Answers `false` when the claim is no longer held.
   */
  carry?(key: string, claim: Claim, data: string | undefined): MaybePromise<boolean>;

  /** Remove every pending entry of the key (stop). Answers the removed entries, oldest first. */
  clear(key: string): MaybePromise<readonly E[]>;

  /**
   * Stop the key: remove its pending entries and mark the claim that holds it as stopped, wherever
   * its turn runs (the holder learns it from its next `renew`, or at once through a hint). With an
   * `id`, the stop is de-duplicated like an input, in the same atomic step (a retried stop command
   * delivered to another replica must not stop a later turn). Optional: without it the guard uses
   * `clear` and stops only turns of this process.
   */
  stop?(key: string, id: string | undefined, dedupe: number): MaybePromise<Stopped<E>>;

  /**
   * Keys that are held or have pending input and start with `prefix`, in any process (a stop of
   * every thread of a channel). Optional: without it the guard knows only its own keys.
   */
  keys?(prefix: string): MaybePromise<readonly string[]>;

  /** Remove one pending entry by id (a lane that gave up waiting, an input withdrawn). */
  withdraw(key: string, id: string): MaybePromise<E | undefined>;

  /**
   * Swap the content of a pending entry in place (same position, same id): a user edited the
   * message. `data` is the new input as JSON text for a shared store (`undefined` otherwise);
   * `apply` updates the entry object (the store calls it on the object it answers, before
   * answering). Answers the entry, or `undefined` when no pending entry of the key has that id.
   * Optional: without it `guard.replace` changes only input that this process holds.
   */
  replace?(
    key: string,
    id: string,
    data: string | undefined,
    apply: (entry: E) => void,
  ): MaybePromise<E | undefined>;

  /**
   * For a shared store: if `id` belongs to the batch of the turn holding `key` (in any process),
   * tell that turn's process of the revision (`StoreHost.revised`; `data` is the new input as JSON
   * text, `undefined` for a deletion) and answer `true`. The guard asks only when the entry is
   * neither pending nor in a turn of its own.
   */
  reviseRunning?(key: string, id: string, data: string | undefined): MaybePromise<boolean>;

  /**
   * For a shared store: remember what became of inputs, so that `guard.outcome(id)` answers from
   * any process. Each record replaces the id's last one; records live for `window` ms. The store
   * reports a failure to write through `StoreHost.error` (the guard never awaits this).
   */
  record?(key: string, records: readonly OutcomeRecord[], window: number): void;

  /** With `record`: the last record of `id`, or `undefined` (none, or older than its window). */
  outcome?(id: string): MaybePromise<Outcome | undefined>;

  /**
   * Forget de-duplication ids of the key's inputs, so their redelivery is admitted again (a failed
   * awaited turn). The key lets a shared store find where the ids live.
   */
  forget(key: string, ids: readonly string[]): MaybePromise<void>;

  /** Pending entries of the key, as far as this process knows, without I/O. */
  pendingCount(key: string): number;

  /**
   * Drop the key's pending entries whose `expiresAt` has passed (reason `expired`), and say when
   * the next one expires. The guard calls it when an entry it queued expires, so an expired input
   * is reported on time rather than when its turn would have formed. Optional: without it, entries
   * expire when the next batch forms (`take`, `finish`).
   */
  expire?(key: string): MaybePromise<Expiry<E>>;

  /**
   * For a store that keeps its claims in this process: the claim holding `key` now, without I/O.
   * With `claims`, it lets the guard keep its turns on the claims (`Claim.holder`) instead of in a
   * map of its own, which saves a map write and delete per turn. A shared store omits both.
   */
  claimOf?(key: string): Claim | undefined;

  /** With `claimOf`: every claim held now. */
  claims?(): Iterable<Claim>;

  /**
   * Ms a claim lives unless renewed (a shared store's lease). When set, the guard renews each claim
   * every `lease / 3` and aborts a turn whose claim was lost or not renewed for a whole lease.
   */
  readonly lease?: number;

  /**
   * Called once by the guard that uses this store (a shared store serves one guard). Through the
   * host the store hands over keys it claimed on its own and hints from other processes. Answers
   * the function the guard calls once it has closed, which stops the store's background work.
   */
  attach?(host: StoreHost<E>): () => void;
}

/** What a guard offers the shared store it uses (`Store.attach`). */
export interface StoreHost<E> {
  /** True once the guard is closing: the store then takes no key on its own. */
  readonly closed: boolean;
  /**
   * The prefix of every key this guard admits (`GuardOptions.namespace`), read at each use: a
   * shared store takes over — after a crash, a hand-over — only keys under it, so two bots that
   * share a store never run each other's keys. `undefined`: every key. A guard that does not know
   * its namespace yet (a bot before it learned its own id) answers a prefix no key has.
   */
  readonly namespace?: string | undefined;
  /** Rebuild an entry admitted by another process from what the store kept of it. */
  revive(entry: StoreEntry & { readonly data: string }): E;
  /**
   * The store claimed a key on its own (its holder died, its lease expired or it was handed over):
   * run the batch, as if `acquireOrEnqueue` had answered `acquired`.
   */
  acquired(
    key: string,
    claim: Claim,
    batch: E[],
    dropped: readonly StoreDrop<E>[],
    carried?: readonly CarriedRecord[],
  ): void;
  /** Entries the store removed without handing them to a turn here (expired, superseded…). */
  dropped(key: string, dropped: readonly StoreDrop<E>[]): void;
  /**
   * Hint: input is pending for a key held here under `token` (admitted by another process).
   * `interrupt`: the input that arrived was admitted in `interrupt` mode (`StoreEntry.mode`): the
   * turn is aborted (`superseded`) whatever this guard's own mode is.
   */
  pending(key: string, token: string, pending: number, interrupt?: boolean): void;
  /** Hint: another process stopped the key held here under `token`. */
  stopped(key: string, token: string): void;
  /** Hint: the key was released (a lane waiting for it may try again). */
  freed(key: string): void;
  /**
   * Hint: the input `id` of the turn held here under `token` was edited (`data`: the new input as
   * JSON text) or deleted (`undefined`) at another process (`Store.reviseRunning`).
   */
  revised?(key: string, token: string, id: string, data: string | undefined): void;
  /**
   * Entries admitted here and queued, that another process took into its turn (or that stay
   * queued for other processes when this store detaches): their callers learn they were queued.
   */
  departed(entries: readonly E[]): void;
  /**
   * Hint: entries admitted here and queued were dropped by another process (its stop, a `latest`
   * newcomer admitted there, an eviction its admission caused, an expiry it found), each with its
   * reason. That process already reported them to its guard's `onDrop` and `dropped` event; here
   * their callers learn it (an awaiting `submit` resolves `"dropped"`) and each submit's own
   * `onDrop` is called, never the guard's `onDrop` again. Hints may be lost: an entry that left
   * without one still `departed`. Optional: a host without it sees such entries depart.
   */
  droppedElsewhere?(key: string, drops: readonly StoreDrop<E>[]): void;
  /**
   * A background operation of the store failed (a probe, a sweep, a subscription). Pass a
   * `StoreError` naming the operation: the guard reports an outage once, not at every retry.
   */
  error(error: unknown, key: string | undefined): void;
  /** The background `operation` that failed works again: the guard reports the end of the outage. */
  recovered?(operation: string): void;
}
