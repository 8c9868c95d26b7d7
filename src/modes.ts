// === Busy modes
//
// What happens to input that arrives while a key's turn runs. Each mode is a small table row: how
// the store admits the input (`whenHeld`), how pending input is grouped into the next turn
// (`batch`), and whether new input aborts the running turn (`interrupts`). Stores apply the first
// two atomically; the guard applies the third. `takeBatch` is the one grouping rule, shared by every
// store that keeps entries in process.

import type { BatchPolicy, StoreDrop, StoreEntry } from "./store.js";

/** What happens to input that arrives while a turn of its key runs. */
export type Mode = "collect" | "queue" | "steer" | "interrupt" | "latest" | "reject";

/** One mode's behaviour, as the guard and the store apply it. */
export interface ModeBehaviour {
  readonly whenHeld: "enqueue" | "latest" | "reject";
  readonly batch: BatchPolicy;
  readonly interrupts: boolean;
}

/** The modes table (README "Busy modes"). */
export const MODES: Readonly<Record<Mode, ModeBehaviour>> = {
  // pending inputs are coalesced into one next turn
  collect: { whenHeld: "enqueue", batch: "all", interrupts: false },
  // each pending input becomes its own turn, in order
  queue: { whenHeld: "enqueue", batch: "one", interrupts: false },
  // like collect, and the running turn is expected to `take()` pending input mid-run
  steer: { whenHeld: "enqueue", batch: "all", interrupts: false },
  // the running turn is aborted (superseded); the next turn starts once it has settled
  interrupt: { whenHeld: "enqueue", batch: "all", interrupts: true },
  // only the newest pending input is kept; earlier ones are dropped as superseded
  latest: { whenHeld: "latest", batch: "all", interrupts: false },
  // input that arrives during a turn is dropped as busy
  reject: { whenHeld: "reject", batch: "all", interrupts: false },
};

/**
 * Remove and return the next batch from a pending queue (oldest first). Expired entries are the
 * caller's to drop first (`dropExpired`).
 *
 * - an entry that is `alone` (an interaction, a lane) is always a batch of its own;
 * - `"one"` takes one entry; `"all"` takes the leading entries up to the next `alone` one, so FIFO
 *   order across batches is kept;
 * - `allowAlone: false` (steer's `take()`) never takes an `alone` entry: it must run as its own turn.
 */
export function takeBatch<E extends StoreEntry>(
  queue: E[],
  batch: BatchPolicy,
  allowAlone = true,
): E[] {
  const head = queue[0];
  if (head === undefined) return [];
  if (head.alone) return allowAlone ? queue.splice(0, 1) : [];
  if (batch === "one") return queue.splice(0, 1);
  let end = 1;
  while (end < queue.length && !(queue[end] as E).alone) end++;
  return queue.splice(0, end);
}

/** Compact `queue` in place, moving entries whose `expiresAt` has passed into `dropped`. */
export function dropExpired<E extends StoreEntry>(
  queue: E[],
  now: number,
  dropped: StoreDrop<E>[],
): void {
  let kept = 0;
  for (let i = 0; i < queue.length; i++) {
    const entry = queue[i] as E;
    if (entry.expiresAt <= now) dropped.push({ entry, reason: "expired" });
    else queue[kept++] = entry;
  }
  queue.length = kept;
}
