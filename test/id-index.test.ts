// The ledger's index from id to record (`src/core/id-index.ts`): open addressing in typed arrays,
// where two ids may share a hash. Real hashes almost never collide, so this drives the index with
// hashes drawn from a handful of values (long runs of equal and neighbouring hashes, runs that
// wrap around the end of the table, removals from their middle) and checks every answer against a
// plain map, while the table grows.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hashId, IdIndex } from "../src/core/id-index.js";

type Op =
  | { kind: "add"; hash: number }
  | { kind: "remove"; pick: number }
  | { kind: "find"; pick: number };

const hashes = fc.oneof(
  fc.integer({ min: -3, max: 3 }), // collisions and negative hashes
  fc.integer({ min: 2040, max: 2050 }), // runs that wrap around the end of the first table
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("add" as const), hash: hashes }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("remove" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("find" as const), pick: fc.nat() }) },
);

describe("IdIndex", () => {
  it("answers as a map of id to sequence number, whatever the hashes", () => {
    let grew = false;
    fc.assert(
      // Long enough that the table grows (past 1,024 ids) with removals all along.
      fc.property(fc.array(op, { minLength: 100, maxLength: 3_500, size: "max" }), (ops) => {
        const ids = new Map<number, string>(); // seq → id: what the ledger's ring holds
        const index = new IdIndex({ idAt: (seq) => ids.get(seq) });
        const live = new Map<string, { seq: number; hash: number }>();
        const ever: string[] = [];
        let most = 0;
        let next = 0;
        for (const o of ops) {
          if (o.kind === "add") {
            const seq = next++;
            const id = `id${seq}`;
            ids.set(seq, id);
            index.add(o.hash, seq);
            live.set(id, { seq, hash: o.hash });
            ever.push(id);
          } else if (o.kind === "remove") {
            const id = [...live.keys()][o.pick % Math.max(1, live.size)];
            const record = id === undefined ? undefined : live.get(id);
            if (id === undefined || record === undefined) continue;
            index.remove(record.hash, record.seq);
            ids.delete(record.seq);
            live.delete(id);
          } else {
            const id = ever[o.pick % Math.max(1, ever.length)] ?? "never";
            const record = live.get(id);
            // A removed id is looked up with the hash it had: its neighbours must not answer.
            const hash = record?.hash ?? o.pick;
            expect(index.find(id, hash)).toBe(record?.seq ?? -1);
          }
          expect(index.size).toBe(live.size);
          if (next % 100 === 0) expect(index.occupied()).toBe(live.size);
          most = Math.max(most, live.size);
        }
        grew ||= most > 1_024;
        for (const [id, record] of live) expect(index.find(id, record.hash)).toBe(record.seq);
        expect(index.occupied()).toBe(live.size);
      }),
      { numRuns: 40 },
    );
    expect(grew).toBe(true);
  });

  it("hashes by content with a seed of its own", () => {
    const a = new IdIndex({ idAt: () => undefined });
    const id = ["tg", 42, 1001, 7].join(":");
    expect(hashId(id, a.seed)).toBe(hashId("tg:42:1001:7", a.seed));
    expect(hashId("tg:42:1001:7", a.seed)).not.toBe(hashId("tg:42:1001:8", a.seed));
    expect(Number.isInteger(hashId("", a.seed))).toBe(true);
  });
});
