// The deadline list (`src/core/deadlines.ts`): one timer for many items, in deadline order.
// Turn deadlines all share one timeout, but the lease watchdog re-arms a watch sooner after a failed
// renewal, so items also arrive with shorter timeouts than those already queued. This drives the
// list with a mix of both (and removals, re-adds from inside the expiry callback, and time moving
// on in steps) on fake timers, and checks each item against its own deadline: it expires once,
// never before its deadline, and at the latest when the clock passes it.

import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Deadlines, type Timed } from "../src/core/deadlines.js";

interface Item extends Timed {
  readonly name: number;
  /** When the test expects it to expire (fake epoch ms), while it is queued. */
  due: number;
  expired: number;
}

const item = (name: number): Item => ({
  name,
  due: 0,
  expired: 0,
  deadline: 0,
  newer: undefined,
  older: undefined,
  queued: false,
});

type Op =
  | { kind: "add"; pick: number; timeout: number }
  | { kind: "delete"; pick: number }
  | { kind: "advance"; ms: number };

const FIXED = 300;
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("add" as const),
      pick: fc.nat(19),
      // Mostly the fixed timeout (the common case: O(1) at the newest end), else anything shorter.
      timeout: fc.oneof(fc.constant(FIXED), fc.integer({ min: 0, max: FIXED })),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), pick: fc.nat(19) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.integer({ min: 0, max: 200 }),
    }),
  },
);

describe("Deadlines", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("expires every item once, in deadline order, never early, with mixed timeouts", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 200 }), fc.boolean(), (ops, readd) => {
        vi.setSystemTime(1_000_000);
        const items = Array.from({ length: 20 }, (_, i) => item(i));
        const expiredOrder: number[] = []; // deadlines, as they expire
        const list = new Deadlines<Item>((expired) => {
          const now = Date.now();
          expect(expired.queued).toBe(false);
          expect(expired.due).toBeGreaterThan(0);
          expect(now).toBeGreaterThanOrEqual(expired.due); // never early
          expired.expired++;
          expiredOrder.push(expired.deadline);
          expired.due = 0;
          // As the lease watchdog does: the expired item is queued again from its callback.
          if (readd && expired.name % 2 === 0) {
            list.add(expired, FIXED);
            expired.due = now + FIXED;
          }
        });
        for (const o of ops) {
          if (o.kind === "add") {
            const it = items[o.pick] as Item;
            list.delete(it);
            list.add(it, o.timeout);
            it.due = Date.now() + o.timeout;
          } else if (o.kind === "delete") {
            const it = items[o.pick] as Item;
            list.delete(it);
            it.due = 0;
          } else {
            const before = expiredOrder.length;
            vi.advanceTimersByTime(o.ms);
            const now = Date.now();
            // Whatever was due by now has expired (an item re-added at expiry is due later).
            // (Node, and so the fake timers, wait at least 1 ms: an item due now may still wait.)
            for (const it of items) if (it.due !== 0) expect(it.due).toBeGreaterThanOrEqual(now);
            // Items expired in one step went in deadline order.
            const step = expiredOrder.slice(before);
            for (let i = 1; i < step.length; i++) {
              expect(step[i]).toBeGreaterThanOrEqual(step[i - 1] as number);
            }
          }
        }
        list.clear();
      }),
      { numRuns: 300 },
    );
  });

  it("a shorter timeout added behind longer ones brings the timer forward", () => {
    vi.setSystemTime(1_000_000);
    const fired: number[] = [];
    const list = new Deadlines<Item>((expired) => fired.push(expired.name));
    const long = item(1);
    const short = item(2);
    list.add(long, 10_000);
    list.add(short, 50);
    vi.advanceTimersByTime(60);
    expect(fired).toEqual([2]);
    vi.advanceTimersByTime(10_000);
    expect(fired).toEqual([2, 1]);
  });
});
