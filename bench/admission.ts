// === 4. Admission latency: how long the transport waits while the chat's turn runs
//
// Each sample uses its own chat: one update starts a turn that takes `turnMs` (one `ctx.reply`
// answered in process, then a timer standing in for the model), and, while it runs, a second
// update for the same chat is handed to `bot.handleUpdate`. The sample is the time until that
// promise settles: what grammY's runner or a webhook waits before the slot is free. The guard
// (defaults: detached) resolves at admission; `sequentialize` resolves once the running turn and
// the update's own turn are over. Samples start one macrotask apart, so a sample's microtasks run
// without other samples' work in between.

import { sequentialize } from "@grammyjs/runner";
import type { Bot, Context } from "grammy";
import { sessionGuard } from "session-guard/grammy";
import {
  collectBeforeRun,
  median,
  nextMacrotask,
  percentile,
  progress,
  rotation,
  sleep,
} from "./harness.js";
import { chatConstraint, chatId, offlineBot, textUpdate } from "./telegram.js";

export interface AdmissionOptions {
  readonly samples: number;
  readonly rounds: number;
  readonly turnMs: number;
}

interface Percentiles {
  /** Medians over the rounds, in microseconds. */
  readonly p50Us: number;
  readonly p99Us: number;
}

export interface AdmissionResult {
  readonly samples: number;
  readonly turnMs: number;
  readonly guard: Percentiles;
  readonly sequentialize: Percentiles;
}

type Contender = "guard" | "sequentialize";

async function sampleRound(
  contender: Contender,
  options: AdmissionOptions,
  chatOffset: number,
): Promise<number[]> {
  const bot: Bot = offlineBot();
  bot.use(contender === "guard" ? sessionGuard() : sequentialize(chatConstraint));
  /** Chats whose turn is running. */
  const running = new Set<number>();
  bot.on("message", async (ctx: Context) => {
    running.add(ctx.message?.chat.id as number);
    await ctx.reply("ok");
    await sleep(options.turnMs);
    running.delete(ctx.message?.chat.id as number);
  });
  const latencies: number[] = [];
  const settled: Promise<unknown>[] = [];
  let missed = 0;
  await collectBeforeRun();
  for (let s = 0; s < options.samples; s++) {
    const n = chatOffset + s;
    const second = textUpdate(n, "second");
    settled.push(bot.handleUpdate(textUpdate(n, "first")));
    await nextMacrotask();
    // On a loaded machine the first turn may be over before this macrotask runs: not a sample.
    const valid = running.has(chatId(n));
    if (!valid) missed++;
    const start = performance.now();
    settled.push(
      bot.handleUpdate(second).then(() => {
        if (valid) latencies.push((performance.now() - start) * 1000);
      }),
    );
    await nextMacrotask();
  }
  await Promise.all(settled);
  if (missed > options.samples / 10) {
    throw new Error(
      `${contender}: the first turn was over before ${missed} samples; machine too busy?`,
    );
  }
  return latencies;
}

export async function admissionLatency(options: AdmissionOptions): Promise<AdmissionResult> {
  const contenders: Contender[] = ["guard", "sequentialize"];
  const rounds: Record<Contender, { p50: number[]; p99: number[] }> = {
    guard: { p50: [], p99: [] },
    sequentialize: { p50: [], p99: [] },
  };
  let chatOffset = 0;
  for (const contender of contenders) await sampleRound(contender, options, (chatOffset += 1e5));
  for (let round = 0; round < options.rounds; round++) {
    for (const contender of rotation(contenders, round)) {
      const latencies = await sampleRound(contender, options, (chatOffset += 1e5));
      rounds[contender].p50.push(percentile(latencies, 50));
      rounds[contender].p99.push(percentile(latencies, 99));
    }
    progress(
      `round ${round + 1}/${options.rounds}: guard p50 ${rounds.guard.p50.at(-1)?.toFixed(1)} µs, sequentialize p50 ${rounds.sequentialize.p50.at(-1)?.toFixed(0)} µs`,
    );
  }
  const summary = (c: Contender): Percentiles => ({
    p50Us: median(rounds[c].p50),
    p99Us: median(rounds[c].p99),
  });
  return {
    samples: options.samples,
    turnMs: options.turnMs,
    guard: summary("guard"),
    sequentialize: summary("sequentialize"),
  };
}
