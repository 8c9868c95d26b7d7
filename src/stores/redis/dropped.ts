// === Drops across replicas: the replica that admitted an input learns that another one dropped it
//
// A script that drops pending entries (a stop, a `latest` newcomer, an eviction its admission
// caused, an expiry) answers them to the replica that ran it, which reports them to its guard's
// `onDrop`. The caller of an entry admitted on another replica (its awaited `submit`, its own
// `onDrop`) lives on that replica: after each such reply, one hint per replica on its own channel,
//
//   "d|<reason>=<uid>,<reason>=<uid>…|<key>"
//
// tells it which of its entries were dropped and why (uids and reasons never hold "|", "," or
// "="; the key comes last and may hold anything). Older replicas ignore hints they do not know.
// Hints may be lost: the admitting replica's probe at the lease's expiry still finds the entry
// gone, and its caller then learns it was queued (`StoreHost.departed`).

import type { StoreEntry } from "session-guard";
import type { UidDrop } from "./entries.js";
import { hintChannel } from "./format.js";
import type { StoreParts } from "./parts.js";

/** What telling needs from the store. */
export interface DropTeller<E extends StoreEntry> extends StoreParts<E> {
  readonly prefix: string;
}

/** The replica of a uid `<replica>:<n>` (see `suffix()`), or `undefined` for other text. */
function replicaOfUid(uid: string): string | undefined {
  const end = uid.indexOf(":");
  return end > 0 ? uid.slice(0, end) : undefined;
}

/** Tell each replica that admitted some of `drops` (this one excepted) of its drops, in one hint. */
export function tellDropped<E extends StoreEntry>(
  store: DropTeller<E>,
  key: string,
  drops: readonly UidDrop[],
): void {
  let byReplica: Map<string, string[]> | undefined;
  for (const { uid, reason } of drops) {
    const replica = replicaOfUid(uid);
    if (replica === undefined || replica === store.replicaId) continue;
    byReplica ??= new Map();
    let items = byReplica.get(replica);
    if (items === undefined) byReplica.set(replica, (items = []));
    items.push(`${reason}=${uid}`);
  }
  if (byReplica === undefined) return;
  // Routed by the session's key (a Cluster node serving its slot); PUBLISH reaches every node.
  const route = store.names(key).lease;
  for (const [replica, items] of byReplica) {
    const message = `d|${items.join(",")}|${key}`;
    store.port
      .call(
        route,
        ["PUBLISH", hintChannel(store.prefix, replica), message],
        Date.now() + store.commandTimeout,
      )
      .catch((error: unknown) => store.scripts.background(error, key));
  }
}

/** A "d" hint's key and drops (see above). */
export function readDropHint(message: string): { key: string; drops: UidDrop[] } {
  const end = message.indexOf("|", 2);
  const drops: UidDrop[] = [];
  if (end < 0) return { key: "", drops };
  for (const item of message.slice(2, end).split(",")) {
    const at = item.indexOf("=");
    if (at <= 0) continue;
    drops.push({ uid: item.slice(at + 1), reason: item.slice(0, at) as UidDrop["reason"] });
  }
  return { key: message.slice(end + 1), drops };
}
