// === The guard's metrics: instruments, and what each measurement records
//
// One `GuardMetrics` per instrumented guard. Attribute sets are built once per value and reused,
// so a measurement allocates nothing beyond what the SDK does. The two observable instruments
// (pending inputs, active turns) are read in one batch callback at each collection.

import type {
  Attributes,
  BatchObservableCallback,
  Counter,
  Histogram,
  Meter,
  Observable,
  ObservableUpDownCounter,
} from "@opentelemetry/api";
import { ATTRIBUTES, METRICS } from "./names.js";

// Bucket boundaries in seconds. An agent turn lasts seconds to minutes; a wait, from nothing (a
// free key) to a whole turn or more; a store call, microseconds (memory) to a round trip (Redis).
const TURN_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const STORE_BUCKETS = [
  0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1, 2.5,
];

/** What the observable instruments read at each collection. */
export interface Observed {
  /** Inputs waiting behind turns, as this process knows. */
  pending(): number;
  /** Keys the guard holds. */
  active(): number;
}

/** The conventional `error.type`: the error's class name, else its `name`, else `_OTHER`. */
export function errorType(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    const named = (error as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof named === "string" && named !== "" && named !== "Object") return named;
    const name = (error as { name?: unknown }).name;
    if (typeof name === "string" && name !== "") return name;
  }
  return "_OTHER";
}

export class GuardMetrics {
  readonly #base: Attributes;
  /** Attribute sets by attribute, then value (then `error.type`), built once each. */
  readonly #sets = new Map<string, Map<string, Attributes>>();
  readonly #errorSets = new Map<string, Map<string, Attributes>>();
  readonly #admitted: Counter;
  readonly #dropped: Counter;
  readonly #wait: Histogram;
  readonly #started: Counter;
  readonly #finished: Counter;
  readonly #duration: Histogram;
  readonly #store: Histogram;
  readonly #storeErrors: Counter;
  readonly #leasesLost: Counter;
  readonly #takeovers: Counter;
  readonly #meter: Meter;
  readonly #observables: Observable[];
  readonly #callback: BatchObservableCallback;

  constructor(meter: Meter, base: Attributes, observed: Observed) {
    this.#meter = meter;
    this.#base = base;
    const count = (name: string, unit: string, description: string) =>
      meter.createCounter(name, { unit, description });
    const histogram = (name: string, description: string, buckets: number[]) =>
      meter.createHistogram(name, {
        unit: "s",
        description,
        advice: { explicitBucketBoundaries: buckets },
      });
    this.#admitted = count(METRICS.inputsAdmitted, "{input}", "Inputs admitted by the guard.");
    this.#dropped = count(
      METRICS.inputsDropped,
      "{input}",
      "Inputs that ended without being handled, by reason.",
    );
    this.#wait = histogram(
      METRICS.inputWaitTime,
      "Time from an input's admission to the start of the turn that handles it.",
      WAIT_BUCKETS,
    );
    this.#started = count(METRICS.turnsStarted, "{turn}", "Turns whose handler started.");
    this.#finished = count(
      METRICS.turnsFinished,
      "{turn}",
      "Turns whose handler settled, by outcome (handled or failed).",
    );
    this.#duration = histogram(
      METRICS.turnDuration,
      "Time a turn's handler ran, from its start until it settled.",
      TURN_BUCKETS,
    );
    this.#store = histogram(
      METRICS.storeDuration,
      "Duration of the guard's calls to its store, by operation.",
      STORE_BUCKETS,
    );
    this.#storeErrors = count(
      METRICS.storeErrors,
      "{error}",
      "Calls to the store that failed, by operation.",
    );
    this.#leasesLost = count(
      METRICS.leasesLost,
      "{lease}",
      "Turns that lost their lease on a shared store: another replica may run their inputs.",
    );
    this.#takeovers = count(
      METRICS.takeovers,
      "{key}",
      "Keys the store took over on its own, from a holder that died or handed them over.",
    );
    const pending: ObservableUpDownCounter = meter.createObservableUpDownCounter(
      METRICS.inputsPending,
      { unit: "{input}", description: "Inputs waiting behind a turn, as this process knows." },
    );
    const active: ObservableUpDownCounter = meter.createObservableUpDownCounter(
      METRICS.turnsActive,
      { unit: "{turn}", description: "Keys the guard holds: turns claimed or running." },
    );
    this.#observables = [pending, active];
    this.#callback = (result) => {
      result.observe(pending, observed.pending(), base);
      result.observe(active, observed.active(), base);
    };
    meter.addBatchObservableCallback(this.#callback, this.#observables);
  }

  admitted(outcome: "started" | "queued"): void {
    this.#admitted.add(1, this.#set(ATTRIBUTES.admission, outcome));
  }

  dropped(reason: string): void {
    this.#dropped.add(1, this.#set(ATTRIBUTES.dropReason, reason));
  }

  turnStarted(): void {
    this.#started.add(1, this.#base);
  }

  /** An input waited `seconds` from its admission to its turn's start. */
  waited(seconds: number): void {
    this.#wait.record(seconds, this.#base);
  }

  /** A turn's handler settled after `seconds`: `handled`, `failed` or `aborted`, with `error.type`. */
  turnFinished(seconds: number, outcome: string, error: string | undefined): void {
    const attributes = this.#failed(ATTRIBUTES.outcome, outcome, error);
    this.#finished.add(1, attributes);
    this.#duration.record(seconds, attributes);
  }

  storeCall(operation: string, seconds: number, error: string | undefined): void {
    if (error === undefined) {
      this.#store.record(seconds, this.#set(ATTRIBUTES.storeOperation, operation));
      return;
    }
    const attributes = this.#failed(ATTRIBUTES.storeOperation, operation, error);
    this.#store.record(seconds, attributes);
    this.#storeErrors.add(1, attributes);
  }

  leaseLost(): void {
    this.#leasesLost.add(1, this.#base);
  }

  takenOver(): void {
    this.#takeovers.add(1, this.#base);
  }

  /** Stop the observable callback (counters and histograms simply see no more measurements). */
  dispose(): void {
    this.#meter.removeBatchObservableCallback(this.#callback, this.#observables);
  }

  /** The base attributes and `name=value`, built once. */
  #set(name: string, value: string): Attributes {
    // Nested maps, not a joined string: a string built per measurement costs more than the rest.
    let byValue = this.#sets.get(name);
    if (byValue === undefined) this.#sets.set(name, (byValue = new Map()));
    let attributes = byValue.get(value);
    if (attributes === undefined) {
      attributes = { ...this.#base, [name]: value };
      byValue.set(value, attributes);
    }
    return attributes;
  }

  /** `name=value` with an `error.type` (when known), built once per pair. */
  #failed(name: string, value: string, error: string | undefined): Attributes {
    if (error === undefined) return this.#set(name, value);
    // Failures are rare: a joined string is fine here.
    const id = `${name}=${value}`;
    let byError = this.#errorSets.get(id);
    if (byError === undefined) this.#errorSets.set(id, (byError = new Map()));
    let attributes = byError.get(error);
    if (attributes === undefined) {
      attributes = { ...this.#base, [name]: value, [ATTRIBUTES.errorType]: error };
      byError.set(error, attributes);
    }
    return attributes;
  }
}
