// === Builds side by side on Redis: the same guard turns from several builds of the package
//
// For finding what a change to the Redis path costs, not a measurement of the suite. The suite's
// Redis rows move by a tenth between runs on a shared machine; here every build runs in the same
// process against the same throwaway redis-server, alternating order round by round, and each run
// reports turns/s and the CPU time per turn of this process and of redis-server. A build is a
// directory holding `dist/` and the package's `package.json`, and a `node_modules` link, made as
// the header of `bench/compare-builds.ts` shows. Then:
//
//   TSX_TSCONFIG_PATH=bench/tsconfig.json node --expose-gc --import tsx \
//     bench/compare-redis-builds.ts <node-redis|ioredis> <turns per run> <rounds> /tmp/sg-a /tmp/sg-b
//
// Each run is the suite's guard row: `createGuard({ store: redisStore({ client, lease: 30_000 }) })`
// with a trivial handler, 64 workers, each claiming its next key once the store released the last
// (16 keys per worker), on a fresh client and prefix.

import { Redis } from "ioredis";
import { createClient } from "redis";
import type { Store, StoreEntry } from "session-guard";
import { collectBeforeRun, median, rotation } from "./harness.js";
import { observedStore } from "./observed-store.js";
import { drive, startServer } from "./redis-server.js";

const [client = "node-redis", turnsText = "20000", roundsText = "8", ...builds] =
  process.argv.slice(2);
const TURNS = Number(turnsText);
const ROUNDS = Number(roundsText);
const IN_FLIGHT = 64;
const KEYS_PER_WORKER = 16;
if ((client !== "node-redis" && client !== "ioredis") || builds.length === 0) {
  throw new Error(
    "usage: compare-redis-builds.ts <node-redis|ioredis> <turns> <rounds> <build dir>...",
  );
}

interface Build {
  readonly core: typeof import("session-guard");
  readonly redis: typeof import("session-guard/redis");
}

const server = await startServer();
const loaded = new Map<string, Build>();
for (const dir of builds) {
  loaded.set(dir, {
    core: (await import(`${dir}/dist/index.js`)) as Build["core"],
    redis: (await import(`${dir}/dist/redis.js`)) as Build["redis"],
  });
}

/** One run of `turns` guard turns with `build`: turns/s, Node µs and redis-server µs per turn. */
async function run(build: Build, prefix: string, turns: number): Promise<[number, number, number]> {
  const raw =
    client === "ioredis"
      ? new Redis({ path: server.socket })
      : createClient({ socket: { path: server.socket, tls: false } });
  if (!(raw instanceof Redis)) await raw.connect();
  const store = build.redis.redisStore({ client: raw, prefix, lease: 30_000 });
  const waiting = new Map<string, () => void>();
  // Every call forwarded; a released key wakes the worker waiting for it.
  const observed = observedStore(store as Store<StoreEntry>, (key, finish) => {
    if (finish.status !== "released") return;
    waiting.get(key)?.();
    waiting.delete(key);
  });
  const guard = build.core.createGuard<number>({ store: observed, handler: () => {} });
  const op = (stem: string) => async (worker: number, n: number) => {
    const key = `${stem}${worker}:${n % KEYS_PER_WORKER}`;
    const released = new Promise<void>((resolve) => waiting.set(key, resolve));
    if ((await guard.submit(key, n)) !== "started") throw new Error(`${key} was busy`);
    await released;
  };
  try {
    await drive(IN_FLIGHT * 8, IN_FLIGHT, op("warm:"));
    await collectBeforeRun();
    const serverMs = server.cpuMs();
    const cpu = process.cpuUsage();
    const start = performance.now();
    await drive(turns, IN_FLIGHT, op("k:"));
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu);
    return [
      turns / seconds,
      (used.user + used.system) / turns,
      ((server.cpuMs() - serverMs) * 1000) / turns,
    ];
  } finally {
    await guard.close({ timeout: 1_000 });
    await store.close();
    if (raw instanceof Redis) raw.disconnect();
    else raw.destroy();
  }
}

const results = new Map(
  builds.map((dir) => [dir, { rate: [] as number[], node: [] as number[], redis: [] as number[] }]),
);
try {
  for (const dir of builds) await run(loaded.get(dir) as Build, `w:${dir}:`, TURNS / 4);
  for (let round = 0; round < ROUNDS; round++) {
    for (const dir of rotation(builds, round)) {
      const [rate, node, redis] = await run(loaded.get(dir) as Build, `r${round}:${dir}:`, TURNS);
      const into = results.get(dir);
      into?.rate.push(rate);
      into?.node.push(node);
      into?.redis.push(redis);
    }
    console.error(`  round ${round + 1}/${ROUNDS}`);
  }
} finally {
  await server.stop();
}
console.log(
  `${client}, ${IN_FLIGHT} in flight, ${TURNS} turns per run, ${ROUNDS} rounds (medians)`,
);
for (const [dir, r] of results) {
  console.log(
    `${dir.padEnd(16)} ${median(r.rate).toFixed(0).padStart(7)} turns/s  Node ${median(r.node).toFixed(1)} µs/turn  redis-server ${median(r.redis).toFixed(1)} µs/turn  (Node per round: ${r.node.map((x) => x.toFixed(1)).join(" ")})`,
  );
}
