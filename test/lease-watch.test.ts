// The lease watchdog (`src/core/lease-watch.ts`) on a store whose claims expire unless renewed.
// Every watched turn shares one timer: a renewal every lease/3, and after a failed renewal a retry
// at half that, which lands before the other turns' next renewals. Each turn must keep its own
// schedule whatever the others do, and a turn whose renewals keep failing is given up when its
// lease ends, not when some other turn's check happens to fire.

import {
  type Admission,
  type AdmitPolicy,
  createGuard,
  LeaseLostError,
  memoryStore,
  type StoreEntry,
} from "session-guard";
import { afterEach, describe, expect, it, vi } from "vitest";
import { deferred, errorRecorder } from "./support/helpers.js";
import { delegatingStore, useFakeClock } from "./support/hostile.js";

afterEach(() => {
  vi.useRealTimers();
});

const LEASE = 3_000;

describe("the lease watchdog", () => {
  it("renews every turn on its own schedule; a failing one is retried sooner and given up at its lease's end", async () => {
    useFakeClock();
    const start = Date.now();
    const renewals: Record<string, number[]> = { good: [], bad: [], later: [] };
    const store = delegatingStore({
      lease: LEASE,
      renew: (key) => {
        renewals[key]?.push(Date.now() - start);
        if (key === "bad") return Promise.reject(new Error("ECONNREFUSED"));
        return { status: "held", pending: 0 };
      },
    });
    const errors = errorRecorder<string>();
    const guard = createGuard<string>({
      store,
      turnTimeout: Number.POSITIVE_INFINITY,
      onError: errors.onError,
    });
    const gate = deferred();
    let badSignal: AbortSignal | undefined;
    void guard.submit("good", "a", () => gate.promise);
    void guard.submit("bad", "a", (turn) => {
      badSignal = turn.signal;
      return gate.promise;
    });
    await vi.advanceTimersByTimeAsync(250);
    // A turn that starts later renews on its own period, not the others'.
    void guard.submit("later", "a", () => gate.promise);
    await vi.advanceTimersByTimeAsync(4_100 - 250);

    expect(renewals.good).toEqual([1_000, 2_000, 3_000, 4_000]);
    expect(renewals.later).toEqual([1_250, 2_250, 3_250]);
    // Retried at half the period after each failure, until the lease (3 s) has passed.
    expect(renewals.bad).toEqual([1_000, 1_500, 2_000, 2_500]);
    expect(badSignal?.aborted).toBe(true);
    expect(badSignal?.reason).toBeInstanceOf(LeaseLostError);
    expect(guard.isBusy("good")).toBe(true);
    expect(guard.isBusy("later")).toBe(true);
    expect(errors.errors.some(({ error }) => error instanceof LeaseLostError)).toBe(true);

    // A turn that ended is renewed no more.
    gate.resolve();
    await vi.advanceTimersByTimeAsync(10);
    const counts = Object.values(renewals).map((list) => list.length);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(Object.values(renewals).map((list) => list.length)).toEqual(counts);
    expect(guard.activeCount).toBe(0);
  });
});

/**
 * A turn on a store whose renewals all fail, so that only its lease decides when it is given up.
 * Each claim is answered `delay` ms after it was asked for, carrying `since(asked)` as its
 * `Claim.since`. Answers when the turn's signal aborted (ms from the start) and what was reported.
 */
function cutOffTurn(since: (asked: number) => unknown, delay: number) {
  const start = Date.now();
  const base = memoryStore();
  const claim = (key: string, entry: StoreEntry, policy: AdmitPolicy, asked: number) => {
    const admission = base.acquireOrEnqueue(key, entry, policy) as Admission<StoreEntry>;
    // The memory store's claim is its record (kept by identity): stamp it in place.
    if (admission.status === "acquired") Object.assign(admission.claim, { since: since(asked) });
    return admission;
  };
  const store = delegatingStore(
    {
      lease: LEASE,
      acquireOrEnqueue: (key, entry, policy) => {
        const asked = Date.now();
        if (delay === 0) return claim(key, entry, policy, asked);
        return new Promise((resolve) =>
          setTimeout(() => resolve(claim(key, entry, policy, asked)), delay),
        );
      },
      renew: () => Promise.reject(new Error("ECONNREFUSED")),
    },
    base,
  );
  const errors = errorRecorder<string>();
  const guard = createGuard<string>({
    store,
    turnTimeout: Number.POSITIVE_INFINITY,
    onError: errors.onError,
  });
  const result = {
    guard,
    aborted: undefined as number | undefined,
    leaseLost: () => errors.errors.some(({ error }) => error instanceof LeaseLostError),
  };
  void guard.submit("k", "a", async (turn) => {
    await new Promise((resolve) => turn.signal.addEventListener("abort", resolve));
    result.aborted = Date.now() - start;
  });
  return result;
}

describe("the first lease of a turn", () => {
  it("counts from when the store began it (Claim.since), not from when its answer arrived", async () => {
    useFakeClock();
    // A store whose claim answers take a second (a slow link): its lease began when it was asked.
    const turn = cutOffTurn((asked) => asked, 1_000);
    await vi.advanceTimersByTimeAsync(5_000);
    // Another process could claim the key from 3,000 ms on: the turn is given up then, not at
    // 4,000 (a lease after the answer arrived).
    expect(turn.aborted).toBeGreaterThanOrEqual(LEASE);
    expect(turn.aborted).toBeLessThan(LEASE + 100);
    expect(turn.leaseLost()).toBe(true);
  });
});

describe("a store's Claim.since that is not a time before now", () => {
  it.each([
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    "soon",
    4_102_444_800_000,
  ])("%s: the first lease counts from when the guard got the claim", async (since) => {
    useFakeClock();
    const turn = cutOffTurn(() => since, 0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(turn.aborted).toBeUndefined(); // not given up at once
    await vi.advanceTimersByTimeAsync(3_000);
    // Given up a lease after the claim, as with no `since` at all: not never, not at once.
    expect(turn.aborted).toBe(LEASE);
    expect(turn.leaseLost()).toBe(true);
    expect(turn.guard.activeCount).toBe(0);
  });
});
