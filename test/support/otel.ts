// OpenTelemetry SDKs for tests: a meter provider whose readings are exported on demand to an
// in-memory exporter, and a tracer provider that keeps finished spans in memory. Real SDK objects:
// what the instrumentation reports is what an application's SDK would receive.

import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";

type Attributes = Record<string, unknown>;

export interface Telemetry {
  readonly meterProvider: MeterProvider;
  readonly tracerProvider: BasicTracerProvider;
  /** Collect now; answers the data points of `name` (empty when nothing was recorded). */
  points(name: string): Promise<DataPoint<unknown>[]>;
  /** The sum or gauge value of `name` whose attributes include `attributes` (0 when none). */
  value(name: string, attributes?: Attributes): Promise<number>;
  /** The histogram of `name` whose attributes include `attributes`. */
  histogram(name: string, attributes?: Attributes): Promise<Histogram | undefined>;
  /** The unit `name` was created with. */
  unit(name: string): Promise<string | undefined>;
  /** Finished spans, oldest first. */
  spans(): ReadableSpan[];
  shutdown(): Promise<void>;
}

function matches(point: DataPoint<unknown>, attributes: Attributes): boolean {
  return Object.entries(attributes).every(([name, value]) => point.attributes[name] === value);
}

export function telemetry(): Telemetry {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // The interval never elapses in a test: every reading is a forceFlush.
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(spanExporter)],
  });
  const metric = async (name: string) => {
    exporter.reset();
    await reader.forceFlush();
    for (const resource of exporter.getMetrics()) {
      for (const scope of resource.scopeMetrics) {
        for (const found of scope.metrics) if (found.descriptor.name === name) return found;
      }
    }
    return undefined;
  };
  const points = async (name: string) =>
    ((await metric(name))?.dataPoints ?? []) as DataPoint<unknown>[];
  return {
    meterProvider,
    tracerProvider,
    points,
    async value(name, attributes = {}) {
      let total = 0;
      for (const point of await points(name)) {
        if (matches(point, attributes)) total += point.value as number;
      }
      return total;
    },
    async histogram(name, attributes = {}) {
      const found = (await points(name)).filter((point) => matches(point, attributes));
      if (found.length > 1) throw new Error(`${found.length} histograms of ${name} match`);
      return found[0]?.value as Histogram | undefined;
    },
    async unit(name) {
      return (await metric(name))?.descriptor.unit;
    },
    spans: () => spanExporter.getFinishedSpans(),
    async shutdown() {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}
