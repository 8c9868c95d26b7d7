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
import { type Contender, rateLines, runScenario } from "./throughput.js";

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
const result = await runScenario({
  updates: 100_000,
  chats: 1_000,
  window: 1_000,
  rounds,
  contenders,
});
for (const line of rateLines(result, contenders, EMPTY_LAYER, "empty layer", 16)) console.log(line);
