// === A store forwarded call by call, with its finishes observed
//
// The Redis tools run a guard on a real store and need to know when a key's turn has finished at
// the store (to start the next turn on that key, or to count hand-ons). Every call goes to the
// store as is; `finish`'s answer is handed to `onFinish` before the guard sees it.

import type { Finish, Store, StoreEntry } from "session-guard";

/**
 * `store`, forwarded; `onFinish(key, finish)` hears every answer to `finish`. `records`: forward
 * the store's outcome records too (`record`, `outcome`), so that the guard keeps them there.
 */
export function observedStore(
  store: Store<StoreEntry>,
  onFinish: (key: string, finish: Finish<StoreEntry>) => void,
  records = false,
): Store<StoreEntry> {
  const seam: Store<StoreEntry> = {
    shared: true,
    lease: store.lease,
    acquireOrEnqueue: (key, entry, policy) => store.acquireOrEnqueue(key, entry, policy),
    renew: (key, claim) => store.renew(key, claim),
    take: (key, claim, batch) => store.take(key, claim, batch),
    finish: (key, claim, batch, carry) =>
      Promise.resolve(store.finish(key, claim, batch, carry)).then((finish) => {
        onFinish(key, finish);
        return finish;
      }),
    abandon: (key, claim, requeue) => store.abandon(key, claim, requeue),
    clear: (key) => store.clear(key),
    withdraw: (key, id) => store.withdraw(key, id),
    forget: (key, ids) => store.forget(key, ids),
    pendingCount: (key) => store.pendingCount(key),
    attach: (host) => store.attach?.(host) ?? (() => {}),
  };
  if (!records) return seam;
  return {
    ...seam,
    record: (key, list, window) => store.record?.(key, list, window),
    outcome: (id) => store.outcome?.(id),
  };
}
