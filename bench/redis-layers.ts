// === Where an uncontended Redis turn spends its time, layer by layer, per client
//
// The Redis measurement of `npm run bench` gives one ratio (guard vs the bare lease loop). This
// splits it: the same 64 workers run, side by side and rotated over several rounds,
//
//   bare    `SET key token NX PX`, then `EVALSHA` of a compare-and-delete (the design's floor)
//   bare, batched (ioredis only)  the same, with the commands of one tick written together, as the
//           store's ioredis port writes them (its socket corked until the tick's end, and flushed
//           every 16 commands); node-redis batches so on its own
//   store   the store alone: `acquireOrEnqueue`, then `finish`, awaited, no guard
//   guard   `createGuard({ store })` with a trivial handler; a worker claims again once the store's
//           `finish` answered (as in the suite's guard row, whose store keeps no outcome records)
//   ids     the same with an id per input and the store's outcome records (`record`), as a bot
//           whose platform names its updates runs it (de-duplication key and records included)
//
// and prints per turn the CPU time of this process and of redis-server (/proc/<pid>/stat), and
// what redis-server spent inside its commands (`INFO commandstats`, scripts' calls included).
// With 64 turns in flight both sides mostly wait for each other (one batch of commands, then one
// of replies), so a turn takes about Node's CPU time plus redis-server's: the column that grows is
// where the time went. Starts its own redis-server on a unix socket. After `npm run build`:
//
//   TSX_TSCONFIG_PATH=bench/tsconfig.json node --expose-gc --import tsx bench/redis-layers.ts \
//     [turns per run, 20000] [rounds, 5]

import { createHash, randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { type AdmitPolicy, createGuard, type Store, type StoreEntry } from "session-guard";
import { redisStore } from "session-guard/redis";
import { collectBeforeRun, fmt, median, rotation, table } from "./harness.js";
import { observedStore } from "./observed-store.js";
import { drive, startServer } from "./redis-server.js";

const TURNS = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const IN_FLIGHT = 64;
const KEYS_PER_WORKER = 16;
const CAD =
  'if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end';
const CAD_SHA = createHash("sha1").update(CAD).digest("hex");
const POLICY: AdmitPolicy = {
  maxPending: 100,
  overflow: "drop-oldest",
  maxPendingTotal: Number.POSITIVE_INFINITY,
  whenHeld: "enqueue",
  dedupe: 0,
  batch: "all",
};

type Send = (args: string[]) => Promise<unknown>;
type Op = (worker: number, n: number) => Promise<void>;

interface Figures {
  perS: number[];
  nodeUs: number[];
  redisUs: number[];
  insideUs: number[];
}

const server = await startServer();
const socket = server.socket;

/** µs redis-server spent inside commands so far (the sum of `INFO commandstats` usec). */
async function insideUs(send: Send): Promise<number> {
  const info = String(await send(["INFO", "commandstats"]));
  let sum = 0;
  // Scripts' calls are counted in the script and again on their own: count the top level only.
  for (const match of info.matchAll(/^cmdstat_(evalsha|eval|set|fcall):.*usec=(\d+),/gm)) {
    sum += Number(match[2]);
  }
  return sum;
}

async function measure(send: Send, op: Op, into: Figures): Promise<void> {
  await drive(IN_FLIGHT * 8, IN_FLIGHT, op);
  await collectBeforeRun();
  const inside = await insideUs(send);
  const redis = server.cpuMs();
  const cpu = process.cpuUsage();
  const start = performance.now();
  await drive(TURNS, IN_FLIGHT, op);
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  into.perS.push(TURNS / seconds);
  into.nodeUs.push((used.user + used.system) / TURNS);
  into.redisUs.push(((server.cpuMs() - redis) * 1000) / TURNS);
  // (minus the one INFO call itself, which is not among the counted commands)
  into.insideUs.push(((await insideUs(send)) - inside) / TURNS);
}

/** The store as the suite's guard row sees it: each finish wakes the worker waiting on its key. */
function observed(
  store: Store<StoreEntry>,
  released: Map<string, () => void>,
  records = false,
): Store<StoreEntry> {
  const wake = (key: string) => {
    released.get(key)?.();
    released.delete(key);
  };
  return observedStore(store, wake, records);
}

const rows: string[][] = [];
try {
  for (const client of ["node-redis", "ioredis"] as const) {
    const create = (): unknown =>
      client === "node-redis"
        ? createClient({ socket: { path: socket, tls: false } })
        : new Redis({ path: socket, lazyConnect: true });
    const raw = create() as { connect(): Promise<unknown> };
    await raw.connect();
    const send: Send =
      client === "node-redis"
        ? (args) => (raw as ReturnType<typeof createClient>).sendCommand(args)
        : (args) => (raw as Redis).call(args[0] as string, args.slice(1));
    await send(["SCRIPT", "LOAD", CAD]);
    const tag = randomBytes(3).toString("hex");
    const key = (w: number, n: number) => `${w}:${n % KEYS_PER_WORKER}`;
    const store = redisStore({ client: create(), prefix: `s${tag}:`, lease: 30_000 });
    const guarded = redisStore({ client: create(), prefix: `g${tag}:`, lease: 30_000 });
    const released = new Map<string, () => void>();
    const guard = createGuard<{ n: number }>({
      store: observed(guarded as Store<StoreEntry>, released),
      handler: () => {},
      onError: (error) => console.error(error),
    });
    const recorded = redisStore({ client: create(), prefix: `i${tag}:`, lease: 30_000 });
    const withIds = createGuard<{ n: number }>({
      store: observed(recorded as Store<StoreEntry>, released, true),
      handler: () => {},
      onError: (error) => console.error(error),
    });
    let ids = 0;
    /** `send`, with the commands of one tick written together (ioredis: see `port/ioredis-base.ts`). */
    let corked = 0; // commands since the socket was corked or flushed, 0: not corked
    const batched: Send = (args) => {
      const stream = (raw as unknown as { stream: { cork(): void; uncork(): void } }).stream;
      if (corked === 0) {
        stream.cork();
        process.nextTick(() => {
          corked = 0;
          stream.uncork();
        });
      }
      const reply = send(args);
      // Flushed every 16 commands within the tick, as the port does.
      if (++corked === 17) {
        corked = 1;
        stream.uncork();
        stream.cork();
      }
      return reply;
    };
    const layers: [string, Op][] = [
      [
        "bare",
        async (w, n) => {
          const lease = `b${tag}:${key(w, n)}`;
          await send(["SET", lease, `${w}:${n}`, "NX", "PX", "30000"]);
          await send(["EVALSHA", CAD_SHA, "1", lease, `${w}:${n}`]);
        },
      ],
      ...(client === "ioredis"
        ? ([
            [
              "bare, batched",
              async (w, n) => {
                const lease = `c${tag}:${key(w, n)}`;
                await batched(["SET", lease, `${w}:${n}`, "NX", "PX", "30000"]);
                await batched(["EVALSHA", CAD_SHA, "1", lease, `${w}:${n}`]);
              },
            ],
          ] as [string, Op][])
        : []),
      [
        "store",
        async (w, n) => {
          const entry: StoreEntry = {
            id: undefined,
            alone: false,
            expiresAt: Number.POSITIVE_INFINITY,
            data: `{"n":${n}}`,
          };
          const admission = await store.acquireOrEnqueue(key(w, n), entry, POLICY);
          if (admission.status !== "acquired") throw new Error(`store: ${admission.status}`);
          const finish = await store.finish(key(w, n), admission.claim, "all");
          if (finish.status !== "released") throw new Error(`store: ${finish.status}`);
        },
      ],
      [
        "guard",
        async (w, n) => {
          const done = new Promise<void>((resolve) => released.set(key(w, n), resolve));
          if ((await guard.submit(key(w, n), { n })) !== "started") throw new Error("guard: busy");
          await done;
        },
      ],
      [
        "ids",
        async (w, n) => {
          const k = `i:${key(w, n)}`;
          const done = new Promise<void>((resolve) => released.set(k, resolve));
          const id = String(++ids);
          if ((await withIds.submit(k, { n }, undefined, { id })) !== "started") {
            throw new Error("ids: busy");
          }
          await done;
        },
      ],
    ];
    const figures = new Map(
      layers.map(([name]) => [name, { perS: [], nodeUs: [], redisUs: [], insideUs: [] }]),
    );
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, op] of rotation(layers, round)) {
        await measure(send, op, figures.get(name) as Figures);
      }
    }
    const bare = figures.get("bare") as Figures;
    for (const [name] of layers) {
      const f = figures.get(name) as Figures;
      const ratios = f.perS.map((perS, i) => perS / (bare.perS[i] as number));
      rows.push([
        `${client} ${name}`,
        fmt(median(f.perS)),
        `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`,
        median(f.nodeUs).toFixed(1),
        median(f.redisUs).toFixed(1),
        median(f.insideUs).toFixed(1),
      ]);
    }
    await guard.close();
    await guarded.close();
    await withIds.close();
    await recorded.close();
    await store.close();
    if (client === "node-redis") (raw as ReturnType<typeof createClient>).destroy();
    else (raw as Redis).disconnect();
  }
  console.log(
    table(
      `Redis turns by layer (${IN_FLIGHT} in flight, ${fmt(TURNS)} turns per run, ${ROUNDS} rounds, medians; ratio: per round, to bare)`,
      ["layer", "turns/s", "vs bare", "node µs", "redis µs", "in commands µs"],
      rows,
    ),
  );
} finally {
  await server.stop();
}
