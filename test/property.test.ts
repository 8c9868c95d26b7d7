// Property-based test of the guarantees: fast-check generates guard options and a program of
// operations — submits (random ids, duplicates included, `alone`, `awaitTurn`), lanes, stops,
// closes, time passing and microtask turns — over 2 to 4 keys, with handlers that return early,
// throw, reject, are slow, honour or ignore their signal, steer with `take()` or close the guard.
// After every run an oracle checks:
//   1. no two turns of one key overlapped (a turn abandoned by `onStuck: "abandon"` stops counting
//      once abandoned); fences grow per key;
//   2. each key's handled inputs (and lanes) are in admission order;
//   3. every submitted input ended exactly once — handled in one turn or dropped once via onDrop
//      with a reason — and its submit outcome agrees; every lane and every promise settled;
//      every handler error reached onError exactly once; the guard holds nothing afterwards.

import fc from "fast-check";
import {
  ContendedError,
  createGuard,
  type Drop,
  DroppedError,
  type GuardOptions,
  type Mode,
  memoryStore,
  type Turn,
  TurnAbortedError,
  TurnTimeoutError,
} from "session-guard";
import { afterEach, describe, it, vi } from "vitest";
import { flush } from "./support/helpers.js";

/** Fake only the clock and timeouts: promise callbacks and setImmediate stay real. */
function useFakeTimers(): void {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
}
const MODES: readonly Mode[] = ["collect", "queue", "steer", "interrupt", "latest", "reject"];

afterEach(() => {
  vi.useRealTimers();
});

interface Input {
  readonly seq: number;
  readonly key: string;
}

interface Behaviour {
  /** "return" and "throw" end the handler before it awaits anything. */
  readonly sync: "none" | "return" | "throw";
  /** How long each await of the handler takes (fake ms). */
  readonly ms: number;
  /** Settles early, rejecting with the abort reason, when its signal aborts. */
  readonly honour: boolean;
  /** Rejects at the end. */
  readonly fail: boolean;
  /** Steers: moves pending input into the turn half-way. */
  readonly take: boolean;
  /** Calls `guard.close()` from inside the handler, before any await. */
  readonly close: boolean;
}

type Op =
  | {
      readonly op: "submit";
      readonly key: number;
      readonly id: string | undefined;
      readonly alone: boolean;
      readonly awaitTurn: boolean;
      readonly behaviour: Behaviour;
    }
  | {
      readonly op: "lane";
      readonly key: number;
      readonly onBusy: "wait" | "skip" | "throw";
      readonly waitTimeout: number;
      readonly behaviour: Behaviour;
    }
  | { readonly op: "stop"; readonly key: number }
  | { readonly op: "advance"; readonly ms: number }
  | { readonly op: "flush" }
  | { readonly op: "close"; readonly timeout: number };

type Options = Required<
  Pick<
    GuardOptions<Input>,
    | "mode"
    | "settle"
    | "turnTimeout"
    | "onStuck"
    | "concurrency"
    | "maxPending"
    | "overflow"
    | "maxPendingTotal"
    | "pendingTtl"
    | "dedupe"
  >
>;

interface Scenario {
  readonly keys: number;
  readonly options: Options;
  readonly ops: readonly Op[];
  readonly finalTimeout: number;
}

const INF = Number.POSITIVE_INFINITY;

const behaviourArb: fc.Arbitrary<Behaviour> = fc.record({
  sync: fc.constantFrom("none", "none", "none", "none", "return", "throw"),
  ms: fc.constantFrom(0, 1, 5, 20, 60, 150),
  honour: fc.boolean(),
  fail: fc.boolean(),
  take: fc.boolean(),
  close: fc.integer({ min: 0, max: 150 }).map((n) => n === 0),
});

const optionsArb: fc.Arbitrary<Options> = fc.record({
  mode: fc.constantFrom(...MODES),
  settle: fc.constantFrom(0, 0, 10, 30),
  turnTimeout: fc.constantFrom(INF, 30, 100),
  onStuck: fc.constantFrom("wait" as const, "abandon" as const),
  concurrency: fc.constantFrom(INF, 1, 2),
  maxPending: fc.constantFrom(100, 1, 2),
  overflow: fc.constantFrom("drop-oldest" as const, "drop-newest" as const),
  maxPendingTotal: fc.constantFrom(10_000, 3),
  pendingTtl: fc.constantFrom(INF, 5, 40),
  dedupe: fc.constantFrom(600_000 as number | false, false),
});

function opArb(keys: number): fc.Arbitrary<Op> {
  const key = fc.integer({ min: 0, max: keys - 1 });
  return fc.oneof(
    {
      weight: 30,
      arbitrary: fc.record({
        op: fc.constant("submit" as const),
        key,
        id: fc.option(fc.constantFrom("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"), {
          nil: undefined,
          freq: 2,
        }),
        alone: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
        awaitTurn: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
        behaviour: behaviourArb,
      }),
    },
    {
      weight: 6,
      arbitrary: fc.record({
        op: fc.constant("lane" as const),
        key,
        onBusy: fc.constantFrom("wait" as const, "skip" as const, "throw" as const),
        waitTimeout: fc.constantFrom(INF, 0, 15, 80),
        behaviour: behaviourArb,
      }),
    },
    { weight: 5, arbitrary: fc.record({ op: fc.constant("stop" as const), key }) },
    {
      weight: 12,
      arbitrary: fc.record({
        op: fc.constant("advance" as const),
        ms: fc.constantFrom(1, 5, 10, 25, 50, 120),
      }),
    },
    { weight: 9, arbitrary: fc.record({ op: fc.constant("flush" as const) }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("close" as const),
        timeout: fc.constantFrom(0, 20, 100, INF),
      }),
    },
  );
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.integer({ min: 2, max: 4 }).chain((keys) =>
  fc.record({
    keys: fc.constant(keys),
    options: optionsArb,
    ops: fc.array(opArb(keys), { minLength: 1, maxLength: 60, size: "medium" }),
    finalTimeout: fc.constantFrom(0, 50, 1_000, INF),
  }),
);

type Settled<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: unknown };

/** Record how a promise settles, without letting a rejection go unhandled. */
function settleInto<T>(promise: Promise<T>, record: { result?: Settled<T> }): void {
  promise.then(
    (value) => {
      record.result = { ok: true, value };
    },
    (error: unknown) => {
      record.result = { ok: false, error };
    },
  );
}

interface SubmitRecord {
  readonly input: Input;
  readonly id: string | undefined;
  readonly awaitTurn: boolean;
  result?: Settled<string>;
}

interface LaneRecord {
  readonly seq: number;
  readonly key: string;
  readonly token: string;
  ran: boolean;
  result?: Settled<unknown>;
}

interface Invocation {
  readonly key: string;
  readonly fence: number;
  readonly turn: Turn<Input>;
  readonly lane: LaneRecord | undefined;
  /** Fake time at which the handler was called. */
  readonly startedAt: number;
}

const DROP_WHEN_ADMITTED = new Set(["stopped", "superseded", "overflow", "shutdown", "expired"]);
const DROP_AT_SUBMIT = new Set(["busy", "overflow", "shutdown", "duplicate"]);

async function check(scenario: Scenario): Promise<void> {
  const { options, ops, finalTimeout } = scenario;
  const keyName = (index: number) => `k${index}`;
  const problems: string[] = [];
  const store = memoryStore();
  const drops: Drop<Input>[] = [];
  const errors: { error: unknown; key: string; fence: number | undefined }[] = [];
  const guard = createGuard<Input>({
    ...options,
    store,
    onDrop: (drop) => void drops.push(drop),
    onError: (error, info) => void errors.push({ error, key: info.key, fence: info.fence }),
  });

  // Oracle state.
  const active = new Map<string, Set<number>>(); // key → fences of running, non-abandoned turns
  const invocations: Invocation[] = [];
  const finished: number[] = [];
  const finishedAt = new Map<number, number>(); // fence → fake time of the finished event
  const stuckAt = new Map<number, number>(); // fence → fake time of the stuck event
  interface CloseCall {
    readonly at: number;
    readonly timeout: number;
    resolvedAt?: number;
  }
  let closeCall: CloseCall | undefined; // the first close() call: the one that decides
  const close = (timeout: number, record: { result?: Settled<unknown> }) => {
    const call: CloseCall = { at: Date.now(), timeout };
    closeCall ??= call;
    const promise = guard.close({ timeout });
    promise.then(() => {
      if (closeCall === call) call.resolvedAt ??= Date.now();
    });
    settleInto(promise, record);
  };
  const thrown = new Map<Error, Invocation>();
  const submits: SubmitRecord[] = [];
  const lanes: LaneRecord[] = [];
  const pending: { result?: Settled<unknown> }[] = []; // stops and closes
  let seq = 0;

  guard.on("finished", ({ key, fence }) => {
    finished.push(fence);
    finishedAt.set(fence, Date.now());
    active.get(key)?.delete(fence);
  });
  // An abandoned turn stops counting from its abandonment on. Its signal's reason says so, unless
  // the signal was aborted before for another reason (a stop it ignored): the stuck event always does.
  guard.on("stuck", ({ key, fence, abandoned }) => {
    if (stuckAt.has(fence)) problems.push(`G7: turn ${fence} reported stuck twice`);
    stuckAt.set(fence, Date.now());
    if (abandoned) active.get(key)?.delete(fence);
  });

  const pause = (ms: number, signal: AbortSignal | undefined) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          reject(signal.reason);
        },
        { once: true },
      );
    });

  const makeRun =
    (behaviour: Behaviour, lane?: LaneRecord) =>
    (turn: Turn<Input>): unknown => {
      const running = active.get(turn.key) ?? new Set<number>();
      active.set(turn.key, running);
      if (running.size > 0) {
        problems.push(
          `G1: turn ${turn.fence} of ${turn.key} started while ${[...running].join(",")} ran`,
        );
      }
      running.add(turn.fence);
      const invocation: Invocation = {
        key: turn.key,
        fence: turn.fence,
        turn,
        lane,
        startedAt: Date.now(),
      };
      invocations.push(invocation);
      if (lane !== undefined) lane.ran = true;
      turn.signal.addEventListener("abort", () => {
        const reason: unknown = turn.signal.reason;
        if (reason instanceof TurnTimeoutError && reason.abandoned) running.delete(turn.fence);
      });
      const fail = (what: string) => {
        const error = new Error(`${what} failure in turn ${turn.fence}`);
        thrown.set(error, invocation);
        return error;
      };
      const token = lane?.token;
      if (behaviour.close) {
        const record: { result?: Settled<unknown> } = {};
        pending.push(record);
        close(20, record);
      }
      if (behaviour.sync === "throw") throw fail("sync");
      if (behaviour.sync === "return") return token;
      const signal = behaviour.honour ? turn.signal : undefined;
      return (async () => {
        await pause(behaviour.ms, signal);
        if (behaviour.take) {
          await turn.take();
          await pause(behaviour.ms, signal);
        }
        if (behaviour.fail) throw fail("async");
        return token;
      })();
    };

  for (const op of ops) {
    switch (op.op) {
      case "submit": {
        const input: Input = { seq: ++seq, key: keyName(op.key) };
        const record: SubmitRecord = { input, id: op.id, awaitTurn: op.awaitTurn };
        submits.push(record);
        settleInto(
          guard.submit(input.key, input, makeRun(op.behaviour), {
            id: op.id,
            alone: op.alone,
            awaitTurn: op.awaitTurn,
          }),
          record,
        );
        break;
      }
      case "lane": {
        const record: LaneRecord = {
          seq: ++seq,
          key: keyName(op.key),
          token: `lane-${seq}`,
          ran: false,
        };
        lanes.push(record);
        settleInto(
          guard.run(record.key, makeRun(op.behaviour, record), {
            onBusy: op.onBusy,
            waitTimeout: op.waitTimeout,
          }),
          record,
        );
        break;
      }
      case "stop": {
        const record: { result?: Settled<unknown> } = {};
        pending.push(record);
        settleInto(guard.stop(keyName(op.key)), record);
        break;
      }
      case "close": {
        const record: { result?: Settled<unknown> } = {};
        pending.push(record);
        close(op.timeout, record);
        break;
      }
      case "advance":
        await vi.advanceTimersByTimeAsync(op.ms);
        break;
      case "flush":
        await flush(5);
        break;
    }
  }

  // Close, then let every handler (all of them finish in finite fake time) and timer run out.
  const closing: { result?: Settled<unknown> } = {};
  pending.push(closing);
  close(finalTimeout, closing);
  for (let i = 0; i < 20; i++) await vi.advanceTimersByTimeAsync(500);
  await flush();

  // 1. Exclusive (checked as turns started) and fences growing per key.
  const turnsByKey = new Map<string, Invocation[]>();
  for (const invocation of invocations) {
    const list = turnsByKey.get(invocation.key) ?? [];
    const last = list[list.length - 1];
    if (last !== undefined && last.fence >= invocation.fence) {
      problems.push(
        `fence of ${invocation.key} did not grow: ${last.fence} then ${invocation.fence}`,
      );
    }
    list.push(invocation);
    turnsByKey.set(invocation.key, list);
  }

  // 2. FIFO per key: handled inputs and lanes, turn by turn, in admission order.
  const handled = new Map<number, number>(); // seq → times handled
  for (const [key, list] of turnsByKey) {
    const order: number[] = [];
    for (const { turn, lane } of list) {
      if (lane !== undefined) order.push(lane.seq);
      if (lane !== undefined && turn.inputs.length > 0) {
        problems.push(`lane ${lane.seq} ran with inputs`);
      }
      for (const input of turn.inputs) {
        if (input.key !== key) problems.push(`input ${input.seq} of ${input.key} ran on ${key}`);
        order.push(input.seq);
        handled.set(input.seq, (handled.get(input.seq) ?? 0) + 1);
      }
    }
    for (let i = 1; i < order.length; i++) {
      if ((order[i] as number) <= (order[i - 1] as number)) {
        problems.push(`G2: ${key} handled out of order: ${order.join(",")}`);
        break;
      }
    }
  }

  // 3. Every input ended exactly once, and its submit outcome agrees.
  const dropped = new Map<number, Drop<Input>[]>();
  for (const drop of drops) {
    const list = dropped.get(drop.input.seq) ?? [];
    list.push(drop);
    dropped.set(drop.input.seq, list);
    if (drop.key !== drop.input.key) problems.push(`drop of ${drop.input.seq} under ${drop.key}`);
  }
  let ends = 0;
  for (const { input, id, awaitTurn, result } of submits) {
    const times = handled.get(input.seq) ?? 0;
    const itsDrops = dropped.get(input.seq) ?? [];
    ends += times + itsDrops.length;
    const where = `input ${input.seq} (${input.key})`;
    if (times + itsDrops.length !== 1) {
      problems.push(
        `G3: ${where} handled ${times}× and dropped ${itsDrops.length}× (${itsDrops.map((d) => d.reason).join(",")})`,
      );
      continue;
    }
    const drop = itsDrops[0];
    if (drop !== undefined && drop.id !== id)
      problems.push(`G3: ${where} dropped with id ${drop.id}`);
    if (result === undefined) {
      problems.push(`G4: the submit of ${where} never settled`);
      continue;
    }
    if (!result.ok) {
      if (!awaitTurn) problems.push(`submit of ${where} rejected: ${String(result.error)}`);
      else if (times !== 1) problems.push(`awaited submit of ${where} rejected, not handled`);
      continue;
    }
    const outcome = result.value;
    const reason = drop?.reason;
    const fine = awaitTurn
      ? outcome === "dropped" || outcome === "duplicate"
        ? drop !== undefined && (outcome === "duplicate") === (reason === "duplicate")
        : times === 1
      : outcome === "duplicate"
        ? reason === "duplicate"
        : outcome === "dropped"
          ? reason !== undefined && DROP_AT_SUBMIT.has(reason) && reason !== "duplicate"
          : times === 1 || (reason !== undefined && DROP_WHEN_ADMITTED.has(reason));
    if (!fine)
      problems.push(`G3: ${where} resolved "${outcome}" but ended as ${reason ?? "handled"}`);
  }
  if (ends !== submits.length) problems.push(`G3: ${submits.length} in, ${ends} out`);
  for (const drop of drops) {
    if (!submits.some((s) => s.input === drop.input)) problems.push("G3: a drop of no input");
  }

  // Lanes end once: ran (resolved with their token or rejected with their error / an abort), or
  // did not run (skipped, contended, dropped).
  for (const lane of lanes) {
    const result = lane.result;
    if (result === undefined) {
      problems.push(`lane ${lane.seq} never settled`);
      continue;
    }
    const didNotRun = result.ok
      ? result.value === undefined
      : result.error instanceof ContendedError || result.error instanceof DroppedError;
    if (lane.ran === didNotRun) {
      problems.push(
        `lane ${lane.seq} ran=${lane.ran} but settled ${result.ok ? String(result.value) : String(result.error)}`,
      );
    }
    if (lane.ran && result.ok && result.value !== lane.token) {
      problems.push(`lane ${lane.seq} resolved ${String(result.value)}`);
    }
    if (lane.ran && !result.ok) {
      const error = result.error;
      if (!(error instanceof TurnAbortedError) && !thrown.has(error as Error)) {
        problems.push(`lane ${lane.seq} rejected with a foreign error: ${String(error)}`);
      }
    }
  }

  // G5: every handler error reached onError exactly once, with its turn's key and fence.
  for (const [error, invocation] of thrown) {
    const reports = errors.filter((e) => e.error === error);
    if (reports.length !== 1) problems.push(`G5: ${error.message} reported ${reports.length}×`);
    else if (reports[0]?.key !== invocation.key || reports[0]?.fence !== invocation.fence) {
      problems.push(`G5: ${error.message} reported for ${reports[0]?.key}/${reports[0]?.fence}`);
    }
  }

  // G7: a turn is reported stuck exactly at its turnTimeout, never earlier, and every turn that
  // outlived it (before the guard began to close) was reported.
  const limit = options.turnTimeout;
  if (Number.isFinite(limit)) {
    for (const { fence, startedAt } of invocations) {
      const deadline = startedAt + limit;
      const stuck = stuckAt.get(fence);
      const end = finishedAt.get(fence) ?? Number.POSITIVE_INFINITY;
      if (stuck !== undefined && stuck !== deadline) {
        problems.push(`G7: turn ${fence} started at ${startedAt} was stuck at ${stuck}`);
      }
      const closing = closeCall !== undefined && closeCall.at <= deadline;
      if (stuck === undefined && end > deadline && !closing) {
        problems.push(`G7: turn ${fence} ran past its turnTimeout without being reported`);
      }
    }
  } else if (stuckAt.size > 0) problems.push("G7: stuck without a turnTimeout");
  // close() resolves by its timeout at the latest.
  if (closeCall !== undefined && Number.isFinite(closeCall.timeout)) {
    const { at, timeout, resolvedAt } = closeCall;
    if (resolvedAt === undefined || resolvedAt > at + timeout) {
      problems.push(`G7: close({ timeout: ${timeout} }) at ${at} resolved at ${resolvedAt}`);
    }
  }

  // Everything settled, and the guard holds nothing.
  for (const record of pending) {
    if (record.result === undefined) problems.push("a stop() or close() never settled");
    else if (!record.result.ok)
      problems.push(`stop/close rejected: ${String(record.result.error)}`);
  }
  if (new Set(finished).size !== finished.length) problems.push("a turn finished twice");
  if (finished.length !== invocations.length) {
    problems.push(`${invocations.length} turns started, ${finished.length} finished`);
  }
  if (guard.activeCount !== 0) problems.push(`activeCount ${guard.activeCount} after close`);
  if (store.keyCount !== 0) problems.push(`store.keyCount ${store.keyCount} after close`);
  if (store.pendingTotal !== 0)
    problems.push(`store.pendingTotal ${store.pendingTotal} after close`);

  if (problems.length > 0) throw new Error(problems.join("\n"));
}

describe("property: random interleavings keep G1, G2 and G3", () => {
  it("no overlap per key, FIFO per key, and every input ends exactly once", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        useFakeTimers();
        try {
          await check(scenario);
        } finally {
          vi.useRealTimers();
        }
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 1_000) },
    );
  });
});
