// === The cost of outcome records (issue 14) per uncontended turn, per Redis client
//
// `redisStore()` writes what became of each input with an id (`Store.record`), so that
// `guard.outcome(id)` answers from any replica. This measures what that adds to an uncontended
// turn (a free key, one input with an id, a handler that ends): Redis commands (INFO commandstats,
// scripts' own calls included), bytes Redis read (INFO stats) and round trips on the store's
// command connection, side by side with the same store whose `record` is hidden from the guard.
//
//   sequential, sync handler   one turn at a time; the handler returns at once
//   sequential, 5 ms handler   one turn at a time; the handler awaits a 5 ms timer (a turn that
//                              spans event-loop turns, as every real one does)
//   64 in flight, sync         64 workers, each on its own keys
//
// Starts its own throwaway redis-server on a unix socket. Run from the repository's root:
//
//   node --import tsx bench/redis-outcomes.ts [turns]
//
// (with the root tsconfig, `session-guard` resolves to src/; with TSX_TSCONFIG_PATH=
// bench/tsconfig.json, after `npm run build`, to dist/).

import { createClient } from "redis";
import { createGuard, type Store } from "session-guard";
import { redisStore } from "session-guard/redis";
import {
  type CountingClient,
  countingIoredis,
  countingNodeRedis,
  type Sent,
} from "./counting-clients.js";
import { sleep } from "./harness.js";
import { startServer } from "./redis-server.js";

const TURNS = Number(process.argv[2] ?? 2_000);

interface Kind {
  readonly name: string;
  /** A client for the store whose command connection counts what it sends. */
  create(socket: string, sent: Sent): CountingClient;
}

const KINDS: Kind[] = [
  { name: "node-redis", create: countingNodeRedis },
  { name: "ioredis", create: countingIoredis },
];

async function counters(admin: ReturnType<typeof createClient>) {
  const info = String(await admin.sendCommand(["INFO", "stats", "commandstats"]));
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (match[1] !== "info") calls += Number(match[2]);
  }
  const perCommand: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    perCommand[match[1] as string] = Number(match[2]);
  }
  return { calls, bytes: Number(/^total_net_input_bytes:(\d+)/m.exec(info)?.[1]), perCommand };
}

interface Figures {
  commands: number;
  bytes: number;
  roundTrips: number;
  detail: Record<string, number>;
}

async function run(
  kind: Kind,
  socket: string,
  admin: ReturnType<typeof createClient>,
  outcomes: boolean,
  workload: { inFlight: number; work: number },
): Promise<Figures> {
  const sent = { total: 0 };
  const { client, dispose } = kind.create(socket, sent);
  const prefix = `sgo-${Math.random().toString(36).slice(2, 8)}:`;
  const real = redisStore({ client, prefix, lease: 30_000 });
  // Without outcomes: the same store, its `record` and `outcome` hidden from the guard.
  const store = outcomes
    ? real
    : (new Proxy(real, {
        get: (target, name) => {
          if (name === "record" || name === "outcome") return undefined;
          const value = Reflect.get(target, name);
          return typeof value === "function" ? value.bind(target) : value;
        },
      }) as Store);
  const errors: unknown[] = [];
  const guard = createGuard<{ n: number }>({
    store,
    awaitTurn: true,
    onError: (error) => void errors.push(error),
    handler: workload.work > 0 ? () => sleep(workload.work) : () => {},
  });
  let seq = 0;
  const drive = async (count: number, tag: string) => {
    let next = 0;
    const worker = async (w: number) => {
      while (next < count) {
        const n = next++;
        await guard.submit(`${tag}${w}:${n % 4}`, { n }, undefined, { id: `${tag}${++seq}` });
      }
    };
    await Promise.all(Array.from({ length: workload.inFlight }, (_, w) => worker(w)));
    await sleep(20); // the last finish and the last records
  };
  await drive(workload.inFlight * 8, "warm:");
  const before = await counters(admin);
  const sentBefore = sent.total;
  await drive(TURNS, "k:");
  const after = await counters(admin);
  await guard.close();
  await real.close();
  dispose();
  if (errors.length > 0) throw errors[0];
  const detail: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after.perCommand)) {
    const delta = calls - (before.perCommand[name] ?? 0);
    if (delta > 0 && name !== "info") detail[name] = Math.round((delta / TURNS) * 100) / 100;
  }
  return {
    commands: (after.calls - before.calls) / TURNS,
    bytes: (after.bytes - before.bytes) / TURNS,
    roundTrips: (sent.total - sentBefore) / TURNS,
    detail,
  };
}

const server = await startServer();
const admin = createClient({ socket: { path: server.socket, tls: false } });
await admin.connect();
const workloads = [
  { name: "sequential, sync handler", inFlight: 1, work: 0 },
  { name: "sequential, 5 ms handler", inFlight: 1, work: 5 },
  { name: "64 in flight, sync handler", inFlight: 64, work: 0 },
];
try {
  for (const kind of KINDS) {
    for (const workload of workloads) {
      const off = await run(kind, server.socket, admin, false, workload);
      const on = await run(kind, server.socket, admin, true, workload);
      const f = (x: number) => x.toFixed(2);
      console.log(
        `${kind.name.padEnd(10)} ${workload.name.padEnd(28)} per turn: commands ${f(off.commands)} → ${f(on.commands)} (+${f(on.commands - off.commands)}), round trips ${f(off.roundTrips)} → ${f(on.roundTrips)}, bytes to Redis ${Math.round(off.bytes)} → ${Math.round(on.bytes)} (+${Math.round(on.bytes - off.bytes)})  ${JSON.stringify(on.detail)}`,
      );
    }
  }
} finally {
  admin.destroy();
  await server.stop();
}
