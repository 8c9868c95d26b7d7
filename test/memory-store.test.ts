// The store seam, driven directly through memoryStore().

import fc from "fast-check";
import {
  type AdmitPolicy,
  type BatchPolicy,
  type Claim,
  type MaybePromise,
  type MemoryStoreOptions,
  memoryStore,
  type StoreEntry,
} from "session-guard";
import { afterEach, describe, expect, it, vi } from "vitest";

afterEach(() => {
  vi.useRealTimers();
});

interface E extends StoreEntry {
  readonly name: string;
}

function entry(name: string, extra: Partial<StoreEntry> = {}): E {
  return { name, id: undefined, alone: false, expiresAt: Number.POSITIVE_INFINITY, ...extra };
}

const POLICY: AdmitPolicy = {
  whenHeld: "enqueue",
  maxPending: 100,
  overflow: "drop-oldest",
  maxPendingTotal: 10_000,
  dedupe: 60_000,
};

const names = (entries: readonly E[]) => entries.map((e) => e.name);

/** The answer itself: the memory store must answer synchronously (no promise on its fast path). */
function sync<T>(value: MaybePromise<T>): T {
  if (value instanceof Promise) throw new Error("the memory store answered with a promise");
  return value;
}

/** A memoryStore() whose every answer is checked to be synchronous, and typed so. */
function syncStore(options?: MemoryStoreOptions) {
  const inner = memoryStore(options);
  return {
    get keyCount() {
      return inner.keyCount;
    },
    get pendingTotal() {
      return inner.pendingTotal;
    },
    get idCount() {
      return inner.idCount;
    },
    acquireOrEnqueue: (key: string, e: StoreEntry, policy: AdmitPolicy) =>
      sync(inner.acquireOrEnqueue(key, e, policy)),
    renew: (key: string, claim: Claim) => sync(inner.renew(key, claim)),
    take: (key: string, claim: Claim, batch: BatchPolicy) => sync(inner.take(key, claim, batch)),
    finish: (key: string, claim: Claim, batch: BatchPolicy) =>
      sync(inner.finish(key, claim, batch)),
    abandon: (key: string, claim: Claim) => sync(inner.abandon(key, claim)),
    clear: (key: string) => sync(inner.clear(key)),
    withdraw: (key: string, id: string) => sync(inner.withdraw(key, id)),
    expire: (key: string) => sync(inner.expire(key)),
    forget: (key: string, ids: readonly string[]) => sync(inner.forget(key, ids)),
    pendingCount: (key: string) => inner.pendingCount(key),
  };
}

type SyncStore = ReturnType<typeof syncStore>;

/** Acquire `key` with a fresh entry; fails the test if it was not acquired. */
function acquire(store: SyncStore, key: string, name = key): Claim {
  const answer = store.acquireOrEnqueue(key, entry(name), POLICY);
  if (answer.status !== "acquired") throw new Error(`expected acquired, got ${answer.status}`);
  return answer.claim;
}

describe("acquireOrEnqueue and finish", () => {
  it("hands the key over batch by batch with strictly increasing fences, then releases it", () => {
    const store = syncStore();
    const a = entry("a");
    const first = store.acquireOrEnqueue("k", a, POLICY);
    expect(first).toMatchObject({ status: "acquired", dropped: [] });
    if (first.status !== "acquired") throw new Error("unreachable");
    expect(first.batch).toEqual([a]);
    expect(first.batch[0]).toBe(a); // the memory store keeps the objects themselves
    expect(store.keyCount).toBe(1);

    expect(store.acquireOrEnqueue("k", entry("b"), POLICY)).toEqual({
      status: "queued",
      pending: 1,
      dropped: [],
    });
    expect(store.acquireOrEnqueue("k", entry("c"), POLICY)).toMatchObject({ pending: 2 });
    expect(store.pendingCount("k")).toBe(2);
    expect(store.pendingTotal).toBe(2);

    // finish returns the next batch and keeps the claim, under a new fence.
    const next = store.finish("k", first.claim, "all");
    if (next.status !== "next") throw new Error(`expected next, got ${next.status}`);
    expect(names(next.batch as E[])).toEqual(["b", "c"]);
    expect(next.claim.fence).toBeGreaterThan(first.claim.fence);
    expect(store.keyCount).toBe(1);
    expect(store.pendingCount("k")).toBe(0);
    expect(store.pendingTotal).toBe(0);

    // While the second batch runs the key is still held: new input is pending.
    expect(store.acquireOrEnqueue("k", entry("d"), POLICY)).toMatchObject({ status: "queued" });
    const third = store.finish("k", next.claim, "all");
    if (third.status !== "next") throw new Error(`expected next, got ${third.status}`);
    expect(names(third.batch as E[])).toEqual(["d"]);
    expect(third.claim.fence).toBeGreaterThan(next.claim.fence);

    expect(store.finish("k", third.claim, "all")).toEqual({ status: "released", dropped: [] });
    expect(store.keyCount).toBe(0);
    expect(store.pendingTotal).toBe(0);

    // A fresh claim of the same key gets a fence higher than every earlier one.
    const again = acquire(store, "k");
    expect(again.fence).toBeGreaterThan(third.claim.fence);
  });

  it('"one" batches hand over one entry per finish, in order', () => {
    const store = syncStore();
    let claim = acquire(store, "k", "a");
    for (const name of ["b", "c", "d"]) store.acquireOrEnqueue("k", entry(name), POLICY);
    const seen: string[] = [];
    const fences = [claim.fence];
    for (;;) {
      const answer = store.finish("k", claim, "one");
      if (answer.status !== "next") {
        expect(answer.status).toBe("released");
        break;
      }
      seen.push(...names(answer.batch as E[]));
      claim = answer.claim;
      fences.push(claim.fence);
    }
    expect(seen).toEqual(["b", "c", "d"]);
    expect(fences).toEqual([...fences].sort((x, y) => x - y));
    expect(new Set(fences).size).toBe(4);
    expect(store.keyCount).toBe(0);
  });

  it('"all" batches stop at an alone entry, which is a batch of its own', () => {
    const store = syncStore();
    let claim = acquire(store, "k", "a");
    store.acquireOrEnqueue("k", entry("m1"), POLICY);
    store.acquireOrEnqueue("k", entry("m2"), POLICY);
    store.acquireOrEnqueue("k", entry("X", { alone: true }), POLICY);
    store.acquireOrEnqueue("k", entry("m3"), POLICY);
    const batches: string[][] = [];
    for (;;) {
      const answer = store.finish("k", claim, "all");
      if (answer.status !== "next") break;
      batches.push(names(answer.batch as E[]));
      claim = answer.claim;
    }
    expect(batches).toEqual([["m1", "m2"], ["X"], ["m3"]]);
  });

  it("fences are strictly increasing across keys too", () => {
    const store = syncStore();
    const fences = ["a", "b", "c"].map((key) => acquire(store, key).fence);
    expect(fences[1]).toBeGreaterThan(fences[0] as number);
    expect(fences[2]).toBeGreaterThan(fences[1] as number);
  });

  it("a stale claim gets lost from finish, take and renew", () => {
    const store = syncStore();
    const old = acquire(store, "k", "a");
    store.acquireOrEnqueue("k", entry("b"), POLICY);
    const next = store.finish("k", old, "all");
    if (next.status !== "next") throw new Error("expected next");
    store.acquireOrEnqueue("k", entry("c"), POLICY);

    expect(store.finish("k", old, "all")).toEqual({ status: "lost" });
    expect(store.take("k", old, "all")).toEqual({ status: "lost" });
    expect(store.renew("k", old)).toEqual({ status: "lost" });
    expect(store.abandon("k", old)).toEqual([]);
    // The stale calls changed nothing.
    expect(store.pendingCount("k")).toBe(1);
    expect(store.renew("k", next.claim)).toEqual({ status: "held", pending: 1 });

    // A claim with the same fence but another identity is not the holder either.
    expect(store.finish("k", { ...next.claim }, "all")).toEqual({ status: "lost" });
    // After release, the old claims stay lost.
    const last = store.finish("k", next.claim, "all");
    if (last.status !== "next") throw new Error("expected next");
    expect(store.finish("k", last.claim, "all")).toMatchObject({ status: "released" });
    expect(store.finish("k", last.claim, "all")).toEqual({ status: "lost" });
    expect(store.renew("unknown", last.claim)).toEqual({ status: "lost" });
  });

  it("renew reports the pending count of a held key", () => {
    const store = syncStore();
    const claim = acquire(store, "k");
    expect(store.renew("k", claim)).toEqual({ status: "held", pending: 0 });
    store.acquireOrEnqueue("k", entry("b"), POLICY);
    store.acquireOrEnqueue("k", entry("c"), POLICY);
    expect(store.renew("k", claim)).toEqual({ status: "held", pending: 2 });
  });
});

describe("admission policies", () => {
  it("reject answers busy and keeps nothing", () => {
    const store = syncStore();
    acquire(store, "k");
    expect(store.acquireOrEnqueue("k", entry("b"), { ...POLICY, whenHeld: "reject" })).toEqual({
      status: "rejected",
      reason: "busy",
    });
    expect(store.pendingCount("k")).toBe(0);
    expect(store.pendingTotal).toBe(0);
  });

  it("latest supersedes earlier coalescable entries but keeps alone ones", () => {
    const store = syncStore();
    acquire(store, "k");
    const latest: AdmitPolicy = { ...POLICY, whenHeld: "latest" };
    const b = entry("b");
    const x = entry("X", { alone: true });
    const c = entry("c");
    store.acquireOrEnqueue("k", b, latest);
    store.acquireOrEnqueue("k", x, latest);
    store.acquireOrEnqueue("k", c, latest);
    const answer = store.acquireOrEnqueue("k", entry("d"), latest);
    expect(answer).toMatchObject({ status: "queued", pending: 2 });
    if (answer.status !== "queued") throw new Error("unreachable");
    expect(answer.dropped).toEqual([{ entry: c, reason: "superseded" }]);
    expect(store.pendingTotal).toBe(2);
  });

  it("overflow drop-oldest evicts, drop-newest refuses", () => {
    const store = syncStore();
    acquire(store, "k");
    const small: AdmitPolicy = { ...POLICY, maxPending: 2 };
    const b = entry("b");
    store.acquireOrEnqueue("k", b, small);
    store.acquireOrEnqueue("k", entry("c"), small);
    const evicted = store.acquireOrEnqueue("k", entry("d"), small);
    expect(evicted).toMatchObject({ status: "queued", pending: 2 });
    if (evicted.status !== "queued") throw new Error("unreachable");
    expect(evicted.dropped).toEqual([{ entry: b, reason: "overflow" }]);
    expect(store.pendingTotal).toBe(2);
    expect(store.acquireOrEnqueue("k", entry("e"), { ...small, overflow: "drop-newest" })).toEqual({
      status: "rejected",
      reason: "overflow",
    });
    expect(store.pendingTotal).toBe(2);
  });

  it("maxPendingTotal refuses the newcomer across keys", () => {
    const store = syncStore();
    acquire(store, "k1");
    acquire(store, "k2");
    const capped: AdmitPolicy = { ...POLICY, maxPendingTotal: 1 };
    expect(store.acquireOrEnqueue("k1", entry("b"), capped)).toMatchObject({ status: "queued" });
    expect(store.acquireOrEnqueue("k2", entry("y"), capped)).toEqual({
      status: "rejected",
      reason: "overflow",
    });
    // A free key is still acquired: the cap is on pending entries.
    expect(store.acquireOrEnqueue("k3", entry("z"), capped)).toMatchObject({ status: "acquired" });
  });
});

describe("take, clear, withdraw", () => {
  it("take moves pending entries into the running turn, leaving alone entries and those after", () => {
    const store = syncStore();
    const claim = acquire(store, "k");
    expect(store.take("k", claim, "all")).toEqual({ status: "taken", entries: [], dropped: [] });
    store.acquireOrEnqueue("k", entry("b"), POLICY);
    store.acquireOrEnqueue("k", entry("c"), POLICY);
    store.acquireOrEnqueue("k", entry("X", { alone: true }), POLICY);
    store.acquireOrEnqueue("k", entry("d"), POLICY);
    const taken = store.take("k", claim, "all");
    if (taken.status !== "taken") throw new Error("expected taken");
    expect(names(taken.entries as E[])).toEqual(["b", "c"]);
    expect(store.pendingCount("k")).toBe(2);
    expect(store.pendingTotal).toBe(2);
    // The alone entry at the head is never taken.
    const again = store.take("k", claim, "all");
    expect(again).toMatchObject({ status: "taken", entries: [] });
    expect(store.pendingCount("k")).toBe(2);
    // take keeps the claim: the same claim still finishes.
    const next = store.finish("k", claim, "all");
    if (next.status !== "next") throw new Error("expected next");
    expect(names(next.batch as E[])).toEqual(["X"]);
  });

  it("take and finish drop expired entries with reason expired", () => {
    vi.useFakeTimers();
    const store = syncStore();
    const claim = acquire(store, "k");
    const old = entry("old", { expiresAt: Date.now() + 10 });
    store.acquireOrEnqueue("k", old, POLICY);
    store.acquireOrEnqueue("k", entry("fresh"), POLICY);
    vi.advanceTimersByTime(10);
    const taken = store.take("k", claim, "all");
    if (taken.status !== "taken") throw new Error("expected taken");
    expect(names(taken.entries as E[])).toEqual(["fresh"]);
    expect(taken.dropped).toEqual([{ entry: old, reason: "expired" }]);
    expect(store.pendingTotal).toBe(0);

    const late = entry("late", { expiresAt: Date.now() + 5 });
    store.acquireOrEnqueue("k", late, POLICY);
    vi.advanceTimersByTime(5);
    expect(store.finish("k", claim, "all")).toEqual({
      status: "released",
      dropped: [{ entry: late, reason: "expired" }],
    });
    expect(store.keyCount).toBe(0);
    expect(store.pendingTotal).toBe(0);
  });

  it("expire drops the expired pending entries and says when the next one expires", () => {
    vi.useFakeTimers();
    const store = syncStore();
    const claim = acquire(store, "k");
    const now = Date.now();
    store.acquireOrEnqueue("k", entry("a", { expiresAt: now + 10 }), POLICY);
    store.acquireOrEnqueue("k", entry("b"), POLICY);
    store.acquireOrEnqueue("k", entry("c", { expiresAt: now + 30 }), POLICY);
    expect(store.expire("k")).toEqual({ dropped: [], next: now + 10 });
    vi.advanceTimersByTime(10);
    const first = store.expire("k");
    expect(first.dropped.map((d) => [(d.entry as E).name, d.reason])).toEqual([["a", "expired"]]);
    expect(first.next).toBe(now + 30);
    expect(store.pendingCount("k")).toBe(2);
    expect(store.pendingTotal).toBe(2);
    vi.advanceTimersByTime(20);
    expect(store.expire("k").next).toBe(Number.POSITIVE_INFINITY);
    expect(store.pendingCount("k")).toBe(1);
    expect(store.expire("idle")).toEqual({ dropped: [], next: Number.POSITIVE_INFINITY });
    expect(store.finish("k", claim, "all")).toMatchObject({ status: "next" });
  });

  it("clear removes every pending entry, oldest first, and keeps the claim", () => {
    const store = syncStore();
    const claim = acquire(store, "k");
    expect(store.clear("k")).toEqual([]);
    expect(store.clear("nobody")).toEqual([]);
    store.acquireOrEnqueue("k", entry("b"), POLICY);
    store.acquireOrEnqueue("k", entry("c"), POLICY);
    expect(names(store.clear("k") as E[])).toEqual(["b", "c"]);
    expect(store.pendingCount("k")).toBe(0);
    expect(store.pendingTotal).toBe(0);
    expect(store.renew("k", claim)).toEqual({ status: "held", pending: 0 });
    expect(store.finish("k", claim, "all")).toMatchObject({ status: "released" });
    expect(store.keyCount).toBe(0);
  });

  it("withdraw removes one pending entry by id", () => {
    const store = syncStore();
    const claim = acquire(store, "k");
    store.acquireOrEnqueue("k", entry("b", { id: "b" }), POLICY);
    store.acquireOrEnqueue("k", entry("c", { id: "c" }), POLICY);
    store.acquireOrEnqueue("k", entry("d", { id: "d" }), POLICY);
    expect(store.withdraw("k", "c")).toMatchObject({ name: "c" });
    expect(store.withdraw("k", "c")).toBeUndefined();
    expect(store.withdraw("k", "zzz")).toBeUndefined();
    expect(store.withdraw("other", "b")).toBeUndefined();
    expect(store.pendingCount("k")).toBe(2);
    expect(store.pendingTotal).toBe(2);
    const next = store.finish("k", claim, "all");
    if (next.status !== "next") throw new Error("expected next");
    expect(names(next.batch as E[])).toEqual(["b", "d"]);
  });

  it("abandon releases the key and hands back its pending entries", () => {
    const store = syncStore();
    const claim = acquire(store, "k");
    store.acquireOrEnqueue("k", entry("b"), POLICY);
    store.acquireOrEnqueue("k", entry("c"), POLICY);
    expect(names(store.abandon("k", claim) as E[])).toEqual(["b", "c"]);
    expect(store.keyCount).toBe(0);
    expect(store.pendingTotal).toBe(0);
    expect(store.pendingCount("k")).toBe(0);
    expect(store.acquireOrEnqueue("k", entry("new"), POLICY)).toMatchObject({ status: "acquired" });
  });

  it("keyCount, pendingTotal and idCount go back to 0", () => {
    vi.useFakeTimers();
    const store = syncStore();
    const policy: AdmitPolicy = { ...POLICY, dedupe: 100 };
    const claims = new Map<string, Claim>();
    for (let i = 0; i < 10; i++) {
      const key = `k${i % 3}`;
      const answer = store.acquireOrEnqueue(key, entry(`e${i}`, { id: `id${i}` }), policy);
      if (answer.status === "acquired") claims.set(key, answer.claim);
    }
    expect(store.keyCount).toBe(3);
    expect(store.pendingTotal).toBe(7);
    expect(store.idCount).toBe(10);
    for (const [key, first] of claims) {
      let claim = first;
      for (;;) {
        const answer = store.finish(key, claim, "one");
        if (answer.status !== "next") break;
        claim = answer.claim;
      }
    }
    expect(store.keyCount).toBe(0);
    expect(store.pendingTotal).toBe(0);
    store.forget("k", ["id0", "id1", "id2"]);
    expect(store.idCount).toBe(7);
    // Expired ids are freed a generation at a time: one window on they are still held (expired,
    // so not duplicates), two windows on a new id leaves only itself.
    vi.advanceTimersByTime(100);
    expect(store.acquireOrEnqueue("k", entry("again", { id: "id3" }), policy).status).toBe(
      "acquired",
    );
    expect(store.idCount).toBe(8);
    vi.advanceTimersByTime(200);
    store.acquireOrEnqueue("k2", entry("last", { id: "last" }), policy);
    expect(store.idCount).toBe(1);
    store.forget("k2", ["last"]);
    expect(store.idCount).toBe(0);
  });
});

describe("de-duplication", () => {
  it("the same id within the window is a duplicate, across keys, held or not", () => {
    vi.useFakeTimers();
    const store = syncStore();
    const policy: AdmitPolicy = { ...POLICY, dedupe: 100 };
    const first = store.acquireOrEnqueue("k", entry("a", { id: "1" }), policy);
    expect(first.status).toBe("acquired");
    expect(store.acquireOrEnqueue("k", entry("a", { id: "1" }), policy)).toEqual({
      status: "duplicate",
    });
    expect(store.acquireOrEnqueue("other", entry("a", { id: "1" }), policy)).toEqual({
      status: "duplicate",
    });
    if (first.status !== "acquired") throw new Error("unreachable");
    store.finish("k", first.claim, "all");
    vi.advanceTimersByTime(99);
    expect(store.acquireOrEnqueue("k", entry("a", { id: "1" }), policy).status).toBe("duplicate");
    vi.advanceTimersByTime(1);
    expect(store.acquireOrEnqueue("k", entry("a", { id: "1" }), policy).status).toBe("acquired");
  });

  it("dedupe 0 turns it off for that admission and remembers nothing", () => {
    const store = syncStore();
    const off: AdmitPolicy = { ...POLICY, dedupe: 0 };
    const first = store.acquireOrEnqueue("k", entry("a", { id: "1" }), off);
    expect(first.status).toBe("acquired");
    expect(store.acquireOrEnqueue("k", entry("a", { id: "1" }), off).status).toBe("queued");
    expect(store.idCount).toBe(0);
    // Entries without an id are never remembered either.
    store.acquireOrEnqueue("k", entry("b"), POLICY);
    expect(store.idCount).toBe(0);
  });

  it("ids that read as numbers are distinct exactly when their strings are", () => {
    const store = syncStore();
    const off = { ...POLICY, dedupe: 0 };
    acquire(store, "k");
    // Numeric-looking ids are remembered as numbers inside the store: the mapping must never make
    // two different strings meet, nor lose a number at the edge of the small-integer range.
    const ids = ["0", "00", "7", "07", "735012345", "0735012345", "2147483647", "2147483648"];
    ids.push("99999999999", "-1", "1.5", "1e3", " 1", "", "x7");
    for (const id of ids) {
      expect(store.acquireOrEnqueue("k", entry(id, { id }), POLICY).status, id).toBe("queued");
    }
    for (const id of ids) {
      expect(store.acquireOrEnqueue("k", entry(id, { id }), POLICY).status, id).toBe("duplicate");
    }
    expect(store.idCount).toBe(ids.length);
    store.forget("k", ["07", "2147483648"]);
    expect(store.acquireOrEnqueue("k", entry("07", { id: "07" }), POLICY).status).toBe("queued");
    expect(store.acquireOrEnqueue("k", entry("7", { id: "7" }), POLICY).status).toBe("duplicate");
    expect(store.acquireOrEnqueue("k", entry("x", { id: "2147483648" }), POLICY).status).toBe(
      "queued",
    );
    expect(store.acquireOrEnqueue("k", entry("x", { id: "2147483647" }), off).status).toBe(
      "queued",
    );
  });

  it("forget lets an id be admitted again", () => {
    const store = syncStore();
    const claim = acquire(store, "k");
    store.acquireOrEnqueue("k", entry("b", { id: "b" }), POLICY);
    expect(store.acquireOrEnqueue("k", entry("b", { id: "b" }), POLICY).status).toBe("duplicate");
    store.forget("k", ["b", "never-seen"]);
    expect(store.acquireOrEnqueue("k", entry("b", { id: "b" }), POLICY).status).toBe("queued");
    expect(store.pendingCount("k")).toBe(2);
    expect(store.finish("k", claim, "all")).toMatchObject({ status: "next" });
  });

  it("never holds more than maxIds ids, forgetting the oldest first", () => {
    const store = syncStore({ maxIds: 4 });
    const claim = acquire(store, "k");
    for (const id of ["1", "2", "3", "4", "5", "6"]) {
      expect(store.acquireOrEnqueue("k", entry(id, { id }), POLICY).status).toBe("queued");
      expect(store.idCount).toBeLessThanOrEqual(4);
    }
    expect(store.idCount).toBe(4);
    for (const id of ["6", "5", "4", "3"]) {
      expect(store.acquireOrEnqueue("k", entry(id, { id }), POLICY).status).toBe("duplicate");
    }
    // The oldest were forgotten early, so they are admitted again (and remembered anew, which
    // pushes out the oldest of the rest).
    expect(store.acquireOrEnqueue("k", entry("1", { id: "1" }), POLICY).status).toBe("queued");
    expect(store.idCount).toBe(4);
    expect(store.acquireOrEnqueue("k", entry("3", { id: "3" }), POLICY).status).toBe("queued");
    expect(store.acquireOrEnqueue("k", entry("6", { id: "6" }), POLICY).status).toBe("duplicate");
    expect(store.acquireOrEnqueue("k", entry("1", { id: "1" }), POLICY).status).toBe("duplicate");
    // Ids that are not small integers are capped the same way.
    for (const id of ["a", "b", "c", "d", "e"]) {
      expect(store.acquireOrEnqueue("k", entry(id, { id }), POLICY).status).toBe("queued");
      expect(store.idCount).toBeLessThanOrEqual(4);
    }
    expect(store.acquireOrEnqueue("k", entry("e", { id: "e" }), POLICY).status).toBe("duplicate");
    store.finish("k", claim, "all");
  });

  // Ids are remembered two ways (an ascending log of small integers, maps for the rest): whatever
  // the mix, order and timing, the answer must be the exact one of a plain reference map, and
  // under a tight cap it may only forget (admit again), never invent a duplicate.
  it("answers exactly as a reference map, for any mix of ids, order, forgets and time", () => {
    const op = fc.oneof(
      { weight: 6, arbitrary: fc.record({ kind: fc.constant("next" as const), step: fc.nat(3) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("old" as const), back: fc.nat(40) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("text" as const), n: fc.nat(5) }) },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant("forget" as const), back: fc.nat(10) }),
      },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("wait" as const), ms: fc.nat(60) }) },
    );
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 300 }),
        fc.constantFrom(4, 32, 100_000),
        (ops, maxIds) => {
          vi.useFakeTimers();
          try {
            const store = syncStore({ maxIds });
            const window = 100;
            const policy = { ...POLICY, dedupe: window };
            const reference = new Map<string, number>(); // id → expiry
            const issued: string[] = [];
            let top = 2_147_483_600; // near the small-integer edge, to cross it
            acquire(store, "k");
            for (const o of ops) {
              if (o.kind === "wait") {
                vi.advanceTimersByTime(o.ms);
                continue;
              }
              let id: string;
              if (o.kind === "next") id = String((top += o.step));
              else if (o.kind === "text") id = `m${o.n}`;
              else id = issued[Math.max(0, issued.length - 1 - o.back)] ?? "0";
              if (o.kind === "forget") {
                store.forget("k", [id]);
                reference.delete(id);
                continue;
              }
              issued.push(id);
              const now = Date.now();
              const expected = (reference.get(id) ?? 0) > now;
              const status = store.acquireOrEnqueue("k", entry(id, { id }), policy).status;
              if (maxIds === 100_000 || expected === false) {
                expect(status, `${id} at ${now}`).toBe(expected ? "duplicate" : "queued");
              }
              if (status !== "duplicate") reference.set(id, now + window);
              expect(store.idCount).toBeLessThanOrEqual(maxIds);
            }
          } finally {
            vi.useRealTimers();
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("rejects a bad maxIds", () => {
    expect(() => memoryStore({ maxIds: 0 })).toThrow(TypeError);
    expect(() => memoryStore({ maxIds: 0 })).toThrow(/"maxIds"/);
    expect(() => memoryStore({ maxIds: "10" as never })).toThrow(TypeError);
  });

  it("is not shared", () => {
    expect(memoryStore().shared).toBe(false);
  });
});
