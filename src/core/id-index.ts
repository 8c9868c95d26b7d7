// === From an id to its ledger record, in typed arrays
//
// The ledger (`outcomes.ts`) finds the record of an id through this index. It was a `Map` from id
// to sequence number, and with the ids of a 10-minute window in it (100,000 at a modest rate)
// that map alone cost a guard a quarter of its CPU per update through a grammY bot: a table of
// pointers to young strings, rewritten at random places on every new id and rehashed as it grows,
// is work for the garbage collector on every pause (a build whose ledger kept its records but no
// map ran at 7.1 µs of CPU per update against 9.3 µs; see docs/benchmarks.md).
//
// Here an id is a 32-bit hash and the record's sequence number, side by side in one typed array
// the collector never looks into: open addressing, linear probing, at most half full, so a lookup
// reads one or two neighbouring places of one cache line. Two ids may share a hash; a hit is
// confirmed against the id the ledger keeps in the record (`IdSource.idAt`), so a collision costs
// a comparison and never a wrong answer. The hash is seeded per index, so ids chosen to collide
// cannot be prepared in advance.

/** Where the index confirms a hit: the id of the record with a sequence number. */
export interface IdSource {
  idAt(seq: number): string | undefined;
}

const INITIAL_PLACES = 2048;

/** A 32-bit hash of `id` (FNV-1a over its UTF-16 code units, seeded, then murmur3's finalizer). */
export function hashId(id: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  // FNV's low bits, which pick the place, mix poorly on their own.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

export class IdIndex {
  /** Hashes the index's `hashId` calls are seeded with. */
  readonly seed = (Math.random() * 0x100000000) | 0;
  readonly #source: IdSource;
  /**
   * Two numbers per place: the hash at 2 × place, and the sequence number + 1 of the record at the
   * next index (0: the place is empty).
   */
  #table = new Int32Array(2 * INITIAL_PLACES);
  #count = 0;

  constructor(source: IdSource) {
    this.#source = source;
  }

  /** The hash this index files `id` under (`hashId` with its seed). */
  hash(id: string): number {
    return hashId(id, this.seed);
  }

  /** Ids indexed. */
  get size(): number {
    return this.#count;
  }

  /** Places that hold an entry, counted (for tests: always `size`, or removal left some behind). */
  occupied(): number {
    let count = 0;
    for (let at = 1; at < this.#table.length; at += 2) if (this.#table[at] !== 0) count++;
    return count;
  }

  /** The sequence number of `id`'s record (`hash`: its `hashId`), or -1 when it has none. */
  find(id: string, hash: number): number {
    const table = this.#table;
    const mask = (table.length >> 1) - 1;
    for (let place = hash & mask; ; place = (place + 1) & mask) {
      const seq = (table[2 * place + 1] as number) - 1;
      if (seq < 0) return -1;
      if (table[2 * place] === hash && this.#source.idAt(seq) === id) return seq;
    }
  }

  /** Index a record for an id that has none indexed. */
  add(hash: number, seq: number): void {
    if ((this.#count + 1) * 4 > this.#table.length) this.#grow();
    put(this.#table, hash, seq + 1);
    this.#count++;
  }

  /** The record with sequence number `seq` (its id hashing to `hash`) is gone. */
  remove(hash: number, seq: number): void {
    const table = this.#table;
    const mask = (table.length >> 1) - 1;
    let hole = hash & mask;
    while (table[2 * hole + 1] !== seq + 1) {
      if (table[2 * hole + 1] === 0) return; // not indexed
      hole = (hole + 1) & mask;
    }
    this.#count--;
    // Linear probing without tombstones: every later entry of the run that may live in the hole
    // (its own place is not between the hole and it) moves back into it, leaving a new hole.
    for (let place = (hole + 1) & mask; table[2 * place + 1] !== 0; place = (place + 1) & mask) {
      const home = (table[2 * place] as number) & mask;
      const between = hole <= place ? hole < home && home <= place : hole < home || home <= place;
      if (between) continue;
      table[2 * hole] = table[2 * place] as number;
      table[2 * hole + 1] = table[2 * place + 1] as number;
      hole = place;
    }
    table[2 * hole + 1] = 0;
  }

  #grow(): void {
    const old = this.#table;
    const table = new Int32Array(old.length * 2);
    for (let at = 0; at < old.length; at += 2) {
      const stored = old[at + 1] as number;
      if (stored !== 0) put(table, old[at] as number, stored);
    }
    this.#table = table;
  }
}

/** Enter `stored` (a sequence number + 1) at the first empty place from `hash`'s own. */
function put(table: Int32Array, hash: number, stored: number): void {
  const mask = (table.length >> 1) - 1;
  let place = hash & mask;
  while (table[2 * place + 1] !== 0) place = (place + 1) & mask;
  table[2 * place] = hash;
  table[2 * place + 1] = stored;
}
