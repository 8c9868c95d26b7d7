// === The in-memory store
//
// The default store, for one process. A held key is one small record (its fence and, only once
// input waits, a queue); the record is deleted the moment the key is released, so idle keys cost
// nothing. Fences come from one counter for the whole store: strictly higher for every claim of a
// key without remembering anything per key. De-duplication ids are remembered in a `Ledger`, where a
// guard on this store also records what became of each input (one map entry per id, not two).

import { LEDGER, Ledger } from "../../core/outcomes.js";
import { dropExpired, supersedes, takeBatch, takeGroup } from "../batch.js";
import type {
  Admission,
  AdmitPolicy,
  BatchPolicy,
  Claim,
  Expiry,
  Finish,
  Renewal,
  Stopped,
  Store,
  StoreDrop,
  StoreEntry,
  Take,
} from "../store.js";

/** Options of `memoryStore()`. */
export interface MemoryStoreOptions {
  /**
   * Most de-duplication ids remembered at once; past it the oldest are forgotten early. A guard on
   * this store keeps the outcomes of its inputs (`guard.outcome(id)`) with the same ids, under the
   * same cap. Default 100,000.
   */
  maxIds?: number;
}

/** The in-memory store, with a few counters for observability. */
export interface MemoryStore extends Store {
  /** Keys held right now. */
  readonly keyCount: number;
  /** Pending entries across all keys. */
  readonly pendingTotal: number;
  /** De-duplication ids held right now (expired ones included until they are dropped). */
  readonly idCount: number;
  expire: NonNullable<Store["expire"]>;
  claimOf: NonNullable<Store["claimOf"]>;
  claims: NonNullable<Store["claims"]>;
  stop: NonNullable<Store["stop"]>;
  keys: NonNullable<Store["keys"]>;
  replace: NonNullable<Store["replace"]>;
}

/**
 * A held key: its claim, and the pending queue once input waits. The record is the claim itself
 * (one object per turn); a new claim of the key is a new record.
 */
interface KeyRecord<E> extends Claim {
  queue: E[] | undefined;
  /** Some queued entry may expire: only then is the queue scanned for expired entries. */
  expiring: boolean;
}

const NO_DROPS: readonly never[] = Object.freeze([]);
const DUPLICATE = Object.freeze({ status: "duplicate" as const });
const BUSY = Object.freeze({ status: "rejected" as const, reason: "busy" as const });
const OVERFLOW = Object.freeze({ status: "rejected" as const, reason: "overflow" as const });
const LOST = Object.freeze({ status: "lost" as const });
const RELEASED = Object.freeze({ status: "released" as const, dropped: NO_DROPS });
const NOTHING_EXPIRES = Object.freeze({ dropped: NO_DROPS, next: Number.POSITIVE_INFINITY });

/** The earliest `expiresAt` in a queue (`Infinity` when nothing in it expires). */
function earliestExpiry(queue: readonly StoreEntry[]): number {
  let earliest = Number.POSITIVE_INFINITY;
  for (const entry of queue) if (entry.expiresAt < earliest) earliest = entry.expiresAt;
  return earliest;
}

/** Pending entries that `newcomer` supersedes in `latest` mode. */
function countSuperseded(queue: readonly StoreEntry[], newcomer: StoreEntry): number {
  let count = 0;
  for (const entry of queue) if (supersedes(newcomer, entry)) count++;
  return count;
}

class InMemoryStore<E extends StoreEntry> implements Store<E> {
  readonly shared = false;
  readonly #keys = new Map<string, KeyRecord<E>>();
  /** De-duplication ids seen within their window (and the outcomes of a guard's inputs). */
  readonly #seen: Ledger;
  /** Offered to the guard, which records its outcomes in it (see `outcomes.ts`). */
  readonly [LEDGER]: Ledger;
  #fence = 0;
  #pendingTotal = 0;

  constructor(maxIds: number) {
    this.#seen = new Ledger(maxIds);
    this[LEDGER] = this.#seen;
  }

  get keyCount(): number {
    return this.#keys.size;
  }

  get pendingTotal(): number {
    return this.#pendingTotal;
  }

  get idCount(): number {
    return this.#seen.marks;
  }

  acquireOrEnqueue(key: string, entry: E, policy: AdmitPolicy): Admission<E> {
    if (
      entry.id !== undefined &&
      policy.dedupe > 0 &&
      this.#seen.seen(entry.id, policy.dedupe, Date.now())
    ) {
      return DUPLICATE;
    }
    const record = this.#keys.get(key);
    if (record === undefined) {
      const claim = this.#claim(undefined, false);
      this.#keys.set(key, claim);
      return { status: "acquired", claim, batch: [entry], dropped: NO_DROPS };
    }
    if (policy.whenHeld === "reject") return BUSY;
    const queue = (record.queue ??= []);
    // Decide first, then change anything: a refused newcomer leaves the queue as it was.
    const supersede = policy.whenHeld === "latest" && !entry.alone;
    const superseded = supersede ? countSuperseded(queue, entry) : 0;
    const evict = queue.length - superseded >= policy.maxPending;
    if (evict && (policy.overflow === "drop-newest" || queue.length === superseded))
      return OVERFLOW;
    // The process-wide cap protects memory, not a conversation: past it the newcomer is refused.
    if (this.#pendingTotal - superseded - (evict ? 1 : 0) >= policy.maxPendingTotal)
      return OVERFLOW;
    let dropped: StoreDrop<E>[] | readonly never[] = NO_DROPS;
    if (superseded > 0 || evict) dropped = [];
    if (superseded > 0) {
      // Rapid corrections: the newest input replaces every earlier one it could have joined.
      let kept = 0;
      for (const pending of queue) {
        if (!supersedes(entry, pending)) queue[kept++] = pending;
        else (dropped as StoreDrop<E>[]).push({ entry: pending, reason: "superseded" });
      }
      queue.length = kept;
    }
    if (evict) (dropped as StoreDrop<E>[]).push({ entry: queue.shift() as E, reason: "overflow" });
    queue.push(entry);
    if (entry.expiresAt !== Number.POSITIVE_INFINITY) record.expiring = true;
    this.#pendingTotal += 1 - dropped.length;
    return { status: "queued", pending: queue.length, dropped };
  }

  renew(key: string, claim: Claim): Renewal {
    const record = this.#held(key, claim);
    if (record === undefined) return LOST;
    return { status: "held", pending: record.queue?.length ?? 0 };
  }

  take(key: string, claim: Claim, batch: BatchPolicy, group?: string): Take<E> {
    const record = this.#held(key, claim);
    if (record === undefined) return LOST;
    const queue = record.queue;
    if (queue === undefined || queue.length === 0) {
      return { status: "taken", entries: [], dropped: NO_DROPS };
    }
    const before = queue.length;
    const dropped = this.#dropExpired(record, queue);
    const entries = group === undefined ? takeBatch(queue, batch, false) : takeGroup(queue, group);
    this.#pendingTotal -= before - queue.length;
    return { status: "taken", entries, dropped };
  }

  finish(key: string, claim: Claim, batch: BatchPolicy): Finish<E> {
    const record = this.#held(key, claim);
    if (record === undefined) return LOST;
    const queue = record.queue;
    if (queue === undefined || queue.length === 0) {
      this.#keys.delete(key);
      return RELEASED;
    }
    const before = queue.length;
    const dropped = this.#dropExpired(record, queue);
    const next = takeBatch(queue, batch);
    this.#pendingTotal -= before - queue.length;
    if (next.length === 0) {
      this.#keys.delete(key);
      return { status: "released", dropped };
    }
    const nextClaim = this.#claim(queue, record.expiring && queue.length > 0);
    this.#keys.set(key, nextClaim);
    return { status: "next", claim: nextClaim, batch: next, dropped };
  }

  abandon(key: string, claim: Claim): readonly E[] {
    const record = this.#held(key, claim);
    if (record === undefined) return NO_DROPS;
    this.#keys.delete(key);
    // No other process reads this store: pending input would be stranded, so it is handed back.
    const orphans = record.queue ?? NO_DROPS;
    this.#pendingTotal -= orphans.length;
    return orphans;
  }

  clear(key: string): readonly E[] {
    const record = this.#keys.get(key);
    const queue = record?.queue;
    if (record === undefined || queue === undefined || queue.length === 0) return NO_DROPS;
    record.queue = undefined;
    this.#pendingTotal -= queue.length;
    return queue;
  }

  stop(key: string, id: string | undefined, dedupe: number): Stopped<E> {
    if (id !== undefined && dedupe > 0 && this.#seen.seen(id, dedupe, Date.now())) return DUPLICATE;
    return { status: "stopped", entries: this.clear(key), held: this.#keys.has(key) };
  }

  keys(prefix: string): readonly string[] {
    const keys: string[] = [];
    for (const key of this.#keys.keys()) if (key.startsWith(prefix)) keys.push(key);
    return keys;
  }

  expire(key: string): Expiry<E> {
    const record = this.#keys.get(key);
    const queue = record?.queue;
    if (record === undefined || queue === undefined || queue.length === 0) return NOTHING_EXPIRES;
    const dropped = this.#dropExpired(record, queue);
    this.#pendingTotal -= dropped.length;
    return { dropped, next: record.expiring ? earliestExpiry(queue) : Number.POSITIVE_INFINITY };
  }

  withdraw(key: string, id: string): E | undefined {
    const queue = this.#keys.get(key)?.queue;
    if (queue === undefined) return undefined;
    const index = queue.findIndex((entry) => entry.id === id);
    if (index < 0) return undefined;
    this.#pendingTotal--;
    return queue.splice(index, 1)[0];
  }

  replace(
    key: string,
    id: string,
    _data: string | undefined,
    apply: (entry: E) => void,
  ): E | undefined {
    const entry = this.#keys.get(key)?.queue?.find((queued) => queued.id === id);
    if (entry !== undefined) apply(entry);
    return entry;
  }

  forget(_key: string, ids: readonly string[]): void {
    for (const id of ids) this.#seen.forget(id);
  }

  pendingCount(key: string): number {
    return this.#keys.get(key)?.queue?.length ?? 0;
  }

  claimOf(key: string): Claim | undefined {
    return this.#keys.get(key);
  }

  claims(): Iterable<Claim> {
    return this.#keys.values();
  }

  #claim(queue: E[] | undefined, expiring: boolean): KeyRecord<E> {
    return { token: "", fence: ++this.#fence, holder: undefined, queue, expiring };
  }

  /** Drop the queue's expired entries, if it may hold any; answers them. */
  #dropExpired(record: KeyRecord<E>, queue: E[]): readonly StoreDrop<E>[] {
    if (!record.expiring) return NO_DROPS;
    const dropped: StoreDrop<E>[] = [];
    dropExpired(queue, Date.now(), dropped);
    record.expiring = earliestExpiry(queue) !== Number.POSITIVE_INFINITY;
    return dropped.length === 0 ? NO_DROPS : dropped;
  }

  #held(key: string, claim: Claim): KeyRecord<E> | undefined {
    const record = this.#keys.get(key);
    return record !== undefined && record === claim ? record : undefined;
  }
}

/**
 * The default store: everything in this process's memory. Use it for a single bot process; use
 * `redisStore()` from `session-guard/redis` when several replicas share the traffic.
 *
 * @example
 * ```ts
 * const store = memoryStore();
 * const guard = createGuard({ store });
 * // later: store.keyCount, store.pendingTotal
 * ```
 */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(
      `memoryStore: options must be an object such as { maxIds: 100_000 }, got ${options === null ? "null" : Array.isArray(options) ? "an array" : typeof options}.`,
    );
  }
  for (const name of Object.keys(options)) {
    if (name !== "maxIds") {
      throw new TypeError(
        `memoryStore: unknown option ${JSON.stringify(name)}. Known options: maxIds.`,
      );
    }
  }
  const { maxIds = 100_000 } = options;
  if (typeof maxIds !== "number" || !Number.isInteger(maxIds) || maxIds < 1) {
    const got = typeof maxIds === "string" ? JSON.stringify(maxIds) : String(maxIds);
    throw new TypeError(
      `memoryStore: "maxIds" must be an integer of at least 1 (the most de-duplication ids kept), got ${got}.`,
    );
  }
  return new InMemoryStore(maxIds);
}
