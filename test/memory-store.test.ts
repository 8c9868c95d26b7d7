// What only the memory store promises, driven directly through memoryStore(): synchronous answers,
// its counters, one fence counter and claims that are objects, ids shared by every key, maxIds and
// maxPendingTotal. What every store promises is the store contract (test/support/store-contract.ts,
// run in store-contract.test.ts).

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
    stop: (key: string, id: string | undefined, dedupe: number) =>
      sync(inner.stop(key, id, dedupe)),
    keys: (prefix: string) => sync(inner.keys(prefix)),
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

describe("claims", () => {
  it("fences are strictly increasing across keys too (one counter per store)", () => {
    const store = syncStore();
    const fences = ["a", "b", "c"].map((key) => acquire(store, key).fence);
    expect(fences[1]).toBeGreaterThan(fences[0] as number);
    expect(fences[2]).toBeGreaterThan(fences[1] as number);
  });

  it("a claim is the holder's own object: a copy with the same fence does not hold the key", () => {
    const store = syncStore();
    const claim = acquire(store, "k");
    store.acquireOrEnqueue("k", entry("b"), POLICY);
    expect(store.finish("k", { ...claim }, "all")).toEqual({ status: "lost" });
    expect(store.take("k", { ...claim }, "all")).toEqual({ status: "lost" });
    expect(store.renew("k", { ...claim })).toEqual({ status: "lost" });
    expect(store.abandon("k", { ...claim })).toEqual([]);
    expect(store.renew("k", claim)).toEqual({ status: "held", pending: 1 });
  });
});

describe("admission policies", () => {
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

describe("synchronous answers and counters", () => {
  it("answers every operation synchronously, and keyCount and pendingTotal follow each one", () => {
    vi.useFakeTimers();
    const store = syncStore();
    const claim = acquire(store, "k");
    expect(store.keyCount).toBe(1);
    expect(store.pendingTotal).toBe(0);
    store.acquireOrEnqueue("k", entry("r"), { ...POLICY, whenHeld: "reject" });
    expect(store.pendingTotal).toBe(0);
    store.acquireOrEnqueue("k", entry("b", { id: "b" }), POLICY);
    store.acquireOrEnqueue("k", entry("c", { expiresAt: Date.now() + 10 }), POLICY);
    store.acquireOrEnqueue("k", entry("d"), POLICY);
    expect(store.pendingTotal).toBe(3);
    // latest: superseded entries leave the total; overflow: the evicted one too.
    store.acquireOrEnqueue("k", entry("e"), { ...POLICY, whenHeld: "latest" });
    expect(store.pendingTotal).toBe(1);
    store.acquireOrEnqueue("k", entry("f", { id: "f" }), POLICY);
    store.acquireOrEnqueue("k", entry("g", { expiresAt: Date.now() + 10 }), {
      ...POLICY,
      maxPending: 2,
    });
    expect(store.pendingTotal).toBe(2);
    expect(store.withdraw("k", "f")).toMatchObject({ name: "f" });
    expect(store.pendingTotal).toBe(1);
    vi.advanceTimersByTime(10);
    expect(store.expire("k").dropped).toHaveLength(1);
    expect(store.pendingTotal).toBe(0);
    store.acquireOrEnqueue("k", entry("h"), POLICY);
    store.acquireOrEnqueue("k", entry("i"), POLICY);
    store.acquireOrEnqueue("k", entry("j"), POLICY);
    expect(store.take("k", claim, "one")).toMatchObject({ status: "taken" });
    expect(store.pendingTotal).toBe(2);
    expect(store.clear("k")).toHaveLength(2);
    expect(store.pendingTotal).toBe(0);
    store.acquireOrEnqueue("k", entry("l"), POLICY);
    expect(store.stop("k", "stop-1", 60_000)).toMatchObject({ status: "stopped", held: true });
    expect(store.pendingTotal).toBe(0);
    expect(store.keys("")).toEqual(["k"]);
    store.acquireOrEnqueue("k", entry("m"), POLICY);
    store.acquireOrEnqueue("k", entry("n", { expiresAt: Date.now() + 10 }), POLICY);
    store.acquireOrEnqueue("k", entry("o"), POLICY);
    vi.advanceTimersByTime(10);
    const next = store.finish("k", claim, "one");
    if (next.status !== "next") throw new Error(`expected next, got ${next.status}`);
    expect(store.pendingTotal).toBe(1);
    expect(store.keyCount).toBe(1);
    expect(store.abandon("k", next.claim)).toHaveLength(1);
    expect(store.keyCount).toBe(0);
    expect(store.pendingTotal).toBe(0);
    const again = acquire(store, "k");
    expect(store.finish("k", again, "all")).toMatchObject({ status: "released" });
    expect(store.keyCount).toBe(0);
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
    // An entry without an id, or admitted with dedupe 0, is never remembered.
    store.acquireOrEnqueue("k0", entry("no id"), policy);
    store.acquireOrEnqueue("k0", entry("off", { id: "off" }), { ...policy, dedupe: 0 });
    expect(store.idCount).toBe(10);
    expect(store.pendingTotal).toBe(9);
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
    // Expired ids are held until a new id needs room: one window on they are still held
    // (expired, so not duplicates; an expired id seen again is marked anew in its own record),
    // two windows on a new id leaves only itself.
    vi.advanceTimersByTime(100);
    expect(store.acquireOrEnqueue("k", entry("again", { id: "id3" }), policy).status).toBe(
      "acquired",
    );
    expect(store.idCount).toBe(7);
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

  // The ids live in a ring that grows by doubling: grown while its oldest record sits anywhere
  // (expired records leave from the front), every id must still be found, and none invented.
  it("answers exactly as a reference map while its ring grows around the wrap", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 400 }), fc.nat(30), fc.nat(9)), {
          minLength: 2,
          maxLength: 12,
        }),
        (bursts) => {
          vi.useFakeTimers();
          try {
            const store = syncStore();
            const window = 50;
            const policy = { ...POLICY, dedupe: window, maxPending: 1e9, maxPendingTotal: 1e9 };
            const reference = new Map<string, number>();
            const issued: string[] = [];
            acquire(store, "k");
            for (const [count, wait, back] of bursts) {
              vi.advanceTimersByTime(wait);
              for (let i = 0; i < count; i++) {
                // Mostly new ids, every tenth an earlier one (a redelivery, maybe expired).
                const id =
                  i % 10 === 9
                    ? (issued[issued.length - 1 - back * 37] ?? "x")
                    : `u${issued.length}`;
                issued.push(id);
                const now = Date.now();
                const expected = (reference.get(id) ?? 0) > now;
                const status = store.acquireOrEnqueue("k", entry(id, { id }), policy).status;
                expect(status, `${id} at ${now}`).toBe(expected ? "duplicate" : "queued");
                if (!expected) reference.set(id, now + window);
              }
            }
          } finally {
            vi.useRealTimers();
          }
        },
      ),
      { numRuns: 150 },
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
