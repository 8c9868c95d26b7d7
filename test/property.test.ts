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
//
// Both properties also choose the busy mode per input (issue 15: \`mode: "per-input"\`, a mode
// function answering each input's own random mode, which in the hostile property sometimes throws:
// its error must reach onError once and the input must still end exactly once), and edit and
// delete pending input by id (`replace`, `withdraw`, issue 14): the
// oracle then checks that a replaced input runs in its last replaced form, that a withdrawn one ends
// as a `withdrawn` drop (and only those), that an input said to be in its turn was handled there,
// that the `settled` event fired exactly once per input (none for a duplicate), and that
// `outcome(id)` agrees with how the input ended. The memory store's cap on remembered ids is
// sometimes tiny and the de-duplication window sometimes short: two inputs with one id that both
// ran must never have lived at once (a live input's id stays a duplicate).
//
// A second property ("hostile shapes", issue 12) adds what adversarial use found: handlers that
// return hostile thenables (a throwing `then`, a throwing `then` getter, double settling, never
// calling back), throwing listeners on random events (including `({ inputs }) => inputs[0].seq`,
// which throws for lanes), a throwing onDrop, handlers that await work on their own key (a lane or
// an awaited submit), durations past 2^31 − 1 ms, and user ids that look like the guard's own. Its
// oracle adds: a listener's or onDrop's error reaches onError exactly once and is never re-emitted
// as an `error` event; a call awaiting its own key settles by the turn's timeout at the latest;
// nothing fires early (lanes give up, input expires and close aborts only when due); timers do
// not spin; no unhandled rejection and no uncaught exception.

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
import { flush, macrotask } from "./support/helpers.js";
import { countTimerCallbacks, restoreTimerProbes, watchProcess } from "./support/hostile.js";

/** Fake only the clock and timeouts: promise callbacks and setImmediate stay real. */
function useFakeTimers(): void {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
}
const MODES: readonly Mode[] = ["collect", "queue", "steer", "interrupt", "latest", "reject"];

afterEach(() => {
  restoreTimerProbes();
  vi.useRealTimers();
});

interface Input {
  readonly seq: number;
  readonly key: string;
  /** With `mode: "per-input"`: the mode the guard's mode function answers ("throw": it throws). */
  readonly mode?: Mode | "throw";
  /** The revision: 0 as submitted, n after the n-th `replace` of the run. */
  readonly rev: number;
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
  /**
   * Hostile shapes only. `shape`: what the handler returns instead of its usual promise (when
   * `sync` is "none"). `self`: after its first pause, await work on its own key (a lane, or an
   * awaited submit).
   */
  readonly shape: Shape;
  readonly self: "none" | "run" | "submit";
}

type Shape =
  | "plain"
  | "thenable-throw"
  | "thenable-getter"
  | "thenable-double"
  | "thenable-late-throw"
  | "never";

const EVENTS = ["admitted", "queued", "started", "finished", "dropped", "error", "stuck"] as const;
type EventName = (typeof EVENTS)[number];

/** Epoch-ms offset of a submit's `expiresAt`: 30 days, past the timers' 2^31 − 1 ms limit. */
const THIRTY_DAYS = 30 * 86_400_000;

type Op =
  | {
      readonly op: "submit";
      readonly key: number;
      readonly id: string | undefined;
      readonly alone: boolean;
      readonly awaitTurn: boolean;
      /** Hostile shapes only: `expiresAt` 30 days ahead. */
      readonly expiresLate: boolean;
      readonly mode: Mode | "throw";
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
  | {
      readonly op: "revise";
      readonly key: number;
      readonly id: string;
      readonly kind: "replace" | "withdraw";
      /** Replace with `from`, deriving the new input from the pending one. */
      readonly derive: boolean;
    }
  | { readonly op: "advance"; readonly ms: number }
  | { readonly op: "flush" }
  | { readonly op: "close"; readonly timeout: number };

type Options = { readonly mode: Mode | "per-input" } & Required<
  Pick<
    GuardOptions<Input>,
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

/** Hostile shapes only: what throws besides handlers. */
interface Hostility {
  /** Events with a listener that throws on every call. */
  readonly throwing: readonly EventName[];
  /** An `error` listener reading `inputs[0].seq`, which throws for lanes and listener errors. */
  readonly readsInputs: boolean;
  /** onDrop throws after recording the drop. */
  readonly onDropThrows: boolean;
}

const PEACEFUL: Hostility = { throwing: [], readsInputs: false, onDropThrows: false };

interface Scenario {
  readonly keys: number;
  readonly options: Options;
  /** The memory store's cap on remembered ids: small ones push live inputs' records around. */
  readonly maxIds: number;
  readonly hostility: Hostility;
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
  shape: fc.constant("plain" as Shape),
  self: fc.constant("none" as const),
});

/** A handler's behaviour in the hostile property; `options` decides which shapes are safe. */
function hostileBehaviourArb(options: Options): fc.Arbitrary<Behaviour> {
  // A turn that never settles is released only by abandonment; one that awaits its own key only
  // by its timeout (at the latest). Both need a timeout the run reaches.
  const reachable = options.turnTimeout === 30 || options.turnTimeout === 100;
  const shapes: Shape[] = [
    "plain",
    "plain",
    "plain",
    "plain",
    "thenable-throw",
    "thenable-getter",
    "thenable-double",
    "thenable-late-throw",
  ];
  if (reachable && options.onStuck === "abandon") shapes.push("never");
  return fc.record({
    sync: fc.constantFrom("none", "none", "none", "none", "return", "throw"),
    ms: fc.constantFrom(0, 1, 5, 20, 60, 150),
    honour: fc.boolean(),
    fail: fc.boolean(),
    take: fc.boolean(),
    close: fc.integer({ min: 0, max: 150 }).map((n) => n === 0),
    shape: fc.constantFrom(...shapes),
    self: reachable
      ? fc.constantFrom("none" as const, "none" as const, "none" as const, "run", "submit")
      : fc.constant("none" as const),
  });
}

const optionsArb: fc.Arbitrary<Options> = fc.record({
  mode: fc.constantFrom<Mode | "per-input">(...MODES, "per-input", "per-input"),
  settle: fc.constantFrom(0, 0, 10, 30),
  turnTimeout: fc.constantFrom(INF, 30, 100),
  onStuck: fc.constantFrom("wait" as const, "abandon" as const),
  concurrency: fc.constantFrom(INF, 1, 2),
  maxPending: fc.constantFrom(100, 1, 2),
  overflow: fc.constantFrom("drop-oldest" as const, "drop-newest" as const),
  maxPendingTotal: fc.constantFrom(10_000, 3),
  pendingTtl: fc.constantFrom(INF, 5, 40),
  dedupe: fc.constantFrom(600_000 as number | false, false, 15),
});
const maxIdsArb = fc.constantFrom(100_000, 100_000, 2, 5);

const IDS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"];
/** User ids that look like the ids a guard might give its lanes (the first lanes of a guard). */
const LANE_LIKE_IDS = [1, 2, 3, 4, 5, 6].map((n) => `\u0000lane:${n}`);

function opArb(keys: number, hostile?: Options): fc.Arbitrary<Op> {
  const key = fc.integer({ min: 0, max: keys - 1 });
  const behaviour = hostile === undefined ? behaviourArb : hostileBehaviourArb(hostile);
  const ids = hostile === undefined ? IDS : [...IDS.slice(0, 3), ...LANE_LIKE_IDS];
  const waitTimeouts = hostile === undefined ? [INF, 0, 15, 80] : [INF, 0, 15, 15, 80, 2 ** 31];
  const onBusy: ("wait" | "skip" | "throw")[] =
    hostile === undefined ? ["wait", "skip", "throw"] : ["wait", "wait", "wait", "skip", "throw"];
  return fc.oneof(
    {
      weight: 30,
      arbitrary: fc.record({
        op: fc.constant("submit" as const),
        key,
        id: fc.option(fc.constantFrom(...ids), { nil: undefined, freq: hostile ? 4 : 2 }),
        alone: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
        awaitTurn: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
        expiresLate:
          hostile === undefined
            ? fc.constant(false)
            : fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
        mode: fc.constantFrom<Mode | "throw">(
          ...MODES,
          ...(hostile === undefined ? [] : (["throw"] as const)),
        ),
        behaviour,
      }),
    },
    {
      weight: hostile === undefined ? 6 : 9,
      arbitrary: fc.record({
        op: fc.constant("lane" as const),
        key,
        onBusy: fc.constantFrom(...onBusy),
        waitTimeout: fc.constantFrom(...waitTimeouts),
        behaviour,
      }),
    },
    { weight: 5, arbitrary: fc.record({ op: fc.constant("stop" as const), key }) },
    {
      weight: 6,
      arbitrary: fc.record({
        op: fc.constant("revise" as const),
        key,
        id: fc.constantFrom(...ids),
        kind: fc.constantFrom("replace" as const, "withdraw" as const),
        // A replacement given as is, or derived from the pending input (`from`).
        derive: fc.boolean(),
      }),
    },
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
        timeout:
          hostile === undefined
            ? fc.constantFrom(0, 20, 100, INF)
            : fc.constantFrom(0, 20, 100, INF, 2 ** 31),
      }),
    },
  );
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.integer({ min: 2, max: 4 }).chain((keys) =>
  fc.record({
    keys: fc.constant(keys),
    options: optionsArb,
    maxIds: maxIdsArb,
    hostility: fc.constant(PEACEFUL),
    ops: fc.array(opArb(keys), { minLength: 1, maxLength: 60, size: "medium" }),
    finalTimeout: fc.constantFrom(0, 50, 1_000, INF),
  }),
);

/** Options with durations past the timers' limit mixed in. */
const hostileOptionsArb: fc.Arbitrary<Options> = fc.record({
  mode: fc.constantFrom<Mode | "per-input">(...MODES, "per-input", "per-input"),
  settle: fc.constantFrom(0, 0, 10, 30),
  turnTimeout: fc.constantFrom(INF, 30, 100, 100, 2 ** 31),
  onStuck: fc.constantFrom("wait" as const, "abandon" as const),
  concurrency: fc.constantFrom(INF, 1, 1, 2),
  maxPending: fc.constantFrom(100, 1, 2),
  overflow: fc.constantFrom("drop-oldest" as const, "drop-newest" as const),
  maxPendingTotal: fc.constantFrom(10_000, 3),
  pendingTtl: fc.constantFrom(INF, 5, 40, 2 ** 32),
  dedupe: fc.constantFrom(600_000 as number | false, false, 2 ** 31),
});

const hostilityArb: fc.Arbitrary<Hostility> = fc.record({
  throwing: fc.subarray([...EVENTS], { minLength: 0, maxLength: 3 }),
  readsInputs: fc.boolean(),
  onDropThrows: fc.boolean(),
});

const hostileScenarioArb: fc.Arbitrary<Scenario> = fc
  .tuple(fc.integer({ min: 2, max: 4 }), hostileOptionsArb)
  .chain(([keys, options]) =>
    fc.record({
      keys: fc.constant(keys),
      options: fc.constant(options),
      maxIds: maxIdsArb,
      hostility: hostilityArb,
      ops: fc.array(opArb(keys, options), { minLength: 1, maxLength: 60, size: "medium" }),
      finalTimeout: fc.constantFrom(0, 50, 1_000, INF, 2 ** 31),
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
  /** Fake time of the submit, and the `expiresAt` it passed (if any). */
  readonly at: number;
  readonly expiresAt: number | undefined;
  result?: Settled<string>;
}

interface LaneRecord {
  readonly seq: number;
  readonly key: string;
  readonly token: string;
  /** Fake time of the call, and its waitTimeout. */
  readonly at: number;
  readonly waitTimeout: number;
  ran: boolean;
  result?: Settled<unknown>;
  settledAt?: number;
}

interface Invocation {
  readonly key: string;
  readonly fence: number;
  readonly turn: Turn<Input>;
  readonly lane: LaneRecord | undefined;
  /** Fake time at which the handler was called. */
  readonly startedAt: number;
  /** The handler returned a thenable that never calls back: no `finished` event will come. */
  never: boolean;
}

/** A handler's call that awaits work on its own key (hostile shapes). */
interface SelfAwait {
  readonly invocation: Invocation;
  readonly calledAt: number;
  settledAt?: number;
}

/** The error a call awaiting its own key from inside its turn settles with. */
function isCycleError(error: unknown): boolean {
  return (
    error instanceof Error &&
    !(error instanceof TurnAbortedError) &&
    /cycle|own key|its own|awaits? (work on )?(its|the) own/i.test(error.message)
  );
}

/** Timer callbacks per run above which a timer is taken to be re-armed in a loop. */
const SPINNING = 5_000;

const DROP_WHEN_ADMITTED = new Set([
  "stopped",
  "superseded",
  "overflow",
  "shutdown",
  "expired",
  "withdrawn",
]);
const DROP_AT_SUBMIT = new Set(["busy", "overflow", "shutdown", "duplicate"]);

async function check(scenario: Scenario): Promise<void> {
  const { options, ops, finalTimeout, hostility, maxIds } = scenario;
  const keyName = (index: number) => `k${index}`;
  const problems: string[] = [];
  const store = memoryStore({ maxIds });
  const drops: Drop<Input>[] = [];
  const dropAt = new Map<Drop<Input>, number>();
  const errors: { error: unknown; key: string; fence: number | undefined }[] = [];
  /** Errors thrown by listeners and onDrop: each must reach onError exactly once. */
  const listenerErrors = new Set<unknown>();
  const onDropErrors = new Set<unknown>();
  /** Errors a handler threw after its thenable had resolved: ignored, like a promise does. */
  const ignored = new Set<unknown>();
  const errorEvents: unknown[] = [];
  const selfAwaits: SelfAwait[] = [];
  const process = watchProcess();
  const timers = countTimerCallbacks();
  /** Errors a mode function threw: each reaches onError once and its input is not lost. */
  const modeErrors = new Set<unknown>();
  const guard = createGuard<Input>({
    ...options,
    mode:
      options.mode === "per-input"
        ? (input) => {
            if (input.mode !== "throw") return input.mode ?? "collect";
            const error = new Error(`mode function failed for input ${input.seq}`);
            modeErrors.add(error);
            throw error;
          }
        : options.mode,
    store,
    onDrop: (drop) => {
      drops.push(drop);
      dropAt.set(drop, Date.now());
      if (hostility.onDropThrows) {
        const error = new Error(`onDrop failed for input ${drop.input.seq}`);
        onDropErrors.add(error);
        throw error;
      }
    },
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
  /** Revisions asked for: the input (by seq), what was asked and the answer. */
  const revisions: {
    seq: number | undefined;
    key: string;
    id: string;
    kind: "replace" | "withdraw";
    rev: number;
    result?: Settled<string>;
  }[] = [];
  let rev = 0;
  const settledCount = new Map<number, number>(); // seq → settled events
  /** The input last admitted with an id, by key and id: what a revision of that id addresses. */
  const admittedIds = new Map<string, Input>();
  guard.on("admitted", ({ key, id, input }) => {
    if (id !== undefined) admittedIds.set(`${key}\n${id}`, input);
  });
  /** Order of events: when each input was submitted and when it ended (the settled event). */
  let clock = 0;
  const submittedAt = new Map<number, number>(); // seq → clock
  const endedAt = new Map<number, number>(); // seq → clock
  guard.on("settled", ({ input }) => {
    settledCount.set(input.seq, (settledCount.get(input.seq) ?? 0) + 1);
    endedAt.set(input.seq, ++clock);
  });

  guard.on("error", ({ error }) => void errorEvents.push(error));
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
  // Hostile listeners, registered after the oracle's own so that those see every event.
  for (const event of hostility.throwing) {
    guard.on(event, () => {
      const error = new Error(`${event} listener failed`);
      listenerErrors.add(error);
      throw error;
    });
  }
  if (hostility.readsInputs) {
    guard.on("error", ({ inputs }) => {
      try {
        return (inputs[0] as Input).seq;
      } catch (error) {
        listenerErrors.add(error);
        throw error;
      }
    });
  }

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
        never: false,
      };
      invocations.push(invocation);
      if (lane !== undefined) lane.ran = true;
      turn.signal.addEventListener("abort", () => {
        const reason: unknown = turn.signal.reason;
        if (reason instanceof TurnTimeoutError && reason.abandoned) running.delete(turn.fence);
        // close({ timeout }) aborts running turns at its deadline, never before.
        if (reason instanceof TurnAbortedError && reason.code === "shutdown") {
          const call = closeCall;
          if (call === undefined || Date.now() < call.at + call.timeout) {
            problems.push(
              `close: turn ${turn.fence} aborted at ${Date.now()}, before the deadline of close(${call?.timeout}) at ${call?.at}`,
            );
          }
        }
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
      switch (behaviour.shape) {
        case "thenable-throw": {
          const error = fail("thenable then");
          return {
            // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
            then() {
              throw error;
            },
          };
        }
        case "thenable-getter": {
          const error = fail("thenable getter");
          return {
            // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
            get then() {
              throw error;
            },
          };
        }
        case "thenable-double": {
          const error = fail("thenable double");
          return {
            // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
            then(resolve: (value: unknown) => void, reject: (reason: unknown) => void) {
              setTimeout(() => {
                reject(error);
                resolve(token);
                reject(new Error("second rejection"));
              }, behaviour.ms);
            },
          };
        }
        case "thenable-late-throw": {
          const error = new Error(`thrown after resolving in turn ${turn.fence}`);
          ignored.add(error);
          return {
            // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
            then(resolve: (value: unknown) => void) {
              resolve(token);
              throw error;
            },
          };
        }
        case "never":
          invocation.never = true;
          // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
          return { then() {} };
        case "plain":
          break;
      }
      const signal = behaviour.honour ? turn.signal : undefined;
      return (async () => {
        await pause(behaviour.ms, signal);
        if (behaviour.self !== "none") await awaitOwnKey(invocation, behaviour.self);
        if (behaviour.take) {
          await turn.take();
          await pause(behaviour.ms, signal);
        }
        if (behaviour.fail) throw fail("async");
        return token;
      })();
    };

  const submitInput = (
    key: string,
    behaviour: Behaviour,
    options: { id?: string; alone?: boolean; awaitTurn: boolean; expiresAt?: number },
    mode?: Mode | "throw",
  ): Promise<string> => {
    const input: Input = { seq: ++seq, key, rev: 0, ...(mode === undefined ? {} : { mode }) };
    const record: SubmitRecord = {
      input,
      id: options.id,
      awaitTurn: options.awaitTurn,
      at: Date.now(),
      expiresAt: options.expiresAt,
    };
    submits.push(record);
    submittedAt.set(input.seq, ++clock);
    let promise: Promise<string>;
    try {
      promise = guard.submit(key, input, makeRun(behaviour), options);
    } catch (error) {
      problems.push(`G4: submit of input ${input.seq} threw synchronously: ${String(error)}`);
      promise = Promise.reject(error);
    }
    settleInto(promise, record);
    return promise;
  };
  const runLane = (
    key: string,
    behaviour: Behaviour,
    options: { onBusy: "wait" | "skip" | "throw"; waitTimeout: number },
  ): Promise<unknown> => {
    const record: LaneRecord = {
      seq: ++seq,
      key,
      token: `lane-${seq}`,
      at: Date.now(),
      waitTimeout: options.onBusy === "wait" ? options.waitTimeout : 0,
      ran: false,
    };
    lanes.push(record);
    let promise: Promise<unknown>;
    try {
      promise = guard.run(key, makeRun(behaviour, record), options);
    } catch (error) {
      problems.push(`run of lane ${record.seq} threw synchronously: ${String(error)}`);
      promise = Promise.reject(error);
    }
    settleInto(promise, record);
    const settled = () => void (record.settledAt = Date.now());
    promise.then(settled, settled);
    return promise;
  };
  /** From inside a turn, after an await: wait for work on the turn's own key. */
  async function awaitOwnKey(invocation: Invocation, how: "run" | "submit"): Promise<void> {
    const record: SelfAwait = { invocation, calledAt: Date.now() };
    selfAwaits.push(record);
    const inner: Behaviour = { ...QUICK, ms: 1 };
    const key = invocation.key;
    const call =
      how === "run"
        ? runLane(key, inner, { onBusy: "wait", waitTimeout: INF })
        : submitInput(key, inner, { awaitTurn: true });
    await call.then(
      () => void (record.settledAt = Date.now()),
      () => void (record.settledAt = Date.now()),
    );
  }

  for (const op of ops) {
    switch (op.op) {
      case "submit": {
        submitInput(
          keyName(op.key),
          op.behaviour,
          {
            id: op.id,
            alone: op.alone,
            awaitTurn: op.awaitTurn,
            ...(op.expiresLate ? { expiresAt: Date.now() + THIRTY_DAYS } : {}),
          },
          op.mode,
        );
        break;
      }
      case "lane": {
        runLane(keyName(op.key), op.behaviour, {
          onBusy: op.onBusy,
          waitTimeout: op.waitTimeout,
        });
        break;
      }
      case "revise": {
        // Without de-duplication two live inputs may share an id: which one a revision finds is
        // not the oracle's to know.
        if (options.dedupe === false) break;
        const key = keyName(op.key);
        const target = admittedIds.get(`${key}\n${op.id}`);
        const record: (typeof revisions)[number] = {
          seq: target?.seq,
          key,
          id: op.id,
          kind: op.kind,
          rev: ++rev,
        };
        revisions.push(record);
        const input: Input = {
          seq: target?.seq ?? -1,
          key,
          rev: record.rev,
          ...(target?.mode === undefined ? {} : { mode: target.mode }),
        };
        const derived = op.derive ? { from: (held: Input) => ({ ...held, rev: input.rev }) } : {};
        settleInto(
          op.kind === "replace"
            ? guard.replace(key, op.id, input, derived)
            : guard.withdraw(key, op.id),
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
  await macrotask();
  await flush();
  process.stop();
  timers.restore();

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
  const handledRev = new Map<number, number>(); // seq → the revision its turn ran
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
        handledRev.set(input.seq, input.rev);
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
      else if (times !== 1 && !isCycleError(result.error)) {
        problems.push(`awaited submit of ${where} rejected, not handled: ${String(result.error)}`);
      }
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
    if (!submits.some((s) => s.input.seq === drop.input.seq))
      problems.push("G3: a drop of no input");
  }

  // Revisions (issue 14). A pending input runs in its last replaced form; only a withdrawal that
  // answered "withdrawn" drops an input as withdrawn; "in-turn" means its turn ran it.
  const lastReplaced = new Map<number, number>(); // seq → rev of the last "replaced"
  const withdrawn = new Set<number>();
  for (const revision of revisions) {
    const result = revision.result;
    if (result === undefined || !result.ok) {
      problems.push(
        `${revision.kind}(${revision.id}) did not resolve: ${String(result && !result.ok ? result.error : "pending")}`,
      );
      continue;
    }
    const answer = result.value;
    const allowed =
      revision.kind === "replace"
        ? ["replaced", "in-turn", "ended", "unknown"]
        : ["withdrawn", "in-turn", "ended", "unknown"];
    if (!allowed.includes(answer)) problems.push(`${revision.kind} answered ${answer}`);
    const target = revision.seq;
    if (target === undefined) {
      // Never admitted: unknown, or ended if an input with that id was dropped at the door.
      const submitted = submits.some((r) => r.id === revision.id && r.input.key === revision.key);
      if (answer !== "unknown" && !(submitted && answer === "ended")) {
        problems.push(`${revision.kind} of a never-admitted id: ${answer}`);
      }
      continue;
    }
    if (answer === "replaced") lastReplaced.set(target, revision.rev);
    if (answer === "withdrawn") {
      if (withdrawn.has(target)) problems.push(`input ${target} withdrawn twice`);
      withdrawn.add(target);
    }
    if (answer === "in-turn" && handled.get(target) !== 1) {
      problems.push(`input ${target}: "in-turn" but its turn did not run it`);
    }
  }
  for (const drop of drops) {
    const seq = drop.input.seq;
    if ((drop.reason === "withdrawn") !== withdrawn.has(seq)) {
      problems.push(`input ${seq} dropped as ${drop.reason}; withdrawn: ${withdrawn.has(seq)}`);
    }
  }
  for (const [seq, revision] of lastReplaced) {
    const ran = handledRev.get(seq);
    if (ran !== undefined && ran !== revision) {
      problems.push(`input ${seq} ran as revision ${ran}, last replaced as ${revision}`);
    }
  }
  // One settled event per input; none for a duplicate (the same input again).
  for (const { input } of submits) {
    const duplicate = (dropped.get(input.seq) ?? []).some((d) => d.reason === "duplicate");
    const times = settledCount.get(input.seq) ?? 0;
    if (times !== (duplicate ? 0 : 1)) {
      problems.push(`input ${input.seq}: settled ${times}× (duplicate: ${duplicate})`);
    }
  }
  // An id stays a duplicate while its input lives: two inputs with one id that both ran (with
  // de-duplication on) never lived at once, whatever the window and the cap on remembered ids.
  if (options.dedupe !== false) {
    const lives = new Map<string, [number, number, number][]>(); // id → [from, to, seq] of ran inputs
    for (const { input, id } of submits) {
      if (id === undefined || handled.get(input.seq) !== 1) continue;
      const from = submittedAt.get(input.seq) as number;
      const to = endedAt.get(input.seq) ?? Number.POSITIVE_INFINITY;
      for (const [otherFrom, otherTo, other] of lives.get(id) ?? []) {
        if (from < otherTo && otherFrom < to) {
          problems.push(
            `id ${id}: inputs ${other} and ${input.seq} both ran, one admitted while the other lived`,
          );
        }
      }
      lives.set(id, [...(lives.get(id) ?? []), [from, to, input.seq]]);
    }
  }

  // outcome(id) agrees with how an input submitted with that id ended. Ids are unique within the
  // de-duplication window, but an id may come back: after a failed awaited turn forgot it, or at
  // the door of a closed guard, which drops before it looks for duplicates (and leaves the record
  // of the input that was admitted). Without de-duplication two inputs may share an id and a record.
  // A short window or a small cap may have let a final record go (an input never live then).
  const forgetful =
    maxIds < 100_000 || (typeof options.dedupe === "number" && options.dedupe < 1_000);
  if (options.dedupe !== false) {
    for (const id of new Set(submits.map((s) => s.id))) {
      if (id === undefined) continue;
      const outcome = await guard.outcome(id);
      if (outcome === undefined && forgetful) continue;
      const agrees = submits.some((record) => {
        if (record.id !== id || record.input.key !== outcome?.key) return false;
        const drop = (dropped.get(record.input.seq) ?? [])[0];
        if (drop?.reason === "duplicate") return false;
        if (drop !== undefined)
          return outcome.state === "dropped" && outcome.reason === drop.reason;
        return handled.get(record.input.seq) === 1 && /^(handled|failed)$/.test(outcome.state);
      });
      if (!agrees)
        problems.push(`outcome(${id}) = ${JSON.stringify(outcome)} agrees with no input`);
    }
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
      : result.error instanceof ContendedError ||
        result.error instanceof DroppedError ||
        isCycleError(result.error);
    // A lane gives up waiting at its waitTimeout, never before.
    if (!result.ok && result.error instanceof ContendedError && lane.settledAt !== undefined) {
      if (lane.settledAt - lane.at < lane.waitTimeout) {
        problems.push(
          `lane ${lane.seq} gave up after ${lane.settledAt - lane.at} ms (waitTimeout ${lane.waitTimeout})`,
        );
      }
    }
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

  // Listener and onDrop errors: reported to onError once each; a listener's never becomes an
  // `error` event (which is how a throwing error listener recursed). A thenable's error thrown
  // after it resolved is ignored, as a promise ignores it.
  for (const error of [...listenerErrors, ...onDropErrors, ...modeErrors]) {
    const reports = errors.filter((e) => e.error === error).length;
    if (reports !== 1) problems.push(`${String(error)} reached onError ${reports}×`);
  }
  const reEmitted = errorEvents.filter((e) => listenerErrors.has(e)).length;
  if (reEmitted > 0) problems.push(`${reEmitted} listener error(s) re-emitted as error events`);
  for (const error of ignored) {
    if (errors.some((e) => e.error === error)) problems.push(`reported: ${String(error)}`);
  }

  // A call awaiting its own key from inside its turn settles by the turn's timeout at the latest
  // (at once when made later), unless the guard began to close first. Under "abandon" the key is
  // released at the timeout, and the call may then simply run.
  if (options.onStuck === "wait") {
    for (const { invocation, calledAt, settledAt } of selfAwaits) {
      const due = Math.max(invocation.startedAt + options.turnTimeout, calledAt);
      const closing = closeCall !== undefined && closeCall.at <= due;
      if (!closing && (settledAt === undefined || settledAt > due)) {
        problems.push(
          `turn ${invocation.fence} of ${invocation.key} awaited its own key at ${calledAt}: settled at ${settledAt}, due by ${due}`,
        );
      }
    }
  }

  // Nothing expires early: an input dropped as expired was due.
  for (const drop of drops) {
    if (drop.reason !== "expired") continue;
    const record = submits.find((s) => s.input === drop.input);
    if (record === undefined) continue;
    const due = Math.min(record.expiresAt ?? INF, record.at + options.pendingTtl);
    const at = dropAt.get(drop) ?? 0;
    if (at < due) problems.push(`input ${drop.input.seq} expired at ${at}, due at ${due}`);
  }

  if (timers.fired > SPINNING) problems.push(`${timers.fired} timer callbacks: a timer spins`);
  // Node fires a timer of more than 2^31 − 1 ms after 1 ms (and warns): it fires early or spins.
  const overflowing = timers.delays.filter((delay) => delay > 2 ** 31 - 1);
  if (overflowing.length > 0) {
    problems.push(
      `${overflowing.length} timer(s) armed past 2^31 − 1 ms (${overflowing[0]} ms): Node fires them after 1 ms`,
    );
  }
  if (process.unhandled.length > 0) {
    problems.push(`unhandled rejection: ${process.unhandled.map(String).join("; ")}`);
  }
  if (process.uncaught.length > 0) {
    problems.push(`uncaught exception: ${process.uncaught.map(String).join("; ")}`);
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
  const settling = invocations.filter((i) => !i.never);
  const finishedOnce = new Set(finished);
  if (finished.length > invocations.length || settling.some((i) => !finishedOnce.has(i.fence))) {
    problems.push(`${settling.length} settling turns started, ${finished.length} finished`);
  }
  if (guard.activeCount !== 0) problems.push(`activeCount ${guard.activeCount} after close`);
  if (store.keyCount !== 0) problems.push(`store.keyCount ${store.keyCount} after close`);
  if (store.pendingTotal !== 0)
    problems.push(`store.pendingTotal ${store.pendingTotal} after close`);

  if (problems.length > 0) throw new Error(problems.join("\n"));
}

/** The inner work of a call awaiting its own key: quick and well-behaved. */
const QUICK: Behaviour = {
  sync: "none",
  ms: 1,
  honour: false,
  fail: false,
  take: false,
  close: false,
  shape: "plain",
  self: "none",
};

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

describe("property: hostile shapes keep G1, G2, G3, G5 and G7 (issue 12)", () => {
  it("thenables, throwing listeners, own-key awaits, huge durations and lane-like ids", async () => {
    await fc.assert(
      fc.asyncProperty(hostileScenarioArb, async (scenario) => {
        useFakeTimers();
        try {
          await check(scenario);
        } finally {
          restoreTimerProbes();
          vi.useRealTimers();
        }
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 1_000) },
    );
  });
});
