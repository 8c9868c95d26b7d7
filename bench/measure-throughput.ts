// === Measurement 1: throughput through a grammY Bot, its table and its RESULT figures
//
// Three scenarios, each side by side over the same rounds:
//   uncontended  100k updates over 1,000 chats, one window of 1,000 in flight (one per chat)
//   contended    50k updates over 100 chats, 1,000 in flight (10 per chat): one turn per update
//   flood        100k updates over 1,000 chats all in flight at once (100 per chat)
// Every contender is set against the bare bot, the empty layer (the limit of any middleware), the
// hand-written serializer (the floor of a serializer's bookkeeping) and `sequentialize`.

import {
  BARE,
  EMPTY_LAYER,
  FLOOD_DETACHED,
  FLOOD_QUEUE,
  GUARD,
  GUARD_DETACHED,
  GUARD_NO_DEDUPE,
  GUARD_QUEUE,
  HAND_WRITTEN,
  SEQUENTIALIZE,
} from "./contenders.js";
import { fmt, progress, round, round2, table } from "./harness.js";
import {
  allocationPerUpdate,
  type Contender,
  liveBytesInFlight,
  runScenario,
  type Scenario,
  type ScenarioResult,
} from "./throughput.js";

export const UNCONTENDED = [
  BARE,
  EMPTY_LAYER,
  HAND_WRITTEN,
  SEQUENTIALIZE,
  GUARD,
  GUARD_NO_DEDUPE,
  GUARD_DETACHED,
];
export const CONTENDED = [BARE, EMPTY_LAYER, HAND_WRITTEN, SEQUENTIALIZE, GUARD_QUEUE];
export const FLOOD = [BARE, EMPTY_LAYER, HAND_WRITTEN, SEQUENTIALIZE, FLOOD_QUEUE, FLOOD_DETACHED];

export const SCENARIOS = {
  uncontended: { updates: 100_000, chats: 1_000, window: 1_000, contenders: UNCONTENDED },
  contended: { updates: 50_000, chats: 100, window: 1_000, contenders: CONTENDED },
  flood: { updates: 100_000, chats: 1_000, window: 100_000, contenders: FLOOD },
} as const;

export type ScenarioName = keyof typeof SCENARIOS;

/** What measurement 1 prints, and its part of the RESULT line. */
export interface ThroughputReport {
  readonly text: string;
  readonly json: Record<string, unknown>;
}

const REFERENCES = [BARE, EMPTY_LAYER, HAND_WRITTEN, SEQUENTIALIZE];

export async function measureThroughput(rounds: number): Promise<ThroughputReport> {
  const results = {} as Record<ScenarioName, ScenarioResult>;
  for (const [name, config] of Object.entries(SCENARIOS) as [
    ScenarioName,
    Omit<Scenario, "rounds">,
  ][]) {
    progress(
      `1. throughput, ${name}: ${fmt(config.updates)} updates over ${fmt(config.chats)} chats, ${fmt(config.window)} in flight`,
    );
    results[name] = await runScenario({ ...config, rounds });
  }
  progress("1. bytes allocated per update");
  const allocated: Record<string, number> = {};
  const live: Record<string, number> = {};
  for (const contender of UNCONTENDED) {
    allocated[contender.name] = await allocationPerUpdate(contender);
    live[contender.name] = await liveBytesInFlight(contender);
  }

  const vs = (scenario: ScenarioResult, c: Contender, base: Contender): string => {
    if (c === base) return "1.00";
    const [low, high] = scenario.ratioRange(c.name, base.name);
    return `${scenario.ratio(c.name, base.name).toFixed(2)} (${low.toFixed(2)}–${high.toFixed(2)})`;
  };
  const rows = (
    name: ScenarioName,
    bytes?: Record<string, number>,
    inFlight?: Record<string, number>,
  ): string[][] => {
    const scenario = results[name];
    return SCENARIOS[name].contenders.map((c: Contender) => {
      const turns = scenario.turnsPerUpdate[c.name] as number;
      return [
        `  ${c.label}${turns < 0.999 ? ` (${((turns * SCENARIOS[name].updates) / SCENARIOS[name].chats).toFixed(1)} turns/chat)` : ""}`,
        fmt(scenario.median[c.name] as number),
        ...REFERENCES.map((base) => vs(scenario, c, base)),
        `${((scenario.gcShare[c.name] as number) * 100).toFixed(0)}%`,
        (scenario.cpuUs[c.name] as number).toFixed(1),
        c === EMPTY_LAYER
          ? "1.00"
          : (
              (scenario.cpuUs[EMPTY_LAYER.name] as number) / (scenario.cpuUs[c.name] as number)
            ).toFixed(2),
        bytes?.[c.name] === undefined ? "" : fmt(bytes[c.name] as number),
        inFlight?.[c.name] === undefined ? "" : fmt(inFlight[c.name] as number),
      ];
    });
  };
  const text = table(
    `1. Throughput through a grammY Bot (handler: await ctx.reply, answered locally; ${rounds} rounds, ratio: median (min–max) of per-round ratios)`,
    [
      "contender",
      "updates/s",
      "vs bare",
      "vs empty layer",
      "vs hand-written",
      "vs sequentialize",
      "in GC",
      "CPU µs/update",
      "CPU vs empty layer",
      "alloc B/update",
      "live B/in flight",
    ],
    [
      ["uncontended: 100,000 updates, 1,000 chats, 1,000 in flight (one per chat)"],
      ...rows("uncontended", allocated, live),
      ["contended: 50,000 updates, 100 chats, 10 per chat in flight (one turn per update)"],
      ...rows("contended"),
      ["flood: 100,000 updates, 1,000 chats, all in flight at once (100 per chat)"],
      ...rows("flood"),
      ["  in GC: share of the run's wall time in garbage-collection pauses (PerformanceObserver)"],
      [
        "  CPU µs/update: the process's CPU time (user + system, GC threads included) per update; it moves far less than updates/s when other processes load the machine",
      ],
      [
        "  CPU vs empty layer: the empty layer's CPU µs/update over the contender's (medians): the steadier companion of \"vs empty layer\"",
      ],
      ["  alloc B/update: heap growth per update over windows without a collection (load-free)"],
      [
        "  live B/in flight: heap live per update just dispatched, 1,000 at once (load-free); every young-generation pause copies this times the updates in flight",
      ],
    ],
  );

  const figures = (name: ScenarioName) => {
    const scenario = results[name];
    const out: Record<string, unknown> = {
      ...SCENARIOS[name],
      contenders: undefined,
      rounds,
      updates_per_s: Object.fromEntries(
        SCENARIOS[name].contenders.map((c: Contender) => [
          c.name,
          round(scenario.median[c.name] as number),
        ]),
      ),
    };
    for (const c of SCENARIOS[name].contenders as readonly Contender[]) {
      if (REFERENCES.includes(c)) continue;
      for (const base of REFERENCES) {
        out[`${c.name}_vs_${base.name}`] = round2(scenario.ratio(c.name, base.name));
        out[`${c.name}_vs_${base.name}_range`] = scenario.ratioRange(c.name, base.name).map(round2);
      }
    }
    out.cpu_us_per_update = Object.fromEntries(
      Object.entries(scenario.cpuUs).map(([n, us]) => [n, round2(us)]),
    );
    const emptyCpu = scenario.cpuUs[EMPTY_LAYER.name] as number;
    out.cpu_vs_empty_layer = Object.fromEntries(
      Object.entries(scenario.cpuUs).map(([n, us]) => [n, round2(emptyCpu / us)]),
    );
    out.gc_share = Object.fromEntries(
      Object.entries(scenario.gcShare).map(([n, share]) => [n, round2(share)]),
    );
    return out;
  };
  const json = {
    ...figures("uncontended"),
    allocated_bytes_per_update: Object.fromEntries(
      Object.entries(allocated).map(([name, bytes]) => [name, round(bytes)]),
    ),
    live_bytes_per_update_in_flight: Object.fromEntries(
      Object.entries(live).map(([name, bytes]) => [name, round(bytes)]),
    ),
    contended: figures("contended"),
    flood: figures("flood"),
  };
  return { text, json };
}
