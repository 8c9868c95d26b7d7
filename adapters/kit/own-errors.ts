// === An adapter's own errors: one rule for every adapter
//
// Before an update reaches the guard, the adapter reads it with its own code and the user's hooks:
// the `key` function, `bypass`, the stop check, the fields of the update itself. When that throws
// (a key function that reads `ctx.from.id` on an anonymous admin's message, a malformed update,
// a key that is no string), the error is the adapter's, not the update's turn's:
//
// - it is reported to `onError` (the adapter's, else the guard's) with the update as the input;
// - the update is not run, neither as a turn nor unguarded past the guard (it might be the second
//   agent run on a chat the guard is there to prevent);
// - the framework never sees the error, so the bot keeps serving: grammY's `bot.start()` meets no
//   `BotError` (which stops polling without `bot.catch`), Bolt's `processEvent` resolves, a
//   discord.js listener never rejects (which would be an `'error'` event).
//
// Errors of the user's handlers and of the store stay where they were: a turn's error goes to
// `onError` through the guard; a refused admission (the store is down) reaches the framework, so
// the platform redelivers where it does.

/** What `classify` gives back when the adapter's own code threw (and was reported). */
export const SKIPPED: unique symbol = Symbol("session-guard: skipped");

/**
 * Run an adapter's own reading of an update: what `read(update)` returns, or `SKIPPED` once the
 * error it threw was handed to `report(error, update)` (which must not throw). Takes the update as
 * an argument so the hot path makes no closure per update.
 *
 * @example
 * ```ts
 * const plan = classify(planOf, ctx, reportOwn);
 * if (plan === SKIPPED) return; // reported; the update is not run
 * ```
 */
export function classify<A, T>(
  read: (update: A) => T,
  update: A,
  report: (error: unknown, update: A) => void,
): T | typeof SKIPPED {
  try {
    return read(update);
  } catch (error) {
    report(error, update);
    return SKIPPED;
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The key a user's `key` function returned, checked: a non-empty, well-formed string, or
 * `undefined` (the update then passes unguarded). Anything else throws a `TypeError` naming the
 * function, which `classify` reports.
 */
export function userKey(where: string, key: unknown): string | undefined {
  if (key === undefined) return undefined;
  if (typeof key !== "string" || key === "" || LONE_SURROGATE.test(key)) {
    const got =
      typeof key === "string"
        ? key === ""
          ? "an empty string"
          : `${JSON.stringify(key)} (a lone UTF-16 surrogate)`
        : key === null
          ? "null"
          : typeof key;
    throw new TypeError(
      `${where}: "key" must return a non-empty, well-formed string (or undefined to let the update through), got ${got}.`,
    );
  }
  return key;
}
