// Revisions across replicas (issue 14), with both clients: two guards in this process on one
// prefix and one Redis (test/support/redis-pair.ts). An edit or a deletion reaches the replica that
// did not admit the input; a running turn hears of it wherever it runs; a turn that has not shown
// its inputs to its handler yet takes the change. Outcomes: redis-outcomes.test.ts.

import type { Drop, Turn } from "session-guard";
import { bucketOf, redisStore } from "session-guard/redis";
import { describe, expect, it } from "vitest";
import { parseEntry } from "../src/stores/redis/format.js";
import { CLIENTS, eventually, redisAvailable, useRedis } from "./support/redis-harness.js";
import { entry, recordingHost } from "./support/redis-host.js";
import {
  gate,
  LEASE,
  type Msg,
  type Seen,
  started,
  turnOf,
  useReplicaPair,
} from "./support/redis-pair.js";

/** The suite's Redis (`db.target`, `db.admin`), connected before and disposed after it. */
const db = useRedis();

describe.skipIf(!redisAvailable).each(CLIENTS)("revisions across replicas with $name", (kind) => {
  const r = useReplicaPair(kind, db);

  it("REPLACE changes only the JSON of the entry: its header, uid, id, group and position stay", async () => {
    const prefix = r.fresh();
    const client = kind.create(db.target);
    const store = redisStore({ client, prefix, lease: LEASE });
    r.later({
      async close() {
        await store.close();
        await kind.dispose(client);
      },
    });
    store.attach?.(recordingHost());
    const k = "k";
    const policy = {
      whenHeld: "enqueue",
      maxPending: 10,
      overflow: "drop-oldest",
      maxPendingTotal: 100,
      dedupe: 60_000,
      batch: "all",
    } as const;
    const first = await store.acquireOrEnqueue(k, entry("first"), policy);
    expect(first.status).toBe("acquired");
    const odd = "g|1%=,"; // an id with every separator of the layout in it
    await store.acquireOrEnqueue(k, entry("a", { id: "a" }), policy);
    await store.acquireOrEnqueue(
      k,
      { ...entry("old", { id: odd, group: "album" }), settle: 50 },
      policy,
    );
    await store.acquireOrEnqueue(
      k,
      entry("c", { id: "c", expiresAt: Date.now() + 60_000 }),
      policy,
    );
    const queue = `{${prefix}${bucketOf(k)}}q:${k}`;
    const before = await db.admin.lRange(queue, 0, -1);
    const data = JSON.stringify("new | text");
    expect(await store.replace(k, odd, data, () => {})).toBeDefined();
    const after = await db.admin.lRange(queue, 0, -1);
    expect([after[0], after[2]]).toEqual([before[0], before[2]]);
    const old = before[1] as string;
    expect(after[1]).toBe(`${old.slice(0, old.length - JSON.stringify("old").length)}${data}`);
    expect(parseEntry(after[1] as string)).toMatchObject({
      id: odd,
      group: "album",
      settle: 50,
      uid: parseEntry(old).uid,
      data,
    });
  });

  it("replace and withdraw from the replica that did not admit the input: its caller learns it, onDrop fires once in total", async () => {
    const { on, a, b } = r.pair();
    const busy = gate(on, "one");
    await a.guard.submit("k", { text: "one" }, undefined, { id: "1" });
    await started(on, "one");
    // Queued at A (behind A's own turn): A keeps their objects, their callers and their onDrop.
    const own: Drop<Msg>[] = [];
    const onDrop = (drop: Drop<Msg>) => void own.push(drop);
    const awaited = ["2", "3", "4"].map((id) =>
      a.guard.submit("k", { text: `m${id}` }, undefined, { id, awaitTurn: true, onDrop }),
    );
    // One queued at B too, which A (the holder) will run from its text.
    expect(await b.guard.submit("k", { text: "m5" }, undefined, { id: "5" })).toBe("queued");
    await eventually(async () => (await b.guard.outcome("5"))?.state === "pending");
    for (const id of ["2", "3", "4"])
      await eventually(async () => (await b.guard.outcome(id))?.state === "pending");

    // From the replica that did not admit them: the last and the first of A's, and B's one from A.
    expect(await b.guard.replace("k", "4", { text: "m4 edited" })).toBe("replaced");
    expect(await b.guard.replace("k", "2", { text: "m2 edited" })).toBe("replaced");
    expect(await a.guard.replace("k", "5", { text: "m5 edited" })).toBe("replaced");
    expect(await b.guard.withdraw("k", "3")).toBe("withdrawn");
    // A's awaited submit of the withdrawn input resolves "dropped", its own onDrop fires once.
    expect(await awaited[1]).toBe("dropped");
    expect(own).toEqual([{ key: "k", input: { text: "m3" }, id: "3", reason: "withdrawn" }]);
    // The guard's onDrop fires once in total: where the withdraw ran.
    expect(b.drops.map((d) => `${d.id}:${d.reason}`)).toEqual(["3:withdrawn"]);
    expect(a.drops).toEqual([]);
    // Withdrawn twice: it ended.
    expect(await a.guard.withdraw("k", "3")).toBe("ended");

    busy.resolve();
    expect(await Promise.all([awaited[0], awaited[2]])).toEqual(["queued", "queued"]);
    // The next turn (at A, the holder) sees the new contents, in their places.
    const next = on.turns[1] as Seen;
    expect(next.by).toBe("A");
    expect(next.inputs).toEqual(["m2 edited", "m4 edited", "m5 edited"]);
    expect(own).toHaveLength(1);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it("replace with from: the admitting replica derives the input from its own object; other replicas get the input given", async () => {
    const { on, a, b } = r.pair();
    const busy = gate(on, "one");
    await a.guard.submit("k", { text: "one" }, undefined, { id: "1" });
    await started(on, "one");
    await a.guard.submit("k", { text: "two" }, undefined, { id: "2" });
    expect(await b.guard.submit("k", { text: "three" }, undefined, { id: "3" })).toBe("queued");
    const derive = (pending: Msg): Msg => ({ text: `${pending.text} (derived)` });
    expect(await a.guard.replace("k", "2", { text: "two (given)" }, { from: derive })).toBe(
      "replaced",
    );
    // Pending at A, admitted by B: A holds no object of it, so it takes the input given.
    await eventually(async () => (await a.guard.outcome("3"))?.state === "pending");
    expect(await a.guard.replace("k", "3", { text: "three (given)" }, { from: derive })).toBe(
      "replaced",
    );
    busy.resolve();
    await eventually(() => on.turns.length === 2, 5_000, "the next turn");
    expect((on.turns[1] as Seen).inputs).toEqual(["two (derived)", "three (given)"]);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('in-turn across replicas: the running turn at A hears an edit and a deletion made at B (a key and JSON with "|" in them)', async () => {
    const { on, a, b } = r.pair();
    const busy = gate(on, "one");
    await a.guard.submit("chat|1", { text: "one" }, undefined, { id: "1" });
    await started(on, "one");
    const turn = turnOf(on, "one");
    expect(await b.guard.replace("chat|1", "1", { text: "one | edited" })).toBe("in-turn");
    expect(await b.guard.withdraw("chat|1", "1")).toBe("in-turn");
    await eventually(() => turn.revisions.length === 2, 5_000, "both revisions at A");
    expect(turn.revisions).toEqual([
      { id: "1", input: { text: "one | edited" } },
      { id: "1", input: undefined },
    ]);
    // The turn's inputs do not change.
    expect(turn.turn.inputs).toEqual([{ text: "one" }]);
    busy.resolve();
    await eventually(async () => (await b.guard.outcome("1"))?.state === "handled");
    expect(b.drops).toEqual([]);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it("a turn at A that waits for a slot (its handler has not seen its inputs) takes an edit and a deletion made at B", async () => {
    const { on, a, b } = r.pair({ concurrency: 1 });
    const busy = gate(on, "one");
    await a.guard.submit("k1", { text: "one" }, undefined, { id: "1" });
    await started(on, "one");
    // The turns of k2 and k3 are claimed at A and wait for A's only slot, each with its input.
    await a.guard.submit("k2", { text: "two" }, undefined, { id: "2" });
    await a.guard.submit("k3", { text: "three" }, undefined, { id: "3" });
    await eventually(async () => (await b.guard.outcome("3"))?.state === "pending");
    // B finds them in the batches of the turns holding their keys.
    expect(await b.guard.replace("k2", "2", { text: "two, edited" })).toBe("in-turn");
    expect(await b.guard.withdraw("k3", "3")).toBe("in-turn");
    await eventually(() => a.drops.length === 1, 5_000, "the deletion at A");
    busy.resolve();
    await started(on, "two, edited");
    expect(turnOf(on, "two, edited").inputs).toEqual(["two, edited"]);
    expect(a.drops.map((d) => `${d.id}:${d.reason}`)).toEqual(["3:withdrawn"]);
    expect(b.drops).toEqual([]);
    await eventually(async () => (await b.guard.outcome("2"))?.state === "handled");
    expect(await b.guard.outcome("3")).toMatchObject({ state: "dropped", reason: "withdrawn" });
    // k3's turn had nothing left to run; its key is free again.
    expect(await a.guard.submit("k3", { text: "four" }, undefined, { id: "4" })).toBe("started");
    await started(on, "four");
    expect(on.turns.map((t) => t.inputs[0])).toEqual(["one", "two, edited", "four"]);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('"ended" once the turn is over, "unknown" for an id never admitted or of another key', async () => {
    const { on, a, b } = r.pair();
    await a.guard.submit("k", { text: "one" }, undefined, { id: "1", awaitTurn: true });
    expect(on.turns).toHaveLength(1);
    await eventually(async () => (await b.guard.outcome("1"))?.state === "handled");
    expect(await b.guard.replace("k", "1", { text: "late" })).toBe("ended");
    expect(await b.guard.withdraw("k", "1")).toBe("ended");
    expect(await b.guard.replace("k", "never", { text: "x" })).toBe("unknown");
    expect(await b.guard.withdraw("k", "never")).toBe("unknown");
    expect(await b.guard.withdraw("other", "1")).toBe("unknown");
    expect(await b.guard.outcome("never")).toBeUndefined();
    expect(b.drops).toEqual([]);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it("in latest a replaced input stays the newest pending one: it runs with its new content", async () => {
    const { on, a, b } = r.pair({ mode: "latest" });
    const busy = gate(on, "one");
    await a.guard.submit("k", { text: "one" }, undefined, { id: "1" });
    await started(on, "one");
    await a.guard.submit("k", { text: "two" }, undefined, { id: "2" });
    await a.guard.submit("k", { text: "three" }, undefined, { id: "3" });
    expect(a.drops.map((d) => `${d.id}:${d.reason}`)).toEqual(["2:superseded"]);
    expect(await b.guard.replace("k", "3", { text: "three, edited" })).toBe("replaced");
    busy.resolve();
    await started(on, "three, edited");
    expect(on.turns.map((t) => t.inputs)).toEqual([["one"], ["three, edited"]]);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  describe("a steer take() racing a withdraw at the other replica: every input ends exactly once", () => {
    /** Run one race; `order` says which goes first, or "both" starts them together. */
    async function race(order: "take first" | "withdraw first" | "both") {
      const { on, a, b } = r.pair({ mode: "steer" });
      const busy = gate(on, "one");
      let taken: Msg[] | undefined;
      let result: string | undefined;
      const withdraw = async () => {
        result = await b.guard.withdraw("k", "2");
      };
      const take = async (turn: Turn<Msg>) => {
        taken = await turn.take();
      };
      on.after.set("one", async (turn) => {
        if (order === "take first") {
          await take(turn);
          await withdraw();
        } else if (order === "withdraw first") {
          await withdraw();
          await take(turn);
        } else await Promise.all([take(turn), withdraw()]);
        // The hint of an in-turn revision travels apart from the answer: the turn stays to hear it.
        const seen = turnOf(on, "one");
        if (result === "in-turn") {
          await eventually(() => seen.revisions.length === 1, 5_000, "the revision at A");
        }
      });
      await a.guard.submit("k", { text: "one" }, undefined, { id: "1" });
      await started(on, "one");
      const second = a.guard.submit("k", { text: "two" }, undefined, {
        id: "2",
        awaitTurn: true,
      });
      await eventually(async () => (await b.guard.outcome("2"))?.state === "pending");
      busy.resolve();
      const admitted = await second;
      await eventually(async () => (await b.guard.outcome("1"))?.state === "handled");
      const turn = turnOf(on, "one");
      if (result === "withdrawn") {
        expect(taken).toEqual([]);
        expect(admitted).toBe("dropped");
        expect(b.drops.map((d) => `${d.id}:${d.reason}`)).toEqual(["2:withdrawn"]);
        expect(await a.guard.outcome("2")).toMatchObject({ state: "dropped", reason: "withdrawn" });
      } else {
        expect(result).toBe("in-turn");
        expect(taken).toEqual([{ text: "two" }]);
        expect(admitted).toBe("queued");
        expect(b.drops).toEqual([]);
        expect(turn.revisions).toEqual([{ id: "2", input: undefined }]);
        await eventually(async () => (await b.guard.outcome("2"))?.state === "handled");
      }
      // Every input ends exactly once, across both replicas; nothing else ran.
      const settled = [...a.settled, ...b.settled].map((s) => s.id).sort();
      expect(settled).toEqual(["1", "2"]);
      expect(on.turns).toHaveLength(1);
      expect(a.drops).toEqual([]);
      expect([...a.errors, ...b.errors]).toEqual([]);
      return result;
    }

    it("take first: the input runs in the turn, the withdraw answers in-turn", async () => {
      expect(await race("take first")).toBe("in-turn");
    });

    it("withdraw first: the input is dropped, take() finds nothing", async () => {
      expect(await race("withdraw first")).toBe("withdrawn");
    });

    it("both at once: either way the accounting balances", async () => {
      expect(["in-turn", "withdrawn"]).toContain(await race("both"));
    });
  });
});
