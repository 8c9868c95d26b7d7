// === session-guard benchmarks: `npm run bench`
//
// Builds nothing itself: `npm run bench` runs `npm run build` first, and this suite imports
// `session-guard` and `session-guard/grammy` by name, which (with bench/tsconfig.json, which has
// no "paths") resolves through the package's exports to dist/, the code users get. The suite
// checks that before it measures anything.
//
// Prints one table per measurement, then, as its last line, `RESULT {json}`.
//
//   npm run bench                       the whole suite
//
// Measurement 5 (Redis) starts its own throwaway redis-server on a unix socket; without
// redis-server on PATH it prints a notice and RESULT has `"redis": null`.
//
// Profiling one contender's throughput workload (its name as in RESULT: bare, empty_layer,
// hand_written, sequentialize, guard, guard_no_dedupe, guard_detached; with --contended or --flood
// the contenders of that scenario, such as guard_queue), after `npm run build`:
//
//   TSX_TSCONFIG_PATH=bench/tsconfig.json node --cpu-prof --cpu-prof-dir=/tmp/prof \
//     --expose-gc --import tsx bench/index.ts --profile guard [--contended | --flood]
//
// Where one contender allocates (bytes per update by function): bench/alloc-profile.ts. What each
// update in flight keeps alive, by kind of object: bench/held-by-kind.ts.
//
// and one Redis workload of one client (bare, guard, awaitTurn, enqueue, enqueueRemote; node-redis
// or ioredis): the same command with `--profile-redis guard node-redis`.
//
// Only measurement 5 (Redis), with its table and a RESULT line holding `redis` alone: the same
// command with `--only redis` (after `npm run build`), or `npm run bench -- --only redis`; only
// measurement 1 (throughput): `--only throughput`; only measurement 6 (what session-guard/otel
// costs): `--only otel`.

import os from "node:os";
import { createGuard } from "session-guard";
import { sessionGuard } from "session-guard/grammy";
import { instrumentGuard } from "session-guard/otel";
import { redisStore } from "session-guard/redis";
import { admissionLatency } from "./admission.js";
import { runBursts } from "./burst.js";
import { environment, fmt, progress, rawFileOf, round, round2, table } from "./harness.js";
import { measureThroughput, SCENARIOS, type ScenarioName } from "./measure-throughput.js";
import { idleKeys, pendingInputs } from "./memory.js";
import { otelJson, otelOverhead, otelTable } from "./otel.js";
import { profileRedis, redisBench, redisJson, redisTable } from "./redis.js";
import { roundRobin } from "./telegram.js";
import { runOnce } from "./throughput.js";

const ROUNDS = 5;
const BURST_CHATS = 1_000;
const BURST_FOLLOW_UPS = 20;
const IDLE_KEYS = 1_000_000;
const PENDING_KEYS = 1_000;
const PENDING_PER_KEY = 100;
const ADMISSION = { samples: 1_000, rounds: 4, turnMs: 50 };
const REDIS = {
  rounds: 5,
  inFlight: 64,
  turns: 10_000,
  inputs: 10_000,
  handoverRounds: 3,
  handoverKeys: 16,
  takeoverRounds: 3,
  takeoverKeys: 4,
  takeoverLease: 500,
};

const OTEL = { rounds: 5, inputs: 50_000, chats: 1_000 };

/** Fail loudly unless the package resolves to its build. */
function checkBuiltPackage(): string {
  const core = rawFileOf(() => createGuard({ mode: "none" as never }));
  const grammy = rawFileOf(() => sessionGuard({ awaitTurn: "no" as never }));
  const redis = rawFileOf(() => redisStore(null as never));
  const otel = rawFileOf(() => instrumentGuard(null as never));
  for (const file of [core, grammy, redis, otel]) {
    if (file === undefined || !/\/dist\/[^/]+\.js$/.test(file)) {
      throw new Error(
        `The benchmarks must measure the built package, but session-guard was loaded from ${file}. Run them with \`npm run bench\`.`,
      );
    }
  }
  return `${core}, ${grammy}, ${redis}, ${otel}`;
}

/** Only one contender's throughput workload, six times over: for `node --cpu-prof`. */
async function profile(name: string, scenarioName: ScenarioName): Promise<void> {
  const scenario = SCENARIOS[scenarioName];
  const contender = scenario.contenders.find((c) => c.name === name);
  if (contender === undefined) {
    throw new Error(`--profile: one of ${scenario.contenders.map((c) => c.name).join(", ")}`);
  }
  checkBuiltPackage();
  const updates = roundRobin(scenario.updates, scenario.chats);
  for (let run = 0; run < 6; run++) {
    const { rate, gcShare } = await runOnce(contender, updates, scenario.window);
    console.log(`${name}: ${fmt(rate)} updates/s, ${(gcShare * 100).toFixed(0)}% in GC`);
  }
}

/** Measurement 1 alone (`--only throughput`): its table, then `RESULT {"throughput": …}`. */
async function onlyThroughput(): Promise<void> {
  const env = environment();
  const loadedFrom = checkBuiltPackage();
  console.log(
    `session-guard benchmarks, throughput only: Node ${env.node}, ${env.cpus} × ${env.cpu_model}; load average at start ${env.loadavg_start.join(" ")}; loaded ${loadedFrom}\n`,
  );
  const throughput = await measureThroughput(ROUNDS);
  console.log(`${throughput.text}\n`);
  const loadEnd = os.loadavg().map(round2);
  console.log(`Load average at end ${loadEnd.join(" ")} (on ${env.cpus} CPUs).`);
  console.log(
    `RESULT ${JSON.stringify({ env: { ...env, loadavg_end: loadEnd, package: "dist" }, throughput: throughput.json })}`,
  );
}

async function main(): Promise<void> {
  const env = environment();
  const loadedFrom = checkBuiltPackage();
  const started = performance.now();
  const header = [
    "session-guard benchmarks: the built package (dist/), side by side in one process",
    `Node ${env.node} (V8 ${env.v8}), ${env.platform}, ${env.cpus} × ${env.cpu_model}; load average at start ${env.loadavg_start.join(" ")}`,
    `grammy ${env.grammy}, @grammyjs/runner ${env.runner}; loaded ${loadedFrom}`,
    "Contenders alternate over several rounds; figures are medians over rounds, ratios are medians of",
    "per-round ratios. Absolute numbers drift with machine load; the ratios are the figures to compare.",
  ];
  console.log(`${header.join("\n")}\n`);

  // 1. Throughput
  const throughput = await measureThroughput(ROUNDS);
  console.log(`${throughput.text}\n`);

  // 2. Burst
  progress(
    `2. burst: ${fmt(BURST_CHATS)} chats × ${BURST_FOLLOW_UPS} messages during the first turn`,
  );
  const burst = await runBursts({
    chats: BURST_CHATS,
    followUps: BURST_FOLLOW_UPS,
    rounds: ROUNDS,
    maxPendingTotal: BURST_CHATS * BURST_FOLLOW_UPS,
  });
  console.log(
    `${table(
      `2. Burst: ${fmt(BURST_CHATS)} chats, 1 message + ${BURST_FOLLOW_UPS} arriving during its turn (collect mode, maxPendingTotal ${fmt(BURST_CHATS * BURST_FOLLOW_UPS)}; ${ROUNDS} rounds)`,
      ["contender", "turns/chat", "inputs/turn", "drain ms", "drain vs guard"],
      [
        [
          "  sessionGuard() (collect, detached)",
          burst.guard.turnsPerChat.toFixed(0),
          burst.guard.coalescedPerTurn.toFixed(1),
          burst.guard.drainMs.toFixed(1),
          "1.00",
        ],
        [
          "  sequentialize (runner), by chat",
          burst.sequentialize.turnsPerChat.toFixed(0),
          "1.0",
          burst.sequentialize.drainMs.toFixed(1),
          burst.drainRatio.toFixed(2),
        ],
        [
          `  (the guard's default maxPendingTotal, 10,000, drops ${fmt(burst.droppedWithDefaultCap)} of these ${fmt(BURST_CHATS * BURST_FOLLOW_UPS)} inputs as overflow)`,
        ],
      ],
    )}\n`,
  );

  // 3. Memory
  progress(`3. memory: ${fmt(IDLE_KEYS)} keys through the core guard, then pending inputs`);
  const idleNoIds = await idleKeys(IDLE_KEYS, "none");
  const idleWithIds = await idleKeys(IDLE_KEYS, "text");
  const idleWithIntegerIds = await idleKeys(IDLE_KEYS, "integer");
  const pendingNoIds = await pendingInputs(PENDING_KEYS, PENDING_PER_KEY, false);
  const pendingWithIds = await pendingInputs(PENDING_KEYS, PENDING_PER_KEY, true);
  console.log(
    `${table(
      "3. Memory, core guard with memoryStore() (heapUsed after GC, --expose-gc)",
      ["measurement", "retained", "per item"],
      [
        [
          `  ${fmt(IDLE_KEYS)} distinct keys come and go, inputs without ids`,
          `${fmt(idleNoIds.retainedBytes / 1024, 1)} KiB`,
          `${idleNoIds.bytesPerKey.toFixed(2)} B/key`,
        ],
        [
          `  same, every input with an id (${fmt(idleWithIds.idsHeld)} ids still remembered)`,
          `${fmt(idleWithIds.retainedBytes / 1024, 1)} KiB`,
          `${(idleWithIds.retainedBytes / Math.max(1, idleWithIds.idsHeld)).toFixed(1)} B/id`,
        ],
        [
          `  same, ids that are increasing integers, like update ids (${fmt(idleWithIntegerIds.idsHeld)} remembered)`,
          `${fmt(idleWithIntegerIds.retainedBytes / 1024, 1)} KiB`,
          `${(idleWithIntegerIds.retainedBytes / Math.max(1, idleWithIntegerIds.idsHeld)).toFixed(1)} B/id`,
        ],
        [
          `  ${fmt(pendingNoIds.pending)} pending inputs (${fmt(PENDING_KEYS)} keys × ${PENDING_PER_KEY}), no ids`,
          "",
          `${pendingNoIds.bytesPerPending.toFixed(1)} B/input`,
        ],
        [
          "  same, with ids (the id string and its de-duplication record included)",
          "",
          `${pendingWithIds.bytesPerPending.toFixed(1)} B/input`,
        ],
        [
          "  (ids are remembered for the dedupe window, 10 min by default, at most memoryStore's maxIds = 100,000:",
        ],
        ["   by design, not a leak; idle keys themselves leave nothing behind)"],
      ],
    )}\n`,
  );

  // 4. Admission latency
  progress(
    `4. admission latency: ${ADMISSION.samples} samples per round, ${ADMISSION.turnMs} ms turns`,
  );
  const admission = await admissionLatency(ADMISSION);
  const us = (value: number) => (value < 100 ? value.toFixed(1) : fmt(value));
  console.log(
    `${table(
      `4. Admission latency while the chat's turn runs (${ADMISSION.turnMs} ms turns; time until bot.handleUpdate settles; ${ADMISSION.samples} samples × ${ADMISSION.rounds} rounds)`,
      ["contender", "p50 µs", "p99 µs"],
      [
        ["  sessionGuard() (detached)", us(admission.guard.p50Us), us(admission.guard.p99Us)],
        [
          "  sequentialize (runner), by chat",
          us(admission.sequentialize.p50Us),
          us(admission.sequentialize.p99Us),
        ],
      ],
    )}\n`,
  );

  // 5. Redis
  progress(
    `5. redis: ${REDIS.inFlight} in flight, ${REDIS.rounds} rounds, node-redis and ioredis, own redis-server`,
  );
  const redis = await redisBench(REDIS);
  if (redis !== null) console.log(`${redisTable(redis)}\n`);

  // 6. OpenTelemetry
  progress(
    `6. otel: ${fmt(OTEL.inputs)} inputs over ${fmt(OTEL.chats)} chats, ${OTEL.rounds} rounds`,
  );
  const otel = await otelOverhead(OTEL);
  console.log(`${otelTable(otel, OTEL)}\n`);

  const seconds = (performance.now() - started) / 1000;
  const loadEnd = os.loadavg().map(round2);
  console.log(
    `Measured in ${seconds.toFixed(0)} s; load average at end ${loadEnd.join(" ")} (on ${env.cpus} CPUs).`,
  );

  const result = {
    env: { ...env, loadavg_end: loadEnd, package: "dist", seconds: round(seconds) },
    throughput: throughput.json,
    burst: {
      chats: burst.chats,
      messages_per_chat: burst.messagesPerChat,
      max_pending_total: BURST_CHATS * BURST_FOLLOW_UPS,
      guard: {
        turns_per_chat: round2(burst.guard.turnsPerChat),
        inputs_per_chat: round2(burst.guard.inputsPerChat),
        inputs_per_turn: round2(burst.guard.coalescedPerTurn),
        drain_ms: round(burst.guard.drainMs, 1),
      },
      sequentialize: {
        turns_per_chat: round2(burst.sequentialize.turnsPerChat),
        drain_ms: round(burst.sequentialize.drainMs, 1),
      },
      drain_ratio_sequentialize_vs_guard: round2(burst.drainRatio),
      dropped_with_default_max_pending_total: burst.droppedWithDefaultCap,
    },
    memory: {
      idle_keys: IDLE_KEYS,
      retained_bytes_per_idle_key: round2(idleNoIds.bytesPerKey),
      retained_bytes_idle_keys_total: idleNoIds.retainedBytes,
      keys_held_after: idleNoIds.keysHeld,
      with_ids: {
        retained_bytes_total: idleWithIds.retainedBytes,
        retained_bytes_per_key: round2(idleWithIds.bytesPerKey),
        ids_remembered: idleWithIds.idsHeld,
        bytes_per_remembered_id: round(
          idleWithIds.retainedBytes / Math.max(1, idleWithIds.idsHeld),
          1,
        ),
      },
      with_integer_ids: {
        ids_remembered: idleWithIntegerIds.idsHeld,
        bytes_per_remembered_id: round(
          idleWithIntegerIds.retainedBytes / Math.max(1, idleWithIntegerIds.idsHeld),
          1,
        ),
      },
      pending_inputs: pendingNoIds.pending,
      bytes_per_pending_input: round(pendingNoIds.bytesPerPending, 1),
      bytes_per_pending_input_with_id: round(pendingWithIds.bytesPerPending, 1),
    },
    admission: {
      turn_ms: ADMISSION.turnMs,
      samples_per_round: ADMISSION.samples,
      rounds: ADMISSION.rounds,
      guard_p50_us: round(admission.guard.p50Us, 1),
      guard_p99_us: round(admission.guard.p99Us, 1),
      sequentialize_p50_us: round(admission.sequentialize.p50Us),
      sequentialize_p99_us: round(admission.sequentialize.p99Us),
      p50_ratio_sequentialize_vs_guard: round(
        admission.sequentialize.p50Us / admission.guard.p50Us,
      ),
    },
    redis: redis === null ? null : redisJson(redis),
    otel: otelJson(otel, OTEL),
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

/** Measurement 6 alone (`--only otel`): its table, then `RESULT {"otel": …}`. */
async function onlyOtel(): Promise<void> {
  const env = environment();
  const loadedFrom = checkBuiltPackage();
  console.log(
    `session-guard benchmarks, OpenTelemetry only: Node ${env.node}, ${env.cpus} × ${env.cpu_model}; load average at start ${env.loadavg_start.join(" ")}; loaded ${loadedFrom}\n`,
  );
  const otel = await otelOverhead(OTEL);
  console.log(`${otelTable(otel, OTEL)}\n`);
  const loadEnd = os.loadavg().map(round2);
  console.log(`Load average at end ${loadEnd.join(" ")} (on ${env.cpus} CPUs).`);
  console.log(
    `RESULT ${JSON.stringify({ env: { ...env, loadavg_end: loadEnd, package: "dist" }, otel: otelJson(otel, OTEL) })}`,
  );
}

/** Measurement 5 alone (`--only redis`): its table, then `RESULT {"redis": …}`. */
async function onlyRedis(): Promise<void> {
  const env = environment();
  const loadedFrom = checkBuiltPackage();
  console.log(
    `session-guard benchmarks, Redis only: Node ${env.node}, ${env.cpus} × ${env.cpu_model}; load average at start ${env.loadavg_start.join(" ")}; loaded ${loadedFrom}\n`,
  );
  const redis = await redisBench(REDIS);
  if (redis !== null) console.log(`${redisTable(redis)}\n`);
  const loadEnd = os.loadavg().map(round2);
  console.log(`Load average at end ${loadEnd.join(" ")} (on ${env.cpus} CPUs).`);
  console.log(
    `RESULT ${JSON.stringify({ env: { ...env, loadavg_end: loadEnd, package: "dist" }, redis: redis === null ? null : redisJson(redis) })}`,
  );
}

const args = process.argv.slice(2);
if (args[0] === "--profile") {
  const scenario = args.includes("--contended")
    ? "contended"
    : args.includes("--flood")
      ? "flood"
      : "uncontended";
  await profile(args[1] ?? "", scenario);
} else if (args[0] === "--profile-redis") {
  checkBuiltPackage();
  await profileRedis(args[1] ?? "", args[2] ?? "node-redis", REDIS);
} else if (args[0] === "--only") {
  if (args[1] === "redis") await onlyRedis();
  else if (args[1] === "throughput") await onlyThroughput();
  else if (args[1] === "otel") await onlyOtel();
  else throw new Error("--only: redis, throughput or otel (the measurements that run alone)");
} else await main();
