// Outcomes across replicas (issue 14), with both clients: any replica answers what became of an
// input (`guard.outcome(id)`), through pending, running and its one final state, from records the
// Redis store writes by id (src/stores/redis/outcomes.ts); a failed write is an incident reported
// once. Two guards in this process on one prefix and one Redis (test/support/redis-pair.ts).

import { createGuard, type Outcome, StoreError } from "session-guard";
import { bucketOf, redisStore } from "session-guard/redis";
import { describe, expect, it } from "vitest";
import {
  adminClient,
  CLIENTS,
  eventually,
  redisAvailable,
  serverAvailable,
  startLocalRedis,
  useRedis,
} from "./support/redis-harness.js";
import { recordingHost } from "./support/redis-host.js";
import { gate, LEASE, started, turnOf, useReplicaPair } from "./support/redis-pair.js";

/** The suite's Redis (`db.target`, `db.admin`), connected before and disposed after it. */
const db = useRedis();

describe.skipIf(!redisAvailable).each(CLIENTS)("outcomes across replicas with $name", (kind) => {
  const r = useReplicaPair(kind, db);

  it("outcome(id) from the other replica: pending, running, then handled, failed or dropped (withdrawn), with the fence", async () => {
    const { on, a, b } = r.pair({ mode: "queue" });
    const busy = gate(on, "one");
    await a.guard.submit("k", { text: "one" }, undefined, { id: "1" });
    await started(on, "one");
    await a.guard.submit("k", { text: "fail two" }, undefined, { id: "2" });
    await a.guard.submit("k", { text: "three" }, undefined, { id: "3" });
    const first = turnOf(on, "one");
    await eventually(async () => (await b.guard.outcome("1"))?.state === "running");
    expect(await b.guard.outcome("1")).toMatchObject({ key: "k", fence: first.fence });
    await eventually(async () => (await b.guard.outcome("2"))?.state === "pending");
    expect(await b.guard.outcome("2")).toMatchObject({ key: "k" });
    expect(await b.guard.withdraw("k", "3")).toBe("withdrawn");
    // B reads its own record at once (written or not yet); A once it is written.
    expect(await b.guard.outcome("3")).toMatchObject({ state: "dropped", reason: "withdrawn" });
    await eventually(async () => (await a.guard.outcome("3"))?.state === "dropped");
    expect(await a.guard.outcome("3")).toMatchObject({
      key: "k",
      state: "dropped",
      reason: "withdrawn",
    });
    busy.resolve();
    await eventually(async () => (await b.guard.outcome("2"))?.state === "failed");
    const second = turnOf(on, "fail two");
    const now = Date.now();
    const one = (await b.guard.outcome("1")) as Outcome;
    const two = (await b.guard.outcome("2")) as Outcome;
    expect(one).toMatchObject({ key: "k", state: "handled", fence: first.fence });
    expect(two).toMatchObject({ key: "k", state: "failed", fence: second.fence });
    expect(second.fence).toBeGreaterThan(first.fence);
    for (const outcome of [one, two]) expect(outcome.at).toBeLessThanOrEqual(now);
    // One settled event per input, at the replica that ended it.
    const settled = [...a.settled, ...b.settled].map((s) => `${s.id}:${s.outcome.state}`).sort();
    expect(settled).toEqual(["1:handled", "2:failed", "3:dropped"]);
    expect(b.settled.map((s) => s.id)).toEqual(["3"]);
    expect(a.errors.filter((e) => !String(e).includes("fail two"))).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it("an uncontended turn's record rides with its finish on a standalone server: two commands per turn, and the other replica reads it", async () => {
    const prefix = r.fresh();
    const client = kind.create(db.target);
    const sent = countCommands(client);
    const store = redisStore({ client, prefix, lease: 60_000, sweepInterval: 60_000 });
    const reader = kind.create(db.target);
    const other = redisStore({ client: reader, prefix, lease: 60_000, sweepInterval: 60_000 });
    const guard = createGuard<{ n: number }>({ store, handler: () => {} });
    r.later({
      async close() {
        await guard.close({ timeout: 1_000 });
        await store.close();
        await other.close();
        await kind.dispose(client);
        await kind.dispose(reader);
      },
    });
    // The first turn loads the scripts (EVALSHA, then EVAL).
    await guard.submit("k", { n: 1 }, undefined, { id: "warm" });
    await guard.onIdle();
    await new Promise((resolve) => setImmediate(resolve));
    const before = sent.count;
    expect(await guard.submit("k", { n: 2 }, undefined, { id: "2" })).toBe("started");
    await guard.onIdle();
    // A record left for a batch of its own would be sent in the next event-loop turn.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sent.count - before).toBe(2);
    expect(await other.outcome?.("2")).toMatchObject({ key: "k", state: "handled" });
  });

  it("a record noted while an earlier one of its id rides with a finish is written after it, even when the finish is sent again as EVAL", async () => {
    const prefix = r.fresh();
    const client = kind.create(db.target);
    const store = redisStore({ client, prefix, lease: 60_000, sweepInterval: 60_000 });
    r.later({
      async close() {
        await store.close();
        await kind.dispose(client);
      },
    });
    store.attach?.(recordingHost());
    const entry = { id: undefined, alone: false, expiresAt: Number.POSITIVE_INFINITY, data: "1" };
    const policy = {
      maxPending: 100,
      overflow: "drop-oldest",
      maxPendingTotal: Number.POSITIVE_INFINITY,
      whenHeld: "enqueue",
      dedupe: 0,
      batch: "all",
    } as const;
    const admission = await store.acquireOrEnqueue("k", entry, policy);
    if (admission.status !== "acquired") throw new Error(admission.status);
    // The server forgets the scripts: the finish goes as EVALSHA, is refused, and goes again as
    // EVAL. Writes wait meanwhile, so that a record sent on its own would run between the two.
    await db.admin.sendCommand(["SCRIPT", "FLUSH"]);
    await db.admin.sendCommand(["CLIENT", "PAUSE", "200", "WRITE"]);
    const at = Date.now();
    store.record?.("k", [{ id: "x", state: "handled", fence: admission.claim.fence, at }], 60_000);
    const finished = store.finish("k", admission.claim, "all");
    await new Promise((resolve) => setTimeout(resolve, 20));
    store.record?.("k", [{ id: "x", state: "pending", at: at + 1 }], 60_000);
    expect(await finished).toMatchObject({ status: "released" });
    await eventually(async () => {
      const stored = await db.admin.get(`{${prefix}${bucketOf("x")}}o:x`);
      return stored?.startsWith("pending|") === true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await db.admin.get(`{${prefix}${bucketOf("x")}}o:x`)).toMatch(/^pending\|/);
  });

  it.skipIf(!serverAvailable)(
    "outcome writes that fail are reported once as StoreError(record), and the outage's end once they work again",
    async () => {
      const prefix = r.fresh();
      const local = await startLocalRedis();
      const client = kind.create(local);
      const store = redisStore({ client, prefix, lease: LEASE, commandTimeout: 200 });
      r.later({
        async close() {
          await store.close();
          await kind.dispose(client);
          await local.dispose();
        },
      });
      const host = recordingHost();
      const recovered: string[] = [];
      host.recovered = (operation) => void recovered.push(operation);
      store.attach?.(host);
      const handled = (id: string) => [{ id, state: "handled" as const, fence: 7, at: Date.now() }];
      /** The record as Redis holds it (never this replica's unwritten copy). */
      const stored = async (id: string) => {
        const admin = await adminClient(local);
        try {
          return await admin.get(`{${prefix}${bucketOf(id)}}o:${id}`);
        } finally {
          admin.destroy();
        }
      };
      store.record("k", handled("1"), 60_000);
      await eventually(async () => (await stored("1")) !== null, 5_000, "the first record");
      expect(await store.outcome("1")).toMatchObject({ key: "k", state: "handled", fence: 7 });
      await local.stop();
      // (The connections' own failures are reported too, as background incidents: not counted.)
      const records = () => host.errors.filter((e) => e instanceof StoreError);
      store.record("k", handled("2"), 60_000);
      await eventually(() => records().length === 1, 5_000, "the outage reported");
      store.record("k", handled("3"), 60_000);
      await new Promise((resolve) => setTimeout(resolve, 400)); // past its command timeout
      expect(records()).toHaveLength(1);
      expect(records()[0]).toMatchObject({ operation: "record", key: "k" });
      expect(String(records()[0])).toMatch(/during record for key "k"/);
      expect(recovered).toEqual([]);
      await local.start();
      // Failed records are not written again: the guard's next records (here, one per poll until
      // the client has reconnected) close the outage.
      await eventually(
        () => {
          store.record("k", handled("4"), 60_000);
          return recovered.includes("record");
        },
        10_000,
        "the outage's end",
      );
      expect(recovered.filter((operation) => operation === "record")).toEqual(["record"]);
      expect(await stored("4")).toMatch(/^handled\|\|7\|\d+\|k$/);
      expect(records()).toHaveLength(1);
    },
  );
});

/** Count the commands sent on the connections a store duplicates from `client`. */
function countCommands(client: unknown): { count: number } {
  const counter = { count: 0 };
  type Sender = Record<string, (...args: unknown[]) => unknown>;
  const patched = client as { duplicate(...args: unknown[]): Sender };
  const duplicate = patched.duplicate.bind(client);
  patched.duplicate = (...args: unknown[]) => {
    const copy = duplicate(...args);
    // node-redis sends through sendCommand, ioredis through call.
    const method = typeof copy.sendCommand === "function" ? "sendCommand" : "call";
    const send = (copy[method] as (...a: unknown[]) => unknown).bind(copy);
    copy[method] = (...a: unknown[]) => {
      counter.count++;
      return send(...a);
    };
    return copy;
  };
  return counter;
}
