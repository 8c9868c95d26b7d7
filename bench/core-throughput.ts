// === The core guard alone against the hand-written serializer: no framework, CPU per input
//
// For finding what the core costs, not a measurement of the suite. Measurement 1 runs through a
// grammY bot, where grammY's own per-update work and its collections dominate and a change to the
// core moves the figures by less than one run's noise. Here `createGuard` and the smallest correct
// per-key serializer (measurement 1's, `promiseTails`) take the same inputs, with ids, in the same
// process, alternating round by round, and each round is reported as process CPU µs per input.
// After `npm run build`:
//
//   TSX_TSCONFIG_PATH=bench/tsconfig.json node --expose-gc --import tsx bench/core-throughput.ts \
//     [keys] [rounds] ['<guard options json>']
//
// `keys` (default 100) spreads 100,000 inputs, 1,000 in flight: 1,000 keys is uncontended, 100 is
// ten per key. The guard runs `mode: "queue"` with `awaitTurn` and its caps lifted unless the
// options say otherwise, so that both serialize the same work: one turn per input.

import { createGuard, type GuardOptions } from "session-guard";
import { promiseTails } from "./contenders.js";
import { collectBeforeRun, median, rotation } from "./harness.js";

const [keysText = "100", roundsText = "6", optionsText = "{}"] = process.argv.slice(2);
const KEYS = Number(keysText);
const ROUNDS = Number(roundsText);
const INPUTS = 100_000;
const WINDOW = 1_000;
const options = {
  mode: "queue",
  awaitTurn: true,
  maxPending: 1e9,
  maxPendingTotal: 1e9,
  ...(JSON.parse(optionsText) as GuardOptions<number>),
} as GuardOptions<number>;

/** The handler both run: one microtask of work, as a turn that awaits something cheap. */
const handler = async (): Promise<void> => {
  await null;
};

/** Feed `submit` the inputs in windows; answers the process CPU µs per input. */
async function feed(submit: (key: string, input: number) => Promise<unknown>): Promise<number> {
  await collectBeforeRun();
  const start = process.cpuUsage();
  for (let base = 0; base < INPUTS; base += WINDOW) {
    const inFlight: Promise<unknown>[] = [];
    for (let i = base; i < base + WINDOW; i++) inFlight.push(submit(`k${i % KEYS}`, i));
    await Promise.all(inFlight);
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / INPUTS;
}

const contenders: Record<string, () => Promise<number>> = {
  "hand-written serializer": () => {
    const serialize = promiseTails();
    return feed((key, input) => serialize(key, handler).then(() => input));
  },
  [`createGuard(${JSON.stringify(options)})`]: () => {
    const guard = createGuard<number>(options);
    return feed((key, input) => guard.submit(key, input, handler, { id: `id:${input}` }));
  },
};

const cpu: Record<string, number[]> = {};
for (let round = 0; round < ROUNDS; round++) {
  for (const name of rotation(Object.keys(contenders), round)) {
    (cpu[name] ??= []).push(await (contenders[name] as () => Promise<number>)());
  }
}
console.log(`${INPUTS} inputs over ${KEYS} keys, ${WINDOW} in flight, ${ROUNDS} rounds`);
for (const [name, values] of Object.entries(cpu)) {
  console.log(`${name.padEnd(60)} CPU ${median(values).toFixed(2)} µs/input (median)`);
}
