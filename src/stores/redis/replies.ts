// === Reading the answers of the hot-path scripts (ACQUIRE, FINISH) into the seam's answers
//
// What a reply means for this process is recorded here too: which keys it holds (holdings.ts, which
// `close()` waits for), the pending counts it knows, and the keys the takeover watches or forgets.

import type { Admission, CarriedRecord, Claim, Finish, StoreDrop, StoreEntry } from "session-guard";
import { type Carrying, readCarried } from "./carried.js";
import { text } from "./entries.js";
import type { StoreParts } from "./parts.js";
import type { Takeover } from "./takeover.js";

/** What the readers need from the store. */
export interface ReplyStore<E extends StoreEntry>
  extends Pick<StoreParts<E>, "entries" | "pending" | "scripts"> {
  readonly takeover: Takeover<E>;
  readonly carrying: Carrying;
  /** `sent`: when the command that set the lease was sent (the claim's `since`). */
  acquired(
    key: string,
    answer: readonly unknown[],
    sent: number,
  ): { claim: Claim; batch: E[]; dropped: StoreDrop<E>[]; carried?: CarriedRecord[] };
  hold(key: string, token: string): void;
  unhold(key: string, token: string): void;
}

const DUPLICATE = Object.freeze({ status: "duplicate" as const });
const BUSY = Object.freeze({ status: "rejected" as const, reason: "busy" as const });
const OVERFLOW = Object.freeze({ status: "rejected" as const, reason: "overflow" as const });
const LOST = Object.freeze({ status: "lost" as const });
const NONE: readonly never[] = Object.freeze([]);
const RELEASED = Object.freeze({ status: "released" as const, dropped: NONE });

/**
 * An `acquired` reply ({"acquired", token, fence, batch, drops, pending, carried}), from an
 * admission or a takeover: the claim, its batch, drops and carried work (only when there is some);
 * this replica now holds the key.
 */
export function readAcquired<E extends StoreEntry>(
  store: ReplyStore<E>,
  key: string,
  answer: readonly unknown[],
  sent: number,
): { claim: Claim; batch: E[]; dropped: StoreDrop<E>[]; carried?: CarriedRecord[] } {
  const claim: Claim = { token: text(answer[1]), fence: Number(answer[2]), since: sent };
  const batch = store.entries.entries(answer[3], key);
  const dropped = store.entries.drops(answer[4], key);
  store.pending.set(key, Number(answer[5] ?? 0));
  store.hold(key, claim.token);
  store.takeover.holding(key);
  const carried = readCarried(answer[6]);
  if (carried === undefined) return { claim, batch, dropped };
  store.carrying.handed(claim.token, carried);
  return { claim, batch, dropped, carried };
}

/** ACQUIRE's answer to an admission of `entry` (uid `uid`). */
export function readAdmission<E extends StoreEntry>(
  store: ReplyStore<E>,
  key: string,
  uid: string,
  entry: E,
  reply: unknown,
  sent: number,
): Admission<E> {
  store.scripts.answered();
  if (!Array.isArray(reply)) {
    // The fence alone: the key was free, and the entry is the first turn's batch.
    store.entries.delete(uid);
    store.pending.delete(key);
    store.takeover.holding(key);
    const fence = Number(reply);
    const claim: Claim = { token: `${fence}:${uid}`, fence, since: sent };
    store.hold(key, claim.token);
    return { status: "acquired", claim, batch: [entry], dropped: NONE as never };
  }
  const answer = reply;
  const status = text(answer[0]);
  switch (status) {
    case "dup":
      store.entries.delete(uid);
      return DUPLICATE;
    case "busy":
      store.entries.delete(uid);
      return BUSY;
    case "overflow":
      store.entries.delete(uid);
      return OVERFLOW;
    case "queued": {
      const holder = text(answer[1]);
      const pttl = Number(answer[2]);
      const pending = Number(answer[3]);
      const dropped = store.entries.drops(answer[4], key);
      if (store.entries.has(uid)) {
        store.pending.set(key, pending);
        store.takeover.queued(key, uid, holder, pttl);
      } else if (store.pending.has(key)) {
        // Dropped by another replica before this reply arrived (its hint came first): nothing of
        // this replica waits there, so the count is kept only for a key held or watched here.
        store.pending.set(key, pending);
      }
      return { status: "queued", pending, dropped };
    }
    case "acquired":
      return { status: "acquired", ...store.acquired(key, answer, sent) };
    default: {
      // "free": the entry itself had expired on arrival; it is among the drops.
      store.entries.delete(uid);
      return { status: "queued", pending: 0, dropped: store.entries.drops(answer[1], key) };
    }
  }
}

/** FINISH's answer for the claim `token`. */
export function readFinish<E extends StoreEntry>(
  store: ReplyStore<E>,
  key: string,
  token: string,
  reply: unknown,
  sent: number,
): Finish<E> {
  store.scripts.answered();
  store.carrying.ended(token);
  // 0: released, nothing pending, nothing dropped, no lane waiting.
  if (!Array.isArray(reply)) return released(store, key, token, RELEASED);
  const answer = reply;
  const status = text(answer[0]);
  if (status === "lost") {
    // The lease ran out before this finish arrived (or another replica holds the key now): the
    // turn's inputs may run again elsewhere, which the guard reports as a lease loss.
    store.pending.delete(key);
    store.unhold(key, token);
    // Input waits behind the claim this turn lost: make sure someone runs it.
    if (Number(answer[1]) > 0) store.takeover.lost(key, Number(answer[2]));
    return LOST;
  }
  if (status === "released") {
    // The drops first: they are entries admitted here, which the release would let depart.
    const dropped = store.entries.drops(answer[1], key);
    return released(store, key, token, { status: "released", dropped });
  }
  const next: Claim = { token: text(answer[1]), fence: Number(answer[2]), since: sent };
  const entries = store.entries.entries(answer[3], key);
  const dropped = store.entries.drops(answer[4], key);
  store.pending.set(key, Number(answer[5]));
  store.hold(key, next.token);
  const carried = readCarried(answer[6]);
  if (carried === undefined) return { status: "next", claim: next, batch: entries, dropped };
  store.carrying.handed(next.token, carried);
  return { status: "next", claim: next, batch: entries, dropped, carried };
}

/** The key was released under the claim `token`: nothing of this replica waits there any more. */
function released<E extends StoreEntry>(
  store: ReplyStore<E>,
  key: string,
  token: string,
  answer: Finish<E>,
): Finish<E> {
  store.pending.delete(key);
  store.takeover.released(key);
  store.unhold(key, token);
  return answer;
}
