// === FINISH: the end of every turn, on the hot path
//
// One script, one round trip: release the key, or keep the claim and hand back the next batch
// under a new fence (lua/finish.ts). An uncontended turn sends three keys; the queue and the
// bucket's fence only when input may be pending (the script asks for them, answering {"keys"}, if
// it finds that it needs them), and the carry list only with carried work (carried.ts).

import type { BatchPolicy, CarryOn, Claim, Finish, StoreEntry } from "session-guard";
import { type Carrying, carryArgs } from "./carried.js";
import { text } from "./entries.js";
import { type Bucket, bucketOf, carryKeyOf } from "./format.js";
import { SCRIPTS } from "./lua/index.js";
import { type ReplyStore, readFinish } from "./replies.js";

/** What finishing needs from the store. */
export interface FinishStore<E extends StoreEntry> extends ReplyStore<E> {
  readonly buckets: readonly Bucket[];
  readonly carrying: Carrying;
  /** FINISH's options argument for batch policy "all" and "one". */
  readonly finishAll: string;
  readonly finishOne: string;
  unhold(key: string, token: string): void;
}

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
  return finishWith(store, key, claim.token, batch, full, carried);
}

function finishWith<E extends StoreEntry>(
  store: FinishStore<E>,
  key: string,
  token: string,
  batch: BatchPolicy,
  full: boolean,
  carried?: string[],
): Promise<Finish<E>> {
  const bucket = store.buckets[bucketOf(key)] as Bucket;
  const tag = bucket.tag;
  const sha = SCRIPTS.finish.sha;
  const lease = `${tag}l:${key}`;
  const run = `${tag}r:${key}`;
  const options = batch === "one" ? store.finishOne : store.finishAll;
  const queue = `${tag}q:${key}`;
  const args = !full
    ? ["EVALSHA", sha, "3", lease, run, bucket.index, token]
    : carried === undefined
      ? ["EVALSHA", sha, "5", lease, run, bucket.index, queue, bucket.fence, token, options]
      : [
          "EVALSHA",
          sha,
          "6",
          lease,
          run,
          bucket.index,
          queue,
          bucket.fence,
          carryKeyOf(tag, key),
          token,
          options,
          ...carried,
        ];
  return store.scripts.eval(
    SCRIPTS.finish,
    args,
    (reply) =>
      full || reply === 0 || !Array.isArray(reply) || text(reply[0]) !== "keys"
        ? readFinish(store, key, token, reply)
        : finishWith(store, key, token, batch, true),
    (error) => {
      // The guard ends the turn here either way; the lease, if it survived, lapses.
      store.carrying.ended(token);
      store.unhold(key, token);
      throw error;
    },
  );
}
