// === 1. Throughput through a real grammY Bot
//
// Every contender gets a fresh bot with the same handler (a trivial async step: one `ctx.reply`
// answered in process) and the same updates, delivered in windows like grammY's runner. `bare` has
// no guard; `sequentialize` is @grammyjs/runner's, keyed by chat; the guard runs with
// `awaitTurn: true`, so its middleware resolves when the turn has settled and both serialize the
// same work.

import { PerformanceObserver } from "node:perf_hooks";
import { sequentialize } from "@grammyjs/runner";
import type { Bot, Context } from "grammy";
import type { Update } from "grammy/types";
import { type SessionGuardOptions, sessionGuard } from "session-guard/grammy";
import { collectBeforeRun, median, progress, rotation } from "./harness.js";
import { chatConstraint, deliverInWindows, offlineBot, roundRobin } from "./telegram.js";

export interface Contender {
  readonly name: string;
  readonly label: string;
  /**
   * Install the contender's middleware before the handler. A contender whose middleware returns
   * before the update's work is done (a detached turn) answers how to wait for that work: the
   * next window of updates is delivered only once it resolves.
   */
  install(bot: Bot): void | (() => Promise<void>);
  /** Coalesces updates into fewer turns (collect mode): the handler counts the turn's inputs. */
  readonly coalesces?: boolean;
}

export const BARE: Contender = {
  name: "bare",
  label: "bare bot (no serialization)",
  install() {},
};

export const SEQUENTIALIZE: Contender = {
  name: "sequentialize",
  label: "sequentialize (runner), by chat",
  install(bot) {
    bot.use(sequentialize(chatConstraint));
  },
};

export function guardContender(
  name: string,
  label: string,
  options: SessionGuardOptions<Context>,
): Contender {
  return {
    name,
    label,
    coalesces: options.mode === undefined || options.mode === "collect",
    install(bot) {
      const guard = sessionGuard(options);
      bot.use(guard);
      // Detached turns (the default) outlive `handleUpdate`: a window ends when they have settled.
      return options.awaitTurn === true ? undefined : () => guard.onIdle();
    },
  };
}

export interface Scenario {
  readonly updates: number;
  readonly chats: number;
  /** Updates in flight at once. */
  readonly window: number;
  readonly rounds: number;
  readonly contenders: readonly Contender[];
}

export interface ScenarioResult {
  /** Updates/s of every round, per contender. */
  readonly rates: Record<string, number[]>;
  /** Median updates/s per contender. */
  readonly median: Record<string, number>;
  /** Median share of the run's wall time spent in garbage collection, per contender. */
  readonly gcShare: Record<string, number>;
  /** Median handler calls per update, per contender (below 1 where updates were coalesced). */
  readonly turnsPerUpdate: Record<string, number>;
  /** Median process CPU µs per update, per contender (see `Run.cpuUs`). */
  readonly cpuUs: Record<string, number>;
  /** Median over the rounds of `a`'s rate divided by `b`'s rate in the same round. */
  ratio(a: string, b: string): number;
  /** The lowest and highest of those per-round ratios: how much the machine's load moved them. */
  ratioRange(a: string, b: string): [number, number];
}

export interface Run {
  /** Updates per second. */
  readonly rate: number;
  /** Handler calls per update: below 1 where updates were coalesced into fewer turns. */
  readonly turnsPerUpdate: number;
  /**
   * Process CPU time per update (µs, user + system, GC threads included): unlike the rate, it
   * hardly moves when other processes compete for the machine's cores.
   */
  readonly cpuUs: number;
  /** Share of the run's wall time spent in garbage collection pauses. */
  readonly gcShare: number;
}

/** Garbage collections seen by the process: start time and duration (ms, performance timeline). */
const collections: { start: number; duration: number }[] = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    collections.push({ start: entry.startTime, duration: entry.duration });
  }
});

/** Run one contender once over `updates`. */
export async function runOnce(
  contender: Contender,
  updates: readonly Update[],
  window: number,
): Promise<Run> {
  const bot = offlineBot();
  const drain = contender.install(bot) ?? undefined;
  let handled = 0;
  let turns = 0;
  if (contender.coalesces === true) {
    bot.on("message", async (ctx) => {
      turns++;
      handled += (ctx as unknown as { turn: { inputs: readonly unknown[] } }).turn.inputs.length;
      await ctx.reply("ok");
    });
  } else {
    bot.on("message", async (ctx) => {
      handled++;
      turns++;
      await ctx.reply("ok");
    });
  }
  await collectBeforeRun();
  gcObserver.observe({ entryTypes: ["gc"] });
  const cpu = process.cpuUsage();
  const start = performance.now();
  await deliverInWindows(bot, updates, window, drain);
  const end = performance.now();
  const cpuUsed = process.cpuUsage(cpu);
  // GC entries arrive asynchronously.
  await new Promise((resolve) => setTimeout(resolve, 1));
  gcObserver.disconnect();
  let paused = 0;
  for (const gc of collections) if (gc.start >= start && gc.start <= end) paused += gc.duration;
  collections.length = 0;
  if (handled !== updates.length) {
    throw new Error(`${contender.name}: ${handled} of ${updates.length} updates were handled.`);
  }
  return {
    rate: updates.length / ((end - start) / 1000),
    turnsPerUpdate: turns / updates.length,
    cpuUs: (cpuUsed.user + cpuUsed.system) / updates.length,
    gcShare: paused / (end - start),
  };
}

export async function runScenario(scenario: Scenario): Promise<ScenarioResult> {
  const updates = roundRobin(scenario.updates, scenario.chats);
  const runs: Record<string, Run[]> = {};
  for (const contender of scenario.contenders) runs[contender.name] = [];
  // A warm-up run per contender, not counted, so every contender's code is optimized when timed.
  const warmUp = updates.slice(0, Math.ceil(updates.length / 5));
  for (const contender of scenario.contenders) await runOnce(contender, warmUp, scenario.window);
  for (let round = 0; round < scenario.rounds; round++) {
    for (const contender of rotation(scenario.contenders, round)) {
      runs[contender.name]?.push(await runOnce(contender, updates, scenario.window));
    }
    progress(
      `round ${round + 1}/${scenario.rounds}: ${scenario.contenders
        .map((c) => `${c.name} ${Math.round(runs[c.name]?.at(-1)?.rate ?? 0)}`)
        .join(", ")}`,
    );
  }
  const rates: Record<string, number[]> = {};
  const medians: Record<string, number> = {};
  const gcShare: Record<string, number> = {};
  const turnsPerUpdate: Record<string, number> = {};
  const cpuUs: Record<string, number> = {};
  for (const [name, list] of Object.entries(runs)) {
    rates[name] = list.map((run) => run.rate);
    medians[name] = median(rates[name]);
    gcShare[name] = median(list.map((run) => run.gcShare));
    turnsPerUpdate[name] = median(list.map((run) => run.turnsPerUpdate));
    cpuUs[name] = median(list.map((run) => run.cpuUs));
  }
  const ratios = (a: string, b: string) => {
    const y = rates[b] ?? [];
    return (rates[a] ?? []).map((value, i) => value / (y[i] as number));
  };
  return {
    rates,
    median: medians,
    gcShare,
    turnsPerUpdate,
    cpuUs,
    ratio: (a, b) => median(ratios(a, b)),
    ratioRange(a, b) {
      const values = ratios(a, b);
      return [Math.min(...values), Math.max(...values)];
    },
  };
}

/**
 * One line per contender: its median updates/s, CPU µs per update and the median of its per-round
 * ratios to `base` (named `baseName` in the line), names padded to `width`.
 */
export function rateLines(
  result: ScenarioResult,
  contenders: readonly Contender[],
  base: Contender,
  baseName: string,
  width: number,
): string[] {
  return contenders.map((c) => {
    const rate = Math.round(result.median[c.name] as number)
      .toString()
      .padStart(8);
    const cpu = (result.cpuUs[c.name] as number).toFixed(1).padStart(5);
    const ratio = result.ratio(c.name, base.name).toFixed(2);
    return `${c.name.padEnd(width)} ${rate} updates/s  CPU ${cpu} µs/update  vs ${baseName} ${ratio}`;
  });
}

/**
 * Bytes allocated per update: the heap's growth over a window of updates during which no garbage
 * collection ran (windows that saw one are discarded), median over windows. Unlike updates/s, this
 * does not drift with machine load, and in this workload collection takes about half the time.
 */
export async function allocationPerUpdate(contender: Contender, window = 200): Promise<number> {
  const bot = offlineBot();
  const drain = contender.install(bot) ?? undefined;
  bot.on("message", async (ctx) => {
    await ctx.reply("ok");
  });
  const collections: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) collections.push(entry.startTime);
  });
  observer.observe({ entryTypes: ["gc"] });
  const samples: { start: number; end: number; bytes: number }[] = [];
  const inFlight: Promise<void>[] = new Array(window);
  for (let w = 0; w < 40; w++) {
    const updates = roundRobin(window, window);
    if (w % 10 === 0) await collectBeforeRun();
    const start = performance.now();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < window; i++) inFlight[i] = bot.handleUpdate(updates[i] as Update);
    await Promise.all(inFlight);
    if (drain !== undefined) await drain();
    const bytes = process.memoryUsage().heapUsed - before;
    // The first windows warm the bot up (code, hidden classes, the guard's maps).
    if (w >= 5) samples.push({ start, end: performance.now(), bytes });
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  observer.disconnect();
  const clean = samples.filter((s) => !collections.some((t) => t >= s.start && t <= s.end));
  if (clean.length < 5) return Number.NaN;
  return median(clean.map((s) => s.bytes / window));
}

/**
 * Bytes live per update in flight: the heap (after a full collection) with a window of `window`
 * updates just dispatched — each has run up to its first wait — less the heap before, per update;
 * median over windows. A young-generation collection copies whatever is live when it runs, so
 * this, times the updates in flight, is what each such pause copies. Load-free, like the
 * allocation figure.
 */
export async function liveBytesInFlight(contender: Contender, window = 1_000): Promise<number> {
  const bot = offlineBot();
  const drain = contender.install(bot) ?? undefined;
  bot.on("message", async (ctx) => {
    await ctx.reply("ok");
  });
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return Number.NaN;
  const samples: number[] = [];
  const inFlight: Promise<void>[] = new Array(window);
  for (let w = 0; w < 12; w++) {
    // Fresh updates each window, built before the baseline is taken.
    const updates = roundRobin(window, window);
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < window; i++) inFlight[i] = bot.handleUpdate(updates[i] as Update);
    gc();
    const live = process.memoryUsage().heapUsed - before;
    await Promise.all(inFlight);
    if (drain !== undefined) await drain();
    // The first windows warm the bot up (code, hidden classes, the guard's maps).
    if (w >= 4) samples.push(live / window);
  }
  return median(samples);
}
