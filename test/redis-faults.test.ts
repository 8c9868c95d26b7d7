// The Redis store's seam operations (groups, stop, keys, renewals that carry a stop and the next
// expiry) and the faults of issue 18 that the store must survive, with both clients. Stores are
// driven directly through the Store API (a store can be used without a guard) and, where the
// guard already uses an operation, through `createGuard({ store })`. Replicas are stores in this
// process with their own connections and replica ids on one prefix; the network is a proxy.

import { dirname, join } from "node:path";
import {
  type AdmitPolicy,
  type Claim,
  createGuard,
  memoryStore,
  type Store,
  StoreError,
  StoreRecoveredError,
  type Turn,
  TurnAbortedError,
} from "session-guard";
import { bucketOf, type RedisStore, redisStore } from "session-guard/redis";
import { afterEach, describe, expect, it } from "vitest";
import { deferred, sleep } from "./support/helpers.js";
import {
  adminClient,
  CLIENTS,
  cleanUp,
  eventually,
  type RedisTarget,
  redisAvailable,
  serverAvailable,
  startLocalRedis,
  testPrefix,
  useRedis,
} from "./support/redis-harness.js";
import {
  entry,
  type FaultyProxy,
  faultyProxy,
  recordingHost,
  type TestEntry,
  textOf,
} from "./support/redis-host.js";

const LEASE = 600;

type SubscribeFn = (channels: string[], listener: (message: string) => void) => Promise<void>;

const db = useRedis();

const ENQUEUE: AdmitPolicy = {
  whenHeld: "enqueue",
  maxPending: 100,
  overflow: "drop-oldest",
  maxPendingTotal: Number.POSITIVE_INFINITY,
  dedupe: 60_000,
};
const LATEST: AdmitPolicy = { ...ENQUEUE, whenHeld: "latest" };

function acquiredClaim(answer: Awaited<ReturnType<Store<TestEntry>["acquireOrEnqueue"]>>): Claim {
  if (answer.status !== "acquired") throw new Error(`expected acquired, got ${answer.status}`);
  return answer.claim;
}

describe("redisStore() options: lease, commandTimeout and durations (issue 18 item 8)", () => {
  it("refuses a commandTimeout over 2/3 of the lease, and durations timers cannot wait", () => {
    expect(() => redisStore({ client: {}, lease: 1_000, commandTimeout: 700 })).toThrow(
      /"commandTimeout" \(700 ms\) must be at most 2\/3 of "lease" \(1000 ms\)/,
    );
    expect(() => redisStore({ client: {}, lease: 2 ** 31 })).toThrow(/"lease".*2147483647/);
  });
});

describe.skipIf(!redisAvailable).each(CLIENTS)("the Redis store with $name", (kind) => {
  let prefix: string;
  const open: { close(): Promise<void> }[] = [];

  afterEach(async () => {
    for (const item of open.splice(0).reverse()) await item.close();
    await cleanUp(db.admin, prefix);
  });

  /** A store (a replica) on the suite's prefix, closed after the test. */
  function store(
    options: {
      lease?: number;
      sweepInterval?: number;
      commandTimeout?: number;
      at?: RedisTarget;
    } = {},
  ): Store<TestEntry> & RedisStore {
    const client = kind.create(options.at ?? db.target);
    const made = redisStore({
      client,
      prefix,
      lease: options.lease ?? LEASE,
      ...(options.sweepInterval ? { sweepInterval: options.sweepInterval } : {}),
      ...(options.commandTimeout ? { commandTimeout: options.commandTimeout } : {}),
    }) as unknown as Store<TestEntry> & RedisStore;
    let detach: (() => void) | undefined;
    const attach = made.attach?.bind(made);
    made.attach = (host) => {
      detach = attach?.(host);
      return detach as () => void;
    };
    open.push({
      close: async () => {
        detach?.();
        await made.close();
        await kind.dispose(client);
      },
    });
    return made;
  }

  async function proxied(): Promise<{ proxy: FaultyProxy; target: RedisTarget }> {
    const local = await startLocalRedis();
    open.push({ close: () => local.dispose() });
    const proxy = await faultyProxy(local.socket, join(dirname(local.socket), "proxy.sock"));
    open.push({ close: () => proxy.close() });
    return { proxy, target: { socket: proxy.socket } };
  }

  it("after Redis restarts, the hint subscription is back: the store subscribes again on the new connection", async () => {
    prefix = testPrefix();
    const local = await startLocalRedis();
    open.push({ close: () => local.dispose() });
    const guard = createGuard<{ text: string }>({
      store: store({ at: local, commandTimeout: 150 }),
      handler: () => {},
      onError: () => {},
    });
    open.push({ close: () => guard.close({ timeout: 100 }).then(() => undefined) });
    /** The hint channels of this prefix with a subscriber, as the server sees them. */
    const subscribed = async () => {
      const admin = await adminClient(local);
      try {
        return (await admin.sendCommand(["PUBSUB", "CHANNELS", `${prefix}hint*`])) as string[];
      } finally {
        admin.destroy();
      }
    };
    await eventually(async () => (await subscribed()).length === 2, 3_000, "the subscription");
    await local.stop();
    await sleep(100);
    await local.start();
    await eventually(async () => (await subscribed()).length === 2, 10_000, "the new subscription");
  });

  it("Redis down twice: each outage of the store's own work is reported when it starts and when it ends, not at every retry", async () => {
    prefix = testPrefix();
    const local = await startLocalRedis();
    open.push({ close: () => local.dispose() });
    const reports: unknown[] = [];
    const guard = createGuard<{ text: string }>({
      store: store({ at: local, sweepInterval: 100, commandTimeout: 150 }),
      handler: () => {},
      onError: (error) => void reports.push(error),
    });
    open.push({ close: () => guard.close({ timeout: 100 }).then(() => undefined) });
    const kinds = () =>
      reports.map((r) =>
        r instanceof StoreRecoveredError
          ? "recovered"
          : r instanceof StoreError
            ? "failed"
            : String(r),
      );
    const last = () => kinds()[kinds().length - 1];
    for (let outage = 1; outage <= 2; outage++) {
      const before = kinds().length;
      await local.stop("SIGKILL");
      await eventually(
        () => last() === "failed" && kinds().length > before,
        5_000,
        `outage ${outage}`,
      );
      const reported = kinds().length;
      await sleep(600); // six sweeps fail meanwhile: no more reports
      expect(kinds().length).toBe(reported);
      await local.start();
      await eventually(() => last() === "recovered", 10_000, `recovery ${outage}`);
      // (Two connections, commands and hints, come back one after the other: the store may see one
      // short flap, never a report per retry.)
      expect(kinds().length - before).toBeLessThanOrEqual(4);
    }
    // Reports alternate: an outage is open, then closed.
    for (const [i, kind] of kinds().entries()) {
      expect(kind).toBe(i % 2 === 0 ? "failed" : "recovered");
    }
  });

  describe("groups (albums) follow takeBatch and supersedes, as in the memory store", () => {
    /** Admit `first` (claims), then `rest` while held; then finish in `batch` mode, twice. */
    async function play(s: Store<TestEntry>, policy: AdmitPolicy, batch: "all" | "one") {
      const claim = acquiredClaim(await s.acquireOrEnqueue("k", entry("first"), policy));
      const dropped: string[] = [];
      for (const [text, group, alone] of [
        ["p1", "G", false],
        ["x", undefined, false],
        ["cmd", undefined, true],
        ["p2", "G", false],
        ["y", undefined, false],
        ["p3", "G", false],
      ] as const) {
        const answer = await s.acquireOrEnqueue("k", entry(text, { group, alone }), policy);
        if (answer.status === "queued") dropped.push(...answer.dropped.map((d) => textOf(d.entry)));
      }
      const turns: string[][] = [];
      let current = claim;
      for (;;) {
        const answer = await s.finish("k", current, batch);
        if (answer.status !== "next") break;
        turns.push(answer.batch.map(textOf));
        current = answer.claim;
      }
      return { turns, dropped };
    }

    for (const [policy, batch] of [
      [ENQUEUE, "all"],
      [ENQUEUE, "one"],
      [LATEST, "all"],
    ] as const) {
      it(`${policy.whenHeld}, batch ${batch}`, async () => {
        prefix = testPrefix();
        const expected = await play(memoryStore() as Store<TestEntry>, policy, batch);
        const actual = await play(store(), policy, batch);
        expect(actual).toEqual(expected);
      });
    }

    it("take(…, group) moves the rest of the group into the running turn, wherever it stands", async () => {
      prefix = testPrefix();
      const s = store();
      const claim = acquiredClaim(
        await s.acquireOrEnqueue("k", entry("p1", { group: "G" }), ENQUEUE),
      );
      await s.acquireOrEnqueue("k", entry("x"), ENQUEUE);
      await s.acquireOrEnqueue("k", entry("p2", { group: "G" }), ENQUEUE);
      const taken = await s.take("k", claim, "all", "G");
      expect(taken.status === "taken" && taken.entries.map(textOf)).toEqual(["p2"]);
      const next = await s.finish("k", claim, "all");
      expect(next.status === "next" && next.batch.map(textOf)).toEqual(["x"]);
    });

    it("a group and its settle window travel to another replica", async () => {
      prefix = testPrefix();
      const a = store();
      const b = store();
      const host = recordingHost();
      b.attach?.(host);
      const claim = acquiredClaim(await a.acquireOrEnqueue("k", entry("x"), ENQUEUE));
      await a.acquireOrEnqueue("k", { ...entry("p1", { group: "album 7" }), settle: 120 }, ENQUEUE);
      await a.abandon("k", claim, false);
      await eventually(() => host.claims.length === 1, 2_000, "the hand-over");
      expect(host.revived).toMatchObject([{ group: "album 7", settle: 120 }]);
    });
  });

  describe("stop: de-duplicated with inputs, marks the holder, reaches it through renewals", () => {
    it("a stop at B removes pending input, answers held, and A's next renewal says stopped (issue 18 item 3, issue 12 item 10)", async () => {
      prefix = testPrefix();
      const a = store();
      const b = store();
      const claim = acquiredClaim(await a.acquireOrEnqueue("k", entry("a1"), ENQUEUE));
      await b.acquireOrEnqueue("k", entry("b1", { id: "b1" }), ENQUEUE);
      const stopped = await b.stop?.("k", "stop-1", 60_000);
      expect(stopped).toMatchObject({ status: "stopped", held: true });
      expect(stopped?.status === "stopped" && stopped.entries.map(textOf)).toEqual(["b1"]);
      expect(await a.renew("k", claim)).toMatchObject({
        status: "held",
        pending: 0,
        stopped: true,
      });
      // The stop's id shares the inputs' id space: a retried stop at A is a duplicate (item 6).
      expect(await a.stop?.("k", "stop-1", 60_000)).toEqual({ status: "duplicate" });
      // A new claim after the stop is not stopped.
      expect((await a.finish("k", claim, "all")).status).toBe("released");
      const again = acquiredClaim(await a.acquireOrEnqueue("k", entry("a2"), ENQUEUE));
      expect(await a.renew("k", again)).toEqual({ status: "held", pending: 0 });
      expect(await b.stop?.("free", undefined, 0)).toEqual({
        status: "stopped",
        held: false,
        entries: [],
      });
    });

    it("through the guard: a stop at B aborts A's turn within a renewal when A hears no hints", async () => {
      prefix = testPrefix();
      const a = store();
      // A hears nothing: its subscription is gone for good.
      const attach = a.attach?.bind(a);
      a.attach = (host) =>
        attach?.(
          new Proxy(host, {
            get: (h, n) => (n === "stopped" ? () => {} : Reflect.get(h, n)),
          }),
        ) as () => void;
      const ga = createGuard<{ text: string }>({ store: a, handler: () => {} });
      const gb = createGuard<{ text: string }>({ store: store(), handler: () => {} });
      open.push({ close: () => ga.close({ timeout: 500 }).then(() => undefined) });
      open.push({ close: () => gb.close({ timeout: 500 }).then(() => undefined) });
      const aborted = deferred<unknown>();
      await ga.submit("k", { text: "a1" }, async (turn: Turn<{ text: string }>) => {
        turn.signal.addEventListener("abort", () => aborted.resolve(turn.signal.reason));
        await aborted.promise;
      });
      const sent = Date.now();
      expect(await gb.stop("k")).toBe(true);
      const reason = await aborted.promise;
      expect(reason).toBeInstanceOf(TurnAbortedError);
      expect((reason as TurnAbortedError).code).toBe("stopped");
      expect(Date.now() - sent).toBeLessThan(LEASE / 3 + 300);
    });
  });

  it("keys(prefix): keys held or with pending input on any replica", async () => {
    prefix = testPrefix();
    const a = store();
    const b = store();
    await a.acquireOrEnqueue("slack:C1:1.1", entry("x"), ENQUEUE);
    await b.acquireOrEnqueue("slack:C1:2.2", entry("y"), ENQUEUE);
    await b.acquireOrEnqueue("slack:C2:3.3", entry("z"), ENQUEUE);
    expect([...((await a.keys?.("slack:C1:")) ?? [])].sort()).toEqual([
      "slack:C1:1.1",
      "slack:C1:2.2",
    ]);
  });

  it("Renewal.expires: the holder learns when input queued elsewhere expires (issue 18 item 5)", async () => {
    prefix = testPrefix();
    const a = store();
    const b = store();
    // A sees the entries B admitted through its guard (the host rebuilds them).
    a.attach?.(recordingHost());
    const claim = acquiredClaim(await a.acquireOrEnqueue("k", entry("a1"), ENQUEUE));
    const at = Date.now() + 60_000;
    await b.acquireOrEnqueue("k", entry("late", { expiresAt: at + 1_000 }), ENQUEUE);
    await b.acquireOrEnqueue("k", entry("soon", { expiresAt: at }), ENQUEUE);
    expect(await a.renew("k", claim)).toEqual({ status: "held", pending: 2, expires: at });
    // Once expired entries are dropped, the next expiry is the one left.
    await b.acquireOrEnqueue("k", entry("now", { expiresAt: Date.now() + 50 }), ENQUEUE);
    await sleep(80);
    const expiry = await a.expire?.("k");
    expect(expiry?.dropped.map((d) => textOf(d.entry))).toEqual(["now"]);
    expect(await a.renew("k", claim)).toEqual({ status: "held", pending: 2, expires: at });
  });

  it("lone surrogates: keys, ids and groups are refused with a TypeError (issue 18 item 10)", async () => {
    prefix = testPrefix();
    const s = store();
    for (const [key, e] of [
      ["user:\ud800", entry("x")],
      ["user:1", entry("x", { id: "id:\udbff" })],
      ["user:1", entry("x", { group: "\udc00" })],
    ] as const) {
      await expect(s.acquireOrEnqueue(key, e, ENQUEUE)).rejects.toBeInstanceOf(TypeError);
    }
    await expect(s.stop?.("user:\udbff", undefined, 0)).rejects.toBeInstanceOf(TypeError);
    // A well-formed pair is fine, and two lone surrogates never share a lease.
    expect((await s.acquireOrEnqueue("user:😀", entry("x"), ENQUEUE)).status).toBe("acquired");
  });

  it("Redis wiped under a running turn: the old holder's renewal is lost, fences never go backwards, the README's fence checks still refuse the old turn (issue 18 item 2)", async () => {
    prefix = testPrefix();
    const a = store();
    const b = store();
    const old = acquiredClaim(await a.acquireOrEnqueue("k", entry("a1"), ENQUEUE));
    await db.admin.flushAll();
    expect(await a.renew("k", old)).toEqual({ status: "lost" });
    // The lease is not recreated by the lost holder's renewal.
    expect(await db.admin.exists(`{${prefix}${bucketOf("k")}}l:k`)).toBe(0);
    const fresh = acquiredClaim(await b.acquireOrEnqueue("k", entry("b1"), ENQUEUE));
    expect(fresh.fence).toBeGreaterThan(old.fence);
    expect(Number.isSafeInteger(fresh.fence)).toBe(true);
    // `WHERE fence <= $2` (Postgres) and the Lua SAVE of the README: the new turn writes, the old
    // turn's late write is refused.
    let stored = 0;
    const save = (fence: number) => {
      if (stored > fence) return false;
      stored = fence;
      return true;
    };
    expect(save(fresh.fence)).toBe(true);
    expect(save(old.fence)).toBe(false);
    expect((await a.finish("k", old, "all")).status).toBe("lost");
  });

  it("a finish that arrives after the lease ran out is refused as lost (issue 18 item 8)", async () => {
    prefix = testPrefix();
    const a = store({ lease: 150 });
    const claim = acquiredClaim(await a.acquireOrEnqueue("k", entry("a1"), ENQUEUE));
    await sleep(220);
    expect(await a.finish("k", claim, "all")).toEqual({ status: "lost" });
  });

  it("a claim whose holder died before its first renewal is taken over by the sweep within lease + sweep (issue 18 item 11)", async () => {
    prefix = testPrefix();
    const a = store();
    // A claims and "dies" at once: it never renews, finishes or sweeps.
    await a.acquireOrEnqueue("k", entry("a1", { id: "a1" }), ENQUEUE);
    const started = Date.now();
    const b = store({ sweepInterval: 100 });
    const host = recordingHost();
    b.attach?.(host);
    await eventually(() => host.claims.length === 1, LEASE + 1_000, "the sweep's takeover");
    expect(Date.now() - started).toBeLessThan(LEASE + 2 * 100 + 300);
    expect(host.claims[0]).toMatchObject({ key: "k", batch: ["a1"] });
  });

  it.skipIf(!serverAvailable)(
    "an admission slower than commandTimeout that landed runs within lease + sweep, without new messages (issue 18 item 7)",
    async () => {
      prefix = testPrefix();
      const { proxy, target } = await proxied();
      const a = store({ at: target, commandTimeout: 100 });
      const host = recordingHost();
      const b = store({ at: target, sweepInterval: 100 });
      b.attach?.(host);
      // Warm up both stores' connections, then slow down every reply.
      await a.acquireOrEnqueue("warm", entry("w"), { ...ENQUEUE, dedupe: 0 });
      proxy.replyDelay = 300;
      await expect(a.acquireOrEnqueue("k", entry("slow", { id: "s" }), ENQUEUE)).rejects.toThrow(
        /commandTimeout/,
      );
      proxy.replyDelay = 0;
      await sleep(400);
      // The redelivery is a duplicate (correct: it is stored)…
      expect((await a.acquireOrEnqueue("k", entry("slow", { id: "s" }), ENQUEUE)).status).toBe(
        "duplicate",
      );
      // …and the stored input runs: the sweep finds its claim once the lease ran out.
      await eventually(
        () => host.claims.some((c) => c.key === "k"),
        LEASE + 1_500,
        "the stranded input to run",
      );
      expect(host.claims.find((c) => c.key === "k")?.batch).toEqual(["slow"]);
    },
    20_000,
  );

  it.skipIf(!serverAvailable)(
    "a half-open hint subscription is noticed (PING), reported once and subscribed again; hints then arrive (issue 18 item 3)",
    async () => {
      prefix = testPrefix();
      const { proxy, target } = await proxied();
      const a = store({ at: target, lease: 3_000, commandTimeout: 200 });
      const host = recordingHost();
      a.attach?.(host);
      // B talks to the same server, but not through the proxy.
      const b = store({ at: { socket: proxy.target } });
      await eventually(() => proxy.subscribers().length === 1, 2_000, "A's subscription");
      const claim = acquiredClaim(await a.acquireOrEnqueue("k", entry("a1"), ENQUEUE));
      // Redis' replies on A's subscriber connection are lost from now on; commands are fine.
      for (const link of proxy.subscribers()) proxy.deaf.add(link);
      await b.stop?.("k", undefined, 0);
      // The renewal carries the stop whatever happens to the hint.
      expect(await a.renew("k", claim)).toMatchObject({ status: "held", stopped: true });
      await eventually(() => host.errors.length > 0, 3_000, "the report");
      await eventually(
        () => proxy.subscribers().some((l) => !proxy.deaf.has(l)),
        2_000,
        "a new subscription",
      );
      await sleep(300);
      expect(host.errors).toHaveLength(1);
      expect(String((host.errors[0] as Error).message)).toMatch(/hint subscription/);
      // Hints arrive again on the new connection.
      expect(await a.renew("k", claim)).toMatchObject({ status: "held" });
      await b.stop?.("k", undefined, 0);
      await eventually(() => host.stops.length > 0, 1_000, "the stop hint");
      expect(host.stops[0]?.key).toBe("k");
    },
    20_000,
  );

  it("CLIENT KILL TYPE pubsub: hints arrive again afterwards (issue 18 item 3)", async () => {
    prefix = testPrefix();
    const a = store();
    const host = recordingHost();
    a.attach?.(host);
    const b = store();
    await sleep(100);
    await acquiredClaim(await a.acquireOrEnqueue("k", entry("a1"), ENQUEUE));
    await db.admin.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]);
    await eventually(
      async () => {
        await b.stop?.("k", undefined, 0);
        return host.stops.length > 0;
      },
      3_000,
      "a stop hint after the kill",
    );
  });

  it("two guards on one prefix never take over each other's keys (StoreHost.namespace; issue 18 item 9)", async () => {
    prefix = testPrefix();
    const bot42 = store({ sweepInterval: 100 });
    const bot43 = store({ sweepInterval: 100 });
    const host42 = recordingHost("tg:42:");
    const host43 = recordingHost("tg:43:");
    bot43.attach?.(host43);
    const holder = store();
    const claim = acquiredClaim(await holder.acquireOrEnqueue("tg:42:7", entry("a"), ENQUEUE));
    await bot42.acquireOrEnqueue("tg:42:7", entry("b"), ENQUEUE);
    // The holder hands the key over (graceful close): only bot 42's replicas may take it.
    await holder.abandon("tg:42:7", claim, false);
    await sleep(LEASE);
    expect(host43.claims).toEqual([]);
    bot42.attach?.(host42);
    await eventually(() => host42.claims.length === 1, LEASE * 2, "bot 42's sweep");
    expect(host43.claims).toEqual([]);
  });

  it("a namespace function that throws (a bot that does not know its id yet) takes nothing over, is reported once, and never crashes", async () => {
    prefix = testPrefix();
    const errors: unknown[] = [];
    let known: string | undefined;
    const ran: string[] = [];
    const guard = createGuard<{ text: string }>({
      store: store({ sweepInterval: 100 }),
      namespace: () => {
        if (known === undefined)
          throw new TypeError("Cannot read properties of undefined (reading 'id')");
        return known;
      },
      handler: (turn) => void ran.push(...turn.inputs.map((i) => i.text)),
      onError: (error) => void errors.push(error),
    });
    open.push({ close: () => guard.close({ timeout: 100 }).then(() => undefined) });
    const holder = store();
    const claim = acquiredClaim(await holder.acquireOrEnqueue("tg:1:x", entry("a"), ENQUEUE));
    await holder.acquireOrEnqueue("tg:1:x", entry("b"), ENQUEUE);
    await holder.abandon("tg:1:x", claim, false);
    await sleep(LEASE * 2);
    expect(ran).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/reading 'id'/);
    known = "tg:1:";
    await eventually(() => ran.length > 0, LEASE * 4, "the takeover once the namespace is known");
    expect(errors).toHaveLength(1);
  });

  it("through the guard: after close() timed out, B never starts while A's handler still runs, and store.close() waits for it (issue 12 item 7)", async () => {
    prefix = testPrefix();
    const a = store();
    const b = store();
    const log: string[] = [];
    const ga = createGuard<{ text: string }>({ store: a, handler: () => {}, onError: () => {} });
    const gb = createGuard<{ text: string }>({
      store: b,
      handler: (turn) => void log.push(`B ${turn.inputs.map((i) => i.text).join()}`),
    });
    open.push({ close: () => gb.close({ timeout: 500 }).then(() => undefined) });
    const release = deferred();
    await ga.submit("k", { text: "a1" }, async () => {
      log.push("A start");
      await release.promise; // ignores its signal
      log.push("A end");
    });
    expect(await gb.submit("k", { text: "b1" })).toBe("queued");
    await ga.close({ timeout: 50 });
    let storeClosed = false;
    const closing = a.close().then(() => {
      storeClosed = true;
    });
    await sleep(LEASE * 2);
    expect(log).toEqual(["A start"]);
    expect(storeClosed).toBe(false);
    release.resolve();
    await eventually(() => log.includes("B b1"), LEASE * 3, "B's turn");
    expect(log.indexOf("B b1")).toBeGreaterThan(log.indexOf("A end"));
    await closing;
  });

  it("store.close() keeps renewing a claim whose turn still runs, and closes once it ended (issue 12 item 7)", async () => {
    prefix = testPrefix();
    const a = store();
    const b = store();
    const claim = acquiredClaim(await a.acquireOrEnqueue("k", entry("a1"), ENQUEUE));
    let closed = false;
    const closing = a.close().then(() => {
      closed = true;
    });
    // The guard keeps renewing (here: the test) while the handler runs; the store still answers.
    for (let i = 0; i < 4; i++) {
      await sleep(LEASE / 3);
      expect(await a.renew("k", claim)).toMatchObject({ status: "held" });
    }
    expect(closed).toBe(false);
    expect(
      (await b.acquireOrEnqueue("k", entry("b1"), { ...ENQUEUE, whenHeld: "reject" })).status,
    ).toBe("rejected");
    expect((await a.finish("k", claim, "all")).status).toBe("released");
    await closing;
    expect(closed).toBe(true);
  });

  describe("input admitted at B and dropped by A: B's caller hears it, guard-level onDrop counts it once (G3)", () => {
    type Input = { text: string };
    /** A replica: a guard on its own store, whose guard-level onDrop is recorded. */
    function replica(
      options: { mode?: "collect" | "latest"; maxPending?: number } = {},
      deaf = false,
    ) {
      const drops: string[] = [];
      const errors: unknown[] = [];
      const made = store();
      if (deaf) {
        // This replica never hears a drop hint (hints are not guaranteed).
        const port = (made as unknown as { port: { subscribe: SubscribeFn } }).port;
        const subscribe = port.subscribe.bind(port);
        port.subscribe = (channels, listener) =>
          subscribe(channels, (message) => {
            if (!message.startsWith("d|")) listener(message);
          });
      }
      const guard = createGuard<Input>({
        store: made,
        ...options,
        // The first turn runs long enough for B to queue behind it; a stop ends it at once.
        handler: (turn) =>
          new Promise<void>((resolve) => {
            setTimeout(resolve, 300);
            turn.signal.addEventListener("abort", () => resolve());
          }),
        onDrop: (drop) => void drops.push(`${drop.input.text} ${drop.reason}`),
        onError: (error) => void errors.push(error),
      });
      open.push({ close: () => guard.close({ timeout: 500 }).then(() => undefined) });
      return { guard, drops, errors };
    }

    /** A holds "chat"; B queues "second" behind it, awaited, with its own onDrop. */
    async function queuedAtB(options: Parameters<typeof replica>[0] = {}, deafB = false) {
      const A = replica(options);
      const B = replica(options, deafB);
      expect(await A.guard.submit("chat", { text: "first" })).toBe("started");
      const second = { text: "second" };
      const own: { input: Input; reason: string }[] = [];
      const awaited = B.guard.submit("chat", second, undefined, {
        awaitTurn: true,
        onDrop: (drop) => void own.push({ input: drop.input, reason: drop.reason }),
      });
      let outcome: string | undefined;
      awaited.then((value) => {
        outcome = value;
      });
      await eventually(() => B.guard.pendingCount("chat") === 1, 2_000, "B's input queued");
      return { A, B, second, own, awaited, outcome: () => outcome };
    }

    /** B's side once A dropped "second" for `reason`, and that it stays so past a lease. */
    async function expectDroppedAtB(
      { A, B, second, own, awaited, outcome }: Awaited<ReturnType<typeof queuedAtB>>,
      reason: string,
    ) {
      const sent = Date.now();
      expect(await awaited).toBe("dropped");
      // Told by a hint, not found out by a probe at the lease's expiry.
      expect(Date.now() - sent).toBeLessThan(LEASE);
      expect(own).toEqual([{ input: second, reason }]);
      expect(own[0]?.input).toBe(second);
      await eventually(() => B.guard.pendingCount("chat") === 0, LEASE, "B's pending count");
      await sleep(LEASE + 200); // B's probe would have run by now: nothing is reported twice
      expect(outcome()).toBe("dropped");
      expect(own).toHaveLength(1);
      expect(A.drops).toEqual([`second ${reason}`]);
      expect(B.drops).toEqual([]);
      expect(B.guard.pendingCount("chat")).toBe(0);
    }

    it("stop at A", async () => {
      prefix = testPrefix();
      const queued = await queuedAtB();
      expect(await queued.A.guard.stop("chat")).toBe(true);
      await expectDroppedAtB(queued, "stopped");
    });

    it("stop at A of every key under a prefix", async () => {
      prefix = testPrefix();
      const queued = await queuedAtB();
      expect(await queued.A.guard.stopWhere("ch")).toBe(true);
      await expectDroppedAtB(queued, "stopped");
    });

    it("latest: a newcomer at A supersedes it", async () => {
      prefix = testPrefix();
      const queued = await queuedAtB({ mode: "latest" });
      expect(await queued.A.guard.submit("chat", { text: "third" })).toBe("queued");
      await expectDroppedAtB(queued, "superseded");
    });

    it("overflow: A's admission evicts it", async () => {
      prefix = testPrefix();
      const queued = await queuedAtB({ maxPending: 1 });
      expect(await queued.A.guard.submit("chat", { text: "third" })).toBe("queued");
      await expectDroppedAtB(queued, "overflow");
    });

    it("a submit's own onDrop that throws at B: the error goes to B's onError, once; B's awaited submit still resolves", async () => {
      prefix = testPrefix();
      const A = replica();
      const B = replica();
      expect(await A.guard.submit("chat", { text: "first" })).toBe("started");
      const boom = new Error("own onDrop failed");
      const awaited = B.guard.submit("chat", { text: "second" }, undefined, {
        awaitTurn: true,
        onDrop: () => {
          throw boom;
        },
      });
      await eventually(() => B.guard.pendingCount("chat") === 1, 2_000, "B's input queued");
      expect(await A.guard.stop("chat")).toBe(true);
      expect(await awaited).toBe("dropped");
      await eventually(() => B.errors.length > 0, LEASE, "B's report");
      await sleep(LEASE + 200);
      expect(B.errors).toEqual([boom]);
      expect(A.errors).toEqual([]);
      expect(A.drops).toEqual(["second stopped"]);
      expect(B.drops).toEqual([]);
    });

    it("a lost hint: B's probe at the lease's expiry still ends it (departed, as before)", async () => {
      prefix = testPrefix();
      const queued = await queuedAtB({}, true);
      expect(await queued.A.guard.stop("chat")).toBe(true);
      expect(await queued.awaited).toBe("queued");
      expect(queued.own).toEqual([]);
      expect(queued.A.drops).toEqual(["second stopped"]);
      expect(queued.B.drops).toEqual([]);
      await eventually(() => queued.B.guard.pendingCount("chat") === 0, LEASE, "B's count");
    });
  });
});
