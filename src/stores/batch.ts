// === Batches: how pending entries are grouped into a turn
//
// The one grouping rule, shared by every store that keeps entries in process (the Redis store has
// the same rule in Lua). The guard never calls these: it only names the policy (`BatchPolicy`).

import type { BatchPolicy, StoreDrop, StoreEntry } from "./store.js";

/**
 * Remove and return the next batch from a pending queue (oldest first). Expired entries are the
 * caller's to drop first (`dropExpired`).
 *
 * - an entry that is `alone` (an interaction, a lane) is always a batch of its own;
 * - `"one"` takes one entry; `"all"` takes the leading entries up to the next `alone` one, so FIFO
 *   order across batches is kept;
 * - a batch that takes an entry of a `group` takes every pending entry of that group too (the
 *   photos of one album are one input, wherever they stand in the queue);
 * - `allowAlone: false` (steer's `take()`, moving input into a turn that already runs) takes
 *   neither an `alone` entry, which must run as its own turn, nor an entry of a group, whose rest
 *   may still be arriving: it runs later, as a turn that waits out the group's window. Both end
 *   the taken run, so FIFO order is kept.
 */
export function takeBatch<E extends StoreEntry>(
  queue: E[],
  batch: BatchPolicy,
  allowAlone = true,
): E[] {
  const head = queue[0];
  if (head === undefined) return [];
  if (!allowAlone) {
    let end = 0;
    while (
      end < queue.length &&
      !(queue[end] as E).alone &&
      (queue[end] as E).group === undefined
    ) {
      end++;
      if (batch === "one") break;
    }
    return queue.splice(0, end);
  }
  // One entry (`queue` mode, a command) comes off the front without `splice`'s copying.
  if (head.alone) return [queue.shift() as E];
  let end = 1;
  if (batch === "all") while (end < queue.length && !(queue[end] as E).alone) end++;
  const taken = end === 1 ? [queue.shift() as E] : queue.splice(0, end);
  if (queue.length > 0) joinGroups(taken, queue);
  return taken;
}

/** Remove and return the entries of `group` from a pending queue, oldest first. */
export function takeGroup<E extends StoreEntry>(queue: E[], group: string): E[] {
  const taken: E[] = [];
  let kept = 0;
  for (let i = 0; i < queue.length; i++) {
    const entry = queue[i] as E;
    if (entry.group === group) taken.push(entry);
    else queue[kept++] = entry;
  }
  queue.length = kept;
  return taken;
}

/** Move every entry of `queue` that shares a group with an entry of `taken` into `taken`. */
function joinGroups<E extends StoreEntry>(taken: E[], queue: E[]): void {
  let groups: Set<string> | undefined;
  for (const entry of taken) if (entry.group !== undefined) (groups ??= new Set()).add(entry.group);
  if (groups === undefined) return;
  let kept = 0;
  for (let i = 0; i < queue.length; i++) {
    const entry = queue[i] as E;
    if (entry.group !== undefined && groups.has(entry.group)) taken.push(entry);
    else queue[kept++] = entry;
  }
  queue.length = kept;
}

/**
 * Whether a `latest` newcomer supersedes a pending entry: every entry it could have joined, except
 * those that must run alone and those of its own group (the earlier photos of its album).
 */
export function supersedes(newcomer: StoreEntry, pending: StoreEntry): boolean {
  return !pending.alone && (newcomer.group === undefined || pending.group !== newcomer.group);
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
