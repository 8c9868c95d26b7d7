// === Checks at the door: keys, ids and per-call options
//
// Options of `createGuard` are checked once (`options.ts`); these are the checks of each call. A
// wrong argument is a TypeError that says how to fix it, returned rather than thrown so that the
// caller can reject its promise (the guard's methods never throw synchronously).

import { describe } from "./options.js";
import type { CloseOptions, StopOptions, SubmitOptions } from "./types.js";

/** `String.prototype.isWellFormed` (ES2024, in Node 20), which the project's lib does not type. */
const wellFormed = (text: string): boolean =>
  (text as unknown as { isWellFormed(): boolean }).isWellFormed();

/**
 * A key must be a non-empty, well-formed string: a lone UTF-16 surrogate cannot be stored as
 * UTF-8 (a shared store would merge `"a\uD800"` and `"a\uDBFF"` into one key).
 */
export function checkKey(where: string, key: unknown, namespace?: unknown): TypeError | undefined {
  if (typeof key === "string" && key !== "" && wellFormed(key)) {
    if (typeof namespace !== "string" || key.startsWith(namespace)) return undefined;
    return new TypeError(
      `${where}: the key ${JSON.stringify(key)} is outside this guard's namespace ${JSON.stringify(namespace)}: build keys under it, or change "namespace".`,
    );
  }
  if (typeof key === "string" && key !== "") {
    return new TypeError(
      `${where}: "key" must be well-formed text, got ${JSON.stringify(key)} with a lone UTF-16 surrogate (a cut emoji?). Build keys from whole characters.`,
    );
  }
  return new TypeError(
    `${where}: "key" must be a non-empty string such as a chat id, got ${key === "" ? '"" (an empty string)' : describe(key)}.`,
  );
}

/** An id (of an input or a stop command): a well-formed string. */
function checkId(where: string, id: unknown): TypeError | undefined {
  if (id === undefined) return undefined;
  if (typeof id !== "string") {
    return new TypeError(
      `${where}: "id" must be a string (convert numeric ids with String(id)), got ${typeof id}.`,
    );
  }
  if (id === "") {
    // One empty id for every input without one would make each a duplicate of the first.
    return new TypeError(
      `${where}: "id" must be a non-empty string, got "" (an empty string); leave "id" out for an input that has none.`,
    );
  }
  if (!wellFormed(id)) {
    return new TypeError(
      `${where}: "id" must be well-formed text, got ${JSON.stringify(id)} with a lone UTF-16 surrogate.`,
    );
  }
  return undefined;
}

/** The id of `replace`, `withdraw` and `outcome`: required, a non-empty well-formed string. */
export function checkRequiredId(where: string, id: unknown): TypeError | undefined {
  if (id === undefined || id === "") {
    return new TypeError(
      `${where}: "id" must be the id the input was submitted with (a non-empty string), got ${id === "" ? '"" (an empty string)' : "undefined"}.`,
    );
  }
  return checkId(where, id);
}

/**
 * Unknown option names: a typo such as `awaitturn` must not pass silently. Checked on every
 * submit, so it walks the own names with `for…in` (V8 answers it from the shape's enum cache)
 * rather than `Object.keys`, which allocates an array per call.
 */
function checkNames(
  where: string,
  options: object,
  known: readonly string[],
): TypeError | undefined {
  for (const name in options) {
    if (Object.hasOwn(options, name) && !known.includes(name)) {
      return new TypeError(
        `${where}: unknown option ${JSON.stringify(name)}. Known options: ${known.join(", ")}.`,
      );
    }
  }
  return undefined;
}

function notObject(where: string, options: unknown, example: string): TypeError | undefined {
  if (typeof options === "object" && options !== null && !Array.isArray(options)) return undefined;
  return new TypeError(
    `${where}: options must be an object such as ${example}, got ${describe(options)}.`,
  );
}

const SUBMIT_OPTIONS = [
  "id",
  "alone",
  "expiresAt",
  "awaitTurn",
  "group",
  "settle",
  "onDrop",
] as const;

export function checkSubmitOptions(options: SubmitOptions<unknown>): TypeError | undefined {
  const where = "submit";
  const problem =
    notObject(where, options, "{ id: String(update.update_id) }") ??
    checkNames(where, options, SUBMIT_OPTIONS) ??
    checkId(where, options.id);
  if (problem !== undefined) return problem;
  const { alone, expiresAt, awaitTurn, group, settle, onDrop } = options;
  if (alone !== undefined && typeof alone !== "boolean") {
    return new TypeError(`submit: "alone" must be true or false, got ${typeof alone}.`);
  }
  if (expiresAt !== undefined && (typeof expiresAt !== "number" || Number.isNaN(expiresAt))) {
    return new TypeError(
      `submit: "expiresAt" must be epoch milliseconds (a number such as Date.now() + 60_000), got ${describe(expiresAt)}.`,
    );
  }
  if (awaitTurn !== undefined && typeof awaitTurn !== "boolean") {
    return new TypeError(`submit: "awaitTurn" must be true or false, got ${typeof awaitTurn}.`);
  }
  if (group !== undefined && (typeof group !== "string" || group === "" || !wellFormed(group))) {
    return new TypeError(
      `submit: "group" must be a non-empty, well-formed string such as \`album:\${media_group_id}\`, got ${describe(group)}.`,
    );
  }
  if (settle !== undefined) {
    if (group === undefined) {
      return new TypeError(
        `submit: "settle" goes with "group" (the quiet ms that end the group's window).`,
      );
    }
    if (!(typeof settle === "number" && Number.isInteger(settle) && settle >= 0)) {
      return new TypeError(
        `submit: "settle" must be an integer of at least 0 (ms), got ${describe(settle)}.`,
      );
    }
  }
  if (onDrop !== undefined && typeof onDrop !== "function") {
    return new TypeError(
      `submit: "onDrop" must be a function (drop) => void, got ${describe(onDrop)}.`,
    );
  }
  return undefined;
}

export function checkStopOptions(
  where: string,
  options: StopOptions | undefined,
): TypeError | undefined {
  if (options === undefined) return undefined;
  return (
    notObject(where, options, "{ id: commandId }") ??
    checkNames(where, options, ["id"]) ??
    checkId(where, options.id)
  );
}

/** `close` options, answering the timeout (default 10 s). */
export function checkCloseOptions(options: CloseOptions | undefined): TypeError | number {
  if (options === undefined) return 10_000;
  const problem =
    notObject("close", options, "{ timeout: 10_000 }") ?? checkNames("close", options, ["timeout"]);
  if (problem !== undefined) return problem;
  const { timeout = 10_000 } = options;
  if (
    !(
      typeof timeout === "number" &&
      timeout >= 0 &&
      (Number.isInteger(timeout) || timeout === Number.POSITIVE_INFINITY)
    )
  ) {
    return new TypeError(
      `close: "timeout" must be an integer number of ms (0 or more) or Infinity, got ${describe(timeout)}.`,
    );
  }
  return timeout;
}

const REPLACE_OPTIONS = ["from"];

/** The options of `replace`: only `from`, a function. */
export function checkReplaceOptions(options: unknown): TypeError | undefined {
  if (options === undefined) return undefined;
  const prototype =
    typeof options === "object" && options !== null ? Object.getPrototypeOf(options) : undefined;
  if (prototype !== Object.prototype && prototype !== null) {
    return new TypeError(
      `replace: options must be a plain object such as { from: (pending) => … }, got ${describe(options)}.`,
    );
  }
  const unknown = checkNames("replace", options as object, REPLACE_OPTIONS);
  if (unknown !== undefined) return unknown;
  const from = (options as { from?: unknown }).from;
  if (from !== undefined && typeof from !== "function") {
    return new TypeError(
      `replace: "from" must be a function (pending) => newInput, got ${from === null ? "null" : typeof from}.`,
    );
  }
  return undefined;
}
