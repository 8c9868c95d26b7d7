// === Where a contender allocates: V8's sampling heap profiler, collected objects included
//
// For finding what to cut, not a measurement of the suite. After `npm run build`:
//
//   TSX_TSCONFIG_PATH=bench/tsconfig.json node --expose-gc --import tsx bench/alloc-profile.ts \
//     guard [contended]
//
// prints the bytes allocated per update by each function (self), largest first. (`bench/index.ts`
// --profile gives the CPU side.)

import { Session } from "node:inspector/promises";
import { SCENARIOS, type ScenarioName } from "./measure-throughput.js";
import { deliverInWindows, offlineBot, roundRobin } from "./telegram.js";
import type { Contender } from "./throughput.js";

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: Node[];
}

const [name = "guard", scenarioName = "uncontended"] = process.argv.slice(2);
const scenario = SCENARIOS[scenarioName as ScenarioName];
const contender = scenario.contenders.find((c: Contender) => c.name === name);
if (contender === undefined) throw new Error(`one of ${scenario.contenders.map((c) => c.name)}`);
const bot = offlineBot();
const drain = contender.install(bot) ?? undefined;
bot.on("message", async (ctx) => {
  await ctx.reply("ok");
});
const updates = roundRobin(scenario.updates, scenario.chats);
await deliverInWindows(bot, updates.slice(0, 20_000), scenario.window, drain);
const session = new Session();
session.connect();
await session.post("HeapProfiler.startSampling", {
  samplingInterval: 512,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
await deliverInWindows(bot, updates, scenario.window, drain);
const { profile } = (await session.post("HeapProfiler.stopSampling")) as {
  profile: { head: Node };
};
const bySite = new Map<string, number>();
const walk = (node: Node) => {
  const { functionName, url, lineNumber } = node.callFrame;
  const site = `${functionName || "(anonymous)"} ${url.replace(/.*node_modules\//, "").replace(/.*\/perf\//, "")}:${lineNumber + 1}`;
  bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
  for (const child of node.children) walk(child);
};
walk(profile.head);
let total = 0;
for (const bytes of bySite.values()) total += bytes;
console.log(`${name} (${scenarioName}): ${(total / updates.length).toFixed(0)} B/update sampled`);
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
  console.log(`${(bytes / updates.length).toFixed(0).padStart(6)}  ${site}`);
}
