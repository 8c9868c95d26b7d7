// === What holding bytes per update in flight costs any middleware
//
// For explaining measurement 1, not a measurement of the suite. The empty layer of measurement 1,
// and the same layer keeping `bytes` more alive per update until the update is done (an array on
// the context), side by side over the uncontended workload. Every young-generation collection
// copies what is live, so with 1,000 updates in flight what a middleware keeps per update costs
// time on every update, whatever the middleware does. After `npm run build`:
//
//   TSX_TSCONFIG_PATH=bench/tsconfig.json node --expose-gc --import tsx bench/held-bytes.ts [rounds]

import type { Context, NextFunction } from "grammy";
import { EMPTY_LAYER } from "./contenders.js";
import { median } from "./harness.js";
import { roundRobin } from "./telegram.js";
import { type Contender, runOnce } from "./throughput.js";

const rounds = Number(process.argv[2] ?? 3);
const HELD = [400, 800, 1_300, 2_000];
const holding = (bytes: number): Contender => ({
  name: `holds ${bytes} B`,
  label: `empty layer holding ${bytes} B per update`,
  install(bot) {
    bot.use((ctx: Context, next: NextFunction) => {
      (ctx as Context & { held?: number[] }).held = new Array(Math.floor(bytes / 8)).fill(0);
      return next();
    });
  },
});
const contenders = [EMPTY_LAYER, ...HELD.map(holding)];
const updates = roundRobin(100_000, 1_000);
const rates = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
const cpu = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
for (const c of contenders) await runOnce(c, updates.slice(0, 20_000), 1_000); // warm-up
for (let round = 0; round < rounds; round++) {
  for (const c of round % 2 === 0 ? contenders : [...contenders].reverse()) {
    const run = await runOnce(c, updates, 1_000);
    rates.get(c.name)?.push(run.rate);
    cpu.get(c.name)?.push(run.cpuUs);
  }
}
const empty = rates.get(EMPTY_LAYER.name) ?? [];
for (const c of contenders) {
  const own = rates.get(c.name) ?? [];
  const ratio = median(own.map((rate, i) => rate / (empty[i] as number)));
  console.log(
    `${c.name.padEnd(16)} ${Math.round(median(own)).toString().padStart(8)} updates/s  CPU ${median(
      cpu.get(c.name) ?? [],
    )
      .toFixed(1)
      .padStart(5)} µs/update  vs empty layer ${ratio.toFixed(2)}`,
  );
}
