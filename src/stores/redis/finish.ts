// === FINISH: the end of every turn, on the hot path
//
// One script, one round trip: release the key, or keep the claim and hand back the next batch
// under a new fence (lua/finish.ts). An uncontended turn sends three keys; the queue and the
// bucket's fence only when input may be pending (the script asks for them, answering {"keys"}, if
// it finds that it needs them), and the carry list only with carried work (carried.ts). The
// outcome records of the key noted so far ride along on a standalone server (outcomes.ts).

import type { BatchPolicy, CarryOn, Claim, Finish, StoreEntry } from "session-guard";
import { type Carrying, carryArgs } from "./carried.js";
import { text } from "./entries.js";
import { type Bucket, bucketOf, carryKeyOf } from "./format.js";
import { SCRIPTS } from "./lua/index.js";
import type { Riding } from "./outcomes.js";
import { type ReplyStore, readFinish } from "./replies.js";

/** What finishing needs from the store. */
export interface FinishStore<E extends StoreEntry> extends ReplyStore<E> {
  readonly buckets: readonly Bucket[];
  readonly carrying: Carrying;
  /** FINISH's options argument for batch policy "all" and "one". */
  readonly finishAll: string;
  readonly finishOne: string;
  unhold(key: string, token: string): void;
  /** The outcome records of `key` that ride with its finish, and their end (outcomes.ts). */
  ride(key: string): Riding | undefined;
  rode(riding: Riding, error?: unknown): void;
}

const NO_RECORDS: Riding = { key: "", names: [], args: [] };

export function finish<E extends StoreEntry>(
  store: FinishStore<E>,
  key: string,
  claim: Claim,
  batch: BatchPolicy,
  carry?: CarryOn,
): Promise<Finish<E>> {
  const carrying = carry !== undefined || store.carrying.has(claim.token);
  let carried: string[] | undefined;
  try {
    carried = carrying ? carryArgs(carry) : undefined;
  } catch (error) {
    return Promise.reject(error);
  }
  const full = carried !== undefined || (store.pending.get(key) ?? 0) > 0;
  return finishWith(store, key, claim.token, batch, full, store.ride(key), carried);
}

function finishWith<E extends StoreEntry>(
  store: FinishStore<E>,
  key: string,
  token: string,
  batch: BatchPolicy,
  full: boolean,
  riding: Riding | undefined,
  carried?: string[],
): Promise<Finish<E>> {
  const bucket = store.buckets[bucketOf(key)] as Bucket;
  const tag = bucket.tag;
  const sha = SCRIPTS.finish.sha;
  const lease = `${tag}l:${key}`;
  const run = `${tag}r:${key}`;
  const options = batch === "one" ? store.finishOne : store.finishAll;
  const queue = `${tag}q:${key}`;
  const records = riding ?? NO_RECORDS;
  const count = records.names.length;
  const args = !full
    ? ["EVALSHA", sha, String(3 + count), lease, run, bucket.index]
    : carried === undefined
      ? ["EVALSHA", sha, String(5 + count), lease, run, bucket.index, queue, bucket.fence]
      : ["EVALSHA", sha, String(6 + count), lease, run, bucket.index, queue, bucket.fence];
  if (carried !== undefined) args.push(carryKeyOf(tag, key));
  if (count > 0) args.push(...records.names);
  args.push(token);
  if (count > 0) args.push(String(count), ...records.args);
  if (full) args.push(options);
  if (carried !== undefined) args.push(...carried);
  return store.scripts.eval(
    SCRIPTS.finish,
    args,
    (reply, sent) => {
      // The script ran, so the records are written whatever it answered ({"keys"} included).
      if (riding !== undefined) store.rode(riding);
      return full || reply === 0 || !Array.isArray(reply) || text(reply[0]) !== "keys"
        ? readFinish(store, key, token, reply, sent)
        : finishWith(store, key, token, batch, true, undefined);
    },
    (error) => {
      if (riding !== undefined) store.rode(riding, error);
      // The guard ends the turn here either way; the lease, if it survived, lapses.
      store.carrying.ended(token);
      store.unhold(key, token);
      throw error;
    },
  );
}
