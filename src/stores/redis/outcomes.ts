// === Outcomes across replicas: what became of each input, found by its id alone
//
// `guard.outcome(id)` has no key, so a record lives under the id's own bucket:
//
//   "{" + prefix + bucketOf(id) + "}o:" + id    "<state>|<reason>|<fence>|<at>|<key>"
//
// (`reason` and `fence` empty when the state has none; the key last, as it may hold anything). A
// final record (handled, failed, dropped) lives for the guard's window (its de-duplication window);
// a pending or running one at least a day, since an input may wait or run longer than the window:
// its final record, written when it ends, replaces it.
//
// The guard never awaits a write. Records are coalesced per event-loop turn: the last record of an
// id wins (a turn's `pending` and `running`, noted in one go, are one write), and a batch is one
// command per bucket (a SET, or RECORD for several), so every command is single-slot in Cluster.
// One batch is in flight at a time: records noted meanwhile wait for it, so the writes of an id
// reach Redis in the order they were noted (running before handled), even when a command had to
// wait for its connection. A failed batch is reported once per outage (`StoreError("record")`)
// and its records are not written again (a later state of the same id may already be queued).
// A replica reads its own records that are not written yet from memory (read-your-writes).
//
// On a standalone server the records of a key noted before its finish ride with it (`ride`): a
// turn's `handled` is noted just before its finish is sent, so an uncontended turn writes its
// record without a command of its own (lua/finish.ts). Not in Redis Cluster (another slot), and not
// a record of an id whose earlier record is still in flight (the order of an id's writes holds).

import {
  type Outcome,
  type OutcomeRecord,
  type OutcomeState,
  type StoreEntry,
  StoreError,
  type StoreHost,
} from "session-guard";
import { illFormed } from "./control.js";
import { text } from "./entries.js";
import { type Bucket, bucketOf, wellFormed } from "./format.js";
import { SCRIPTS } from "./lua/index.js";
import type { StoreParts } from "./parts.js";

/** How long a pending or running record lives at least, in ms. */
export const LIVE_RECORD_MS = 24 * 60 * 60_000;

/** The key of `id`'s outcome record. */
export function outcomeKeyOf(bucket: Bucket, id: string): string {
  return `${bucket.tag}o:${id}`;
}

/** A record's stored value (see above). */
export function encodeOutcome(key: string, record: OutcomeRecord): string {
  return `${record.state}|${record.reason ?? ""}|${record.fence ?? ""}|${record.at}|${key}`;
}

/** A stored value as an outcome, or `undefined` when it does not read as one. */
export function decodeOutcome(value: string): Outcome | undefined {
  const a = value.indexOf("|");
  const b = value.indexOf("|", a + 1);
  const c = value.indexOf("|", b + 1);
  const d = value.indexOf("|", c + 1);
  if (a < 0 || b < 0 || c < 0 || d < 0) return undefined;
  const outcome: { -readonly [K in keyof Outcome]: Outcome[K] } = {
    key: value.slice(d + 1),
    state: value.slice(0, a) as OutcomeState,
    at: Number(value.slice(c + 1, d)),
  };
  const reason = value.slice(a + 1, b);
  const fence = value.slice(b + 1, c);
  if (reason !== "") outcome.reason = reason as Outcome["reason"];
  if (fence !== "") outcome.fence = Number(fence);
  return outcome;
}

/** What the writer needs from the store. */
export type OutcomeStore<E extends StoreEntry> = Pick<
  StoreParts<E>,
  "buckets" | "port" | "commandTimeout" | "scripts"
>;

const NOTHING: ReadonlyMap<string, Queued> = new Map<string, Queued>();

/** A record waiting to be written. */
interface Queued {
  readonly key: string;
  readonly px: number;
  readonly value: string;
}

/** Records riding with a finish: their keys, then (PX, value) per record, as FINISH takes them. */
export interface Riding {
  readonly key: string;
  readonly names: string[];
  readonly args: string[];
}

export class OutcomeWriter<E extends StoreEntry> {
  readonly #store: OutcomeStore<E>;
  host: StoreHost<E> | undefined;
  /** The store closed its connections: records are no longer written. */
  closed = false;
  /** Records noted since the last batch, by outcome key (the last of an id wins). */
  #queued = new Map<string, Queued>();
  /** The batch in flight, by outcome key. */
  #flying: ReadonlyMap<string, Queued> = NOTHING;
  /** Outcome keys of the queued records, by the key of their session (for `ride`). */
  #byKey = new Map<string, string[]>();
  /** Records riding with a finish in flight, by outcome key (read-your-writes). */
  readonly #riding = new Map<string, Queued>();
  #scheduled = false;
  #inFlight = false;
  /** A failure was reported; the next success closes the incident. */
  #failing = false;
  #idle: (() => void)[] = [];

  constructor(store: OutcomeStore<E>) {
    this.#store = store;
  }

  /** Queue the records of `key`; they are written with the next batch. */
  record(key: string, records: readonly OutcomeRecord[], window: number): void {
    if (this.closed) return;
    const buckets = this.#store.buckets;
    for (const record of records) {
      const id = record.id;
      if (!wellFormed(id)) continue; // the guard refuses such ids at its door
      const final = record.state !== "pending" && record.state !== "running";
      const px = Math.max(1, Math.ceil(final ? window : Math.max(window, LIVE_RECORD_MS)));
      const name = outcomeKeyOf(buckets[bucketOf(id)] as Bucket, id);
      // Deleted first, so that the record moves to the end: the batch keeps the order of notes.
      if (!this.#queued.delete(name)) {
        const names = this.#byKey.get(key);
        if (names === undefined) this.#byKey.set(key, [name]);
        else names.push(name);
      }
      this.#queued.set(name, { key, px, value: encodeOutcome(key, record) });
    }
    this.#schedule();
  }

  /**
   * Take the queued records of `key` to ride with its finish (standalone servers only), or
   * `undefined`. The finish calls `rode` once it answered or failed.
   */
  ride(key: string, cluster: boolean): Riding | undefined {
    if (cluster || this.closed) return undefined;
    const names = this.#byKey.get(key);
    if (names === undefined) return undefined;
    this.#byKey.delete(key);
    let riding: Riding | undefined;
    for (const name of names) {
      const queued = this.#queued.get(name);
      // Replaced by a record of another key, or an earlier record of the id is still in flight
      // (in a batch, or riding with another finish): it stays for the next batch.
      if (queued === undefined || queued.key !== key) continue;
      if (this.#flying.has(name) || this.#riding.has(name)) continue;
      this.#queued.delete(name);
      this.#riding.set(name, queued);
      riding ??= { key, names: [], args: [] };
      riding.names.push(name);
      riding.args.push(String(queued.px), queued.value);
    }
    return riding;
  }

  /** The finish that `riding` rode with answered (`error` undefined) or failed. */
  rode(riding: Riding, error?: unknown): void {
    for (const name of riding.names) this.#riding.delete(name);
    if (error === undefined) this.#written();
    else this.#failed(riding.key, error);
    this.#schedule();
    this.#settled();
  }

  /** The last record of `id`, read from Redis. */
  read(id: string): Promise<Outcome | undefined> {
    if (!wellFormed(id)) return Promise.reject(illFormed("id", id));
    const store = this.#store;
    const name = outcomeKeyOf(store.buckets[bucketOf(id)] as Bucket, id);
    // This replica reads its own records even before they are written.
    const unwritten = this.#queued.get(name) ?? this.#riding.get(name) ?? this.#flying.get(name);
    if (unwritten !== undefined) return Promise.resolve(decodeOutcome(unwritten.value));
    return store.port
      .call(name, ["GET", name], Date.now() + store.commandTimeout)
      .then((reply) =>
        reply === null || reply === undefined ? undefined : decodeOutcome(text(reply)),
      );
  }

  /** Resolves once every record noted so far was written (or failed): the store closes. */
  drained(): Promise<void> {
    if (this.#queued.size === 0 && !this.#inFlight && this.#riding.size === 0) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight || this.#queued.size === 0) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  /** Write the queued records: one command per bucket, all sent at once. */
  #flush(): void {
    this.#scheduled = false;
    const batch = this.#queued;
    this.#queued = new Map();
    this.#byKey = new Map();
    if (this.#riding.size > 0) {
      // A later record of an id whose record rides with a finish waits for that finish (which
      // may yet be sent again, as EVAL): an id's writes reach Redis in the order they were noted.
      for (const [name, queued] of batch) {
        if (!this.#riding.has(name)) continue;
        batch.delete(name);
        this.#queued.set(name, queued);
      }
    }
    if (batch.size === 0) {
      this.#settled();
      return;
    }
    this.#flying = batch;
    this.#inFlight = true;
    const store = this.#store;
    const deadline = Date.now() + store.commandTimeout;
    const byBucket = new Map<string, [string, Queued][]>();
    for (const item of batch) {
      const name = item[0];
      const tag = name.slice(0, name.indexOf("}") + 1);
      const group = byBucket.get(tag);
      if (group === undefined) byBucket.set(tag, [item]);
      else group.push(item);
    }
    let left = byBucket.size;
    const done = () => {
      if (--left > 0) return;
      this.#inFlight = false;
      this.#flying = NOTHING;
      this.#schedule();
      this.#settled();
    };
    const failed = (items: [string, Queued][]) => (error: unknown) => {
      this.#failed(items[0]?.[1].key, error);
      done();
    };
    const written = () => {
      this.#written();
      done();
    };
    for (const items of byBucket.values()) {
      if (items.length === 1) {
        const [name, { px, value }] = items[0] as [string, Queued];
        store.port
          .call(name, ["SET", name, value, "PX", String(px)], deadline)
          .then(written, failed(items));
        continue;
      }
      const args = ["EVALSHA", SCRIPTS.record.sha, String(items.length)];
      for (const [name] of items) args.push(name);
      for (const [, { px, value }] of items) args.push(String(px), value);
      store.scripts
        .eval(SCRIPTS.record, args, written, (error) => {
          failed(items)(error);
          throw error;
        })
        .catch(() => {});
    }
  }

  /** A write failed: reported once per outage, with the key of (the first) record that failed. */
  #failed(key: string | undefined, error: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    this.host?.error(new StoreError("record", key, error), key);
  }

  #written(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.host?.recovered?.("record");
  }

  #settled(): void {
    if (this.#inFlight || this.#scheduled || this.#queued.size > 0 || this.#riding.size > 0) {
      return;
    }
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
