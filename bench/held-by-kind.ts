// === What each update in flight keeps alive, by kind of object
//
// For finding what to cut, not a measurement of the suite. Two heap snapshots of one contender's
// bot: after warm-up, and with a window of updates just dispatched (each has run up to its first
// wait). Their difference, per update and by V8's kind and constructor name, is what every
// young-generation pause copies once per update in flight. After `npm run build`:
//
//   TSX_TSCONFIG_PATH=bench/tsconfig.json node --expose-gc --import tsx bench/held-by-kind.ts \
//     guard [chats]
//
// `chats` (1,000 by default) spreads the window of 1,000 updates: 1,000 is uncontended, 100 the
// contended scenario (10 per chat), 10 a flood (100 per chat). The contender is one of
// measurement 1's (see `bench/index.ts`); `empty_layer` is the baseline to subtract.

import { readFileSync, unlinkSync } from "node:fs";
import v8 from "node:v8";
import type { Update } from "grammy/types";
import { SCENARIOS } from "./measure-throughput.js";
import { offlineBot, roundRobin } from "./telegram.js";
import type { Contender } from "./throughput.js";

const WINDOW = 1_000;
const [name = "guard", chatsText = "1000"] = process.argv.slice(2);
const all = new Map<string, Contender>();
for (const scenario of Object.values(SCENARIOS)) {
  for (const contender of scenario.contenders) all.set(contender.name, contender);
}
const contender = all.get(name);
if (contender === undefined) throw new Error(`one of ${[...all.keys()].join(", ")}`);
const chats = Number(chatsText);

interface Kind {
  count: number;
  bytes: number;
}

/** Live heap (the snapshot collects first) by kind: `type:name` → count and bytes. */
function heapByKind(): Map<string, Kind> {
  const file = v8.writeHeapSnapshot();
  const snapshot = JSON.parse(readFileSync(file, "utf8")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  unlinkSync(file);
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const kinds = new Map<string, Kind>();
  const { nodes, strings } = snapshot;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + (typeAt as number)] as number] as string;
    // A string's "name" is its content: strings are one kind per type.
    const label = type.includes("string")
      ? ""
      : (strings[nodes[i + (nameAt as number)] as number] as string).slice(0, 40);
    const key = `${type}:${label}`;
    const kind = kinds.get(key) ?? { count: 0, bytes: 0 };
    kind.count++;
    kind.bytes += nodes[i + (sizeAt as number)] as number;
    kinds.set(key, kind);
  }
  return kinds;
}

const bot = offlineBot();
const drain = contender.install(bot) ?? undefined;
bot.on("message", async (ctx) => {
  await ctx.reply("ok");
});
// Warm up: code optimized, the contender's maps and rings grown.
for (let w = 0; w < 30; w++) {
  await Promise.all(roundRobin(WINDOW, chats).map((update) => bot.handleUpdate(update)));
  if (drain !== undefined) await drain();
}
const updates = roundRobin(WINDOW, chats);
const before = heapByKind();
const inFlight = updates.map((update) => bot.handleUpdate(update as Update));
const during = heapByKind();
await Promise.all(inFlight);
if (drain !== undefined) await drain();

const rows: { kind: string; count: number; bytes: number }[] = [];
for (const [kind, now] of during) {
  const then = before.get(kind) ?? { count: 0, bytes: 0 };
  const bytes = (now.bytes - then.bytes) / WINDOW;
  if (Math.abs(bytes) >= 4) rows.push({ kind, count: (now.count - then.count) / WINDOW, bytes });
}
rows.sort((a, b) => b.bytes - a.bytes);
console.log(`${name}: heap kept per update in flight (${WINDOW} over ${chats} chats), by kind`);
for (const row of rows.slice(0, 30)) {
  console.log(
    `${row.bytes.toFixed(1).padStart(8)} B  ${row.count.toFixed(2).padStart(6)} ×  ${row.kind}`,
  );
}
console.log(
  `${rows
    .reduce((sum, row) => sum + row.bytes, 0)
    .toFixed(0)
    .padStart(8)} B  in all`,
);
