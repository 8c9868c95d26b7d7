// === The Redis store's operations off the hot path: hand-over, stop, withdraw, expiry, keys
//
// Each is one script (lua/) and one round trip, except `keys`, which reads every bucket's index.

import type { CarryOn, Claim, Expiry, Stopped, StoreEntry } from "session-guard";
import { type Carrying, carryArgs } from "./carried.js";
import { list, text } from "./entries.js";
import { BUCKETS, type Bucket, bucketOf, idField, idKeyOf, wellFormed } from "./format.js";
import { SCRIPTS } from "./lua/index.js";
import type { StoreParts } from "./parts.js";

/** What these operations need from the store. */
export interface ControlStore<E extends StoreEntry> extends StoreParts<E> {
  readonly hints: string;
  readonly carrying: Carrying;
  unhold(key: string, token: string): void;
}

const DUPLICATE = Object.freeze({ status: "duplicate" as const });
const NONE: readonly never[] = Object.freeze([]);

/**
 * A TypeError for a key, id or group with a lone surrogate: Redis sees UTF-8, where every lone
 * surrogate is the same U+FFFD, so two different keys would share one lease (and an id would not
 * even encode). The guard refuses them at its door too; a store used directly refuses them here.
 */
export function illFormed(what: string, value: string): TypeError {
  return new TypeError(
    `redisStore: the ${what} ${JSON.stringify(value)} is not well-formed UTF-16 (it holds a lone surrogate, which Redis cannot tell apart from others). Use String.prototype.toWellFormed() or another encoding.`,
  );
}

/**
 * Release the key for another replica (shutdown), announcing it when input waits. `carry`: the
 * turn's carried work waits for that replica (carried.ts).
 */
export function abandon<E extends StoreEntry>(
  store: ControlStore<E>,
  key: string,
  claim: Claim,
  requeue: boolean,
  carry?: CarryOn,
): Promise<readonly E[]> {
  let carried: [string, string];
  try {
    carried = carryArgs(carry);
  } catch (error) {
    return Promise.reject(error);
  }
  const names = store.names(key);
  store.pending.delete(key);
  store.carrying.ended(claim.token);
  return store.scripts.call(
    SCRIPTS.abandon,
    [names.lease, names.queue, names.run, names.index, names.carry],
    [claim.token, store.hints, store.replicaId, requeue ? "1" : "0", ...carried],
    () => {
      store.unhold(key, claim.token);
      return NONE;
    },
  );
}

/** Remove the pending entries (a stop without `stop`). */
export function clear<E extends StoreEntry>(
  store: ControlStore<E>,
  key: string,
): Promise<readonly E[]> {
  if (!wellFormed(key)) return Promise.reject(illFormed("key", key));
  const names = store.names(key);
  return store.scripts.call(
    SCRIPTS.clear,
    [names.lease, names.queue, names.run, names.index],
    [store.hints, store.replicaId],
    (reply) => {
      store.pending.set(key, 0);
      return store.entries.entries(reply, key, "stopped");
    },
  );
}

/**
 * Stop the key wherever its turn runs: the stop id is de-duplicated with the inputs' ids, pending
 * entries are removed, and the claim is marked stopped, which its holder's next renewal reports.
 */
export function stop<E extends StoreEntry>(
  store: ControlStore<E>,
  key: string,
  id: string | undefined,
  dedupe: number,
): Promise<Stopped<E>> {
  if (!wellFormed(key)) return Promise.reject(illFormed("key", key));
  if (id !== undefined && !wellFormed(id)) return Promise.reject(illFormed("id", id));
  const names = store.names(key);
  const keys = [names.lease, names.queue, names.run, names.index];
  let window = "0";
  if (id !== undefined && dedupe > 0) {
    keys.push(idKeyOf(names.tag, key, id));
    if (dedupe !== Number.POSITIVE_INFINITY) window = String(Math.max(1, Math.ceil(dedupe)));
  }
  return store.scripts.call(SCRIPTS.stop, keys, [window, store.hints, store.replicaId], (reply) => {
    const answer = list(reply);
    if (text(answer[0]) === "dup") return DUPLICATE;
    store.pending.set(key, 0);
    return {
      status: "stopped",
      held: Number(answer[1]) === 1,
      entries: store.entries.entries(answer[2], key, "stopped"),
    };
  });
}

/** Keys held or with pending input that start with `prefix`, from every bucket's index. */
export function keys<E extends StoreEntry>(
  store: ControlStore<E>,
  prefix: string,
): Promise<readonly string[]> {
  if (!wellFormed(prefix)) return Promise.reject(illFormed("prefix", prefix));
  const rounds: Promise<string[]>[] = [];
  for (let bucket = 0; bucket < BUCKETS; bucket++) {
    const index = (store.buckets[bucket] as Bucket).index;
    rounds.push(
      store.scripts.call(SCRIPTS.keys, [index], [prefix], (reply) => list(reply).map(text)),
    );
  }
  return Promise.all(rounds).then((found) => found.flat());
}

/** Remove one pending entry by id; the replica that admitted it, if another one, is told. */
export function withdraw<E extends StoreEntry>(
  store: ControlStore<E>,
  key: string,
  id: string,
): Promise<E | undefined> {
  if (!wellFormed(id)) return Promise.reject(illFormed("id", id));
  const names = store.names(key);
  return store.scripts.call(
    SCRIPTS.withdraw,
    [names.lease, names.queue, names.run, names.index],
    [idField(id)],
    (reply) => {
      if (typeof reply !== "string" && !(reply instanceof Uint8Array)) return undefined;
      const pending = store.pending.get(key);
      if (pending !== undefined && pending > 0) store.pending.set(key, pending - 1);
      return store.entries.withdrawn(text(reply), key);
    },
  );
}

/** Drop the key's expired pending entries; say when the next one expires. */
export function expire<E extends StoreEntry>(
  store: ControlStore<E>,
  key: string,
): Promise<Expiry<E>> {
  const names = store.names(key);
  return store.scripts.call(
    SCRIPTS.expire,
    [names.lease, names.queue, names.run, names.index],
    [],
    (reply) => {
      const answer = list(reply);
      const dropped = store.entries.drops(answer[0], key);
      store.pending.set(key, Number(answer[1]));
      const next = text(answer[2]);
      // Redis' clock: the guard's timer, on this host's clock, errs by their skew.
      return { dropped, next: next === "" ? Number.POSITIVE_INFINITY : Number(next) };
    },
  );
}

/** Forget de-duplication ids, so their redelivery is admitted again. */
export function forget<E extends StoreEntry>(
  store: ControlStore<E>,
  key: string,
  ids: readonly string[],
): Promise<void> {
  const usable = ids.filter(wellFormed);
  if (usable.length === 0) return Promise.resolve();
  const tag = (store.buckets[bucketOf(key)] as Bucket).tag;
  const keys = usable.map((id) => idKeyOf(tag, key, id));
  return store.port
    .call(keys[0] as string, ["DEL", ...keys], Date.now() + store.commandTimeout)
    .then(() => undefined);
}
