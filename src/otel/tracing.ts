// === A span per turn
//
// A turn runs detached from the call that admitted its input (a webhook answered long ago), and
// may hold inputs admitted by several calls. So its span starts a trace of its own and is linked
// (not parented) to the span of each call that admitted one of its inputs here, as OpenTelemetry's
// messaging conventions do for a batch processed apart from where its messages were produced:
// hence kind CONSUMER. Its key is hashed unless the user opts in (`keyAttribute`).

import {
  type Attributes,
  context,
  type Link,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { Turn } from "session-guard";
import type { Admitted } from "../core/observe.js";
import { ATTRIBUTES, TURN_SPAN } from "./names.js";

/** The span context active where an input was admitted, if any (what the seam keeps with it). */
export function admittingSpan(): SpanContext | undefined {
  const span = trace.getSpan(context.active());
  if (span === undefined) return undefined;
  const spanContext = span.spanContext();
  return trace.isSpanContextValid(spanContext) ? spanContext : undefined;
}

export class TurnSpans {
  readonly #tracer: Tracer;
  readonly #base: Attributes;
  readonly #keyOf: (key: string) => string | undefined;

  constructor(tracer: Tracer, base: Attributes, keyOf: (key: string) => string | undefined) {
    this.#tracer = tracer;
    this.#base = base;
    this.#keyOf = keyOf;
  }

  /** Start the span of `turn`, linked to the spans that admitted its inputs here. */
  start(turn: Turn<unknown>, admitted: readonly Admitted[]): Span {
    let links: Link[] | undefined;
    for (const { context: spanContext } of admitted) {
      if (spanContext === undefined) continue;
      const { spanId } = spanContext as SpanContext;
      // An album's photos often arrive in one request: one link per admitting span.
      if (links?.some((link) => link.context.spanId === spanId)) continue;
      (links ??= []).push({ context: spanContext as SpanContext });
    }
    const span = this.#tracer.startSpan(TURN_SPAN, {
      kind: SpanKind.CONSUMER,
      root: true,
      links,
      attributes: this.#base,
    });
    if (span.isRecording()) {
      span.setAttribute(ATTRIBUTES.fence, turn.fence);
      const key = this.#keyOf(turn.key);
      if (key !== undefined) span.setAttribute(ATTRIBUTES.key, key);
    }
    return span;
  }

  /** The turn's handler settled: its outcome, its final input count, and the span ends. */
  end(span: Span, turn: Turn<unknown>, outcome: string, error?: string): void {
    if (span.isRecording()) {
      span.setAttribute(ATTRIBUTES.inputCount, turn.inputs.length);
      span.setAttribute(ATTRIBUTES.outcome, outcome);
      if (error !== undefined) span.setAttribute(ATTRIBUTES.errorType, error);
      // An aborted turn (stopped, superseded) did what was asked of it: no error status.
      if (outcome === "failed") span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }
}
