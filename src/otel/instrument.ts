// === instrumentGuard: a guard's events and its observer seam, as OpenTelemetry metrics and spans
//
// Most of what is measured comes from the guard's public events (admitted, queued, started,
// finished, dropped, error, stuck). What they do not carry — store call timings, when and where
// each input was admitted, takeovers — comes from the guard's observer seam, reached through a
// registered symbol so that this entry point imports nothing of the core at run time (the core is
// `session-guard`, external to this build, and knows nothing of OpenTelemetry).

import { metrics, type Span, trace } from "@opentelemetry/api";
import { type Guard, LeaseLostError, type Turn } from "session-guard";
import type { Admitted, GuardObserver } from "../core/observe.js";
import { errorType, GuardMetrics } from "./metrics.js";
import { ATTRIBUTES, SCOPE } from "./names.js";
import { type InstrumentOptions, resolveInstrumentOptions } from "./options.js";
import { admittingSpan, TurnSpans } from "./tracing.js";

/** The seam's method on a guard (see `src/core/observe.ts`). */
const OBSERVE = Symbol.for("session-guard.observe");

type Observable = Guard<unknown> & { [OBSERVE]?: (observer: GuardObserver) => () => void };

/** A turn whose handler runs: when it started, its span, and what went wrong, if anything. */
interface OpenTurn {
  readonly turn: Turn<unknown>;
  readonly started: number;
  span: Span | undefined;
  error: string | undefined;
  /** Another open turn of the same key (one that lost its lease still runs). */
  older: OpenTurn | undefined;
}

/** Open turns by key: usually one per key, so no string is built per turn to tell them apart. */
class OpenTurns {
  readonly #byKey = new Map<string, OpenTurn>();

  add(turn: Turn<unknown>, started: number, span: Span): void {
    const older = this.#byKey.get(turn.key);
    this.#byKey.set(turn.key, { turn, started, span, error: undefined, older });
  }

  get(key: string, fence: number): OpenTurn | undefined {
    let open = this.#byKey.get(key);
    while (open !== undefined && open.turn.fence !== fence) open = open.older;
    return open;
  }

  delete(key: string, fence: number): void {
    let open = this.#byKey.get(key);
    if (open === undefined) return;
    if (open.turn.fence === fence) {
      if (open.older === undefined) this.#byKey.delete(key);
      else this.#byKey.set(key, open.older);
      return;
    }
    while (open.older !== undefined && open.older.turn.fence !== fence) open = open.older;
    if (open.older !== undefined) open.older = open.older.older;
  }

  *values(): Generator<OpenTurn> {
    for (let open of this.#byKey.values()) {
      for (; open !== undefined; open = open.older as OpenTurn) yield open;
    }
  }

  clear(): void {
    this.#byKey.clear();
  }
}

/**
 * Report a guard's activity to OpenTelemetry: metrics (turns started and finished, turn duration,
 * each input's wait from admission to its turn, pending inputs, drops by reason, store call
 * duration and errors, lease losses and takeovers) and a span per turn, linked to the span that
 * admitted each of its inputs. Answers the function that stops it (idempotent).
 *
 * Uses the global meter and tracer providers unless given others; with no OpenTelemetry SDK set up
 * it records nothing. A guard is instrumented once at a time (a second call throws a `TypeError`
 * until the first is disposed). Without it the guard pays nothing; with it, each store call is
 * timed and each admission stamped. Turn spans link to the admitting span only with a context
 * manager (the Node SDK registers one), which is what makes a span "active".
 *
 * @example
 * ```ts
 * import { createGuard } from "session-guard";
 * import { instrumentGuard } from "session-guard/otel";
 *
 * const guard = createGuard<string>({ handler: async (turn) => agent(turn.inputs) });
 * const stop = instrumentGuard(guard, { name: "telegram" }); // global providers, keys hashed
 * // … on shutdown:
 * await guard.close();
 * stop();
 * ```
 */
export function instrumentGuard<I>(
  guard: Guard<I> | { readonly guard: Guard<unknown> },
  options?: InstrumentOptions,
): () => void {
  const core = coreOf(guard);
  const resolved = resolveInstrumentOptions(options);
  const base = resolved.name === undefined ? {} : { [ATTRIBUTES.name]: resolved.name };
  const meterProvider = resolved.meterProvider ?? metrics.getMeterProvider();
  const tracerProvider = resolved.tracerProvider ?? trace.getTracerProvider();
  const spans = new TurnSpans(tracerProvider.getTracer(SCOPE), base, resolved.keyOf);

  // Keys that had input pending here; the gauge sums their counts and forgets idle ones.
  const pendingKeys = new Set<string>();
  const measure = new GuardMetrics(meterProvider.getMeter(SCOPE), base, {
    pending() {
      let total = 0;
      for (const key of pendingKeys) {
        const pending = core.pendingCount(key);
        if (pending === 0 && !core.isBusy(key)) pendingKeys.delete(key);
        total += pending;
      }
      return total;
    },
    active: () => core.activeCount,
  });

  const open = new OpenTurns();

  const detach = observable(core, {
    storeCall(operation, ms, failed, error) {
      measure.storeCall(operation, ms / 1000, failed ? errorType(error) : undefined);
    },
    admitting: admittingSpan,
    started(turn, admitted: readonly Admitted[]) {
      const now = performance.now();
      for (const { at } of admitted) measure.waited((now - at) / 1000);
      measure.turnStarted();
      open.add(turn, now, spans.start(turn, admitted));
    },
    takenOver() {
      measure.takenOver();
    },
  });

  const unsubscribe = [
    core.on("admitted", ({ outcome }) => measure.admitted(outcome)),
    core.on("queued", ({ key }) => pendingKeys.add(key)),
    core.on("dropped", ({ reason }) => measure.dropped(reason)),
    core.on("error", ({ error, key, fence }) => {
      if (error instanceof LeaseLostError) measure.leaseLost();
      if (fence === undefined) return;
      const turn = open.get(key, fence);
      if (turn === undefined) return;
      turn.error ??= errorType(error);
      turn.span?.recordException(error instanceof Error ? error : String(error));
    }),
    core.on("stuck", ({ key, fence, abandoned }) => {
      const turn = open.get(key, fence);
      if (turn?.span === undefined) return;
      turn.span.addEvent("session_guard.turn.timeout", { "session_guard.abandoned": abandoned });
      if (!abandoned) return;
      // Let go: the key moved on without it, and its handler may never settle.
      spans.end(turn.span, turn.turn, "abandoned", turn.error);
      turn.span = undefined;
    }),
    core.on("finished", ({ key, fence, failed }) => {
      const turn = open.get(key, fence);
      if (turn === undefined) return;
      open.delete(key, fence);
      let outcome = failed ? "failed" : "handled";
      if (failed && turn.error === undefined) {
        // It threw its own abort reason (stopped, superseded, shut down), which is no error of
        // its own: the guard counts its inputs as handled and reports nothing.
        outcome = "aborted";
        turn.error = errorType(turn.turn.signal.reason);
      }
      measure.turnFinished(
        (performance.now() - turn.started) / 1000,
        outcome,
        outcome === "handled" ? undefined : turn.error,
      );
      if (turn.span !== undefined) spans.end(turn.span, turn.turn, outcome, turn.error);
    }),
  ];

  let disposed = false;
  return () => {
    if (disposed) return;
    disposed = true;
    for (const off of unsubscribe) off();
    detach();
    measure.dispose();
    // Spans of turns still running end here, without an outcome: nothing will report it any more.
    for (const turn of open.values()) turn.span?.end();
    open.clear();
    pendingKeys.clear();
  };
}

/** The core guard behind `guard` (an adapter's object carries it as `.guard`). */
function coreOf(guard: unknown): Observable {
  // An adapter's object may be a function (grammY and Bolt middleware) carrying `.guard`.
  const holder = (typeof guard === "object" && guard !== null) || typeof guard === "function";
  const candidate =
    holder && !(OBSERVE in (guard as object)) && "guard" in (guard as object)
      ? (guard as { guard: unknown }).guard
      : guard;
  if (
    typeof candidate !== "object" ||
    candidate === null ||
    typeof (candidate as Observable)[OBSERVE] !== "function"
  ) {
    throw new TypeError(
      "instrumentGuard(guard): guard must be a guard from createGuard() or an adapter's object (sessionGuard(), slackGuard(), discordGuard()) of session-guard 0.1 or later.",
    );
  }
  return candidate as Observable;
}

function observable(guard: Observable, observer: GuardObserver): () => void {
  return (guard[OBSERVE] as (observer: GuardObserver) => () => void).call(guard, observer);
}
