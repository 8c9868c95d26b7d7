// === 3. Memory: what idle keys and pending inputs cost (run node with --expose-gc)
//
// Through the core guard with the default memory store. Heap figures are `heapUsed` after
// collecting garbage until it stops shrinking, before and after; the inputs are small integers
// (no allocation), so what is measured is the guard's own bookkeeping.

import { createGuard, type Guard, memoryStore } from "session-guard";
import { gate, progress, settleHeap } from "./harness.js";

export interface IdleKeysResult {
  readonly keys: number;
  /** Retained heap after every key has gone idle, in bytes. */
  readonly retainedBytes: number;
  readonly bytesPerKey: number;
  /** Keys, pending inputs and de-duplication ids the store still holds at the end. */
  readonly keysHeld: number;
  readonly idsHeld: number;
}

export interface PendingResult {
  readonly pending: number;
  readonly bytesPerPending: number;
}

const BATCH = 10_000;
const noop = (): void => {};

/**
 * Which de-duplication ids the inputs carry: none, text (`update:17`), or increasing integers as
 * text (`"17"`, as Telegram update ids are), which the memory store keeps in its integer log.
 */
export type IdKind = "none" | "text" | "integer";

/** `keys` distinct keys, each with one input whose turn runs and settles, with ids of `ids`. */
async function churn(guard: Guard<number>, from: number, keys: number, ids: IdKind) {
  for (let start = from; start < from + keys; start += BATCH) {
    const end = Math.min(start + BATCH, from + keys);
    for (let i = start; i < end; i++) {
      const id = ids === "text" ? `update:${i}` : ids === "integer" ? String(i) : undefined;
      void guard.submit(`chat:${i}`, i, noop, id === undefined ? undefined : { id });
    }
    await guard.onIdle();
  }
}

export async function idleKeys(keys: number, ids: IdKind): Promise<IdleKeysResult> {
  const store = memoryStore();
  const guard = createGuard<number>({ store });
  // Warm up first: compiled code and the store's first generations belong to the baseline.
  await churn(guard, -2 * BATCH, 2 * BATCH, "none");
  const before = await settleHeap();
  await churn(guard, 0, keys, ids);
  const after = await settleHeap();
  const retainedBytes = after - before;
  progress(`${keys} keys, ids ${ids}: ${retainedBytes} bytes retained`);
  const result = {
    keys,
    retainedBytes,
    bytesPerKey: retainedBytes / keys,
    keysHeld: store.keyCount + guard.activeCount,
    idsHeld: store.idCount,
  };
  await guard.close();
  return result;
}

/** Heap per pending input: `keys` turns held open, `perKey` inputs waiting behind each. */
export async function pendingInputs(
  keys: number,
  perKey: number,
  ids: boolean,
): Promise<PendingResult> {
  const thinking = gate();
  const guard = createGuard<number>({ maxPending: perKey, maxPendingTotal: keys * perKey });
  const hold = () => thinking.promise;
  for (let n = 0; n < keys; n++) void guard.submit(`chat:${n}`, n, hold);
  const before = await settleHeap();
  let seq = 0;
  for (let k = 0; k < perKey; k++) {
    for (let n = 0; n < keys; n++) {
      void guard.submit(`chat:${n}`, n, hold, ids ? { id: `update:${seq++}` } : undefined);
    }
  }
  const after = await settleHeap();
  let pending = 0;
  for (let n = 0; n < keys; n++) pending += guard.pendingCount(`chat:${n}`);
  if (pending !== keys * perKey) throw new Error(`${pending} inputs pending, not ${keys * perKey}`);
  thinking.open();
  await guard.onIdle();
  await guard.close();
  const bytesPerPending = (after - before) / pending;
  progress(
    `${pending} pending ${ids ? "with" : "without"} ids: ${bytesPerPending.toFixed(1)} B each`,
  );
  return { pending, bytesPerPending };
}
