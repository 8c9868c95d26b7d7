// === What every adapter shares: its guard, and the guard's methods on its object
//
// An adapter takes the core options (and creates its guard) or a shared guard, routes errors it
// meets outside a turn, and returns something framework-shaped (grammY middleware, Bolt
// middleware, a set of discord.js listener wrappers) that also carries the guard's control and
// observability methods. These are those pieces, written once for all adapters.

import {
  type CloseOptions,
  type CloseReport,
  createGuard,
  type ErrorInfo,
  type Guard,
  type GuardOptions,
} from "session-guard";

/** Options every adapter accepts besides its own: the core options, or a shared guard. */
export interface AdapterOptions<I> extends GuardOptions<I> {
  /** Share an existing core guard; core options then belong to `createGuard`, not here. */
  guard?: Guard<unknown>;
}

/** An adapter's guard, and where the adapter's own errors go. */
export interface AdapterGuard<I> {
  readonly guard: Guard<I>;
  /**
   * Report an error met outside a turn (a throwing `key` function, a failed stop): to the
   * adapter's `onError` when it was given beside a shared guard, else to the guard's.
   */
  reportError(error: unknown, key: string, input?: I): void;
}

/**
 * The guard of an adapter: the shared `options.guard`, or one created from the options that are
 * not the adapter's own (`adapterOptions`), with `defaults` (such as the adapter's error log line)
 * underneath. With a shared guard, only the adapter's own options and `onError` may be given:
 * anything else configures the shared guard and throws a `TypeError` saying so.
 *
 * @example
 * ```ts
 * const { guard, reportError } = adapterGuard("myGuard", options, MY_OPTIONS, { onError: logLine });
 * ```
 */
export function adapterGuard<I>(
  where: string,
  options: AdapterOptions<I>,
  adapterOptions: ReadonlySet<string>,
  defaults: GuardOptions<I>,
): AdapterGuard<I> {
  const shared = options.guard;
  let guard: Guard<I>;
  if (shared !== undefined) {
    if (typeof shared !== "object" || shared === null || typeof shared.submit !== "function") {
      throw new TypeError(`${where}: "guard" must be a guard from createGuard().`);
    }
    const core = Object.keys(options).filter(
      (name) => !adapterOptions.has(name) && name !== "onError",
    );
    if (core.length > 0) {
      throw new TypeError(
        `${where}: ${core.map((n) => `"${n}"`).join(", ")} configure the shared guard; pass them to createGuard() or omit "guard".`,
      );
    }
    guard = shared as Guard<I>;
  } else {
    const core: GuardOptions<I> = { ...defaults };
    for (const [name, value] of Object.entries(options)) {
      if (!adapterOptions.has(name) && value !== undefined) {
        (core as Record<string, unknown>)[name] = value;
      }
    }
    guard = createGuard<I>(core);
  }
  const onError = shared === undefined ? undefined : options.onError;
  const reportError = (error: unknown, key: string, input?: I): void => {
    const inputs = input === undefined ? [] : [input];
    if (onError === undefined) {
      guard.reportError(error, { key, inputs });
      return;
    }
    try {
      onError(error, { key, inputs, fence: undefined } satisfies ErrorInfo<I>);
    } catch (thrown) {
      console.error(`session-guard (${where}): onError threw:`, thrown, error);
    }
  };
  return { guard, reportError };
}

/** The guard's methods, as an adapter's returned object carries them. */
export interface GuardControls<I> {
  /** The core guard behind this adapter (shared with other adapters when given). */
  readonly guard: Guard<unknown>;
  /**
   * Stop a key: abort its turn (reason `stopped`) wherever it runs and drop its pending input.
   * With `{ id }` (the stop command's platform id) a redelivery of the same stop stops nothing.
   */
  stop: Guard<I>["stop"];
  /** Stop every key that starts with `prefix` (a channel and its threads), on every replica. */
  stopWhere: Guard<I>["stopWhere"];
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
 * Give `target` (the adapter's middleware or wrapper set) the guard's methods.
 *
 * @example
 * ```ts
 * const middleware = (ctx, next) => …;
 * return withGuardControls(middleware, guard);
 * ```
 */
export function withGuardControls<T extends object, I>(
  target: T,
  guard: Guard<I>,
): T & GuardControls<I> {
  const controls = Object.assign(target, {
    guard: guard as Guard<unknown>,
    stop: guard.stop.bind(guard),
    stopWhere: guard.stopWhere.bind(guard),
    close: (options?: CloseOptions) => guard.close(options),
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
