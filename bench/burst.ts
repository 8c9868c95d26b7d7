// === 2. Burst: messages arriving while each chat's first turn runs (collect mode)
//
// Every chat sends one message, whose turn starts and waits (the agent is "thinking"), then
// `followUps` more messages per chat arrive. Only when all of them have been handed to the bot does
// the first turn go on; then the chat drains. The guard (defaults: collect mode, detached) coalesces
// the follow-ups into one next turn; `sequentialize` runs one turn per message. Drain time is from
// the first update handed to the bot until every turn has settled.

import { sequentialize } from "@grammyjs/runner";
import type { Context } from "grammy";
import type { Update } from "grammy/types";
import { sessionGuard, type TurnFlavor } from "session-guard/grammy";
import { collectBeforeRun, gate, median, nextMacrotask, progress, rotation } from "./harness.js";
import { chatConstraint, offlineBot, textUpdate } from "./telegram.js";

export interface BurstOptions {
  readonly chats: number;
  readonly followUps: number;
  readonly rounds: number;
  /** The guard's `maxPendingTotal` (its default, 10,000, is below chats × follow-ups). */
  readonly maxPendingTotal: number;
}

interface BurstRun {
  readonly drainMs: number;
  readonly turns: number;
  readonly inputs: number;
  readonly dropped: number;
}

type Contender = "guard" | "sequentialize";

function burstUpdates(chats: number, followUps: number): Update[] {
  const updates: Update[] = [];
  for (let n = 0; n < chats; n++) updates.push(textUpdate(n, "first"));
  for (let k = 0; k < followUps; k++) {
    for (let n = 0; n < chats; n++) updates.push(textUpdate(n, `more ${k}`));
  }
  return updates;
}

async function runBurst(
  contender: Contender,
  updates: readonly Update[],
  maxPendingTotal: number | undefined,
): Promise<BurstRun> {
  const bot = offlineBot<TurnFlavor<Context>>();
  const thinking = gate();
  let turns = 0;
  let inputs = 0;
  let dropped = 0;
  let idle: () => Promise<void> = async () => {};
  if (contender === "guard") {
    const guard = sessionGuard<TurnFlavor<Context>>({
      ...(maxPendingTotal === undefined ? {} : { maxPendingTotal }),
      onDrop: () => {
        dropped++;
      },
    });
    idle = () => guard.onIdle();
    bot.use(guard);
    bot.on("message", async (ctx) => {
      turns++;
      inputs += ctx.turn.inputs.length;
      await thinking.promise;
      await ctx.reply("ok");
    });
  } else {
    bot.use(sequentialize(chatConstraint));
    bot.on("message", async (ctx) => {
      turns++;
      inputs++;
      await thinking.promise;
      await ctx.reply("ok");
    });
  }
  await collectBeforeRun();
  const start = performance.now();
  const handled: Promise<void>[] = new Array(updates.length);
  for (let i = 0; i < updates.length; i++) handled[i] = bot.handleUpdate(updates[i] as Update);
  // Every update has reached the middleware (the loop above is synchronous, and a macrotask runs
  // only once the microtasks are drained): now the first turns may go on.
  await nextMacrotask();
  thinking.open();
  await Promise.all(handled);
  await idle();
  const drainMs = performance.now() - start;
  return { drainMs, turns, inputs, dropped };
}

export interface BurstResult {
  readonly chats: number;
  readonly messagesPerChat: number;
  readonly guard: {
    turnsPerChat: number;
    inputsPerChat: number;
    coalescedPerTurn: number;
    drainMs: number;
  };
  readonly sequentialize: { turnsPerChat: number; drainMs: number };
  /** Median over rounds of sequentialize's drain time divided by the guard's. */
  readonly drainRatio: number;
  /** Inputs the guard drops with its default `maxPendingTotal` (10,000) in the same burst. */
  readonly droppedWithDefaultCap: number;
}

export async function runBursts(options: BurstOptions): Promise<BurstResult> {
  const { chats, followUps, rounds } = options;
  const updates = burstUpdates(chats, followUps);
  const contenders: Contender[] = ["guard", "sequentialize"];
  const runs: Record<Contender, BurstRun[]> = { guard: [], sequentialize: [] };
  for (const contender of contenders) await runBurst(contender, updates, options.maxPendingTotal);
  for (let round = 0; round < rounds; round++) {
    for (const contender of rotation(contenders, round)) {
      const run = await runBurst(contender, updates, options.maxPendingTotal);
      if (run.dropped > 0 || run.inputs !== updates.length) {
        throw new Error(`${contender}: ${run.inputs} inputs handled, ${run.dropped} dropped.`);
      }
      runs[contender].push(run);
    }
    progress(
      `round ${round + 1}/${rounds}: guard ${runs.guard.at(-1)?.drainMs.toFixed(1)} ms, sequentialize ${runs.sequentialize.at(-1)?.drainMs.toFixed(1)} ms`,
    );
  }
  const withDefaults = await runBurst("guard", updates, undefined);
  const guardRun = runs.guard[0] as BurstRun;
  const seqRun = runs.sequentialize[0] as BurstRun;
  return {
    chats,
    messagesPerChat: followUps + 1,
    guard: {
      turnsPerChat: guardRun.turns / chats,
      inputsPerChat: guardRun.inputs / chats,
      coalescedPerTurn: guardRun.inputs / guardRun.turns,
      drainMs: median(runs.guard.map((run) => run.drainMs)),
    },
    sequentialize: {
      turnsPerChat: seqRun.turns / chats,
      drainMs: median(runs.sequentialize.map((run) => run.drainMs)),
    },
    drainRatio: median(
      runs.sequentialize.map((run, i) => run.drainMs / (runs.guard[i] as BurstRun).drainMs),
    ),
    droppedWithDefaultCap: withDefaults.dropped,
  };
}
