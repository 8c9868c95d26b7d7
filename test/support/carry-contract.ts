// The store contract for a store that keeps carried work (`Store.carry`, issue 15), part of the
// store contract (store-contract.ts calls it): the records a claim is handed with its next batch,
// in order, the fence of each write, and every way carried work is discarded. A store without
// `carry` (the memory store: the guard keeps carried work itself) has nothing to check here.

import type { AdmitPolicy, CarriedRecord, Claim, Store, StoreEntry } from "session-guard";
import { expect, it } from "vitest";

const POLICY: AdmitPolicy = {
  whenHeld: "enqueue",
  maxPending: 100,
  overflow: "drop-oldest",
  maxPendingTotal: 10_000,
  dedupe: 60_000,
  batch: "all",
};

function entry(name: string): StoreEntry {
  return { id: undefined, alone: false, expiresAt: Number.POSITIVE_INFINITY, data: `"${name}"` };
}

/** Records as `value:reason@fence`, to compare at a glance. */
const records = (carried: readonly CarriedRecord[] | undefined) =>
  (carried ?? []).map((r) => `${JSON.parse(r.data)}:${r.reason}@${r.fence}`);

type WithStore = (
  body: (store: Store<StoreEntry>, key: (name: string) => string) => Promise<void>,
) => () => Promise<void>;

export function carryContract(withStore: WithStore): void {
  async function claimOf(store: Store<StoreEntry>, key: string): Promise<Claim> {
    const answer = await store.acquireOrEnqueue(key, entry("first"), POLICY);
    if (answer.status !== "acquired") throw new Error(`expected acquired, got ${answer.status}`);
    expect(answer.carried ?? []).toEqual([]);
    return answer.claim;
  }

  it(
    "carried work: handed on with the next batch in order (the guard's value, not an older write), fenced, discarded by a finish without carry",
    withStore(async (store, key) => {
      if (store.carry === undefined) return;
      const k = key("k");
      const first = await claimOf(store, k);
      expect(await store.carry(k, first, '"v1 early"')).toBe(true);
      await store.acquireOrEnqueue(k, entry("b"), POLICY);
      const second = await store.finish(k, first, "all", { reason: "superseded", data: '"v1"' });
      if (second.status !== "next") throw new Error(`expected next, got ${second.status}`);
      expect(records(second.carried)).toEqual([`v1:superseded@${first.fence}`]);
      // The old claim writes nothing any more.
      expect(await store.carry(k, first, '"stale"')).toBe(false);
      expect(await store.carry(k, second.claim, '"v2"')).toBe(true);
      await store.acquireOrEnqueue(k, entry("c"), POLICY);
      const third = await store.finish(k, second.claim, "all", { reason: "timeout", data: '"v2"' });
      if (third.status !== "next") throw new Error(`expected next, got ${third.status}`);
      expect(records(third.carried)).toEqual([
        `v1:superseded@${first.fence}`,
        `v2:timeout@${second.claim.fence}`,
      ]);
      // A turn cut short that carried nothing hands on what it was handed.
      await store.acquireOrEnqueue(k, entry("d"), POLICY);
      const fourth = await store.finish(k, third.claim, "all", {
        reason: "superseded",
        data: undefined,
      });
      if (fourth.status !== "next") throw new Error(`expected next, got ${fourth.status}`);
      expect(records(fourth.carried)).toHaveLength(2);
      // A turn that ended otherwise (no carry) discards everything.
      expect(await store.carry(k, fourth.claim, '"v4"')).toBe(true);
      await store.acquireOrEnqueue(k, entry("e"), POLICY);
      const fifth = await store.finish(k, fourth.claim, "all");
      if (fifth.status !== "next") throw new Error(`expected next, got ${fifth.status}`);
      expect(records(fifth.carried)).toEqual([]);
      // A released key discards it too, even when the turn was cut short.
      expect(await store.carry(k, fifth.claim, '"v5"')).toBe(true);
      const released = await store.finish(k, fifth.claim, "all", {
        reason: "timeout",
        data: '"v5"',
      });
      expect(released.status).toBe("released");
      await store.finish(k, await claimOf(store, k), "all");
    }),
  );

  it(
    "carried work: a shared store's abandon leaves it for the next claim, with the ending turn's value",
    withStore(async (store, key) => {
      if (store.carry === undefined || !store.shared) return;
      const k = key("k");
      const first = await claimOf(store, k);
      await store.acquireOrEnqueue(k, entry("b"), POLICY);
      await store.abandon(k, first, false, { reason: "shutdown", data: '"half"' });
      const next = await store.acquireOrEnqueue(k, entry("c"), POLICY);
      if (next.status !== "acquired") throw new Error(`expected acquired, got ${next.status}`);
      expect(records(next.carried)).toEqual([`half:shutdown@${first.fence}`]);
      // Without a reason, an abandon discards it.
      await store.abandon(k, next.claim, true);
      const last = await store.acquireOrEnqueue(k, entry("d"), POLICY);
      if (last.status !== "acquired") throw new Error(`expected acquired, got ${last.status}`);
      // (requeue: the batch never ran, so what it was handed still waits for it)
      expect(records(last.carried)).toEqual([`half:shutdown@${first.fence}`]);
      await store.abandon(k, last.claim, false);
      const clean = await store.acquireOrEnqueue(k, entry("e"), POLICY);
      if (clean.status !== "acquired") throw new Error(`expected acquired, got ${clean.status}`);
      expect(clean.carried ?? []).toEqual([]);
      let claim = clean.claim;
      for (;;) {
        const done = await store.finish(k, claim, "all");
        if (done.status !== "next") break;
        claim = done.claim;
      }
    }),
  );
}
