// === Option checks every adapter shares
//
// An adapter validates its own options at creation, before its guard exists, with a `TypeError`
// that names where, the option, what was expected and what was given — the way `createGuard` does
// for the core options. These are those checks, written once.

/** A value as a misuse message shows it: strings quoted, objects by kind, never their contents. */
export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "function") return "a function";
  if (value === null) return "null";
  if (typeof value === "object") return Array.isArray(value) ? "an array" : "an object";
  return String(value);
}

/**
 * The checks of one adapter factory, each throwing a `TypeError` that starts with `where`.
 *
 * @example
 * ```ts
 * const check = new OptionChecks("slackGuard");
 * check.flag("awaitTurn", awaitTurn);
 * check.fn("key", key, "(args) => string | undefined");
 * ```
 */
export class OptionChecks {
  readonly where: string;

  constructor(where: string) {
    this.where = where;
  }

  /** A TypeError in this factory's voice. */
  error(message: string): TypeError {
    return new TypeError(`${this.where}: ${message}`);
  }

  /** The options argument itself: an object. */
  object(options: unknown): void {
    if (typeof options !== "object" || options === null) {
      throw this.error(`options must be an object, got ${describe(options)}.`);
    }
  }

  /** `true` or `false`. */
  flag(name: string, value: unknown): void {
    if (typeof value !== "boolean") {
      throw this.error(`"${name}" must be true or false, got ${describe(value)}.`);
    }
  }

  /** A function of the given shape, or `undefined`. */
  fn(name: string, value: unknown, shape: string): void {
    if (value !== undefined && typeof value !== "function") {
      throw this.error(`"${name}" must be a function ${shape}, got ${describe(value)}.`);
    }
  }

  /** An array of non-empty strings (`[]` turns the feature off). */
  words(name: string, value: unknown, example: string): string[] {
    if (!Array.isArray(value) || value.some((w) => typeof w !== "string" || w.trim() === "")) {
      throw this.error(
        `"${name}" must be an array of non-empty strings, e.g. ${example} ([] turns it off), got ${describe(value)}.`,
      );
    }
    return value as string[];
  }

  /** An integer number of ms from 0 up to (not including) `below`. */
  ms(name: string, value: unknown, below = Number.POSITIVE_INFINITY, why = ""): number {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value >= below) {
      const range =
        below === Number.POSITIVE_INFINITY ? "0 or more" : `from 0 to less than ${below}${why}`;
      throw this.error(
        `"${name}" must be an integer number of ms ${range}, got ${describe(value)}.`,
      );
    }
    return value;
  }

  /** The framework object a shared store needs, checked by the method the adapter calls on it. */
  framework(name: string, value: unknown, methods: readonly string[], what: string): void {
    if (value === undefined) return;
    const record = value as Record<string, unknown> | null;
    if (
      typeof value !== "object" ||
      record === null ||
      methods.some((m) => typeof record[m] !== "function")
    ) {
      throw this.error(`"${name}" must be ${what}, got ${describe(value)}.`);
    }
  }
}

/** True for a store whose inputs travel between replicas (`redisStore`). */
export function isShared(store: unknown): boolean {
  return (store as { shared?: unknown } | undefined)?.shared === true;
}

/** What every adapter's options have: the key function, `awaitTurn`, `onError`, a store. */
interface CommonOptions {
  readonly key?: unknown;
  readonly awaitTurn?: unknown;
  readonly onError?: unknown;
  readonly store?: unknown;
}

/**
 * Check the options every adapter has (the options object, `key`, `awaitTurn`, `onError`); answers
 * the checks for the adapter's own, `awaitTurn` with its default, and whether the store is shared.
 */
export function commonOptions(
  where: string,
  options: CommonOptions,
  keyShape: string,
): { check: OptionChecks; awaitTurn: boolean; shared: boolean } {
  const check = new OptionChecks(where);
  check.object(options);
  const { awaitTurn = false } = options;
  check.flag("awaitTurn", awaitTurn);
  check.fn("onError", options.onError, "(error, info) => void");
  check.fn("key", options.key, keyShape);
  return { check, awaitTurn: awaitTurn as boolean, shared: isShared(options.store) };
}

/** Stop words as they are compared: trimmed, lower case. */
export function stopWords(words: readonly string[]): ReadonlySet<string> {
  return new Set(words.map((word) => word.trim().toLowerCase()));
}
