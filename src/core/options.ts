// === Options: defaults and validation
//
// Options are checked once, when the guard is created. A wrong value throws a TypeError naming the
// option, what it expects and what it got, so the fix is in the message.

import type { Store, StoreEntry } from "../stores/store.js";
import { type DropReason, isA, StoreError, StoreRecoveredError } from "./errors.js";
import type { ModeFunction } from "./mode-choice.js";
import { MODES, type Mode } from "./modes.js";
import type { Turn } from "./turn.js";

/**
 * Runs one turn; its return value (or rejection) settles the turn. `input` is the input whose
 * `run` this is, the latest of the turn (in collect mode every coalesced input is in
 * `turn.inputs`, oldest first, and `input` is the last): one function can then serve every input.
 */
export type Handler<I> = (turn: Turn<I>, input: I) => unknown;

/** Context given to `onError`. */
export interface ErrorInfo<I> {
  /** The key of the failed turn (or of the input, for an error outside a turn). */
  readonly key: string;
  /** The inputs of the failed turn, oldest first. */
  readonly inputs: readonly I[];
  /** The fence of the failed turn; undefined for an error outside a turn. */
  readonly fence: number | undefined;
}

/** An input that ended without being handled, as given to `onDrop`. */
export interface Drop<I> {
  /** The key the input was admitted under. */
  readonly key: string;
  /** The input (adapters: the framework object where this process has it, else its payload). */
  readonly input: I;
  /** The input's de-duplication id, if it had one. */
  readonly id: string | undefined;
  /** Why it was dropped. */
  readonly reason: DropReason;
}

/**
 * How inputs travel between processes through a shared store: `encode` turns an input into a
 * JSON-able value, `decode` rebuilds the input on the process that runs its turn. Adapters bring
 * their own; the default accepts plain JSON data (objects, arrays, strings, numbers, booleans,
 * null) and refuses anything else.
 */
export interface Codec<I> {
  /** The input as a JSON-able value; throw for an input that cannot travel. */
  encode(input: I): unknown;
  /** The input again, from what `encode` returned (on any process). */
  decode(data: unknown): I;
}

/** Options of `createGuard()`. Every one is optional; the values shown are the defaults. */
export interface GuardOptions<I> {
  /**
   * What happens to input that arrives while its key's turn runs. Default `"collect"`. A function
   * chooses per input, from the input and its key's state, when the key is busy: see `ModeState`
   * and the README's "Busy modes" for what a mix of modes on one key means. If it throws, the error
   * goes to `onError` and the input is admitted as `"collect"`.
   *
   * @example
   * ```ts
   * createGuard<Message>({
   *   mode: (message, { pending }) =>
   *     message.mentionsBot ? "interrupt" : pending >= 50 ? "reject" : pending >= 10 ? "latest" : "collect",
   * });
   * ```
   */
  mode?: Mode | ModeFunction<I>;
  /** Pending inputs kept per key. Default 100. */
  maxPending?: number;
  /** At `maxPending`: drop the oldest pending input or the new one. Default `"drop-oldest"`. */
  overflow?: "drop-oldest" | "drop-newest";
  /**
   * Pending inputs kept across all keys; past it new input is dropped. Default 10,000. Counted per
   * process by the memory store; a shared store (Redis) caps each key (`maxPending`) but not the
   * total, which lives in Redis' memory.
   */
  maxPendingTotal?: number;
  /** Ms after which pending input is dropped (`expired`) instead of run. Default `Infinity`. */
  pendingTtl?: number;
  /** Ms to wait after an idle key's first input before its turn starts (bursts, albums). Default 0. */
  settle?: number;
  /** Ms during which an input id seen before is dropped (`duplicate`); `false` = off. Default 10 min. */
  dedupe?: number | false;
  /** Ms after which a turn's signal is aborted and the turn reported. Default 15 min. */
  turnTimeout?: number;
  /** After `turnTimeout`: keep the key until the turn settles, or release it. Default `"wait"`. */
  onStuck?: "wait" | "abandon";
  /**
   * Bytes of carried work (`turn.carry`, as JSON text) kept per key: a carry past it throws a
   * `CarryTooLargeError`. Default 65,536 (64 KiB).
   */
  maxCarry?: number;
  /** Turns running at once across all keys. Default `Infinity`. */
  concurrency?: number;
  /** Where claims and pending input live. Default `memoryStore()`. */
  store?: Store;
  /**
   * Make `submit` resolve only once the input's turn has settled, and reject with the turn's
   * error. For serverless hosts and tests. Default `false`: turns run detached.
   */
  awaitTurn?: boolean;
  /**
   * Runs turns whose inputs came with no `run` function of their own — for example inputs admitted
   * by another replica. Adapters register theirs here. Required with a shared store.
   */
  handler?: Handler<I>;
  /**
   * Serializes inputs for a shared store (see `Codec`). Ignored by the memory store. Default:
   * plain JSON data only; an input that cannot be serialized is refused with a TypeError.
   */
  codec?: Codec<I>;
  /**
   * The prefix of every key this guard admits, e.g. `tg:<bot id>:`. With a shared store, this
   * guard then takes over (after a crash or a hand-over) only keys under it: two bots or guards
   * that share a store prefix never run each other's keys. A function is read at each takeover
   * (a bot that learns its id later); while it answers `undefined` nothing is taken over. A key
   * outside a string namespace is refused at `submit`. Adapters set it. Default: every key.
   */
  namespace?: string | (() => string | undefined);
  /** Receives every error of a turn (the thrown value, unwrapped). Default: a log line. */
  onError?: (error: unknown, info: ErrorInfo<I>) => void;
  /** Receives every input that ended without being handled. Default: nothing (see the events). */
  onDrop?: (drop: Drop<I>) => void;
}

/** Options after defaults, as the guard uses them. */
export interface ResolvedOptions<I> {
  readonly mode: Mode | ModeFunction<I>;
  readonly maxPending: number;
  readonly overflow: "drop-oldest" | "drop-newest";
  readonly maxPendingTotal: number;
  readonly pendingTtl: number;
  readonly settle: number;
  readonly dedupe: number;
  readonly turnTimeout: number;
  readonly maxCarry: number;
  readonly onStuck: "wait" | "abandon";
  readonly concurrency: number;
  readonly store: Store<StoreEntry>;
  readonly awaitTurn: boolean;
  readonly handler: Handler<I> | undefined;
  readonly codec: Codec<I> | undefined;
  readonly namespace: string | (() => string | undefined) | undefined;
  readonly onError: (error: unknown, info: ErrorInfo<I>) => void;
  readonly onDrop: ((drop: Drop<I>) => void) | undefined;
}

const KNOWN = new Set([
  "mode",
  "maxPending",
  "overflow",
  "maxPendingTotal",
  "pendingTtl",
  "settle",
  "dedupe",
  "turnTimeout",
  "maxCarry",
  "onStuck",
  "concurrency",
  "store",
  "awaitTurn",
  "handler",
  "codec",
  "namespace",
  "onError",
  "onDrop",
]);

/**
 * The default `onError`: one clear line per error, saying what failed — a turn, the store (and
 * which operation), or something outside a turn — never an unhandled rejection.
 */
export function logError(error: unknown, info: ErrorInfo<unknown>): void {
  const key = info.key === "" ? "" : ` for key "${info.key}"`;
  let what: string;
  if (info.fence !== undefined) {
    what = `the turn${key} (fence ${info.fence}) with ${info.inputs.length} input(s) failed:`;
  } else if (isA(error, StoreRecoveredError)) {
    what = "the store recovered:";
  } else if (isA(error, StoreError)) {
    what = `the store's ${error.operation} failed${key}:`;
  } else {
    const inputs = info.inputs.length === 0 ? "" : ` with ${info.inputs.length} input(s)`;
    what = `error${key}${inputs} outside a turn:`;
  }
  console.error(`session-guard: ${what}`, error);
}

/** A value as an error message shows it: strings quoted, objects by kind. */
export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "function") return "a function";
  if (value === null) return "null";
  if (typeof value === "object") {
    if (Array.isArray(value)) return "an array";
    const prototype = Object.getPrototypeOf(value);
    // A plain object is "an object"; any other names its class (a Map, a Date).
    if (prototype === Object.prototype || prototype === null) return "an object";
    return `a ${(value as object).constructor?.name ?? "non-plain"} object`;
  }
  return String(value);
}

/** Throws the TypeError of one option. */
export function invalid(where: string, name: string, expected: string, got: unknown): never {
  throw new TypeError(`${where}: "${name}" must be ${expected}, got ${describe(got)}.`);
}

/** Checks a duration or count option: a number ≥ min, `Infinity` allowed when `infinite`. */
export function checkNumber(
  where: string,
  name: string,
  value: unknown,
  min: number,
  infinite: boolean,
): number {
  const ok =
    typeof value === "number" &&
    value >= min &&
    (Number.isInteger(value) || (infinite && value === Number.POSITIVE_INFINITY));
  if (!ok) {
    invalid(where, name, `an integer of at least ${min}${infinite ? " or Infinity" : ""}`, value);
  }
  return value as number;
}

function checkChoice<T extends string>(
  where: string,
  name: string,
  value: unknown,
  choices: readonly T[],
): T {
  if (!choices.includes(value as T)) {
    invalid(where, name, `one of ${choices.map((c) => JSON.stringify(c)).join(", ")}`, value);
  }
  return value as T;
}

function checkFunction<F>(where: string, name: string, value: unknown): F | undefined {
  if (value !== undefined && typeof value !== "function") invalid(where, name, "a function", value);
  return value as F | undefined;
}

function isStore(value: unknown): value is Store {
  const store = value as Partial<Record<keyof Store, unknown>> | null;
  return (
    typeof store === "object" &&
    store !== null &&
    typeof store.acquireOrEnqueue === "function" &&
    typeof store.finish === "function" &&
    typeof store.take === "function" &&
    typeof store.renew === "function" &&
    typeof store.abandon === "function" &&
    typeof store.clear === "function" &&
    typeof store.withdraw === "function" &&
    typeof store.forget === "function" &&
    typeof store.pendingCount === "function"
  );
}

/** Validates `createGuard` options and fills in the defaults. */
export function resolveOptions<I>(
  options: GuardOptions<I> | undefined,
  defaultStore: () => Store,
): ResolvedOptions<I> {
  const where = "createGuard";
  if (options === undefined) options = {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`${where}: options must be an object, got ${describe(options)}.`);
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) {
      throw new TypeError(
        `${where}: unknown option "${name}". Known options: ${[...KNOWN].join(", ")}.`,
      );
    }
  }
  const {
    mode = "collect",
    maxPending = 100,
    overflow = "drop-oldest",
    maxPendingTotal = 10_000,
    pendingTtl = Number.POSITIVE_INFINITY,
    settle = 0,
    dedupe = 10 * 60_000,
    turnTimeout = 15 * 60_000,
    maxCarry = 65_536,
    onStuck = "wait",
    concurrency = Number.POSITIVE_INFINITY,
    store,
    awaitTurn = false,
    handler,
    codec,
    namespace,
    onError,
    onDrop,
  } = options;
  if (namespace !== undefined && typeof namespace !== "string" && typeof namespace !== "function") {
    invalid(
      where,
      "namespace",
      'a key prefix such as "tg:42:", or a function that answers one',
      namespace,
    );
  }
  if (store !== undefined && !isStore(store)) {
    invalid(where, "store", "a store such as memoryStore() or redisStore({ client })", store);
  }
  if (typeof awaitTurn !== "boolean") invalid(where, "awaitTurn", "true or false", awaitTurn);
  if (
    codec !== undefined &&
    (typeof codec !== "object" ||
      codec === null ||
      typeof codec.encode !== "function" ||
      typeof codec.decode !== "function")
  ) {
    invalid(where, "codec", "an object { encode(input), decode(data) }", codec);
  }
  if (store?.shared === true && typeof handler !== "function") {
    throw new TypeError(
      `${where}: a shared store needs "handler": the function that runs turns of inputs admitted by another replica (adapters register theirs).`,
    );
  }
  if (dedupe !== false) {
    const ok =
      typeof dedupe === "number" &&
      dedupe >= 1 &&
      (Number.isInteger(dedupe) || dedupe === Number.POSITIVE_INFINITY);
    // Name `false` too: it is how the window is turned off (0 is not).
    if (!ok)
      invalid(where, "dedupe", "an integer of at least 1 or Infinity, or false (off)", dedupe);
  }
  return {
    mode:
      typeof mode === "function"
        ? (mode as ModeFunction<I>)
        : checkChoice(where, "mode", mode, Object.keys(MODES) as Mode[]),
    maxPending: checkNumber(where, "maxPending", maxPending, 0, true),
    overflow: checkChoice(where, "overflow", overflow, ["drop-oldest", "drop-newest"] as const),
    maxPendingTotal: checkNumber(where, "maxPendingTotal", maxPendingTotal, 0, true),
    pendingTtl: checkNumber(where, "pendingTtl", pendingTtl, 1, true),
    settle: checkNumber(where, "settle", settle, 0, false),
    dedupe: dedupe === false ? 0 : dedupe,
    turnTimeout: checkNumber(where, "turnTimeout", turnTimeout, 1, true),
    maxCarry: checkNumber(where, "maxCarry", maxCarry, 0, true),
    onStuck: checkChoice(where, "onStuck", onStuck, ["wait", "abandon"] as const),
    concurrency: checkNumber(where, "concurrency", concurrency, 1, true),
    store: (store ?? defaultStore()) as Store<StoreEntry>,
    awaitTurn,
    handler: checkFunction<Handler<I>>(where, "handler", handler),
    codec,
    namespace,
    onError: checkFunction<ResolvedOptions<I>["onError"]>(where, "onError", onError) ?? logError,
    onDrop: checkFunction<ResolvedOptions<I>["onDrop"]>(where, "onDrop", onDrop),
  };
}
