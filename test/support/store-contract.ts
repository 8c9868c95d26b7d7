// The store contract: what every Store promises the guard, run against each store (memory,
// node-redis, ioredis, and their cluster clients) the way BullMQ runs its suite once per client.
// Driven through the Store interface alone, on entries the way the guard makes them (a shared
// store also gets `data`, the serialized input). What differs between a store for one process and
// a shared one is stated by `shared` (abandon hands pending input to other replicas; the total cap
// is per process), nothing else.

import type { AdmitPolicy, Claim, Store, StoreEntry } from "session-guard";
import { describe, expect, it } from "vitest";

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
    ): Promise<Claim> {
      const answer = await store.acquireOrEnqueue(key, e, POLICY);
      if (answer.status !== "acquired") throw new Error(`expected acquired, got ${answer.status}`);
      return answer.claim;
    }

    it(
      "claims a free key, queues behind a held one, hands over batch by batch with higher fences, then releases",
      withStore(async (store, key) => {
        const k = key("k");
        const first = await acquire(store, k);
        const queued = await store.acquireOrEnqueue(k, entry("b"), POLICY);
        expect(queued).toMatchObject({ status: "queued", pending: 1 });
        await store.acquireOrEnqueue(k, entry("c"), POLICY);
        const next = await store.finish(k, first, "all");
        if (next.status !== "next") throw new Error(`expected next, got ${next.status}`);
        expect(names(next.batch)).toEqual(["b", "c"]);
        expect(next.claim.fence).toBeGreaterThan(first.fence);
        expect(await store.finish(k, next.claim, "all")).toMatchObject({ status: "released" });
        const again = await acquire(store, k);
        expect(again.fence).toBeGreaterThan(next.claim.fence);
        await store.finish(k, again, "all");
      }),
    );

    it(
      '"one" hands over one entry per batch; "all" stops at an alone entry',
      withStore(async (store, key) => {
        const k = key("k");
        let claim = await acquire(store, k);
        for (const [name, alone] of [
          ["b", false],
          ["c", true],
          ["d", false],
          ["e", false],
        ] as const)
          await store.acquireOrEnqueue(k, entry(name, { alone }), POLICY);
        const batches: string[][] = [];
        for (;;) {
          const answer = await store.finish(k, claim, batches.length === 0 ? "one" : "all");
          if (answer.status !== "next") break;
          batches.push(names(answer.batch));
          claim = answer.claim;
        }
        expect(batches).toEqual([["b"], ["c"], ["d", "e"]]);
      }),
    );

    it(
      "de-duplicates an id within the window, held or not; dedupe 0 remembers nothing; forget admits it again",
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
        await store.forget(k, [id]);
        expect((await store.acquireOrEnqueue(k, entry("v", { id }), POLICY)).status).toBe("queued");
        expect(names(await store.clear(k))).toEqual(["z", "w", "v"]);
        expect(await store.finish(k, claim, "all")).toMatchObject({ status: "released" });
        expect(await store.acquireOrEnqueue(k, entry("u", { id }), POLICY)).toEqual({
          status: "duplicate",
        });
      }),
    );

    it(
      "reject answers busy; latest supersedes what the newcomer could join, but never alone entries or its own group",
      withStore(async (store, key) => {
        const k = key("k");
        const claim = await acquire(store, k);
        expect(
          await store.acquireOrEnqueue(k, entry("r"), { ...POLICY, whenHeld: "reject" }),
        ).toEqual({
          status: "rejected",
          reason: "busy",
        });
        const latest: AdmitPolicy = { ...POLICY, whenHeld: "latest" };
        await store.acquireOrEnqueue(k, entry("a"), latest);
        await store.acquireOrEnqueue(k, entry("cmd", { alone: true }), latest);
        const p1 = await store.acquireOrEnqueue(k, entry("p1", { group: "g", settle: 10 }), latest);
        if (p1.status !== "queued") throw new Error(`expected queued, got ${p1.status}`);
        expect(p1.dropped.map((d) => `${names([d.entry])[0]}:${d.reason}`)).toEqual([
          "a:superseded",
        ]);
        const p2 = await store.acquireOrEnqueue(k, entry("p2", { group: "g", settle: 10 }), latest);
        if (p2.status !== "queued") throw new Error(`expected queued, got ${p2.status}`);
        expect(names(p2.dropped.map((d) => d.entry))).toEqual([]);
        const m = await store.acquireOrEnqueue(k, entry("m"), latest);
        if (m.status !== "queued") throw new Error(`expected queued, got ${m.status}`);
        expect(m.dropped.map((d) => `${names([d.entry])[0]}:${d.reason}`).sort()).toEqual([
          "p1:superseded",
          "p2:superseded",
        ]);
        const cleared = await store.clear(k);
        expect(names(cleared)).toEqual(["cmd", "m"]);
        await store.finish(k, claim, "all");
      }),
    );

    it(
      "overflow: drop-oldest evicts the oldest pending entry, drop-newest refuses the newcomer",
      withStore(async (store, key) => {
        const k = key("k");
        const claim = await acquire(store, k);
        const small: AdmitPolicy = { ...POLICY, maxPending: 2 };
        await store.acquireOrEnqueue(k, entry("a"), small);
        await store.acquireOrEnqueue(k, entry("b"), small);
        const evicted = await store.acquireOrEnqueue(k, entry("c"), small);
        if (evicted.status !== "queued") throw new Error(`expected queued, got ${evicted.status}`);
        expect(evicted.dropped.map((d) => `${names([d.entry])[0]}:${d.reason}`)).toEqual([
          "a:overflow",
        ]);
        expect(
          await store.acquireOrEnqueue(k, entry("d"), { ...small, overflow: "drop-newest" }),
        ).toEqual({
          status: "rejected",
          reason: "overflow",
        });
        expect(names(await store.clear(k))).toEqual(["b", "c"]);
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
      "take moves pending entries into the running turn, but never an alone entry or an entry of a group",
      withStore(async (store, key) => {
        const k = key("k");
        const claim = await acquire(store, k);
        await store.acquireOrEnqueue(k, entry("b"), POLICY);
        await store.acquireOrEnqueue(k, entry("cmd", { alone: true }), POLICY);
        await store.acquireOrEnqueue(k, entry("c"), POLICY);
        const taken = await store.take(k, claim, "all");
        if (taken.status !== "taken") throw new Error(`expected taken, got ${taken.status}`);
        expect(names(taken.entries)).toEqual(["b"]);
        expect(names(await store.clear(k))).toEqual(["cmd", "c"]);
        // Nor an entry of a group, whose rest may still be arriving: the album runs later, whole.
        await store.acquireOrEnqueue(k, entry("d"), POLICY);
        await store.acquireOrEnqueue(k, entry("p1", { group: "g", settle: 10 }), POLICY);
        await store.acquireOrEnqueue(k, entry("e"), POLICY);
        const before = await store.take(k, claim, "all");
        expect(before.status === "taken" ? names(before.entries) : before.status).toEqual(["d"]);
        expect(names(await store.clear(k))).toEqual(["p1", "e"]);
        await store.finish(k, claim, "all");
      }),
    );

    it(
      "a stale claim is lost to finish, take and renew; renew of a held key says how much is pending",
      withStore(async (store, key) => {
        const k = key("k");
        const claim = await acquire(store, k);
        await store.acquireOrEnqueue(k, entry("b"), POLICY);
        expect(await store.renew(k, claim)).toMatchObject({ status: "held", pending: 1 });
        const next = await store.finish(k, claim, "all");
        if (next.status !== "next") throw new Error(`expected next, got ${next.status}`);
        expect(await store.finish(k, claim, "all")).toEqual({ status: "lost" });
        expect(await store.take(k, claim, "all")).toEqual({ status: "lost" });
        expect(await store.renew(k, claim)).toEqual({ status: "lost" });
        await store.finish(k, next.claim, "all");
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
      "withdraw removes one pending entry by id; expire drops what is due and says when the next is",
      withStore(async (store, key) => {
        const k = key("k");
        const claim = await acquire(store, k);
        const id = key("w");
        await store.acquireOrEnqueue(k, entry("a", { id }), POLICY);
        await store.acquireOrEnqueue(k, entry("b"), POLICY);
        const withdrawn = await store.withdraw(k, id);
        expect(withdrawn === undefined ? undefined : names([withdrawn])).toEqual(["a"]);
        expect(await store.withdraw(k, id)).toBeUndefined();
        if (store.expire !== undefined) {
          const soon = Date.now() + 60_000;
          await store.acquireOrEnqueue(k, entry("old", { expiresAt: Date.now() - 1 }), POLICY);
          await store.acquireOrEnqueue(k, entry("later", { expiresAt: soon }), POLICY);
          const expiry = await store.expire(k);
          expect(expiry.dropped.map((d) => `${names([d.entry])[0]}:${d.reason}`)).toEqual([
            "old:expired",
          ]);
          expect(expiry.next).toBe(soon);
        }
        await store.clear(k);
        await store.finish(k, claim, "all");
      }),
    );
  });
}
