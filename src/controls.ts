// === The guard's methods on an adapter's object
//
// Every adapter returns something framework-shaped (grammY middleware, Bolt middleware, a set of
// discord.js listener wrappers) that also carries the guard's control and observability methods, so
// users never need the core guard itself. This is that one piece, shared by the adapters.

import type { CloseOptions, CloseReport, Guard } from "./guard.js";

/** The guard's methods, as an adapter's returned object carries them. */
export interface GuardControls<I> {
  /** The core guard behind this adapter (shared with other adapters when given). */
  readonly guard: Guard<unknown>;
  /** Stop a key: abort its turn (reason `stopped`) and drop its pending input. */
  stop(key: string): Promise<boolean>;
  /** Close the guard: stop admitting, let running turns finish, abort at `timeout`. */
  close(options?: CloseOptions): Promise<CloseReport<I>>;
  /** True while the guard holds `key`. */
  isBusy(key: string): boolean;
  /** Inputs of `key` waiting behind its turn. */
  pendingCount(key: string): number;
  /** Keys the guard holds right now. */
  readonly activeCount: number;
  /** Resolves when the guard holds no key. */
  onIdle(): Promise<void>;
  /** Listen to a lifecycle event; returns the function that unsubscribes. */
  on: Guard<I>["on"];
}

/**
 * Give `target` the guard's methods (for adapters). `overrides` replaces `stop` or `close` where
 * the adapter has work of its own to do first (an album still gathering, a channel-wide stop).
 *
 * @example
 * ```ts
 * const middleware = (ctx, next) => …;
 * return withGuardControls(middleware, guard, { stop: stopWithAlbums });
 * ```
 */
export function withGuardControls<T extends object, I>(
  target: T,
  guard: Guard<I>,
  overrides: Partial<Pick<GuardControls<I>, "stop" | "close">> = {},
): T & GuardControls<I> {
  const controls = Object.assign(target, {
    guard: guard as Guard<unknown>,
    stop: overrides.stop ?? ((key: string) => guard.stop(key)),
    close: overrides.close ?? ((options?: CloseOptions) => guard.close(options)),
    isBusy: (key: string) => guard.isBusy(key),
    pendingCount: (key: string) => guard.pendingCount(key),
    onIdle: () => guard.onIdle(),
    on: guard.on.bind(guard) as Guard<I>["on"],
  });
  Object.defineProperty(controls, "activeCount", {
    get: () => guard.activeCount,
    enumerable: true,
  });
  return controls as T & GuardControls<I>;
}
