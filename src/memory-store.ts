// === The in-memory store
//
// The default store, for one process. A held key is one small record (its fence and, only once
// input waits, a queue); the record is deleted the moment the key is released, so idle keys cost
// nothing. Fences come from one counter for the whole store: strictly higher for every claim of a
// key without remembering anything per key. De-duplication ids are remembered in two
// generations, freed a generation at a time (see `#seen`).

import { takeBatch } from "./modes.js";
import type {
  Admission,
  AdmitPolicy,
  BatchPolicy,
  Claim,
  Finish,
  Renewal,
  Store,
  StoreDrop,
  StoreEntry,
  Take,
} from "./store.js";

/** Options of `memoryStore()`. */
export interface MemoryStoreOptions {
  /**
   * Most de-duplication ids remembered at once; past it the oldest half is forgotten early.
   * Default 100,000.
   */
  maxIds?: number;
}

/** The in-memory store, with a few counters for observability. */
export interface MemoryStore extends Store {
  /** Keys held right now. */
  readonly keyCount: number;
  /** Pending entries across all keys. */
  readonly pendingTotal: number;
  /** De-duplication ids held right now (expired ones included until their generation goes). */
  readonly idCount: number;
}

/**
 * A held key: its claim, and the pending queue once input waits. The record is the claim itself
 * (one object per turn); a new claim of the key is a new record.
 */
interface KeyRecord<E> extends Claim {
  queue: E[] | undefined;
}

const NO_DROPS: readonly never[] = Object.freeze([]);
const DUPLICATE = Object.freeze({ status: "duplicate" as const });
const BUSY = Object.freeze({ status: "rejected" as const, reason: "busy" as const });
const OVERFLOW = Object.freeze({ status: "rejected" as const, reason: "overflow" as const });
const LOST = Object.freeze({ status: "lost" as const });
const RELEASED = Object.freeze({ status: "released" as const, dropped: NO_DROPS });

/** How an id is remembered: a small integer as itself, anything else as the string. */
type IdKey = string | number;

/**
 * The id as a small integer when it is the canonical decimal form of one (`"0"`, `"735012345"`,
 * below 2^31), otherwise the string. Platform ids are often such numbers (Telegram update ids):
 * remembered as numbers, they are stored inside the map itself, where every id string kept would
 * be one more object for the garbage collector to move and mark for the whole window. The mapping
 * is one-to-one, so no two distinct ids meet.
 */
function idKeyOf(id: string): IdKey {
  const length = id.length;
  if (length === 0 || length > 10) return id;
  let value = 0;
  for (let i = 0; i < length; i++) {
    const digit = id.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9 || (digit === 0 && i === 0 && length > 1)) return id;
    value = value * 10 + digit;
  }
  return value <= 0x7fffffff ? value : id;
}

/** Pending entries that a newer input may supersede (everything not `alone`). */
function countCoalescable(queue: readonly StoreEntry[]): number {
  let count = 0;
  for (const entry of queue) if (!entry.alone) count++;
  return count;
}

class InMemoryStore<E extends StoreEntry> implements Store<E> {
  readonly shared = false;
  readonly #keys = new Map<string, KeyRecord<E>>();
  /**
   * De-duplication ids → expiry, in ms after their generation's start (a small integer, where an
   * epoch time would be a heap number per id): the generation taking new ids, and the one before.
   */
  #current = new Map<IdKey, number>();
  #previous = new Map<IdKey, number>();
  /** Epoch ms at which the current and the previous generation started. */
  #currentStart = 0;
  #previousStart = 0;
  /** Epoch ms at which the current generation is a window old. */
  #rotateAt = 0;
  readonly #maxIds: number;
  #fence = 0;
  #pendingTotal = 0;

  constructor(maxIds: number) {
    this.#maxIds = maxIds;
  }

  get keyCount(): number {
    return this.#keys.size;
  }

  get pendingTotal(): number {
    return this.#pendingTotal;
  }

  get idCount(): number {
    return this.#current.size + this.#previous.size;
  }

  acquireOrEnqueue(key: string, entry: E, policy: AdmitPolicy): Admission<E> {
    if (entry.id !== undefined && policy.dedupe > 0 && this.#seen(entry.id, policy.dedupe)) {
      return DUPLICATE;
    }
    const record = this.#keys.get(key);
    if (record === undefined) {
      const claim = this.#claim(undefined);
      this.#keys.set(key, claim);
      return { status: "acquired", claim, batch: [entry], dropped: NO_DROPS };
    }
    if (policy.whenHeld === "reject") return BUSY;
    const queue = (record.queue ??= []);
    // Decide first, then change anything: a refused newcomer leaves the queue as it was.
    const supersede = policy.whenHeld === "latest" && !entry.alone;
    const superseded = supersede ? countCoalescable(queue) : 0;
    const evict = queue.length - superseded >= policy.maxPending;
    if (evict && (policy.overflow === "drop-newest" || queue.length === superseded))
      return OVERFLOW;
    // The process-wide cap protects memory, not a conversation: past it the newcomer is refused.
    if (this.#pendingTotal - superseded - (evict ? 1 : 0) >= policy.maxPendingTotal)
      return OVERFLOW;
    const dropped: StoreDrop<E>[] = [];
    if (superseded > 0) {
      // Rapid corrections: the newest input replaces every earlier one it could have joined.
      let kept = 0;
      for (const pending of queue) {
        if (pending.alone) queue[kept++] = pending;
        else dropped.push({ entry: pending, reason: "superseded" });
      }
      queue.length = kept;
    }
    if (evict) dropped.push({ entry: queue.shift() as E, reason: "overflow" });
    queue.push(entry);
    this.#pendingTotal += 1 - dropped.length;
    return { status: "queued", pending: queue.length, dropped };
  }

  renew(key: string, claim: Claim): Renewal {
    const record = this.#held(key, claim);
    if (record === undefined) return LOST;
    return { status: "held", pending: record.queue?.length ?? 0 };
  }

  take(key: string, claim: Claim, batch: BatchPolicy): Take<E> {
    const record = this.#held(key, claim);
    if (record === undefined) return LOST;
    const queue = record.queue;
    if (queue === undefined || queue.length === 0) {
      return { status: "taken", entries: [], dropped: NO_DROPS };
    }
    const dropped: StoreDrop<E>[] = [];
    const before = queue.length;
    const entries = takeBatch(queue, batch, Date.now(), dropped, false);
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
    const dropped: StoreDrop<E>[] = [];
    const before = queue.length;
    const next = takeBatch(queue, batch, Date.now(), dropped);
    this.#pendingTotal -= before - queue.length;
    if (next.length === 0) {
      this.#keys.delete(key);
      return { status: "released", dropped };
    }
    const nextClaim = this.#claim(queue);
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

  withdraw(key: string, id: string): E | undefined {
    const queue = this.#keys.get(key)?.queue;
    if (queue === undefined) return undefined;
    const index = queue.findIndex((entry) => entry.id === id);
    if (index < 0) return undefined;
    this.#pendingTotal--;
    return queue.splice(index, 1)[0];
  }

  forget(_key: string, ids: readonly string[]): void {
    for (const id of ids) {
      const idKey = idKeyOf(id);
      this.#current.delete(idKey);
      this.#previous.delete(idKey);
    }
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

  #claim(queue: E[] | undefined): KeyRecord<E> {
    return { token: "", fence: ++this.#fence, holder: undefined, queue };
  }

  #held(key: string, claim: Claim): KeyRecord<E> | undefined {
    const record = this.#keys.get(key);
    return record !== undefined && record === claim ? record : undefined;
  }

  /**
   * True if `id` was seen within the window; otherwise remembers it.
   *
   * Ids live in two generations of Maps (id → expiry). The current one takes new ids; once it is a
   * window old (or holds half of `maxIds`) it becomes the previous one and the old previous is
   * dropped whole: every id in it has expired by then. Expiry is exact; memory is freed a
   * generation at a time, with no per-id pruning walk on the admission path.
   */
  #seen(id: string, window: number): boolean {
    const now = Date.now();
    const idKey = idKeyOf(id);
    const current = this.#current.get(idKey);
    if (current !== undefined) {
      // An id in the current generation is newer than any copy in the previous one.
      if (this.#currentStart + current > now) return true;
    } else {
      const previous = this.#previous.get(idKey);
      if (previous !== undefined && this.#previousStart + previous > now) return true;
    }
    if (now >= this.#rotateAt || (this.#current.size + 1) * 2 > this.#maxIds) {
      // Only a generation younger than a window can still hold live ids.
      this.#previous = now >= this.#rotateAt + window ? new Map() : this.#current;
      this.#previousStart = this.#currentStart;
      this.#current = new Map();
      this.#currentStart = now;
      this.#rotateAt = now + window;
    }
    this.#current.set(idKey, now - this.#currentStart + window);
    return false;
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
  const { maxIds = 100_000 } = options;
  if (typeof maxIds !== "number" || !(maxIds >= 1)) {
    throw new TypeError(
      `memoryStore: "maxIds" must be a number of at least 1 (the most de-duplication ids kept), got ${String(maxIds)}.`,
    );
  }
  return new InMemoryStore(maxIds);
}
