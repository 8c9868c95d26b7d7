// Option validation: wrong values fail loudly at createGuard; submit never throws synchronously.

import { createGuard, type GuardOptions, memoryStore } from "session-guard";
import { describe, expect, it, vi } from "vitest";

/** Calls createGuard and returns the TypeError it throws (fails the test if it does not). */
function creationError(options: unknown): TypeError {
  let caught: unknown;
  try {
    createGuard(options as GuardOptions<unknown>);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(TypeError);
  return caught as TypeError;
}

// [option, wrong value, what the message must say is expected, how it must describe the value]
const WRONG: [string, unknown, RegExp, string][] = [
  ["mode", "fast", /"collect", "queue", "steer", "interrupt", "latest", "reject"/, '"fast"'],
  ["mode", null, /"collect"/, "null"],
  ["maxPending", -1, /integer of at least 0 or Infinity/, "-1"],
  ["maxPending", 1.5, /integer of at least 0 or Infinity/, "1.5"],
  ["maxPending", "10", /integer of at least 0 or Infinity/, '"10"'],
  ["maxPending", Number.NaN, /integer of at least 0 or Infinity/, "NaN"],
  ["overflow", "drop-all", /"drop-oldest", "drop-newest"/, '"drop-all"'],
  ["maxPendingTotal", -5, /integer of at least 0 or Infinity/, "-5"],
  ["maxPendingTotal", Number.NEGATIVE_INFINITY, /integer of at least 0 or Infinity/, "-Infinity"],
  ["pendingTtl", 0, /integer of at least 1 or Infinity/, "0"],
  ["pendingTtl", "1h", /integer of at least 1 or Infinity/, '"1h"'],
  ["settle", -1, /integer of at least 0/, "-1"],
  ["settle", Number.POSITIVE_INFINITY, /integer of at least 0/, "Infinity"],
  ["dedupe", 0, /integer of at least 1 or Infinity/, "0"],
  ["dedupe", true, /integer of at least 1 or Infinity/, "true"],
  ["turnTimeout", 0, /integer of at least 1 or Infinity/, "0"],
  ["turnTimeout", "15m", /integer of at least 1 or Infinity/, '"15m"'],
  ["onStuck", "kill", /"wait", "abandon"/, '"kill"'],
  ["concurrency", 0, /integer of at least 1 or Infinity/, "0"],
  ["concurrency", 2.5, /integer of at least 1 or Infinity/, "2.5"],
  ["store", {}, /a store such as memoryStore\(\)/, "an object"],
  ["store", "redis", /a store such as memoryStore\(\)/, '"redis"'],
  ["awaitTurn", "yes", /true or false/, '"yes"'],
  ["awaitTurn", 1, /true or false/, "1"],
  ["handler", 42, /a function/, "42"],
  ["onError", "log", /a function/, '"log"'],
  ["onDrop", {}, /a function/, "an object"],
  ["onDrop", [], /a function/, "an array"],
];

describe("createGuard option validation", () => {
  it.each(WRONG)(
    "%s = %o throws a TypeError naming it, the expectation and the value",
    (name, value, expected, got) => {
      const error = creationError({ [name]: value });
      expect(error.message).toContain(`"${name}"`);
      expect(error.message).toMatch(expected);
      expect(error.message).toContain(`got ${got}`);
      expect(error.message.startsWith("createGuard:")).toBe(true);
    },
  );

  it("tells that dedupe can be turned off with false", () => {
    expect(creationError({ dedupe: 0 }).message).toMatch(/false/);
    expect(creationError({ dedupe: -1 }).message).toMatch(/false/);
  });

  it("a store missing one operation is refused", () => {
    // Every operation of the seam but `forget`.
    const store = memoryStore();
    const incomplete = {
      shared: false,
      acquireOrEnqueue: store.acquireOrEnqueue.bind(store),
      renew: store.renew.bind(store),
      take: store.take.bind(store),
      finish: store.finish.bind(store),
      abandon: store.abandon.bind(store),
      clear: store.clear.bind(store),
      withdraw: store.withdraw.bind(store),
      pendingCount: store.pendingCount.bind(store),
    };
    expect(creationError({ store: incomplete }).message).toMatch(/"store"/);
    expect(() => createGuard({ store: { ...incomplete, forget: () => {} } })).not.toThrow();
  });

  it("unknown option names are refused, with the known ones listed", () => {
    const error = creationError({ modes: "queue" });
    expect(error.message).toContain('"modes"');
    expect(error.message).toMatch(/unknown option/);
    expect(error.message).toMatch(/Known options: mode, maxPending/);
    expect(creationError({ timeout: 5 }).message).toContain('"timeout"');
  });

  it("options that are not an object are refused", () => {
    expect(creationError(null).message).toMatch(/options must be an object, got null/);
    expect(creationError("collect").message).toMatch(/options must be an object, got "collect"/);
    expect(creationError([]).message).toMatch(/options must be an object, got an array/);
    expect(creationError(5).message).toMatch(/got 5/);
  });

  it("accepts the defaults, spelled out or left out", () => {
    expect(() => createGuard()).not.toThrow();
    expect(() => createGuard({})).not.toThrow();
    expect(() =>
      createGuard({
        mode: "collect",
        maxPending: 100,
        overflow: "drop-oldest",
        maxPendingTotal: 10_000,
        pendingTtl: Number.POSITIVE_INFINITY,
        settle: 0,
        dedupe: 10 * 60_000,
        turnTimeout: 15 * 60_000,
        onStuck: "wait",
        concurrency: Number.POSITIVE_INFINITY,
        store: memoryStore(),
        awaitTurn: false,
        handler: () => {},
        onError: () => {},
        onDrop: () => {},
      }),
    ).not.toThrow();
    // `undefined` means "the default".
    expect(() =>
      createGuard({ mode: undefined, maxPending: undefined, store: undefined }),
    ).not.toThrow();
  });

  it("accepts every documented value", () => {
    for (const mode of ["collect", "queue", "steer", "interrupt", "latest", "reject"] as const) {
      expect(createGuard({ mode })).toBeDefined();
    }
    expect(() =>
      createGuard({
        maxPending: 0,
        overflow: "drop-newest",
        maxPendingTotal: Number.POSITIVE_INFINITY,
        pendingTtl: 1,
        settle: 25,
        dedupe: false,
        turnTimeout: Number.POSITIVE_INFINITY,
        onStuck: "abandon",
        concurrency: 1,
        awaitTurn: true,
      }),
    ).not.toThrow();
    expect(() =>
      createGuard({ maxPending: Number.POSITIVE_INFINITY, dedupe: Number.POSITIVE_INFINITY }),
    ).not.toThrow();
  });
});

describe("submit argument validation", () => {
  /** Calls submit, asserting it does not throw synchronously; returns its promise. */
  function submitSafely(call: () => Promise<unknown>): Promise<unknown> {
    let promise: Promise<unknown> | undefined;
    expect(() => {
      promise = call();
    }).not.toThrow();
    expect(promise).toBeInstanceOf(Promise);
    return promise as Promise<unknown>;
  }

  it.each<[string, unknown]>([
    ["empty", ""],
    ["number", 42],
    ["undefined", undefined],
    ["null", null],
    ["object", { chat: 1 }],
    ["symbol", Symbol("k")],
  ])("a bad key (%s) rejects with a TypeError naming key", async (_, key) => {
    const handler = vi.fn();
    const guard = createGuard();
    const promise = submitSafely(() => guard.submit(key as string, "input", handler));
    await expect(promise).rejects.toThrow(TypeError);
    await expect(promise).rejects.toThrow(/"key" must be a non-empty string/);
    await guard.onIdle();
    expect(handler).not.toHaveBeenCalled();
    expect(guard.activeCount).toBe(0);
  });

  it("a missing handler rejects with a TypeError saying how to register one", async () => {
    const guard = createGuard();
    const promise = submitSafely(() => guard.submit("k", "input"));
    await expect(promise).rejects.toThrow(TypeError);
    await expect(promise).rejects.toThrow(/createGuard\(\{ handler \}\)/);
    expect(guard.isBusy("k")).toBe(false);
  });

  it("a run that is not a function rejects with a TypeError", async () => {
    const guard = createGuard();
    const promise = submitSafely(() => guard.submit("k", "input", "run" as never));
    await expect(promise).rejects.toThrow(TypeError);
    expect(guard.isBusy("k")).toBe(false);
  });

  it.each<[string, unknown, RegExp]>([
    ["options not an object", "id-1", /options must be an object/],
    ["options null", null, /options must be an object/],
    ["numeric id", { id: 123 }, /"id" must be a string.*got number/],
    ["empty id", { id: "" }, /"id" must be a non-empty string, got "".*leave "id" out/],
    ["alone not boolean", { alone: "yes" }, /"alone" must be true or false, got string/],
    [
      "expiresAt not a number",
      { expiresAt: "soon" },
      /"expiresAt" must be epoch milliseconds .*got "soon"/,
    ],
    [
      "expiresAt NaN",
      { expiresAt: Number.NaN },
      /"expiresAt" must be epoch milliseconds .*got NaN/,
    ],
    ["awaitTurn not boolean", { awaitTurn: 1 }, /"awaitTurn" must be true or false, got number/],
  ])(
    "bad submit options (%s) reject with a TypeError and admit nothing",
    async (_, options, message) => {
      const handler = vi.fn();
      const guard = createGuard();
      const promise = submitSafely(() => guard.submit("k", "input", handler, options as never));
      await expect(promise).rejects.toThrow(TypeError);
      await expect(promise).rejects.toThrow(message);
      await guard.onIdle();
      expect(handler).not.toHaveBeenCalled();
      expect(guard.isBusy("k")).toBe(false);
      // The id of a refused input was not remembered: the same id is admitted afterwards.
      expect(await guard.submit("k", "input", handler, { id: "123" })).toBe("started");
    },
  );

  it("createGuard({ handler }) lets submit omit run; a run passed to submit wins", async () => {
    const seen: string[] = [];
    const guard = createGuard<string>({
      handler: (turn) => void seen.push(`handler ${turn.inputs.join()}`),
    });
    expect(await guard.submit("k", "a")).toBe("started");
    await guard.onIdle();
    expect(await guard.submit("k", "b", undefined, { id: "b" })).toBe("started");
    await guard.onIdle();
    expect(
      await guard.submit("k", "c", (turn) => void seen.push(`own ${turn.inputs.join()}`)),
    ).toBe("started");
    await guard.onIdle();
    expect(seen).toEqual(["handler a", "handler b", "own c"]);
  });

  it("lane arguments are validated the same way: rejects, never throws", async () => {
    const guard = createGuard();
    const fn = vi.fn();
    let promise: Promise<unknown> | undefined;
    expect(() => {
      promise = guard.run("", fn);
    }).not.toThrow();
    await expect(promise).rejects.toThrow(/"key" must be a non-empty string/);
    await expect(guard.run("k", "fn" as never)).rejects.toThrow(TypeError);
    await expect(guard.run("k", fn, { onBusy: "never" as never })).rejects.toThrow(
      /"onBusy" must be "wait", "skip" or "throw", got "never"/,
    );
    await expect(guard.run("k", fn, { waitTimeout: -1 })).rejects.toThrow(/"waitTimeout"/);
    expect(fn).not.toHaveBeenCalled();
  });
});
