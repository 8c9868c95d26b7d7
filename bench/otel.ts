// === 6. OpenTelemetry: what `instrumentGuard` costs a guard
//
// The core guard (memory store) runs the same workload four ways, side by side, alternating over
// rounds: never instrumented (`off`); instrumented then disposed (`disposed`: back to zero, and
// the noise floor of two identical guards); instrumented over the OpenTelemetry API alone, no SDK
// registered (`api`: what a process pays that never set one up); and instrumented into a real SDK
// (`sdk`: metrics aggregated by a MeterProvider with a reader, every turn's span recorded by a
// tracer provider and handed to a span processor that exports nowhere). Throughput is inputs per
// second; the ratios `x / off` per round, then their median, are the figures.
//
// Two workloads: uncontended (one input per chat in flight, a turn each: the hot path), and
// contended (ten inputs per chat at once, collect mode: nine queue and join one turn).

import { type MeterProvider as ApiMeterProvider, metrics, trace } from "@opentelemetry/api";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, NoopSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { createGuard } from "session-guard";
import { instrumentGuard } from "session-guard/otel";
import {
  collectBeforeRun,
  fmt,
  median,
  progress,
  rotation,
  round,
  round2,
  table,
} from "./harness.js";

export interface OtelOptions {
  readonly rounds: number;
  /** Inputs per run. */
  readonly inputs: number;
  /** Chats (keys) per window. */
  readonly chats: number;
}

const CONTENDERS = ["off", "disposed", "api", "sdk"] as const;
type Contender = (typeof CONTENDERS)[number];

export interface OtelWorkload {
  /** Median inputs/s per contender. */
  readonly rate: Record<Contender, number>;
  /** Median of per-round ratios `contender / off`. */
  readonly ratio: Record<Contender, number>;
}

export interface OtelResult {
  readonly uncontended: OtelWorkload;
  readonly contended: OtelWorkload;
}

/** A reader that collects only when asked (here: never during a run), as a scraper would. */
class QuietReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

async function run(contender: Contender, options: OtelOptions, perChat: number): Promise<number> {
  const guard = createGuard<number>({ handler: async () => {}, maxPendingTotal: Infinity });
  let shutdown = async () => {};
  if (contender === "disposed") instrumentGuard(guard)();
  else if (contender === "api")
    instrumentGuard(guard); // the global providers: no-ops
  else if (contender === "sdk") {
    const meterProvider = new MeterProvider({ readers: [new QuietReader()] });
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new NoopSpanProcessor()] });
    instrumentGuard(guard, {
      meterProvider: meterProvider as ApiMeterProvider,
      tracerProvider,
    });
    shutdown = async () => {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    };
  }
  const keys = Array.from({ length: options.chats }, (_, i) => `chat:${i}`);
  await collectBeforeRun();
  const started = performance.now();
  let sent = 0;
  while (sent < options.inputs) {
    for (const key of keys) for (let i = 0; i < perChat; i++) guard.submit(key, sent++);
    await guard.onIdle();
  }
  const rate = sent / ((performance.now() - started) / 1000);
  await guard.close();
  await shutdown();
  return rate;
}

async function workload(options: OtelOptions, perChat: number): Promise<OtelWorkload> {
  const rates = Object.fromEntries(CONTENDERS.map((c) => [c, [] as number[]])) as Record<
    Contender,
    number[]
  >;
  const ratios = Object.fromEntries(CONTENDERS.map((c) => [c, [] as number[]])) as Record<
    Contender,
    number[]
  >;
  // A warm-up round, not counted: every contender's code is optimized before it is measured.
  for (const contender of CONTENDERS) await run(contender, { ...options, rounds: 1 }, perChat);
  for (let round = 0; round < options.rounds; round++) {
    const thisRound = {} as Record<Contender, number>;
    for (const contender of rotation(CONTENDERS, round)) {
      thisRound[contender] = await run(contender, options, perChat);
    }
    for (const contender of CONTENDERS) {
      rates[contender].push(thisRound[contender]);
      ratios[contender].push(thisRound[contender] / thisRound.off);
    }
    progress(`6. otel, ${perChat} per chat: round ${round + 1} of ${options.rounds}`);
  }
  const pick = (values: Record<Contender, number[]>) =>
    Object.fromEntries(CONTENDERS.map((c) => [c, median(values[c])])) as Record<Contender, number>;
  return { rate: pick(rates), ratio: pick(ratios) };
}

/** Measurement 6: the overhead of `instrumentGuard`, as ratios to an uninstrumented guard. */
export async function otelOverhead(options: OtelOptions): Promise<OtelResult> {
  // Nothing global is registered: `api` sees the API's no-op providers, as a process without an SDK.
  metrics.disable();
  trace.disable();
  const uncontended = await workload(options, 1);
  const contended = await workload(options, 10);
  return { uncontended, contended };
}

const LABELS: Record<Contender, string> = {
  off: "createGuard(), not instrumented",
  disposed: "instrumented, then disposed",
  api: "instrumentGuard(guard), API only (no SDK)",
  sdk: "instrumentGuard(guard, SDK providers)",
};

/** Measurement 6's table. */
export function otelTable(otel: OtelResult, options: OtelOptions): string {
  const rows = (name: "uncontended" | "contended") =>
    CONTENDERS.map((c) => [
      `  ${LABELS[c]}`,
      fmt(otel[name].rate[c]),
      otel[name].ratio[c].toFixed(2),
      ((1 / otel[name].rate[c] - 1 / otel[name].rate.off) * 1e6).toFixed(2),
    ]);
  return table(
    `6. OpenTelemetry: the core guard (memory store) without and with instrumentGuard (${fmt(options.inputs)} inputs, ${fmt(options.chats)} chats, ${options.rounds} rounds; ratio: median of per-round ratios)`,
    ["contender", "inputs/s", "vs off", "+µs/input"],
    [
      ["uncontended: one input per chat in flight, a turn each"],
      ...rows("uncontended"),
      ["contended: ten inputs per chat at once (collect: nine queue and join one turn)"],
      ...rows("contended"),
      ["  sdk: MeterProvider with a reader, a span recorded per turn (exported nowhere)"],
    ],
  );
}

/** Measurement 6 for the RESULT line. */
export function otelJson(otel: OtelResult, options: OtelOptions) {
  const of = (name: "uncontended" | "contended") => ({
    inputs_per_s: Object.fromEntries(CONTENDERS.map((c) => [c, round(otel[name].rate[c])])),
    vs_off: Object.fromEntries(CONTENDERS.map((c) => [c, round2(otel[name].ratio[c])])),
    added_us_per_input: Object.fromEntries(
      CONTENDERS.map((c) => [c, round2((1 / otel[name].rate[c] - 1 / otel[name].rate.off) * 1e6)]),
    ),
  });
  return { ...options, uncontended: of("uncontended"), contended: of("contended") };
}
