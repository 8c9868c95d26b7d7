// Helpers for the hardening tests (issue 12): fake timers that count their callbacks, a watch on
// process-level failures (unhandled rejections, uncaught exceptions, overflow warnings), a store
// that delegates to the memory store with some operations failing, and promise bookkeeping.

import { format } from "node:util";
import { type MemoryStore, memoryStore, type Store } from "session-guard";
import { vi } from "vitest";

/** Fake only the clock and timers: promise callbacks, queueMicrotask and setImmediate stay real. */
export function useFakeClock(): void {
  vi.useFakeTimers({
    toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"],
  });
}

/** Probes installed and not yet restored, newest last. */
const probes: (() => void)[] = [];

/**
 * Undo every `countTimerCallbacks` probe still installed. Call it in `afterEach` before
 * `vi.useRealTimers()`: the fake clock must find its own functions on the global when it uninstalls.
 */
export function restoreTimerProbes(): void {
  while (probes.length > 0) probes.pop()?.();
}

/**
 * Count the timer callbacks that fire (under fake timers; install after `useFakeClock`). A timer
 * re-armed in a loop because Node clamps delays above 2^31 − 1 ms to 1 ms shows up as a count in
 * the thousands after one fake second.
 */
export function countTimerCallbacks(): {
  readonly fired: number;
  /** Delays passed to setTimeout / setInterval, in call order. */
  readonly delays: readonly number[];
  restore(): void;
} {
  const setTimeoutBefore = globalThis.setTimeout;
  const setIntervalBefore = globalThis.setInterval;
  let fired = 0;
  const delays: number[] = [];
  const wrap =
    (original: typeof setTimeout) =>
    (callback: (...args: unknown[]) => void, delay?: number, ...args: unknown[]) => {
      delays.push(Number(delay ?? 0));
      return original(
        (...inner: unknown[]) => {
          fired++;
          callback(...inner);
        },
        delay,
        ...args,
      );
    };
  globalThis.setTimeout = wrap(setTimeoutBefore) as unknown as typeof setTimeout;
  globalThis.setInterval = wrap(
    setIntervalBefore as unknown as typeof setTimeout,
  ) as unknown as typeof setInterval;
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    globalThis.setTimeout = setTimeoutBefore;
    globalThis.setInterval = setIntervalBefore;
  };
  probes.push(restore);
  return {
    get fired() {
      return fired;
    },
    delays,
    restore,
  };
}

/**
 * Record process-level failures while a test runs: unhandled rejections, uncaught exceptions and
 * `TimeoutOverflowWarning`s. Call `stop()` at the end, after a macrotask (`macrotask()` in
 * helpers.ts), so Node has had the chance to report a rejection.
 */
export function watchProcess(): {
  readonly unhandled: unknown[];
  readonly uncaught: unknown[];
  readonly overflowWarnings: number;
  stop(): void;
} {
  const unhandled: unknown[] = [];
  const uncaught: unknown[] = [];
  let overflowWarnings = 0;
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  const onUncaught = (error: unknown) => void uncaught.push(error);
  const onWarning = (warning: Error) => {
    if (warning.name === "TimeoutOverflowWarning") overflowWarnings++;
  };
  process.on("unhandledRejection", onUnhandled);
  process.on("uncaughtException", onUncaught);
  process.on("warning", onWarning);
  return {
    unhandled,
    uncaught,
    get overflowWarnings() {
      return overflowWarnings;
    },
    stop() {
      process.off("unhandledRejection", onUnhandled);
      process.off("uncaughtException", onUncaught);
      process.off("warning", onWarning);
    },
  };
}

export type Outcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: unknown };

/** Watch a promise: `outcome` is undefined until it settles. Never leaves a rejection unhandled. */
export function watch<T>(promise: Promise<T>): { outcome: Outcome<T> | undefined } {
  const record: { outcome: Outcome<T> | undefined } = { outcome: undefined };
  promise.then(
    (value) => {
      record.outcome = { ok: true, value };
    },
    (error: unknown) => {
      record.outcome = { ok: false, error };
    },
  );
  return record;
}

/**
 * Call something that should return a promise, recording a synchronous throw as well: the
 * guard's methods must never throw synchronously, and a test must keep running if one does.
 */
export function callSafely<T>(call: () => Promise<T>): {
  readonly threw: unknown;
  readonly result: { outcome: Outcome<T> | undefined };
} {
  try {
    return { threw: undefined, result: watch(call()) };
  } catch (error) {
    return { threw: error ?? new Error("threw a nullish value"), result: { outcome: undefined } };
  }
}

/** Operations of `Store` a test may replace. */
type Overrides = Partial<Omit<Store, "shared">> & { lease?: number };

/**
 * A store object implementing the public `Store` interface by delegating to a memory store, with
 * some operations replaced (to make them fail). It offers no `claimOf`/`claims`, so the guard
 * keeps its own map of holders, as it does for a networked store.
 */
export function delegatingStore(
  overrides: Overrides = {},
  base: MemoryStore = memoryStore(),
): Store {
  const store: Store = {
    shared: false,
    acquireOrEnqueue: (key, entry, policy) => base.acquireOrEnqueue(key, entry, policy),
    renew: (key, claim) => base.renew(key, claim),
    take: (key, claim, batch) => base.take(key, claim, batch),
    finish: (key, claim, batch) => base.finish(key, claim, batch),
    abandon: (key, claim, requeue) => base.abandon(key, claim, requeue),
    clear: (key) => base.clear(key),
    withdraw: (key, id) => base.withdraw(key, id),
    forget: (key, ids) => base.forget(key, ids),
    pendingCount: (key) => base.pendingCount(key),
    expire: (key) => base.expire(key),
    ...overrides,
  };
  return store;
}

/** Spy on console.error without printing; `lines` are the calls as Node would print them. */
export function spyConsoleError(): { readonly lines: string[]; restore(): void } {
  const spy = vi.spyOn(console, "error").mockImplementation(() => {});
  return {
    get lines() {
      return spy.mock.calls.map((args) => format(...args));
    },
    restore: () => spy.mockRestore(),
  };
}

/** 2^31 ms: the first delay Node's timers cannot hold (they clamp it to 1 ms). */
export const OVERFLOW_MS = 2 ** 31;
export const SECOND = 1_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

/**
 * The message a refusal of a duration past the timers' limit must carry: the option's name and
 * the maximum.
 */
export const NAMES_MAXIMUM = /2147483647|2\s*\*\*\s*31|2\^31|maxim|at most|no more than|up to/i;
