// === 5. Redis: the guard on `redisStore()` against the bare lease loop, per client
//
// Starts its own throwaway `redis-server` on a unix socket in a temp dir (no persistence) and stops
// it at the end; without `redis-server` on PATH the measurement is skipped (`"redis": null`).
// For each client (node-redis, ioredis), side by side, alternating over several rounds:
//
//   bare    the two-round-trip lease loop of the design's target: `SET key token NX PX`, then
//           `EVALSHA` of a compare-and-delete script; 64 workers, each awaits its turn's release
//           before claiming again. Commands go through `sendCommand` / `call`, as the store's do.
//   guard   `createGuard({ store: redisStore(...), handler })` with a trivial handler, 64 workers:
//           each submits to one of its own keys and claims again once the key is released (the
//           store's `finish` answered), so 64 turns are in flight from claim to release, as in
//           `bare`. The release is observed through a thin wrapper that forwards every store call
//           (the guard has no release event).
//   awaitTurn  the same guard, driven as `awaitTurn: true` callers drive it: a caller moves on once
//           its turn's handler has settled, so the release round trip overlaps its next claim.
//   enqueue inputs admitted for keys whose turn is running (collect mode): 64 workers submit to 64
//           keys held by replica A, through A itself or through replica B on the same prefix
//           (which also publishes a hint to A per input); then the keys drain at A, one coalesced
//           turn each.
//
// Every store gets a fresh prefix and its own connections, warmed up before the timed window.
// Round trips are counted on the store's command connection (its `sendCommand` / `call`, wrapped
// when the store duplicates the client); the commands Redis executed, scripts' own calls included,
// and the bytes it read come from `INFO commandstats` and `INFO stats` deltas; CPU time from
// `process.cpuUsage()` and the server's /proc/<pid>/stat. Hand-over: guard A holds keys for which guard B (same prefix, its own store and
// connections) has queued input; A closes gracefully and its turns end; the hand-over is the time
// from a turn's end at A to the start of B's turn for that key (the lease, 30 s, is not waited for).
// Takeover after SIGKILL: replica A is a process of its own (bench/redis-replica.ts) holding keys
// in turns that never end under a short lease (500 ms, renewed every lease/3); B (here, same
// prefix) queues input for each; A is killed at a random point of its renewal period. The takeover
// is the time from the kill to the start of B's turn for that key; the lease's remaining time at
// the kill (its PTTL, read right after it) splits it into waiting for the lease and reacting to its
// expiry.

import { fork } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { createGuard, type Guard, type Store, type StoreEntry, type Turn } from "session-guard";
import { bucketOf, type RedisStore, redisStore } from "session-guard/redis";
import {
  type CountingClient,
  countingIoredis,
  countingNodeRedis,
  type Sent,
} from "./counting-clients.js";
import {
  collectBeforeRun,
  fmt,
  gate,
  installedVersion,
  median,
  percentile,
  progress,
  rotation,
  round,
  round2,
  sleep,
  table,
} from "./harness.js";
import { observedStore } from "./observed-store.js";
import type { FromTakeoverReplica, ToTakeoverReplica } from "./redis-replica.js";
import { drive, type LocalServer, serverVersion, startServer } from "./redis-server.js";

export interface RedisBenchOptions {
  readonly rounds: number;
  /** Turns (or admissions) in flight at once. */
  readonly inFlight: number;
  /** Turns per timed run of `bare`, `guard` and `awaitTurn`. */
  readonly turns: number;
  /** Inputs per timed enqueue run. */
  readonly inputs: number;
  /** Hand-over: rounds, and keys handed over per round. */
  readonly handoverRounds: number;
  readonly handoverKeys: number;
  /** Takeover after SIGKILL: rounds, keys held by the killed replica per round, and its lease. */
  readonly takeoverRounds: number;
  readonly takeoverKeys: number;
  readonly takeoverLease: number;
}

/** One workload's figures for one client: medians over the rounds. */
export interface Workload {
  /** Turns (or inputs) per second. */
  readonly perS: number;
  /** Median and range of the per-round ratios to `bare` (turn workloads). */
  readonly vsBare: number;
  readonly vsBareRange: [number, number];
  /** Commands sent per turn (or input): round trips. */
  readonly roundTrips: number;
  /** Commands Redis executed per turn (or input), scripts' own calls included. */
  readonly redisCommands: number;
  /** Bytes Redis read per turn (or input), all connections (INFO stats). */
  readonly bytesToRedis: number;
  /** CPU µs per turn (or input), this process and redis-server. */
  readonly nodeCpuUs: number;
  readonly redisCpuUs: number;
}

export interface ClientFigures {
  readonly bare: Workload;
  readonly guard: Workload;
  readonly awaitTurn: Workload;
  readonly enqueue: Workload;
  readonly enqueueFromReplica: Workload;
  /** Hand-over after `guard.close()`, ms from the turn's end at A to its next turn at B. */
  readonly handover: { readonly p50Ms: number; readonly maxMs: number; readonly samples: number };
  /**
   * Takeover after SIGKILL of the holder, ms from the kill to the next turn at another replica; and
   * of it, the part after the lease ran out (the kill's remaining lease subtracted).
   */
  readonly takeover: {
    readonly leaseMs: number;
    readonly p50Ms: number;
    readonly maxMs: number;
    readonly afterExpiryP50Ms: number;
    readonly afterExpiryMaxMs: number;
    readonly samples: number;
  };
}

export interface RedisResult {
  readonly options: RedisBenchOptions;
  /** `redis-server` version. */
  readonly server: string;
  readonly clients: Record<ClientName, ClientFigures & { readonly version: string }>;
  readonly seconds: number;
}

/** The design's target: the guard's turns/s at least this share of the bare lease loop's. */
export const TARGET_GUARD_VS_BARE = 0.7;

type ClientName = "node-redis" | "ioredis";

const LEASE = 30_000;
/** Keys per worker, used in turn: a key is never claimed again while its release may be in flight. */
const KEYS_PER_WORKER = 16;
const COMPARE_AND_DELETE =
  'if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end';
const CAD_SHA = createHash("sha1").update(COMPARE_AND_DELETE).digest("hex");

// === The two clients

/** A connected client for the bare loop and for INFO. */
interface RawClient {
  set(key: string, token: string): Promise<unknown>;
  compareAndDelete(key: string, token: string): Promise<unknown>;
  command(args: string[]): Promise<unknown>;
  close(): void;
}

interface ClientKind {
  readonly name: ClientName;
  connect(socket: string): Promise<RawClient>;
  /** A client as users create it for `redisStore()`, whose store connections count commands. */
  forStore(socket: string, sent: Sent): CountingClient;
}

const PX = String(LEASE);

const NODE_REDIS: ClientKind = {
  name: "node-redis",
  async connect(socket) {
    const client = createClient({ socket: { path: socket, tls: false } });
    client.on("error", () => {});
    await client.connect();
    // sendCommand: the path the store takes too (the typed methods add argument parsing).
    return {
      set: (key, token) => client.sendCommand(["SET", key, token, "NX", "PX", PX]),
      compareAndDelete: (key, token) => client.sendCommand(["EVALSHA", CAD_SHA, "1", key, token]),
      command: (args) => client.sendCommand(args),
      close: () => client.destroy(),
    };
  },
  forStore: countingNodeRedis,
};

const IOREDIS: ClientKind = {
  name: "ioredis",
  async connect(socket) {
    const client = new Redis({ path: socket, lazyConnect: true });
    client.on("error", () => {});
    await client.connect();
    return {
      set: (key, token) => client.call("SET", key, token, "NX", "PX", PX),
      compareAndDelete: (key, token) => client.call("EVALSHA", CAD_SHA, "1", key, token),
      command: ([name, ...args]) => client.call(name as string, args),
      close: () => client.disconnect(),
    };
  },
  forStore: countingIoredis,
};

const KINDS: readonly ClientKind[] = [NODE_REDIS, IOREDIS];

/** Server counters: command calls (INFO itself left out) and bytes read. */
interface Counters {
  readonly calls: number;
  readonly bytesIn: number;
}

async function counters(admin: RawClient): Promise<Counters> {
  const info = String(await admin.command(["INFO", "stats", "commandstats"]));
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (match[1] !== "info") calls += Number(match[2]);
  }
  const stat = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, "m").exec(info)?.[1]);
  return {
    calls,
    bytesIn: stat("total_net_input_bytes"),
  };
}

// === Driving workloads

interface Input {
  readonly n: number;
}

interface Lab {
  readonly socket: string;
  readonly admin: RawClient;
  readonly server: LocalServer;
}

/** One timed run: rate and, per operation, round trips, Redis commands, bytes and CPU time. */
interface Run {
  readonly rate: number;
  readonly roundTrips: number;
  readonly redisCommands: number;
  readonly bytesToRedis: number;
  readonly nodeCpuUs: number;
  readonly redisCpuUs: number;
}

function freshPrefix(): string {
  return `sgb-${randomBytes(4).toString("hex")}:`;
}

/** `drive`, timed, with the commands and CPU time it cost. `sent` counts the round trips. */
async function timed(
  lab: Lab,
  count: number,
  inFlight: number,
  sent: () => number,
  op: (worker: number, n: number) => Promise<void>,
): Promise<Run> {
  await collectBeforeRun();
  const before = await counters(lab.admin);
  const sentBefore = sent();
  const serverCpu = lab.server.cpuMs();
  const cpu = process.cpuUsage();
  const start = performance.now();
  await drive(count, inFlight, op);
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  const serverUs = (lab.server.cpuMs() - serverCpu) * 1000;
  const roundTrips = (sent() - sentBefore) / count;
  const after = await counters(lab.admin);
  return {
    rate: count / seconds,
    roundTrips,
    redisCommands: (after.calls - before.calls) / count,
    bytesToRedis: (after.bytesIn - before.bytesIn) / count,
    nodeCpuUs: (used.user + used.system) / count,
    redisCpuUs: serverUs / count,
  };
}

/** The bare lease loop: SET NX PX, then a compare-and-delete script. */
async function bareRun(lab: Lab, raw: RawClient, turns: number, inFlight: number): Promise<Run> {
  const prefix = freshPrefix();
  let sent = 0;
  return timed(
    lab,
    turns,
    inFlight,
    () => sent,
    async (w, n) => {
      const key = `${prefix}${w}:${n % KEYS_PER_WORKER}`;
      const token = `${w}:${n}`;
      sent++;
      if ((await raw.set(key, token)) !== "OK") throw new Error(`bare: ${key} was not free`);
      sent++;
      if (Number(await raw.compareAndDelete(key, token)) !== 1) {
        throw new Error(`bare: ${key} was not released`);
      }
    },
  );
}

/** A guard on a fresh store (its own connections), with the store's finishes observed. */
interface Replica {
  readonly guard: Guard<Input>;
  readonly sent: Sent;
  /** Resolves when `key` is next released by a finish. */
  released(key: string): Promise<void>;
  /** Finishes that handed the key on to a next batch instead of releasing it. */
  readonly handedOn: { count: number };
  readonly errors: unknown[];
  close(): Promise<void>;
}

function replica(
  kind: ClientKind,
  lab: Lab,
  options: {
    prefix?: string;
    lease?: number;
    awaitTurn?: boolean;
    handler?: (turn: Turn<Input>) => unknown;
    maxPending?: number;
  } = {},
): Replica {
  const sent: Sent = { total: 0 };
  const { client, dispose } = kind.forStore(lab.socket, sent);
  const store: RedisStore = redisStore({
    client,
    prefix: options.prefix ?? freshPrefix(),
    lease: options.lease ?? LEASE,
  });
  const waiting = new Map<string, () => void>();
  const handedOn = { count: 0 };
  const errors: unknown[] = [];
  // Every call forwarded as is; `finish` is watched for the key's release.
  const observed = observedStore(store as Store<StoreEntry>, (key, finish) => {
    if (finish.status === "released") {
      const wake = waiting.get(key);
      waiting.delete(key);
      wake?.();
    } else handedOn.count++;
  });
  const guard = createGuard<Input>({
    store: observed,
    handler: options.handler ?? (() => {}),
    awaitTurn: options.awaitTurn ?? false,
    maxPending: options.maxPending ?? 100,
    onError: (error) => void errors.push(error),
    onDrop: (drop) => void errors.push(new Error(`an input was dropped (${drop.reason})`)),
  });
  let closed = false;
  return {
    guard,
    sent,
    released: (key) => new Promise((resolve) => waiting.set(key, resolve)),
    handedOn,
    errors,
    async close() {
      if (closed) return;
      closed = true;
      await guard.close({ timeout: 2_000 });
      await store.close();
      dispose();
    },
  };
}

/** Fail on any error or drop, and on finishes that handed the key on, unless expected. */
function check(r: Replica, what: string, handedOn = 0): void {
  if (r.errors.length > 0) throw new Error(`${what}: ${String(r.errors[0])}`);
  if (r.handedOn.count !== handedOn) {
    throw new Error(
      `${what}: ${r.handedOn.count} finishes handed the key on, ${handedOn} expected`,
    );
  }
}

/** A guard turn of worker `w` on one of its keys: claim, handler, release (or, awaitTurn, settle). */
function guardTurn(r: Replica, awaitTurn: boolean, prefix: string) {
  return async (w: number, n: number) => {
    const key = `${prefix}${w}:${n % KEYS_PER_WORKER}`;
    if (awaitTurn) {
      await r.guard.submit(key, { n });
      return;
    }
    const released = r.released(key);
    if ((await r.guard.submit(key, { n })) !== "started") throw new Error(`${key} was busy`);
    await released;
  };
}

/** Guard turns on a fresh store whose connections are warmed up first. */
async function guardRun(
  kind: ClientKind,
  lab: Lab,
  turns: number,
  inFlight: number,
  awaitTurn: boolean,
): Promise<Run> {
  const r = replica(kind, lab, { awaitTurn });
  try {
    await drive(inFlight * 4, inFlight, guardTurn(r, awaitTurn, "warm:"));
    const run = await timed(
      lab,
      turns,
      inFlight,
      () => r.sent.total,
      guardTurn(r, awaitTurn, "k:"),
    );
    check(r, `guard (${kind.name})`);
    return run;
  } finally {
    await r.close();
  }
}

/**
 * Inputs admitted for keys whose turn is running: `inFlight` keys are held by turns of replica A
 * waiting on a gate, and `inFlight` workers submit `inputs` inputs to them (each worker to its own
 * key), through A itself or through replica B on the same prefix (each input then also publishes
 * an "input is pending" hint to A). Then the gate opens and every key drains at A in one
 * coalesced turn.
 */
async function enqueueRun(
  kind: ClientKind,
  lab: Lab,
  inputs: number,
  inFlight: number,
  from: "holder" | "replica",
): Promise<Run> {
  const thinking = gate();
  let drained = 0;
  const prefix = freshPrefix();
  const a = replica(kind, lab, {
    prefix,
    maxPending: 10_000,
    handler: (turn) => {
      if (turn.inputs[0]?.n === -1) return thinking.promise;
      if (turn.key.startsWith("held:")) drained += turn.inputs.length;
      return undefined;
    },
  });
  const b = from === "replica" ? replica(kind, lab, { prefix, maxPending: 10_000 }) : a;
  try {
    await drive(inFlight * 4, inFlight, guardTurn(a, false, "warm-a:"));
    if (b !== a) await drive(inFlight * 4, inFlight, guardTurn(b, false, "warm-b:"));
    for (let w = 0; w < inFlight; w++) {
      if ((await a.guard.submit(`held:${w}`, { n: -1 })) !== "started") {
        throw new Error("enqueue: a held key was busy");
      }
    }
    const run = await timed(
      lab,
      inputs,
      inFlight,
      () => b.sent.total,
      async (w, n) => {
        if ((await b.guard.submit(`held:${w}`, { n })) !== "queued") {
          throw new Error("enqueue: an input was not queued");
        }
      },
    );
    thinking.open();
    await a.guard.onIdle();
    if (drained !== inputs) throw new Error(`enqueue: ${drained} of ${inputs} inputs ran`);
    // Each held key's finish hands it to the coalesced turn of its inputs.
    check(a, `enqueue (${kind.name})`, inFlight);
    if (b !== a) check(b, `enqueue from a replica (${kind.name})`);
    return run;
  } finally {
    thinking.open();
    await a.close();
    await b.close();
  }
}

// === Hand-over after a graceful close

/** Ms from the end of each of A's turns to B's turn of the same key, A closing gracefully. */
async function handover(kind: ClientKind, lab: Lab, keys: number): Promise<number[]> {
  const prefix = freshPrefix();
  const thinking = gate();
  const ended = new Map<string, number>();
  const startedAtB = new Map<string, number>();
  const allStarted = gate();
  const a = replica(kind, lab, { prefix });
  const b = replica(kind, lab, { prefix });
  try {
    const atA = async (turn: Turn<Input>) => {
      await thinking.promise;
      ended.set(turn.key, performance.now());
    };
    const atB = (turn: Turn<Input>) => {
      startedAtB.set(turn.key, performance.now());
      if (startedAtB.size === keys) allStarted.open();
    };
    // Both stores connected, and subscribed to their hints, before the measurement.
    await drive(16, 8, guardTurn(a, false, "warm-a:"));
    await drive(16, 8, guardTurn(b, false, "warm-b:"));
    await sleep(100);
    for (let k = 0; k < keys; k++) {
      if ((await a.guard.submit(`h:${k}`, { n: k }, atA)) !== "started") {
        throw new Error("handover: A could not claim its key");
      }
      if ((await b.guard.submit(`h:${k}`, { n: k }, atB)) !== "queued") {
        throw new Error("handover: B's input was not queued");
      }
    }
    const closing = a.close();
    thinking.open();
    const timeout = setTimeout(() => allStarted.open(), 5_000);
    await allStarted.promise;
    clearTimeout(timeout);
    await closing;
    await b.guard.onIdle();
    if (startedAtB.size !== keys) {
      throw new Error(`handover: ${startedAtB.size} of ${keys} keys reached B within 5 s`);
    }
    return [...startedAtB].map(([key, at]) => at - (ended.get(key) as number));
  } finally {
    thinking.open();
    await a.close();
    await b.close();
  }
}

// === Takeover after SIGKILL

/** The replica process of the takeover measurement. */
const TAKEOVER_REPLICA = new URL("./redis-replica.ts", import.meta.url);

/** One key of a takeover: ms from the kill to B's turn, and the lease left at the kill. */
interface Takeover {
  readonly tookMs: number;
  readonly remainingMs: number;
}

/**
 * Replica A, a process of its own, holds `keys` keys in turns that never end (renewing their
 * leases); B, here on the same prefix, queues input for each; A is SIGKILLed at a random point of
 * its renewal period. Per key: ms from the kill to the start of B's turn (which also runs the killed
 * turn's input), and the lease's remaining time at the kill.
 */
async function takeover(
  kind: ClientKind,
  lab: Lab,
  keys: number,
  lease: number,
): Promise<Takeover[]> {
  const prefix = freshPrefix();
  const startedAtB = new Map<string, number>();
  const allStarted = gate();
  const b = replica(kind, lab, {
    prefix,
    lease,
    handler: (turn) => {
      if (!turn.key.startsWith("t:") || startedAtB.has(turn.key)) return;
      startedAtB.set(turn.key, performance.now());
      if (turn.inputs.length !== 2) {
        b.errors.push(new Error(`takeover: ${turn.inputs.length} inputs in B's turn, 2 expected`));
      }
      if (startedAtB.size === keys) allStarted.open();
    },
  });
  const events: FromTakeoverReplica[] = [];
  const child = fork(TAKEOVER_REPLICA, [], {
    execArgv: ["--import", "tsx"],
    env: {
      ...process.env,
      SG_SOCKET: lab.socket,
      SG_CLIENT: kind.name,
      SG_PREFIX: prefix,
      SG_LEASE: String(lease),
    },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.on("message", (message: FromTakeoverReplica) => void events.push(message));
  const until = async (what: string, done: () => boolean): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (!done()) {
      const failed = events.find((event) => event.type === "error");
      if (failed !== undefined) throw new Error(`takeover: replica A: ${JSON.stringify(failed)}`);
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`takeover: replica A did not report ${what}`);
      }
      await sleep(5);
    }
  };
  try {
    await drive(16, 8, guardTurn(b, false, "warm-b:"));
    await until("ready", () => events.some((event) => event.type === "ready"));
    const names = Array.from({ length: keys }, (_, k) => `t:${k}`);
    for (const key of names) child.send({ type: "hold", key } satisfies ToTakeoverReplica);
    const holding = () => events.filter((event) => event.type === "holding").length === keys;
    await until("its turns", holding);
    for (const key of names) {
      if ((await b.guard.submit(key, { n: 1 })) !== "queued") {
        throw new Error("takeover: B's input was not queued");
      }
    }
    // Past a renewal or two, at a random point of the renewal period.
    await sleep(lease * (0.4 + 0.4 * Math.random()));
    const killedAt = performance.now();
    child.kill("SIGKILL");
    // What is left of each lease (nothing can renew it any more).
    const remaining = new Map<string, number>();
    for (const key of names) {
      const pttl = Number(await lab.admin.command(["PTTL", `{${prefix}${bucketOf(key)}}l:${key}`]));
      remaining.set(key, Math.max(0, pttl) + (performance.now() - killedAt));
    }
    const timeout = setTimeout(() => allStarted.open(), lease + 5_000);
    await allStarted.promise;
    clearTimeout(timeout);
    await b.guard.onIdle();
    if (startedAtB.size !== keys) {
      throw new Error(`takeover: ${startedAtB.size} of ${keys} keys were taken over within 5 s`);
    }
    check(b, `takeover (${kind.name})`);
    return names.map((key) => ({
      tookMs: (startedAtB.get(key) as number) - killedAt,
      remainingMs: remaining.get(key) as number,
    }));
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    await exited;
    await b.close();
  }
}

// === The measurement

type Series = "bare" | "guard" | "awaitTurn" | "enqueue" | "enqueueRemote";
const TURN_SERIES = ["bare", "guard", "awaitTurn"] as const;

function summarize(runs: readonly Run[], bare: readonly Run[] | undefined): Workload {
  const ratios = bare === undefined ? [] : runs.map((run, i) => run.rate / (bare[i] as Run).rate);
  const of = (pick: (run: Run) => number) => median(runs.map(pick));
  return {
    perS: of((run) => run.rate),
    vsBare: ratios.length > 0 ? median(ratios) : Number.NaN,
    vsBareRange: ratios.length > 0 ? [Math.min(...ratios), Math.max(...ratios)] : [NaN, NaN],
    roundTrips: of((run) => run.roundTrips),
    redisCommands: of((run) => run.redisCommands),
    bytesToRedis: of((run) => run.bytesToRedis),
    nodeCpuUs: of((run) => run.nodeCpuUs),
    redisCpuUs: of((run) => run.redisCpuUs),
  };
}

/** Run measurement 5, or answer `null` (with a notice) when `redis-server` is not on PATH. */
export async function redisBench(options: RedisBenchOptions): Promise<RedisResult | null> {
  const version = serverVersion();
  if (version === undefined) {
    console.log(
      "5. Redis: SKIPPED: redis-server is not on PATH (install it to measure the Redis store).\n",
    );
    return null;
  }
  const started = performance.now();
  const server = await startServer(version);
  const raws = new Map<ClientName, RawClient>();
  let admin: RawClient | undefined;
  try {
    admin = await NODE_REDIS.connect(server.socket);
    await admin.command(["SCRIPT", "LOAD", COMPARE_AND_DELETE]);
    const lab: Lab = { socket: server.socket, admin, server };
    for (const kind of KINDS) raws.set(kind.name, await kind.connect(server.socket));

    const runs = new Map<string, Run[]>();
    const record = (kind: ClientKind, series: Series, run: Run) => {
      const name = `${kind.name}/${series}`;
      runs.set(name, [...(runs.get(name) ?? []), run]);
    };
    for (let round = 0; round < options.rounds; round++) {
      progress(`5. redis: round ${round + 1} of ${options.rounds}`);
      for (const kind of rotation(KINDS, round)) {
        const raw = raws.get(kind.name) as RawClient;
        for (const series of rotation(TURN_SERIES, round)) {
          const run =
            series === "bare"
              ? await bareRun(lab, raw, options.turns, options.inFlight)
              : await guardRun(kind, lab, options.turns, options.inFlight, series === "awaitTurn");
          record(kind, series, run);
        }
        for (const from of rotation(["holder", "replica"] as const, round)) {
          const run = await enqueueRun(kind, lab, options.inputs, options.inFlight, from);
          record(kind, from === "holder" ? "enqueue" : "enqueueRemote", run);
        }
      }
    }

    progress("5. redis: hand-over after a graceful close");
    const handovers = new Map<ClientName, number[]>();
    for (let round = 0; round < options.handoverRounds; round++) {
      for (const kind of rotation(KINDS, round)) {
        const samples = await handover(kind, lab, options.handoverKeys);
        handovers.set(kind.name, [...(handovers.get(kind.name) ?? []), ...samples]);
      }
    }

    progress("5. redis: takeover after SIGKILL of the holder");
    const takeovers = new Map<ClientName, Takeover[]>();
    for (let round = 0; round < options.takeoverRounds; round++) {
      for (const kind of rotation(KINDS, round)) {
        const samples = await takeover(kind, lab, options.takeoverKeys, options.takeoverLease);
        takeovers.set(kind.name, [...(takeovers.get(kind.name) ?? []), ...samples]);
      }
    }

    const clients = {} as RedisResult["clients"];
    for (const kind of KINDS) {
      const series = (name: Series) => runs.get(`${kind.name}/${name}`) as Run[];
      const samples = handovers.get(kind.name) as number[];
      const took = takeovers.get(kind.name) as Takeover[];
      const afterExpiry = took.map((t) => t.tookMs - t.remainingMs);
      clients[kind.name] = {
        version: installedVersion(kind.name === "node-redis" ? "redis" : "ioredis"),
        bare: summarize(series("bare"), series("bare")),
        guard: summarize(series("guard"), series("bare")),
        awaitTurn: summarize(series("awaitTurn"), series("bare")),
        enqueue: summarize(series("enqueue"), undefined),
        enqueueFromReplica: summarize(series("enqueueRemote"), undefined),
        handover: {
          p50Ms: percentile(samples, 50),
          maxMs: Math.max(...samples),
          samples: samples.length,
        },
        takeover: {
          leaseMs: options.takeoverLease,
          p50Ms: percentile(
            took.map((t) => t.tookMs),
            50,
          ),
          maxMs: Math.max(...took.map((t) => t.tookMs)),
          afterExpiryP50Ms: percentile(afterExpiry, 50),
          afterExpiryMaxMs: Math.max(...afterExpiry),
          samples: took.length,
        },
      };
    }
    return {
      options,
      server: version,
      clients,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    for (const raw of raws.values()) raw.close();
    admin?.close();
    await server.stop();
  }
}

/** Only one workload of one client, six times over: for `node --cpu-prof`. */
export async function profileRedis(
  workload: string,
  client: string,
  options: RedisBenchOptions,
): Promise<void> {
  const kind = KINDS.find((k) => k.name === client);
  const series = ["bare", "guard", "awaitTurn", "enqueue", "enqueueRemote"].find(
    (s) => s === workload,
  );
  if (kind === undefined || series === undefined) {
    throw new Error(
      "--profile-redis: bare | guard | awaitTurn | enqueue | enqueueRemote, then node-redis | ioredis",
    );
  }
  const version = serverVersion();
  if (version === undefined) throw new Error("--profile-redis: redis-server is not on PATH");
  const server = await startServer(version);
  const admin = await NODE_REDIS.connect(server.socket);
  const raw = await kind.connect(server.socket);
  try {
    await admin.command(["SCRIPT", "LOAD", COMPARE_AND_DELETE]);
    const lab: Lab = { socket: server.socket, admin, server };
    for (let run = 0; run < 6; run++) {
      const { turns, inputs, inFlight } = options;
      const result =
        series === "bare"
          ? await bareRun(lab, raw, turns, inFlight)
          : series.startsWith("enqueue")
            ? await enqueueRun(
                kind,
                lab,
                inputs,
                inFlight,
                series === "enqueue" ? "holder" : "replica",
              )
            : await guardRun(kind, lab, turns, inFlight, series === "awaitTurn");
      console.log(
        `${series} (${kind.name}): ${Math.round(result.rate)}/s, CPU µs per op: node ${result.nodeCpuUs.toFixed(1)}, redis-server ${result.redisCpuUs.toFixed(1)}`,
      );
    }
  } finally {
    raw.close();
    admin.close();
    await server.stop();
  }
}

// === Output

/** The table of measurement 5, with its notes. */
export function redisTable(result: RedisResult): string {
  const { options } = result;
  const names = ["node-redis", "ioredis"] as const;
  const one = (value: number) => (Number.isInteger(value) ? String(value) : value.toFixed(2));
  const ratio = (w: Workload) =>
    `${w.vsBare.toFixed(2)} (${w.vsBareRange[0].toFixed(2)}–${w.vsBareRange[1].toFixed(2)})`;
  const row = (label: string, w: Workload, vsBare: string): string[] => [
    `  ${label}`,
    fmt(w.perS),
    vsBare,
    one(w.roundTrips),
    one(w.redisCommands),
    fmt(w.bytesToRedis),
    w.nodeCpuUs.toFixed(1),
    w.redisCpuUs.toFixed(1),
  ];
  const rows: string[][] = [];
  for (const name of names) {
    const c = result.clients[name];
    rows.push(
      [`${name} ${c.version}`],
      row("bare: SET NX PX, EVALSHA compare-and-delete", c.bare, "1.00"),
      row("guard: claim → trivial handler → release", c.guard, ratio(c.guard)),
      row("guard, awaitTurn callers", c.awaitTurn, ratio(c.awaitTurn)),
      row("enqueue during a turn, at the holder", c.enqueue, ""),
      row("enqueue during a turn, from a replica", c.enqueueFromReplica, ""),
    );
  }
  const handover = names
    .map((name) => {
      const { p50Ms, maxMs } = result.clients[name].handover;
      return `${name} p50 ${p50Ms.toFixed(1)} ms, max ${maxMs.toFixed(1)} ms`;
    })
    .join("; ");
  const samples = result.clients["node-redis"].handover.samples;
  const ms = (value: number) => `${value.toFixed(0)} ms`;
  const takeovers = names.map((name) => {
    const t = result.clients[name].takeover;
    const over = t.maxMs - t.leaseMs;
    return `    ${name}: p50 ${ms(t.p50Ms)} (${(t.p50Ms / t.leaseMs).toFixed(2)} of the lease), max ${ms(t.maxMs)} (${(t.maxMs / t.leaseMs).toFixed(2)}, lease ${over >= 0 ? "+" : "−"} ${ms(Math.abs(over))}); after the lease ran out: p50 ${ms(t.afterExpiryP50Ms)}, max ${ms(t.afterExpiryMaxMs)}`;
  });
  const { leaseMs, samples: killed } = result.clients["node-redis"].takeover;
  const verdict = names
    .map((name) => {
      const value = result.clients[name].guard.vsBare;
      return `${name} ${value.toFixed(2)} (${value >= TARGET_GUARD_VS_BARE ? "met" : "NOT met"})`;
    })
    .join(", ");
  const notes = [
    `  Hand-over after guard.close() to another replica (lease 30 s, ${samples} keys per client):`,
    `    ${handover}.`,
    `  Takeover after SIGKILL of the holder (a process of its own; lease ${leaseMs} ms, renewed every lease/3; ${killed} keys`,
    "  per client, input queued at another replica; from the kill to that replica's turn):",
    ...takeovers,
    "  per s: turns, or inputs for the enqueue rows. trips: commands the client sent (round trips) per turn or input;",
    "  cmds: commands Redis ran per turn or input, scripts' own calls included (INFO commandstats); B in: bytes Redis",
    "  read per turn or input (INFO stats); node µs, redis µs: CPU time per turn or input of this process and of",
    "  redis-server. guard: createGuard({ store: redisStore() }), 64 workers, each claims its next key once the last",
    "  is released; awaitTurn: 64 callers of submit(..., { awaitTurn }), which return before the release round trip.",
    `  Design target, guard ≥ ${TARGET_GUARD_VS_BARE.toFixed(2)} of bare with the same client: ${verdict}.`,
  ];
  return `${table(
    `5. Redis store vs the bare lease loop (redis-server ${result.server} on a unix socket, same machine; ${options.inFlight} in flight; ${fmt(options.turns)} turns or ${fmt(options.inputs)} inputs per run; ${options.rounds} rounds; ratio: median (min–max) of per-round ratios)`,
    ["workload", "per s", "vs bare", "trips", "cmds", "B in", "node µs", "redis µs"],
    rows,
  )}\n${notes.join("\n")}`;
}

/** The `redis` part of RESULT. */
export function redisJson(result: RedisResult): Record<string, unknown> {
  const { options } = result;
  const clients = Object.entries(result.clients).map(([name, c]) => [
    name,
    {
      version: c.version,
      bare_turns_per_s: round(c.bare.perS),
      guard_turns_per_s: round(c.guard.perS),
      guard_vs_bare: round2(c.guard.vsBare),
      guard_vs_bare_range: c.guard.vsBareRange.map(round2),
      await_turn_turns_per_s: round(c.awaitTurn.perS),
      await_turn_vs_bare: round2(c.awaitTurn.vsBare),
      enqueued_inputs_per_s: round(c.enqueue.perS),
      enqueued_from_replica_inputs_per_s: round(c.enqueueFromReplica.perS),
      round_trips_per_turn: round2(c.guard.roundTrips),
      round_trips_per_input: round2(c.enqueue.roundTrips),
      round_trips_per_turn_bare: round2(c.bare.roundTrips),
      redis_commands_per_turn: round2(c.guard.redisCommands),
      redis_commands_per_input: round2(c.enqueue.redisCommands),
      redis_commands_per_turn_bare: round2(c.bare.redisCommands),
      bytes_to_redis_per_turn: round(c.guard.bytesToRedis),
      bytes_to_redis_per_input: round(c.enqueue.bytesToRedis),
      bytes_to_redis_per_turn_bare: round(c.bare.bytesToRedis),
      cpu_us_per_turn: {
        bare: { node: round(c.bare.nodeCpuUs, 1), redis: round(c.bare.redisCpuUs, 1) },
        guard: { node: round(c.guard.nodeCpuUs, 1), redis: round(c.guard.redisCpuUs, 1) },
      },
      cpu_us_per_input: {
        node: round(c.enqueue.nodeCpuUs, 1),
        redis: round(c.enqueue.redisCpuUs, 1),
      },
      handover_p50_ms: round(c.handover.p50Ms, 1),
      handover_max_ms: round(c.handover.maxMs, 1),
      handover_samples: c.handover.samples,
      takeover_lease_ms: c.takeover.leaseMs,
      takeover_p50_ms: round(c.takeover.p50Ms, 1),
      takeover_max_ms: round(c.takeover.maxMs, 1),
      takeover_p50_vs_lease: round2(c.takeover.p50Ms / c.takeover.leaseMs),
      takeover_max_vs_lease: round2(c.takeover.maxMs / c.takeover.leaseMs),
      takeover_max_over_lease_ms: round(c.takeover.maxMs - c.takeover.leaseMs, 1),
      takeover_after_expiry_p50_ms: round(c.takeover.afterExpiryP50Ms, 1),
      takeover_after_expiry_max_ms: round(c.takeover.afterExpiryMaxMs, 1),
      takeover_samples: c.takeover.samples,
    },
  ]);
  return {
    server: result.server,
    in_flight: options.inFlight,
    turns_per_run: options.turns,
    inputs_per_run: options.inputs,
    rounds: options.rounds,
    target_guard_vs_bare: TARGET_GUARD_VS_BARE,
    ...Object.fromEntries(clients),
    seconds: round(result.seconds),
  };
}
