// The store contract: what every Store promises the guard, run against each store (memory,
// node-redis, ioredis, and their cluster clients) the way BullMQ runs its suite once per client.
// Driven through the Store interface alone, on entries the way the guard makes them (a shared
// store also gets `data`, the serialized input). What differs between a store for one process and
// a shared one is stated by `shared` (abandon hands pending input to other replicas; the total cap
// is per process), nothing else.

import type { AdmitPolicy, Claim, Store, StoreDrop, StoreEntry } from "session-guard";
import { describe, expect, it } from "vitest";
import { carryContract } from "./carry-contract.js";
import { sleep } from "./helpers.js";

export interface ContractEntry extends StoreEntry {
  readonly name: string;
}

/** What a contract run needs: a fresh store per test, and how to let it go. */
export interface ContractSetup {
  store: Store<ContractEntry>;
  close(): Promise<void>;
}

const POLICY: AdmitPolicy = {
  whenHeld: "enqueue",
  maxPending: 100,
  overflow: "drop-oldest",
  maxPendingTotal: 10_000,
  dedupe: 60_000,
  batch: "all",
};

let counter = 0;

function entry(name: string, extra: Partial<StoreEntry> = {}): ContractEntry {
  return {
    name,
    id: undefined,
    alone: false,
    expiresAt: Number.POSITIVE_INFINITY,
    data: JSON.stringify(name),
    ...extra,
  };
}

const names = (entries: readonly { name?: string; data?: string }[]) =>
  entries.map((e) => e.name ?? JSON.parse(e.data as string));

/** Drops as `name:reason`, to compare at a glance. */
const drops = (dropped: readonly StoreDrop<ContractEntry>[]) =>
  dropped.map((d) => `${d.entry.name}:${d.reason}`);

/**
 * Run the store contract. `make` gives a fresh store (and its clean-up) for each test; keys are
 * made unique per test, so stores may share a server.
 */
export function storeContract(label: string, make: () => Promise<ContractSetup>): void {
  describe(`store contract: ${label}`, () => {
    /** Run `body` with a fresh store and a key prefix of its own. */
    const withStore =
      (body: (store: Store<ContractEntry>, key: (name: string) => string) => Promise<void>) =>
      async () => {
        const setup = await make();
        const run = ++counter;
        try {
          await body(setup.store, (name) => `c${run}:${name}`);
        } finally {
          await setup.close();
        }
      };

    async function acquire(
      store: Store<ContractEntry>,
      key: string,
      e = entry(key),
      policy = POLICY,
    ): Promise<Claim> {
      const answer = await store.acquireOrEnqueue(key, e, policy);
      if (answer.status !== "acquired") throw new Error(`expected acquired, got ${answer.status}`);
      return answer.claim;
    }

    it(
      "claims a free key, queues behind a held one, hands over batch by batch with higher fences, then releases",
      withStore(async (store, key) => {
        const k = key("k");
        const a = entry("a");
        const first = await store.acquireOrEnqueue(k, a, POLICY);
        if (first.status !== "acquired") throw new Error(`expected acquired, got ${first.status}`);
        expect(first.batch).toEqual([a]);
        expect(first.batch[0]).toBe(a);
        expect(first.dropped).toEqual([]);
        expect(await store.acquireOrEnqueue(k, entry("b"), POLICY)).toEqual({
          status: "queued",
          pending: 1,
          dropped: [],
        });
        expect(await store.acquireOrEnqueue(k, entry("c"), POLICY)).toMatchObject({ pending: 2 });
        expect(store.pendingCount(k)).toBe(2);
        // finish hands back the next batch and keeps the key, under a new fence.
        const next = await store.finish(k, first.claim, "all");
        if (next.status !== "next") throw new Error(`expected next, got ${next.status}`);
        expect(names(next.batch)).toEqual(["b", "c"]);
        expect(next.dropped).toEqual([]);
        expect(next.claim.fence).toBeGreaterThan(first.claim.fence);
        expect(store.pendingCount(k)).toBe(0);
        // While that batch runs the key is still held: new input is pending, and is the next batch.
        expect(await store.acquireOrEnqueue(k, entry("d"), POLICY)).toMatchObject({
          status: "queued",
          pending: 1,
        });
        const third = await store.finish(k, next.claim, "all");
        if (third.status !== "next") throw new Error(`expected next, got ${third.status}`);
        expect(names(third.batch)).toEqual(["d"]);
        expect(third.claim.fence).toBeGreaterThan(next.claim.fence);
        expect(await store.finish(k, third.claim, "all")).toEqual({
          status: "released",
          dropped: [],
        });
        // A fresh claim of the key gets a fence higher than every earlier one.
        const again = await acquire(store, k);
        expect(again.fence).toBeGreaterThan(third.claim.fence);
        await store.finish(k, again, "all");
      }),
    );

    it(
      '"all" hands over the leading entries up to an alone one, which is a batch of its own; "one" one entry per batch; every batch under a higher fence',
      withStore(async (store, key) => {
        /** Drain `k` from `claim`: its batches, and checks that fences rise and the key ends free. */
        async function drain(k: string, claim: Claim, batch: "one" | "all") {
          const batches: string[][] = [];
          for (let fence = claim.fence; ; ) {
            const answer = await store.finish(k, claim, batch);
            if (answer.status !== "next") {
              expect(answer.status).toBe("released");
              return batches;
            }
            expect(answer.claim.fence).toBeGreaterThan(fence);
            fence = answer.claim.fence;
            batches.push(names(answer.batch));
            claim = answer.claim;
          }
        }
        const all = key("all");
        const claim = await acquire(store, all);
        for (const [name, alone] of [
          ["m1", false],
          ["m2", false],
          ["X", true],
          ["m3", false],
          ["m4", false],
        ] as const)
          await store.acquireOrEnqueue(all, entry(name, { alone }), POLICY);
        expect(await drain(all, claim, "all")).toEqual([["m1", "m2"], ["X"], ["m3", "m4"]]);
        const one = key("one");
        const other = await acquire(store, one);
        for (const [name, alone] of [
          ["b", false],
          ["c", true],
          ["d", false],
          ["e", false],
        ] as const)
          await store.acquireOrEnqueue(one, entry(name, { alone }), POLICY);
        expect(await drain(one, other, "one")).toEqual([["b"], ["c"], ["d"], ["e"]]);
      }),
    );

    it(
      "de-duplicates an id within the window, held or not; dedupe 0 remembers nothing; forget admits it again; the window ends",
      withStore(async (store, key) => {
        // (Ids are global to a guard in memory; a shared store keeps them beside the key, so the
        // contract asks only what platforms need: a redelivery comes for the same key.)
        const k = key("k");
        const id = key("id");
        const claim = await acquire(store, k, entry("x", { id }));
        expect(await store.acquireOrEnqueue(k, entry("y", { id }), POLICY)).toEqual({
          status: "duplicate",
        });
        const other = key("id-2");
        expect(
          (await store.acquireOrEnqueue(k, entry("z", { id: other }), { ...POLICY, dedupe: 0 }))
            .status,
        ).toBe("queued");
        expect((await store.acquireOrEnqueue(k, entry("w", { id: other }), POLICY)).status).toBe(
          "queued",
        );
        // Forgetting an id never seen changes nothing.
        await store.forget(k, [id, key("never-seen")]);
        expect((await store.acquireOrEnqueue(k, entry("v", { id }), POLICY)).status).toBe("queued");
        expect(names(await store.clear(k))).toEqual(["z", "w", "v"]);
        expect(await store.finish(k, claim, "all")).toMatchObject({ status: "released" });
        expect(await store.acquireOrEnqueue(k, entry("u", { id }), POLICY)).toEqual({
          status: "duplicate",
        });
        // Past its window an id is admitted again.
        const brief = key("brief");
        const short: AdmitPolicy = { ...POLICY, dedupe: 50 };
        const s = await acquire(store, k, entry("s", { id: brief }), short);
        await sleep(120);
        expect((await store.acquireOrEnqueue(k, entry("t", { id: brief }), short)).status).toBe(
          "queued",
        );
        await store.clear(k);
        await store.finish(k, s, "all");
      }),
    );

    it(
      "reject answers busy and keeps nothing; latest supersedes what the newcomer could join, but never alone entries or its own group",
      withStore(async (store, key) => {
        const k = key("k");
        const claim = await acquire(store, k);
        expect(
          await store.acquireOrEnqueue(k, entry("r"), { ...POLICY, whenHeld: "reject" }),
        ).toEqual({
          status: "rejected",
          reason: "busy",
        });
        expect(await store.renew(k, claim)).toMatchObject({ status: "held", pending: 0 });
        const latest: AdmitPolicy = { ...POLICY, whenHeld: "latest" };
        const a = entry("a");
        await store.acquireOrEnqueue(k, a, latest);
        await store.acquireOrEnqueue(k, entry("cmd", { alone: true }), latest);
        const p1 = await store.acquireOrEnqueue(k, entry("p1", { group: "g", settle: 10 }), latest);
        if (p1.status !== "queued") throw new Error(`expected queued, got ${p1.status}`);
        expect(p1.pending).toBe(2);
        expect(p1.dropped).toEqual([{ entry: a, reason: "superseded" }]);
        expect(p1.dropped[0]?.entry).toBe(a);
        const p2 = await store.acquireOrEnqueue(k, entry("p2", { group: "g", settle: 10 }), latest);
        if (p2.status !== "queued") throw new Error(`expected queued, got ${p2.status}`);
        expect(names(p2.dropped.map((d) => d.entry))).toEqual([]);
        const m = await store.acquireOrEnqueue(k, entry("m"), latest);
        if (m.status !== "queued") throw new Error(`expected queued, got ${m.status}`);
        expect(m.pending).toBe(2);
        expect(drops(m.dropped).sort()).toEqual(["p1:superseded", "p2:superseded"]);
        const cleared = await store.clear(k);
        expect(names(cleared)).toEqual(["cmd", "m"]);
        await store.finish(k, claim, "all");
      }),
    );

    it(
      "overflow: drop-oldest evicts the oldest pending entry, drop-newest refuses the newcomer; latest supersedes before it counts",
      withStore(async (store, key) => {
        const k = key("k");
        const claim = await acquire(store, k);
        const small: AdmitPolicy = { ...POLICY, maxPending: 2 };
        const a = entry("a");
        await store.acquireOrEnqueue(k, a, small);
        await store.acquireOrEnqueue(k, entry("b"), small);
        const evicted = await store.acquireOrEnqueue(k, entry("c"), small);
        if (evicted.status !== "queued") throw new Error(`expected queued, got ${evicted.status}`);
        expect(evicted.pending).toBe(2);
        expect(evicted.dropped).toEqual([{ entry: a, reason: "overflow" }]);
        expect(evicted.dropped[0]?.entry).toBe(a);
        expect(
          await store.acquireOrEnqueue(k, entry("d"), { ...small, overflow: "drop-newest" }),
        ).toEqual({
          status: "rejected",
          reason: "overflow",
        });
        expect(store.pendingCount(k)).toBe(2);
        expect(names(await store.clear(k))).toEqual(["b", "c"]);
        // latest with one pending entry allowed: a newcomer replaces what it supersedes without
        // overflowing, and evicts the alone entry it cannot supersede.
        const one: AdmitPolicy = { ...POLICY, whenHeld: "latest", maxPending: 1 };
        await store.acquireOrEnqueue(k, entry("p1"), one);
        const p2 = await store.acquireOrEnqueue(k, entry("p2"), one);
        expect(p2.status === "queued" && drops(p2.dropped)).toEqual(["p1:superseded"]);
        const cmd = await store.acquireOrEnqueue(k, entry("cmd", { alone: true }), one);
        expect(cmd.status === "queued" && drops(cmd.dropped)).toEqual(["p2:overflow"]);
        const p3 = await store.acquireOrEnqueue(k, entry("p3"), one);
        expect(p3.status === "queued" && drops(p3.dropped)).toEqual(["cmd:overflow"]);
        const refused = await store.acquireOrEnqueue(k, entry("x", { alone: true }), {
          ...one,
          overflow: "drop-newest",
        });
        expect(refused).toEqual({ status: "rejected", reason: "overflow" });
        expect(names(await store.clear(k))).toEqual(["p3"]);
        await store.finish(k, claim, "all");
      }),
    );

    it(
      "a batch that takes one entry of a group takes all of it, in any batch policy; take by group takes only the group",
      withStore(async (store, key) => {
        const k = key("k");
        let claim = await acquire(store, k);
        const album = { group: "album:1", settle: 10 };
        await store.acquireOrEnqueue(k, entry("p1", album), POLICY);
        await store.acquireOrEnqueue(k, entry("m"), POLICY);
        await store.acquireOrEnqueue(k, entry("p2", album), POLICY);
        const next = await store.finish(k, claim, "one");
        if (next.status !== "next") throw new Error(`expected next, got ${next.status}`);
        expect(names(next.batch)).toEqual(["p1", "p2"]);
        claim = next.claim;
        await store.acquireOrEnqueue(k, entry("x"), POLICY);
        await store.acquireOrEnqueue(k, entry("p3", album), POLICY);
        const taken = await store.take(k, claim, "one", "album:1");
        if (taken.status !== "taken") throw new Error(`expected taken, got ${taken.status}`);
        expect(names(taken.entries)).toEqual(["p3"]);
        const rest = await store.finish(k, claim, "all");
        if (rest.status !== "next") throw new Error(`expected next, got ${rest.status}`);
        expect(names(rest.batch)).toEqual(["m", "x"]);
        await store.finish(k, rest.claim, "all");
      }),
    );

    it(
      "take moves pending entries into the running turn and keeps the claim, but never an alone entry or an entry of a group",
      withStore(async (store, key) => {
        const k = key("k");
        const claim = await acquire(store, k);
        expect(await store.take(k, claim, "all")).toEqual({
          status: "taken",
          entries: [],
          dropped: [],
        });
        await store.acquireOrEnqueue(k, entry("b"), POLICY);
        await store.acquireOrEnqueue(k, entry("c"), POLICY);
        await store.acquireOrEnqueue(k, entry("cmd", { alone: true }), POLICY);
        await store.acquireOrEnqueue(k, entry("d"), POLICY);
        const one = await store.take(k, claim, "one");
        expect(one.status === "taken" && names(one.entries)).toEqual(["b"]);
        const taken = await store.take(k, claim, "all");
        if (taken.status !== "taken") throw new Error(`expected taken, got ${taken.status}`);
        expect(names(taken.entries)).toEqual(["c"]);
        expect(store.pendingCount(k)).toBe(2);
        // The alone entry at the head is never taken: it stays, and is the next batch.
        expect(await store.take(k, claim, "all")).toMatchObject({ status: "taken", entries: [] });
        const next = await store.finish(k, claim, "all");
        if (next.status !== "next") throw new Error(`expected next, got ${next.status}`);
        expect(names(next.batch)).toEqual(["cmd"]);
        // Nor an entry of a group, whose rest may still be arriving: the album runs later, whole.
        await store.acquireOrEnqueue(k, entry("p1", { group: "g", settle: 10 }), POLICY);
        await store.acquireOrEnqueue(k, entry("e"), POLICY);
        const before = await store.take(k, next.claim, "all");
        expect(before.status === "taken" ? names(before.entries) : before.status).toEqual(["d"]);
        expect(names(await store.clear(k))).toEqual(["p1", "e"]);
        await store.finish(k, next.claim, "all");
      }),
    );

    it(
      "take and finish drop expired entries (reason expired) rather than hand them over",
      withStore(async (store, key) => {
        const k = key("k");
        const claim = await acquire(store, k);
        // Long expired, so that no clock between this process and the store's disagrees.
        const past = Date.now() - 5_000;
        const old = entry("old", { expiresAt: past });
        await store.acquireOrEnqueue(k, old, POLICY);
        await store.acquireOrEnqueue(k, entry("fresh", { expiresAt: Date.now() + 60_000 }), POLICY);
        const taken = await store.take(k, claim, "all");
        if (taken.status !== "taken") throw new Error(`expected taken, got ${taken.status}`);
        expect(names(taken.entries)).toEqual(["fresh"]);
        expect(taken.dropped).toEqual([{ entry: old, reason: "expired" }]);
        expect(taken.dropped[0]?.entry).toBe(old);
        // finish, in "one" batches: an expired head is dropped and the next entry runs instead.
        await store.acquireOrEnqueue(k, entry("gone", { expiresAt: past }), POLICY);
        await store.acquireOrEnqueue(k, entry("x"), POLICY);
        await store.acquireOrEnqueue(k, entry("y"), POLICY);
        const next = await store.finish(k, claim, "one");
        if (next.status !== "next") throw new Error(`expected next, got ${next.status}`);
        expect(names(next.batch)).toEqual(["x"]);
        expect(drops(next.dropped)).toEqual(["gone:expired"]);
        expect(names(await store.clear(k))).toEqual(["y"]);
        // With only expired input pending, finish releases the key and reports it.
        await store.acquireOrEnqueue(k, entry("late", { expiresAt: past }), POLICY);
        const released = await store.finish(k, next.claim, "all");
        expect(released.status).toBe("released");
        expect(released.status === "released" && drops(released.dropped)).toEqual(["late:expired"]);
        expect(await store.renew(k, next.claim)).toEqual({ status: "lost" });
      }),
    );

    it(
      "a stale claim is lost to finish, take, renew and abandon, which change nothing; renew of a held key says how much is pending",
      withStore(async (store, key) => {
        const k = key("k");
        const claim = await acquire(store, k);
        expect(await store.renew(k, claim)).toMatchObject({ status: "held", pending: 0 });
        await store.acquireOrEnqueue(k, entry("b"), POLICY);
        expect(await store.renew(k, claim)).toMatchObject({ status: "held", pending: 1 });
        await store.acquireOrEnqueue(k, entry("c"), POLICY);
        expect(await store.renew(k, claim)).toMatchObject({ status: "held", pending: 2 });
        const next = await store.finish(k, claim, "one");
        if (next.status !== "next") throw new Error(`expected next, got ${next.status}`);
        expect(await store.finish(k, claim, "all")).toEqual({ status: "lost" });
        expect(await store.take(k, claim, "all")).toEqual({ status: "lost" });
        expect(await store.renew(k, claim)).toEqual({ status: "lost" });
        expect(await store.abandon(k, claim)).toEqual([]);
        // The stale calls changed nothing: the holder still holds the key, its input still waits.
        expect(await store.renew(k, next.claim)).toMatchObject({ status: "held", pending: 1 });
        const last = await store.finish(k, next.claim, "all");
        if (last.status !== "next") throw new Error(`expected next, got ${last.status}`);
        expect(names(last.batch)).toEqual(["c"]);
        expect(await store.finish(k, last.claim, "all")).toMatchObject({ status: "released" });
        // Once released, the last claim is lost too, and a key never held has no holder.
        expect(await store.finish(k, last.claim, "all")).toEqual({ status: "lost" });
        expect(await store.renew(key("unknown"), last.claim)).toEqual({ status: "lost" });
      }),
    );

    it(
      "abandon frees the key and loses no pending entry: a store no one else reads hands them back, a shared one keeps them for the next holder",
      withStore(async (store, key) => {
        const k = key("k");
        const claim = await acquire(store, k);
        const b = entry("b");
        await store.acquireOrEnqueue(k, b, POLICY);
        await store.acquireOrEnqueue(k, entry("c"), POLICY);
        const orphans = await store.abandon(k, claim);
        expect(await store.renew(k, claim)).toEqual({ status: "lost" });
        // The next claim hands over what was left behind in the admission's batch policy.
        const one: AdmitPolicy = { ...POLICY, batch: "one" };
        const again = await store.acquireOrEnqueue(k, entry("new"), one);
        if (again.status !== "acquired") throw new Error(`expected acquired, got ${again.status}`);
        let batches = [names(again.batch)];
        for (let turn = again.claim; ; ) {
          const answer = await store.finish(k, turn, "one");
          if (answer.status !== "next") break;
          batches.push(names(answer.batch));
          turn = answer.claim;
        }
        if (store.shared) {
          expect(orphans).toEqual([]);
          expect(again.batch[0]).toBe(b);
        } else {
          expect(names(orphans)).toEqual(["b", "c"]);
          expect(orphans[0]).toBe(b);
          batches = [...orphans.map((e) => [e.name]), ...batches];
        }
        expect(batches).toEqual([["b"], ["c"], ["new"]]);
        expect(store.pendingCount(k)).toBe(0);
      }),
    );

    it(
      "stop removes the pending entries, says whether a turn held the key, and a stop id is de-duplicated",
      withStore(async (store, key) => {
        if (store.stop === undefined) return;
        const k = key("k");
        expect(await store.stop(k, undefined, 60_000)).toEqual({
          status: "stopped",
          entries: [],
          held: false,
        });
        const claim = await acquire(store, k);
        await store.acquireOrEnqueue(k, entry("b"), POLICY);
        const id = key("stop");
        const stopped = await store.stop(k, id, 60_000);
        if (stopped.status !== "stopped")
          throw new Error(`expected stopped, got ${stopped.status}`);
        expect(names(stopped.entries)).toEqual(["b"]);
        expect(stopped.held).toBe(true);
        expect(await store.stop(k, id, 60_000)).toEqual({ status: "duplicate" });
        // A stop id and an input id share one space: the same id as an input is a duplicate too.
        expect(await store.acquireOrEnqueue(k, entry("c", { id }), POLICY)).toEqual({
          status: "duplicate",
        });
        await store.finish(k, claim, "all");
      }),
    );

    it(
      "keys lists the held keys with a prefix",
      withStore(async (store, key) => {
        if (store.keys === undefined) return;
        const [a, b, other] = [key("C1:1"), key("C1:2"), key("C2:1")];
        const claims = [
          await acquire(store, a),
          await acquire(store, b),
          await acquire(store, other),
        ];
        expect([...(await store.keys(key("C1:")))].sort()).toEqual([a, b].sort());
        expect(await store.keys(key("C9:"))).toEqual([]);
        await store.finish(a, claims[0] as Claim, "all");
        expect(await store.keys(key("C1:"))).toEqual([b]);
        await store.finish(b, claims[1] as Claim, "all");
        await store.finish(other, claims[2] as Claim, "all");
      }),
    );

    it(
      "clear removes every pending entry, oldest first, and keeps the claim",
      withStore(async (store, key) => {
        const k = key("k");
        const claim = await acquire(store, k);
        expect(await store.clear(k)).toEqual([]);
        expect(await store.clear(key("nobody"))).toEqual([]);
        const b = entry("b");
        await store.acquireOrEnqueue(k, b, POLICY);
        await store.acquireOrEnqueue(k, entry("c"), POLICY);
        const cleared = await store.clear(k);
        expect(names(cleared)).toEqual(["b", "c"]);
        expect(cleared[0]).toBe(b);
        expect(store.pendingCount(k)).toBe(0);
        expect(await store.renew(k, claim)).toMatchObject({ status: "held", pending: 0 });
        expect(await store.finish(k, claim, "all")).toEqual({ status: "released", dropped: [] });
      }),
    );

    it(
      "withdraw removes one pending entry by id, and nothing else",
      withStore(async (store, key) => {
        const k = key("k");
        const claim = await acquire(store, k);
        const [b, c, d] = ["b", "c", "d"].map((name) => entry(name, { id: key(name) }));
        for (const e of [b, c, d]) await store.acquireOrEnqueue(k, e as ContractEntry, POLICY);
        expect(await store.withdraw(k, key("c"))).toBe(c);
        expect(await store.withdraw(k, key("c"))).toBeUndefined();
        expect(await store.withdraw(k, key("zzz"))).toBeUndefined();
        expect(await store.withdraw(key("other"), key("b"))).toBeUndefined();
        expect(store.pendingCount(k)).toBe(2);
        const next = await store.finish(k, claim, "all");
        if (next.status !== "next") throw new Error(`expected next, got ${next.status}`);
        expect(names(next.batch)).toEqual(["b", "d"]);
        await store.finish(k, next.claim, "all");
      }),
    );

    it(
      "replace swaps a pending entry's content in place (first, middle, last): same object, same position, nothing else",
      withStore(async (store, key) => {
        const replace = store.replace?.bind(store);
        if (replace === undefined) return;
        const k = key("k");
        const claim = await acquire(store, k);
        // The middle one is a message of a group (a longer header in a shared store's text).
        const [b, c, d] = ["b", "c", "d"].map((name) =>
          entry(name, { id: key(name), ...(name === "c" ? { group: "album" } : {}) }),
        );
        for (const e of [b, c, d]) await store.acquireOrEnqueue(k, e as ContractEntry, POLICY);
        /** The new content, and how the guard applies it to the entry object. */
        const edit = (name: string) => {
          const data = JSON.stringify(name);
          return [data, (e: ContractEntry) => Object.assign(e, { name, data })] as const;
        };
        // The last, the first, then the middle one: each keeps its place.
        for (const [e, id, name] of [
          [d, "d", "D"],
          [b, "b", "B"],
          [c, "c", "C"],
        ] as const) {
          const [data, apply] = edit(name);
          const replaced = await replace(k, key(id), data, apply);
          expect(replaced).toBe(e);
          expect(names([replaced as ContractEntry])).toEqual([name]);
        }
        // Twice is fine: the content is swapped again.
        const [again, applyAgain] = edit("B2");
        expect(await replace(k, key("b"), again, applyAgain)).toBe(b);
        // Unknown id, or the id under another key: nothing changes, `apply` is not called.
        let applied = 0;
        const count = () => void applied++;
        expect(await replace(k, key("zzz"), JSON.stringify("z"), count)).toBeUndefined();
        expect(await replace(key("other"), key("c"), JSON.stringify("z"), count)).toBeUndefined();
        expect(applied).toBe(0);
        expect(store.pendingCount(k)).toBe(3);
        const next = await store.finish(k, claim, "all");
        if (next.status !== "next") throw new Error(`expected next, got ${next.status}`);
        expect(names(next.batch)).toEqual(["B2", "C", "D"]);
        expect(next.batch[0]).toBe(b);
        expect(next.batch[1]?.group).toBe("album");
        // Entries of the running turn are not pending any more: replace does not find them.
        expect(await replace(k, key("c"), JSON.stringify("z"), count)).toBeUndefined();
        expect(applied).toBe(0);
        await store.finish(k, next.claim, "all");
      }),
    );

    it(
      "expire drops what is due (reason expired) and says when the next is",
      withStore(async (store, key) => {
        if (store.expire === undefined) return;
        const k = key("k");
        expect(await store.expire(key("idle"))).toEqual({
          dropped: [],
          next: Number.POSITIVE_INFINITY,
        });
        const claim = await acquire(store, k);
        const soon = Date.now() + 60_000;
        const later = soon + 60_000;
        await store.acquireOrEnqueue(k, entry("a", { expiresAt: soon }), POLICY);
        await store.acquireOrEnqueue(k, entry("b"), POLICY);
        await store.acquireOrEnqueue(k, entry("c", { expiresAt: later }), POLICY);
        expect(await store.expire(k)).toEqual({ dropped: [], next: soon });
        const old = entry("old", { expiresAt: Date.now() - 5_000 });
        await store.acquireOrEnqueue(k, old, POLICY);
        const expiry = await store.expire(k);
        expect(expiry.dropped).toEqual([{ entry: old, reason: "expired" }]);
        expect(expiry.dropped[0]?.entry).toBe(old);
        expect(expiry.next).toBe(soon);
        expect(store.pendingCount(k)).toBe(3);
        expect(names(await store.clear(k))).toEqual(["a", "b", "c"]);
        await store.acquireOrEnqueue(k, entry("d"), POLICY);
        expect(await store.expire(k)).toEqual({ dropped: [], next: Number.POSITIVE_INFINITY });
        await store.clear(k);
        await store.finish(k, claim, "all");
      }),
    );

    carryContract(withStore as Parameters<typeof carryContract>[0]);
  });
}
