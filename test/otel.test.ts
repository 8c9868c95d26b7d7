// session-guard/otel: the metrics and spans a real guard reports to real OpenTelemetry SDKs
// (in-memory exporters), with the memory store and, for leases and takeovers, a real Redis.

import { context, metrics, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { createGuard, type Guard, type Turn } from "session-guard";
import { sessionGuard } from "session-guard/grammy";
import { ATTRIBUTES, hashKey, instrumentGuard, METRICS, TURN_SPAN } from "session-guard/otel";
import { redisStore } from "session-guard/redis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { deferred } from "./support/helpers.js";
import { type Telemetry, telemetry } from "./support/otel.js";
import {
  CLIENTS,
  cleanUp,
  eventually,
  redisAvailable,
  testPrefix,
  useRedis,
} from "./support/redis-harness.js";
import { killStore } from "./support/redis-kill.js";

const contextManager = new AsyncLocalStorageContextManager();
beforeAll(() => {
  // What makes a span "active" where an input is admitted (the Node SDK registers one too).
  context.setGlobalContextManager(contextManager.enable());
});
afterAll(() => {
  context.disable();
});
let t: Telemetry;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Fresh SDKs (`t`), shut down after the test. */
function sdks(): Telemetry {
  const made = telemetry();
  cleanups.push(() => made.shutdown());
  t = made;
  return made;
}

function instrumented<I>(
  guard: Guard<I> | { readonly guard: Guard<unknown> },
  options: Parameters<typeof instrumentGuard>[1] = {},
) {
  sdks();
  const stop = instrumentGuard(guard, {
    meterProvider: t.meterProvider,
    tracerProvider: t.tracerProvider,
    ...options,
  });
  cleanups.push(stop);
  return stop;
}

/** A handler that waits for `gate` (and fails on the input "boom"). */
function gated(gate: Promise<void>) {
  return async (turn: Turn<string>) => {
    if (turn.inputs.includes("boom")) throw new Error("boom");
    await gate;
  };
}

describe("metrics of a guard on the memory store", () => {
  it("counts turns by outcome, inputs admitted and dropped by reason, pending and active; a histogram sample per turn, per waiting input and per store call", async () => {
    const gate = deferred();
    const guard = createGuard<string>({ handler: gated(gate.promise), onError: () => {} });
    instrumented(guard);
    expect(await guard.submit("k", "a", undefined, { id: "1" })).toBe("started");
    expect(await guard.submit("k", "a", undefined, { id: "1" })).toBe("duplicate");
    expect(await guard.submit("k", "b")).toBe("queued");
    expect(await guard.submit("k", "c")).toBe("queued");
    expect(await t.value(METRICS.inputsPending)).toBe(2);
    expect(await t.value(METRICS.turnsActive)).toBe(1);
    expect(await guard.submit("j", "boom")).toBe("started");
    gate.resolve();
    await guard.onIdle();

    expect(await t.value(METRICS.turnsStarted)).toBe(3); // [a], [boom], [b, c]
    expect(await t.value(METRICS.turnsFinished, { [ATTRIBUTES.outcome]: "handled" })).toBe(2);
    expect(
      await t.value(METRICS.turnsFinished, {
        [ATTRIBUTES.outcome]: "failed",
        [ATTRIBUTES.errorType]: "Error",
      }),
    ).toBe(1);
    expect(await t.value(METRICS.inputsAdmitted, { [ATTRIBUTES.admission]: "started" })).toBe(2);
    expect(await t.value(METRICS.inputsAdmitted, { [ATTRIBUTES.admission]: "queued" })).toBe(2);
    expect(await t.value(METRICS.inputsDropped, { [ATTRIBUTES.dropReason]: "duplicate" })).toBe(1);
    expect(await t.value(METRICS.inputsDropped)).toBe(1);
    expect(await t.value(METRICS.inputsPending)).toBe(0);
    expect(await t.value(METRICS.turnsActive)).toBe(0);

    // One wait per input handled, one duration per turn, one sample per store call.
    expect((await t.histogram(METRICS.inputWaitTime))?.count).toBe(4);
    const handled = await t.histogram(METRICS.turnDuration, { [ATTRIBUTES.outcome]: "handled" });
    expect(handled?.count).toBe(2);
    const admits = { [ATTRIBUTES.storeOperation]: "acquireOrEnqueue" };
    expect((await t.histogram(METRICS.storeDuration, admits))?.count).toBe(5);
    const finishes = { [ATTRIBUTES.storeOperation]: "finish" };
    // a's turn hands [b, c] over, then releases; boom's turn releases.
    expect((await t.histogram(METRICS.storeDuration, finishes))?.count).toBe(3);
    expect(await t.value(METRICS.storeErrors)).toBe(0);

    // Conventional units: seconds for durations, annotations for counts.
    expect(await t.unit(METRICS.turnDuration)).toBe("s");
    expect(await t.unit(METRICS.inputWaitTime)).toBe("s");
    expect(await t.unit(METRICS.storeDuration)).toBe("s");
    expect(await t.unit(METRICS.turnsStarted)).toBe("{turn}");
    expect(await t.unit(METRICS.inputsDropped)).toBe("{input}");
  });

  it("a stopped turn that throws its abort reason is aborted, not failed, and its pending input is dropped as stopped", async () => {
    const guard = createGuard<string>({
      handler: (turn) =>
        new Promise<void>((_, reject) =>
          turn.signal.addEventListener("abort", () => reject(turn.signal.reason)),
        ),
    });
    instrumented(guard, { name: "telegram" });
    await guard.submit("k", "a");
    await guard.submit("k", "b");
    await guard.stop("k");
    await guard.onIdle();
    const aborted = {
      [ATTRIBUTES.outcome]: "aborted",
      [ATTRIBUTES.errorType]: "TurnAbortedError",
      [ATTRIBUTES.name]: "telegram",
    };
    expect(await t.value(METRICS.turnsFinished, aborted)).toBe(1);
    expect(await t.value(METRICS.turnsFinished)).toBe(1);
    expect(await t.value(METRICS.inputsDropped, { [ATTRIBUTES.dropReason]: "stopped" })).toBe(1);
    const [span] = t.spans();
    expect(span?.attributes[ATTRIBUTES.outcome]).toBe("aborted");
    expect(span?.status.code).not.toBe(SpanStatusCode.ERROR);
  });

  it("store calls that fail are timed and counted by operation and error type", async () => {
    // A store whose admission throws (a full disk, say).
    const failing = createGuard<string>({
      handler: () => {},
      onError: () => {},
      store: {
        shared: false,
        acquireOrEnqueue() {
          throw new RangeError("disk full");
        },
        renew: () => ({ status: "lost" }),
        take: () => ({ status: "lost" }),
        finish: () => ({ status: "lost" }),
        abandon: () => [],
        clear: () => [],
        withdraw: () => undefined,
        forget: () => {},
        pendingCount: () => 0,
      },
    });
    instrumented(failing);
    await expect(failing.submit("k", "a")).rejects.toThrow(/disk full/);
    const failed = {
      [ATTRIBUTES.storeOperation]: "acquireOrEnqueue",
      [ATTRIBUTES.errorType]: "RangeError",
    };
    expect(await t.value(METRICS.storeErrors, failed)).toBe(1);
    expect((await t.histogram(METRICS.storeDuration, failed))?.count).toBe(1);
  });

  it("after dispose nothing more is recorded, and the guard runs on as before", async () => {
    const seen: string[] = [];
    const guard = createGuard<string>({ handler: (turn) => void seen.push(...turn.inputs) });
    const stop = instrumented(guard);
    await guard.submit("k", "a");
    await guard.onIdle();
    stop();
    stop(); // idempotent
    await guard.submit("k", "b");
    await guard.onIdle();
    expect(seen).toEqual(["a", "b"]);
    expect(await t.value(METRICS.turnsStarted)).toBe(1);
    expect(
      (await t.histogram(METRICS.storeDuration, { [ATTRIBUTES.storeOperation]: "finish" }))?.count,
    ).toBe(1);
    // Instrumenting again works once the first is disposed.
    instrumented(guard);
    await guard.submit("k", "c");
    await guard.onIdle();
    expect(await t.value(METRICS.turnsStarted)).toBe(1);
  });
});

describe("a span per turn", () => {
  it("links the turn to the span of each call that admitted its inputs; key hashed, fence, input count, outcome", async () => {
    const gate = deferred();
    const fences: number[] = [];
    const guard = createGuard<string>({
      handler: async (turn) => {
        fences.push(turn.fence);
        await gate.promise;
      },
    });
    instrumented(guard);
    const webhook = t.tracerProvider.getTracer("test");
    const ids: string[] = [];
    for (const input of ["a", "b", "c"]) {
      await webhook.startActiveSpan(`webhook ${input}`, async (span) => {
        ids.push(span.spanContext().spanId);
        await guard.submit("chat:42", input);
        span.end();
      });
    }
    gate.resolve();
    await guard.onIdle();

    const turns = t.spans().filter((span) => span.name === TURN_SPAN);
    expect(turns).toHaveLength(2);
    const [first, second] = turns;
    expect(first?.links.map((link) => link.context.spanId)).toEqual([ids[0]]);
    expect(second?.links.map((link) => link.context.spanId)).toEqual([ids[1], ids[2]]);
    for (const [i, span] of turns.entries()) {
      expect(span.kind).toBe(SpanKind.CONSUMER);
      // A trace of its own: the admitting request ended long before the turn.
      expect(span.parentSpanContext).toBeUndefined();
      expect(span.attributes[ATTRIBUTES.key]).toBe(hashKey("chat:42"));
      expect(span.attributes[ATTRIBUTES.fence]).toBe(fences[i]);
      expect(span.attributes[ATTRIBUTES.outcome]).toBe("handled");
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
    }
    expect(first?.attributes[ATTRIBUTES.inputCount]).toBe(1);
    expect(second?.attributes[ATTRIBUTES.inputCount]).toBe(2);
    expect(hashKey("chat:42")).toMatch(/^[0-9a-f]{16}$/); // 64 bits of its SHA-256, as hex
    expect(JSON.stringify(turns.map((span) => span.attributes))).not.toContain("chat:42");
  });

  it("counts inputs a steering turn took in; records the error of a failed turn", async () => {
    const guard = createGuard<string>({
      mode: "steer",
      handler: async (turn) => {
        await guard.submit(turn.key, "more");
        await turn.take();
        throw new TypeError("bad tool call");
      },
      onError: () => {},
    });
    instrumented(guard);
    await guard.submit("k", "a");
    await guard.onIdle();
    const [span] = t.spans();
    expect(span?.attributes[ATTRIBUTES.inputCount]).toBe(2);
    expect(span?.attributes[ATTRIBUTES.outcome]).toBe("failed");
    expect(span?.attributes[ATTRIBUTES.errorType]).toBe("TypeError");
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.events.map((event) => event.name)).toEqual(["exception"]);
  });

  it("keyAttribute: raw, none, or a function", async () => {
    const keys: unknown[] = [];
    for (const keyAttribute of ["raw", "none", (key: string) => `tenant-${key.length}`] as const) {
      const guard = createGuard<string>({ handler: () => {} });
      const stop = instrumented(guard, { keyAttribute });
      await guard.submit("chat:42", "a");
      await guard.onIdle();
      keys.push(t.spans()[0]?.attributes[ATTRIBUTES.key]);
      stop();
    }
    expect(keys).toEqual(["chat:42", undefined, "tenant-7"]);
  });

  it("a turn abandoned at its timeout ends its span as abandoned", async () => {
    const never = deferred();
    const guard = createGuard<string>({
      handler: () => never.promise,
      turnTimeout: 20,
      onStuck: "abandon",
      onError: () => {},
    });
    instrumented(guard);
    await guard.submit("k", "a");
    await guard.onIdle();
    const [span] = t.spans();
    expect(span?.attributes[ATTRIBUTES.outcome]).toBe("abandoned");
    expect(span?.attributes[ATTRIBUTES.errorType]).toBe("TurnTimeoutError");
    expect(span?.events.map((event) => event.name)).toContain("session_guard.turn.timeout");
    never.resolve();
  });
});

describe("instrumentGuard options", () => {
  it("refuses what it cannot use with a TypeError that says what is expected", () => {
    const guard = createGuard<string>({ handler: () => {} });
    expect(() => instrumentGuard({} as never)).toThrow(/createGuard\(\) or an adapter's object/);
    expect(() => instrumentGuard(guard, [] as never)).toThrow(/options must be an object/);
    expect(() => instrumentGuard(guard, { keyAttribute: "sha1" as never })).toThrow(
      /"keyAttribute" must be "hash", "raw", "none" or a function/,
    );
    expect(() => instrumentGuard(guard, { meterProvider: {} as never })).toThrow(
      /"meterProvider" must be an OpenTelemetry MeterProvider/,
    );
    expect(() => instrumentGuard(guard, { name: "" })).toThrow(/"name" must be a non-empty/);
    expect(() => instrumentGuard(guard, { meter: 1 } as never)).toThrow(/unknown option "meter"/);
    const stop = instrumentGuard(guard);
    expect(() => instrumentGuard(guard)).toThrow(/observed already/);
    stop();
    instrumentGuard(guard)();
  });

  it("takes an adapter's object (grammY middleware) for the guard it carries", async () => {
    const middleware = sessionGuard();
    instrumented(middleware);
    await middleware.guard.submit("k", "a", () => {});
    await middleware.onIdle();
    expect(await t.value(METRICS.turnsStarted)).toBe(1);
  });

  it("works with the global providers when none are given", async () => {
    sdks();
    metrics.setGlobalMeterProvider(t.meterProvider);
    trace.setGlobalTracerProvider(t.tracerProvider);
    cleanups.push(() => {
      metrics.disable();
      trace.disable();
    });
    const guard = createGuard<string>({ handler: () => {} });
    cleanups.push(instrumentGuard(guard));
    await guard.submit("k", "a");
    await guard.onIdle();
    expect(await t.value(METRICS.turnsStarted)).toBe(1);
    expect(t.spans()).toHaveLength(1);
  });
});

const db = useRedis();
describe.skipIf(!redisAvailable)("metrics across replicas (Redis)", () => {
  const LEASE = 600;
  const kind = CLIENTS[0];
  let prefix: string;

  it("a replica that dies mid-turn: its turn's lease loss is counted there, the takeover and store latency at the survivor", async () => {
    prefix = testPrefix();
    cleanups.push(() => cleanUp(db.admin, prefix));
    const replica = (name: string) => {
      const client = kind.create(db.target);
      const store = redisStore({ client, prefix, lease: LEASE });
      const guard = createGuard<{ text: string }>({
        store,
        onError: () => {},
        // Runs until its signal aborts (the lease lost), then returns.
        handler: (turn) =>
          new Promise<void>((resolve) => turn.signal.addEventListener("abort", () => resolve())),
      });
      const seen = sdks();
      cleanups.push(async () => {
        await guard.close({ timeout: 1_000 }).catch(() => {});
        await store.close().catch(() => {});
        await kind.dispose(client);
      });
      cleanups.push(
        instrumentGuard(guard, {
          meterProvider: seen.meterProvider,
          tracerProvider: seen.tracerProvider,
          name,
        }),
      );
      return { store, guard, seen };
    };
    const a = replica("a");
    const b = replica("b");
    expect(await a.guard.submit("k", { text: "a1" })).toBe("started");
    expect(await b.guard.submit("k", { text: "b1" })).toBe("queued");
    await killStore(a.store);

    await eventually(
      async () => (await b.seen.value(METRICS.takeovers)) === 1,
      LEASE * 5,
      "B's takeover",
    );
    await eventually(
      async () => (await a.seen.value(METRICS.leasesLost)) === 1,
      LEASE * 5,
      "A's lease loss",
    );
    // A's renewals failed against a closed connection.
    expect(
      await a.seen.value(METRICS.storeErrors, { [ATTRIBUTES.storeOperation]: "renew" }),
    ).toBeGreaterThan(0);
    // B's turn started with a1 (admitted at A: no wait known here) and b1 (admitted here).
    await eventually(
      async () => (await b.seen.value(METRICS.turnsStarted)) === 1,
      LEASE * 5,
      "B's turn",
    );
    expect((await b.seen.histogram(METRICS.inputWaitTime))?.count).toBe(1);
    const admits = { [ATTRIBUTES.storeOperation]: "acquireOrEnqueue", [ATTRIBUTES.name]: "b" };
    expect((await b.seen.histogram(METRICS.storeDuration, admits))?.count).toBe(1);
    expect(await b.seen.value(METRICS.inputsPending)).toBe(0);
  });
});
