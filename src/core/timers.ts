// === Timers of any length
//
// Node fires a `setTimeout` longer than 2^31 − 1 ms (about 24.8 days) after 1 ms, with a warning.
// Every duration the guard accepts behaves as its number says: a longer one is a chain of maximal
// timers, re-armed for what is left. One handle object per timer, and only off the hot path
// (settle windows, waits, shutdown, expiry).

/** The longest delay Node's `setTimeout` honours. */
export const MAX_DELAY = 2 ** 31 - 1;

/** A timer that may outlast `MAX_DELAY`; cancel it with `cancel`. */
export interface LongTimer {
  /** The current link of the chain. */
  handle: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Call `fn` after `ms` (clamped at 0, `Infinity` never). `unref`: the timer does not keep the
 * process alive on its own.
 */
export function schedule(fn: () => void, ms: number, unref = false): LongTimer {
  const timer: LongTimer = { handle: undefined };
  if (ms === Number.POSITIVE_INFINITY) return timer;
  const arm = (left: number): void => {
    const step = Math.min(Math.max(0, left), MAX_DELAY);
    timer.handle = setTimeout(step === left || left <= 0 ? fn : () => arm(left - step), step);
    if (unref) timer.handle.unref?.();
  };
  arm(ms);
  return timer;
}

/** Cancel a timer from `schedule`; `undefined` is fine. */
export function cancel(timer: LongTimer | undefined): void {
  if (timer?.handle === undefined) return;
  clearTimeout(timer.handle);
  timer.handle = undefined;
}
