// === De-duplication ids seen within a window, in process
//
// Every admitted input with an id is remembered for the de-duplication window, so this is written
// on every admission and its size is the traffic of a whole window (100k ids by default). Two
// structures share the work:
//
// - An ascending log of small integer ids in typed arrays (a ring buffer). Platform ids are often
//   increasing integers (Telegram update ids): each new one is larger than every id before it, so
//   it is appended, and checking it is one comparison with the last. A redelivery is found by
//   binary search. The log holds no object per id, so the garbage collector never moves or marks
//   one, and it never rehashes.
// - Two generations of maps (id → expiry) for everything else: strings, and integers that arrive
//   out of order. The current generation takes new ids; once it is a window old it becomes the
//   previous one, and the old previous is dropped whole (every id in it has expired by then).
//
// Expiry is exact in both. Past `maxIds` the oldest ids are forgotten early, log first.

/** An id as remembered: a small integer as itself, anything else as its string. */
type IdKey = string | number;

/**
 * The id as a small integer when it is the canonical decimal form of one (`"0"`, `"735012345"`,
 * below 2^31), otherwise the string. One-to-one, so no two distinct ids meet.
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

const INITIAL_LOG = 1024;

export class SeenIds {
  readonly #maxIds: number;
  // The ascending log: ids[(head + i) & mask] for i < length, oldest first, with their expiries
  // (epoch ms; 0 for an id forgotten early).
  #ids = new Int32Array(0);
  #expiries = new Float64Array(0);
  #head = 0;
  #length = 0;
  /** Ids (and their expiries, in ms after their generation's start) in the two generations. */
  #current = new Map<IdKey, number>();
  #previous = new Map<IdKey, number>();
  #currentStart = 0;
  #previousStart = 0;
  /** Epoch ms at which the current generation is a window old. */
  #rotateAt = 0;

  constructor(maxIds: number) {
    this.#maxIds = maxIds;
  }

  /** Ids held (expired ones included until they are dropped). */
  get size(): number {
    return this.#length + this.#current.size + this.#previous.size;
  }

  /** True if `id` was seen within its window; otherwise remembers it for `window` ms. */
  check(id: string, window: number): boolean {
    const now = Date.now();
    const key = idKeyOf(id);
    if (typeof key === "number") {
      const length = this.#length;
      const mask = this.#ids.length - 1;
      if (length === 0 || key > (this.#ids[(this.#head + length - 1) & mask] as number)) {
        // Larger than every id in the log: new, unless it came out of order before.
        if (this.#inMaps(key, now)) return true;
        this.#append(key, now + window, now);
        return false;
      }
      const at = this.#find(key);
      if (at >= 0 && (this.#expiries[at] as number) > now) return true;
    }
    if (this.#inMaps(key, now)) return true;
    this.#remember(key, now, window);
    return false;
  }

  /** Forget ids, so that they are admitted again. */
  forget(id: string): void {
    const key = idKeyOf(id);
    if (typeof key === "number") {
      const at = this.#find(key);
      if (at >= 0) this.#expiries[at] = 0;
    }
    this.#current.delete(key);
    this.#previous.delete(key);
  }

  #inMaps(key: IdKey, now: number): boolean {
    if (this.#current.size === 0 && this.#previous.size === 0) return false;
    const current = this.#current.get(key);
    // An id in the current generation is newer than any copy in the previous one.
    if (current !== undefined) return this.#currentStart + current > now;
    const previous = this.#previous.get(key);
    return previous !== undefined && this.#previousStart + previous > now;
  }

  /** Remember an id in the maps. */
  #remember(key: IdKey, now: number, window: number): void {
    this.#makeRoom(now);
    if (now >= this.#rotateAt || (this.#current.size + 1) * 2 > this.#maxIds) {
      // Only a generation younger than a window can still hold live ids.
      this.#previous = now >= this.#rotateAt + window ? new Map() : this.#current;
      this.#previousStart = this.#currentStart;
      this.#current = new Map();
      this.#currentStart = now;
      this.#rotateAt = now + window;
    }
    this.#current.set(key, now - this.#currentStart + window);
  }

  /** Append an id larger than every id in the log. */
  #append(id: number, expiry: number, now: number): void {
    this.#makeRoom(now);
    let capacity = this.#ids.length;
    if (this.#length === capacity) {
      // Grow (a power of two, so that positions wrap with a mask), oldest first from index 0.
      const grown = Math.max(INITIAL_LOG, capacity * 2);
      const ids = new Int32Array(grown);
      const expiries = new Float64Array(grown);
      for (let i = 0; i < this.#length; i++) {
        const from = (this.#head + i) & (capacity - 1);
        ids[i] = this.#ids[from] as number;
        expiries[i] = this.#expiries[from] as number;
      }
      this.#ids = ids;
      this.#expiries = expiries;
      this.#head = 0;
      capacity = grown;
    }
    const at = (this.#head + this.#length) & (capacity - 1);
    this.#ids[at] = id;
    this.#expiries[at] = expiry;
    this.#length++;
  }

  /**
   * Drop the log's expired head (ids are appended in time order, so expired ones gather there)
   * and, at `maxIds`, forget the oldest ids early to admit one more.
   */
  #makeRoom(now: number): void {
    const mask = this.#ids.length - 1;
    while (this.#length > 0 && (this.#expiries[this.#head] as number) <= now) this.#shift(mask);
    while (this.size >= this.#maxIds) {
      if (this.#length > 0) this.#shift(mask);
      else if (this.#previous.size > 0) this.#previous = new Map();
      else {
        this.#previous = this.#current;
        this.#previousStart = this.#currentStart;
        this.#current = new Map();
      }
    }
    if (this.#length === 0) this.#head = 0;
  }

  #shift(mask: number): void {
    this.#head = (this.#head + 1) & mask;
    this.#length--;
  }

  /** The position of `id` in the log, or -1. */
  #find(id: number): number {
    const mask = this.#ids.length - 1;
    let low = 0;
    let high = this.#length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const at = (this.#head + middle) & mask;
      const value = this.#ids[at] as number;
      if (value === id) return at;
      if (value < id) low = middle + 1;
      else high = middle - 1;
    }
    return -1;
  }
}
