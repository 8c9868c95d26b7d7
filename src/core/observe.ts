// === The observer seam: what an instrumentation sees beyond the events
//
// An instrumentation (`session-guard/otel`) needs a few facts the public events do not carry: how
// long each store call took and whether it failed, when and in which (trace) context each input was
// admitted here, and which keys the store took over on its own. A guard offers them through one
// method under a registered symbol, `guard[Symbol.for("session-guard.observe")](observer)`, so an
// instrumentation in another entry point reaches it without importing the core (it would bundle a
// second copy) and without a method users see. The core imports no telemetry package: an observer
// is plain functions, and what it answers (a trace context) is opaque here.
//
// Detached, the usual case, the seam costs nothing: the engine is untouched, and the one hook
// outside this file (a takeover, rare) is a WeakMap lookup. Attached, the guard reaches its store
// through a proxy that times every call that may do I/O, and each admission is stamped once, on
// the entry itself (an own property only instrumented guards' entries have: a WeakMap beside them
// cost more in garbage collection than everything else the instrumentation does).

import type { Store } from "../stores/store.js";
import type { Engine } from "./engine.js";
import type { Turn } from "./turn.js";

/** The key of the seam's method on a guard. Registered, so every copy of the package agrees. */
export const OBSERVE: unique symbol = Symbol.for("session-guard.observe") as never;

/** When an input (or lane) was first handed to the store here, and what `admitting` answered. */
export interface Admitted {
  /** `performance.now()` at admission. */
  readonly at: number;
  /** The observer's answer at admission (e.g. the active trace context). */
  readonly context: unknown;
}

/** What an instrumentation is told. Every function is called synchronously; a throw goes to `onError`. */
export interface GuardObserver {
  /**
   * A store call the guard made returned or settled: `operation` (`acquireOrEnqueue`, `finish`,
   * `renew`, …), its duration in ms, and the error when it failed (`failed`).
   */
  storeCall(operation: string, ms: number, failed: boolean, error: unknown): void;
  /**
   * An input or lane of `key` is about to be admitted here for the first time, in the admitting
   * call's synchronous part. The answer is kept with it and handed back at its turn's start.
   */
  admitting(key: string): unknown;
  /**
   * A turn's handler is about to run (right after the `started` event's other listeners). One
   * `Admitted` per entry of the turn that was admitted here (not those another replica admitted).
   */
  started(turn: Turn<unknown>, admitted: readonly Admitted[]): void;
  /** The store claimed `key` on its own: its holder died or handed it over (a shared store). */
  takenOver(key: string): void;
}

/** Store operations that may do I/O; the rest (`pendingCount`, `claimOf`, …) are not timed. */
const TIMED: ReadonlySet<PropertyKey> = new Set([
  "acquireOrEnqueue",
  "renew",
  "take",
  "finish",
  "abandon",
  "clear",
  "stop",
  "keys",
  "withdraw",
  "forget",
  "expire",
  "replace",
  "reviseRunning",
  "outcome",
  "carry",
]);

const observers = new WeakMap<object, GuardObserver>();

/** Where an entry keeps its admission stamp (a symbol: a store never serializes it). */
const ADMITTED = Symbol("admitted");
type Stamped = { [ADMITTED]?: Admitted };

/**
 * Attach `observer` to the guard's `engine`; answers the function that detaches it. One observer
 * per guard: a second one throws a `TypeError` until the first is detached.
 */
export function observe<I>(engine: Engine<I>, observer: GuardObserver): () => void {
  for (const name of ["storeCall", "admitting", "started", "takenOver"] as const) {
    if (typeof observer?.[name] !== "function") {
      throw new TypeError(`observe(observer): observer.${name} must be a function.`);
    }
  }
  if (observers.has(engine)) {
    throw new TypeError(
      "observe(observer): this guard is observed already (instrumented twice?). Call the function the first call returned before attaching another.",
    );
  }
  const writable = engine as unknown as { store: Store<never> };
  const original = writable.store;
  const proxy = timedStore(engine, original, observer);
  writable.store = proxy;
  observers.set(engine, observer);
  const off = engine.events.on("started", ({ key, fence }) => {
    // The turn about to run is its key's holder here (the engine emits just before its handler).
    const turn = engine.keys.get(key);
    if (turn === undefined || turn.fence !== fence) return;
    const admitted: Admitted[] = [];
    for (const entry of turn.entries as Stamped[]) {
      const stamp = entry[ADMITTED];
      if (stamp !== undefined) admitted.push(stamp);
    }
    observer.started(turn as Turn<unknown>, admitted);
  });
  let attached = true;
  return () => {
    if (!attached) return;
    attached = false;
    off();
    observers.delete(engine);
    if (writable.store === proxy) writable.store = original;
  };
}

/** The store took `key` over on its own: tell the observer, if one is attached. */
export function tookOver(engine: object, key: string): void {
  const observer = observers.get(engine);
  if (observer === undefined) return;
  try {
    observer.takenOver(key);
  } catch (error) {
    (engine as Engine<unknown>).report.listenerFailed(error, key);
  }
}

/** The store, through a proxy that times each I/O call and stamps each admission. */
function timedStore<I>(
  engine: Engine<I>,
  store: Store<never>,
  observer: GuardObserver,
): Store<never> {
  const tell = (operation: string, started: number, failed: boolean, error: unknown) => {
    try {
      observer.storeCall(operation, performance.now() - started, failed, error);
    } catch (thrown) {
      engine.report.listenerFailed(thrown, undefined);
    }
  };
  // Store operations take at most four arguments: a fixed arity spares an array per call.
  type Call = (a: unknown, b: unknown, c: unknown, d: unknown) => unknown;
  const timed =
    (operation: string, call: Call) =>
    (a: unknown, b: unknown, c: unknown, d: unknown): unknown => {
      const started = performance.now();
      if (operation === "acquireOrEnqueue") stamp(a as string, b as Stamped, started);
      let answer: unknown;
      try {
        answer = call.call(store, a, b, c, d);
      } catch (error) {
        tell(operation, started, true, error);
        throw error;
      }
      // A side branch: the engine keeps the very promise the store answered.
      if (answer instanceof Promise) {
        answer.then(
          () => tell(operation, started, false, undefined),
          (error: unknown) => tell(operation, started, true, error),
        );
      } else tell(operation, started, false, undefined);
      return answer;
    };
  /** Stamp an entry at its first admission (one given back later, by a late take, keeps it). */
  const stamp = (key: string, entry: Stamped, at: number) => {
    if (entry[ADMITTED] !== undefined) return;
    let context: unknown;
    try {
      context = observer.admitting(key);
    } catch (error) {
      engine.report.listenerFailed(error, key);
    }
    // The call's own start: one clock read fewer per input (they are not free on Node 20).
    entry[ADMITTED] = { at, context };
  };
  const methods = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, name) {
      // Read with the store as receiver: its getters and private fields see the store itself.
      const value: unknown = Reflect.get(target, name, target);
      if (typeof value !== "function") return value;
      let method = methods.get(name);
      if (method === undefined) {
        const fn = value as Call;
        method = TIMED.has(name) ? timed(String(name), fn) : fn.bind(target);
        methods.set(name, method);
      }
      return method;
    },
  });
}
