// The guarantees of DESIGN.md, one `describe` per guarantee (G1–G8), against the real guard and the
// real memory store. Timing-dependent cases use fake timers (setTimeout, clearTimeout and Date only,
// so promise callbacks still run); nothing here asserts wall-clock speed.

import {
  createGuard,
  type GuardEvents,
  memoryStore,
  type Turn,
  TurnAbortedError,
  TurnTimeoutError,
} from "session-guard";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type Deferred,
  deferred,
  dropRecorder,
  errorRecorder,
  flush,
  macrotask,
  track,
} from "./support/helpers.js";

/** Fake only the clock and timeouts: promise callbacks and setImmediate stay real. */
function useFakeTimers(): void {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
}

afterEach(() => {
  vi.useRealTimers();
});

/** The code of a turn's abort reason, or undefined when it is not a TurnAbortedError. */
function abortCode(signal: AbortSignal | undefined): string | undefined {
  const reason: unknown = signal?.reason;
  return reason instanceof TurnAbortedError ? reason.code : undefined;
}

describe("G1 Exclusive", () => {
  it("two inputs for one key in the same tick: the second is pending, never a second turn", async () => {
    const guard = createGuard<string>();
    const gate = deferred();
    const turns: string[][] = [];
    let running = 0;
    let maxRunning = 0;
    const handler = async (turn: Turn<string>) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      turns.push([...turn.inputs]);
      await gate.promise;
      running--;
    };
    const first = guard.submit("k", "a", handler);
    const second = guard.submit("k", "b", handler);
    // Claimed and queued synchronously, before anything was awaited.
    expect(guard.isBusy("k")).toBe(true);
    expect(guard.activeCount).toBe(1);
    expect(guard.pendingCount("k")).toBe(1);
    expect(await first).toBe("started");
    expect(await second).toBe("queued");
    await flush();
    expect(turns).toEqual([["a"]]);
    gate.resolve();
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["b"]]);
    expect(maxRunning).toBe(1);
    expect(guard.isBusy("k")).toBe(false);
  });

  it("input arriving while the first turn prepares is pending; another key runs in parallel", async () => {
    const guard = createGuard<string>();
    const preparation = deferred(); // transcription, vision, hooks… before the agent exists
    const log: string[] = [];
    let nested: Promise<string> | undefined;
    let signalA: AbortSignal | undefined;
    const handler = async (turn: Turn<string>) => {
      log.push(`start ${turn.key}:${turn.inputs.join(",")}`);
      if (turn.inputs[0] === "a1") {
        signalA = turn.signal;
        // Handler started, nothing awaited yet: a second message for the same chat arrives.
        nested = guard.submit("a", "a2", handler);
        await preparation.promise;
      }
      log.push(`end ${turn.key}:${turn.inputs.join(",")}`);
    };
    const first = guard.submit("a", "a1", handler);
    // The first turn is now inside its first await: more input for "a", and input for "b".
    const third = guard.submit("a", "a3", handler);
    const other = guard.submit("b", "b1", handler);
    expect(await first).toBe("started");
    expect(await nested).toBe("queued");
    expect(await third).toBe("queued");
    expect(await other).toBe("started");
    await flush();
    expect(log).toEqual(["start a:a1", "start b:b1", "end b:b1"]);
    expect(guard.isBusy("a")).toBe(true);
    expect(guard.pendingCount("a")).toBe(2);
    expect(signalA?.aborted).toBe(false);

    preparation.resolve();
    await guard.onIdle();
    expect(log).toEqual([
      "start a:a1",
      "start b:b1",
      "end b:b1",
      "end a:a1",
      "start a:a2,a3",
      "end a:a2,a3",
    ]);
  });

  it("interrupt mode: input during preparation waits as pending and runs next, never beside it", async () => {
    const drops = dropRecorder<string>();
    const guard = createGuard<string>({ mode: "interrupt", onDrop: drops.onDrop });
    const preparation = deferred();
    const log: string[] = [];
    let running = 0;
    const handler = async (turn: Turn<string>) => {
      running++;
      log.push(`start ${turn.inputs.join(",")} running=${running}`);
      if (turn.inputs[0] === "a1") await preparation.promise;
      log.push(`end ${turn.inputs.join(",")} ${abortCode(turn.signal) ?? "-"}`);
      running--;
    };
    expect(await guard.submit("a", "a1", handler)).toBe("started");
    expect(await guard.submit("a", "a2", handler)).toBe("queued");
    await flush();
    expect(log).toEqual(["start a1 running=1"]);
    preparation.resolve();
    await guard.onIdle();
    expect(log).toEqual([
      "start a1 running=1",
      "end a1 superseded",
      "start a2 running=1",
      "end a2 -",
    ]);
    expect(drops.drops).toEqual([]);
  });

  it("interrupt mode: input while a claimed turn waits to start never aborts it", async () => {
    useFakeTimers();
    const drops = dropRecorder<string>();
    const log: string[] = [];
    const gate = deferred();
    const handler = async (turn: Turn<string>) => {
      if (turn.key === "x") await gate.promise;
      log.push(`${turn.key}:${turn.inputs.join(",")}:${abortCode(turn.signal) ?? "-"}`);
    };
    // Claimed, waiting out the settle window.
    const settling = createGuard<string>({ mode: "interrupt", settle: 50, onDrop: drops.onDrop });
    expect(await settling.submit("a", "a1", handler)).toBe("started");
    await vi.advanceTimersByTimeAsync(20);
    expect(await settling.submit("a", "a2", handler)).toBe("queued");
    // Claimed, waiting for a concurrency slot that key "x" holds.
    const limited = createGuard<string>({
      mode: "interrupt",
      concurrency: 1,
      onDrop: drops.onDrop,
    });
    expect(await limited.submit("x", "x1", handler)).toBe("started");
    expect(await limited.submit("b", "b1", handler)).toBe("started");
    expect(await limited.submit("b", "b2", handler)).toBe("queued");
    await vi.advanceTimersByTimeAsync(30);
    gate.resolve();
    await Promise.all([settling.onIdle(), limited.onIdle()]);
    expect(log).toEqual(["a:a1,a2:-", "x:x1:-", "b:b1:-", "b:b2:-"]);
    expect(drops.drops).toEqual([]);
  });

  it("the key is claimed at admission, before the settle window; input during it joins the turn", async () => {
    useFakeTimers();
    const guard = createGuard<string>({ settle: 50 });
    const turns: string[][] = [];
    const handler = (turn: Turn<string>) => {
      turns.push([...turn.inputs]);
    };
    expect(await guard.submit("k", "a", handler)).toBe("started");
    expect(guard.isBusy("k")).toBe(true);
    await vi.advanceTimersByTimeAsync(30);
    expect(await guard.submit("k", "b", handler)).toBe("queued");
    expect(turns).toEqual([]);
    await vi.advanceTimersByTimeAsync(20);
    await flush();
    expect(turns).toEqual([["a", "b"]]);
    await guard.onIdle();
    expect(guard.isBusy("k")).toBe(false);
  });

  it("fences strictly increase with every claim of a key, including after it went idle", async () => {
    const guard = createGuard<number>({ mode: "queue" });
    const fences: Record<string, number[]> = { a: [], b: [] };
    const handler = async (turn: Turn<number>) => {
      fences[turn.key]?.push(turn.fence);
      await Promise.resolve();
    };
    for (let i = 0; i < 5; i++) {
      guard.submit("a", i, handler);
      guard.submit("b", i, handler);
    }
    await guard.onIdle();
    guard.submit("a", 5, handler);
    await guard.onIdle();
    expect(fences.a).toHaveLength(6);
    expect(fences.b).toHaveLength(5);
    for (const list of [fences.a ?? [], fences.b ?? []]) {
      for (let i = 1; i < list.length; i++) {
        expect(list[i] as number).toBeGreaterThan(list[i - 1] as number);
      }
    }
  });
});

describe("G2 FIFO", () => {
  it("queue mode: one turn per input, in admission order, even when some turns fail", async () => {
    const errors = errorRecorder<number>();
    const guard = createGuard<number>({ mode: "queue", onError: errors.onError });
    const handled: number[][] = [];
    const handler = async (turn: Turn<number>) => {
      handled.push([...turn.inputs]);
      await Promise.resolve();
      if ((turn.inputs[0] as number) % 3 === 0) throw new Error(`fail ${turn.inputs[0]}`);
    };
    for (let i = 0; i < 10; i++) guard.submit("k", i, handler);
    await guard.onIdle();
    expect(handled).toEqual([[0], [1], [2], [3], [4], [5], [6], [7], [8], [9]]);
    expect(errors.errors.map((e) => (e.error as Error).message)).toEqual([
      "fail 0",
      "fail 3",
      "fail 6",
      "fail 9",
    ]);
  });

  it("collect mode: coalesced inputs oldest first; an `alone` input is its own turn in order", async () => {
    const guard = createGuard<string>();
    const gate = deferred();
    const turns: string[][] = [];
    const handler = async (turn: Turn<string>) => {
      turns.push([...turn.inputs]);
      await gate.promise;
    };
    guard.submit("k", "1", handler);
    guard.submit("k", "2", handler);
    guard.submit("k", "3", handler);
    guard.submit("k", "4", handler, { alone: true });
    guard.submit("k", "5", handler);
    guard.submit("k", "6", handler);
    gate.resolve();
    await guard.onIdle();
    expect(turns).toEqual([["1"], ["2", "3"], ["4"], ["5", "6"]]);
  });

  it("a waiting lane runs between the inputs admitted before and after it", async () => {
    const guard = createGuard<string>({ mode: "queue" });
    const gate = deferred();
    const log: string[] = [];
    const handler = async (turn: Turn<string>) => {
      log.push(turn.inputs.join(","));
      await gate.promise;
    };
    guard.submit("k", "a", handler);
    guard.submit("k", "b", handler);
    const lane = guard.run("k", async (turn) => {
      log.push(`lane inputs=${turn.inputs.length}`);
      return 42;
    });
    guard.submit("k", "c", handler);
    gate.resolve();
    expect(await lane).toBe(42);
    await guard.onIdle();
    expect(log).toEqual(["a", "b", "lane inputs=0", "c"]);
  });

  it("concurrency caps turns across keys while each key stays FIFO", async () => {
    const guard = createGuard<number>({ mode: "queue", concurrency: 2 });
    let running = 0;
    let maxRunning = 0;
    const perKey: Record<string, number[]> = {};
    const handler = async (turn: Turn<number>) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      (perKey[turn.key] ??= []).push(...turn.inputs);
      await macrotask();
      running--;
    };
    const keys = ["a", "b", "c", "d", "e"];
    for (let i = 0; i < 4; i++) for (const key of keys) guard.submit(key, i, handler);
    // Every key is claimed at once; only two handlers run.
    expect(guard.activeCount).toBe(5);
    await guard.onIdle();
    expect(maxRunning).toBe(2);
    expect(running).toBe(0);
    for (const key of keys) expect(perKey[key]).toEqual([0, 1, 2, 3]);
  });
});

describe("G3 Nothing lost silently", () => {
  it("every input is handled once or dropped once with its reason; the accounting balances", async () => {
    useFakeTimers();
    const drops = dropRecorder<string>();
    const guard = createGuard<string>({
      mode: "latest",
      maxPending: 2,
      pendingTtl: 100,
      onDrop: drops.onDrop,
    });
    const handled: string[] = [];
    const gates = new Map<string, Deferred<void>>();
    const handler = async (turn: Turn<string>) => {
      handled.push(...turn.inputs);
      const gate = deferred();
      gates.set(turn.inputs[0] as string, gate);
      await gate.promise;
    };
    const submitted: string[] = [];
    const submit = (key: string, input: string, id?: string) => {
      submitted.push(input);
      return guard.submit(key, input, handler, id === undefined ? undefined : { id });
    };
    expect(await submit("b", "b1")).toBe("started");
    expect(await submit("b", "b2")).toBe("queued");
    await vi.advanceTimersByTimeAsync(150); // b2 expires while b1 runs
    expect(await submit("a", "a1", "m1")).toBe("started");
    expect(await submit("a", "a1-again", "m1")).toBe("duplicate");
    expect(await submit("a", "a2")).toBe("queued");
    expect(await submit("a", "a3")).toBe("queued"); // supersedes a2
    expect(await submit("c", "c1")).toBe("started");
    expect(await submit("c", "c2")).toBe("queued");
    expect(await guard.stop("c")).toBe(true); // c2 dropped as stopped
    gates.get("a1")?.resolve();
    gates.get("b1")?.resolve();
    gates.get("c1")?.resolve();
    await flush();
    gates.get("a3")?.resolve();
    await guard.onIdle();
    const report = await guard.close();
    expect(await submit("a", "late")).toBe("dropped");

    expect(handled).toEqual(["b1", "a1", "c1", "a3"]);
    expect(drops.drops.map((d) => [d.input, d.reason])).toEqual([
      ["b2", "expired"], // reported when due, while b1 still ran
      ["a1-again", "duplicate"],
      ["a2", "superseded"],
      ["c2", "stopped"],
      ["late", "shutdown"],
    ]);
    expect(drops.drops[1]).toEqual({ key: "a", input: "a1-again", id: "m1", reason: "duplicate" });
    expect(report.aborted).toBe(0);
    // In = handled + dropped, and no input both.
    const dropped = drops.drops.map((d) => d.input);
    expect(handled.length + dropped.length).toBe(submitted.length);
    expect(new Set([...handled, ...dropped])).toEqual(new Set(submitted));
  });

  it("overflow and reject report every refused input", async () => {
    const drops = dropRecorder<string>();
    const gate = deferred();
    const handled: string[] = [];
    const handler = async (turn: Turn<string>) => {
      handled.push(...turn.inputs);
      await gate.promise;
    };
    const oldest = createGuard<string>({ mode: "queue", maxPending: 2, onDrop: drops.onDrop });
    const newest = createGuard<string>({
      mode: "queue",
      maxPending: 2,
      overflow: "drop-newest",
      onDrop: drops.onDrop,
    });
    const reject = createGuard<string>({ mode: "reject", onDrop: drops.onDrop });
    const outcomes: string[] = [];
    for (const [name, guard] of [
      ["o", oldest],
      ["n", newest],
      ["r", reject],
    ] as const) {
      for (let i = 0; i < 4; i++) outcomes.push(await guard.submit("k", `${name}${i}`, handler));
    }
    expect(outcomes).toEqual(
      [
        ["started", "queued", "queued", "queued"],
        ["started", "queued", "queued", "dropped"],
        ["started", "dropped", "dropped", "dropped"],
      ].flat(),
    );
    gate.resolve();
    await Promise.all([oldest.onIdle(), newest.onIdle(), reject.onIdle()]);
    expect(drops.drops.map((d) => `${d.input}:${d.reason}`)).toEqual([
      "o1:overflow",
      "n3:overflow",
      "r1:busy",
      "r2:busy",
      "r3:busy",
    ]);
    expect(handled.sort()).toEqual(["n0", "n1", "n2", "o0", "o2", "o3", "r0"]);
  });

  it("close waits for the running turn, drains pending input, then drops later submits as shutdown", async () => {
    const drops = dropRecorder<string>();
    const store = memoryStore();
    const guard = createGuard<string>({ mode: "queue", store, onDrop: drops.onDrop });
    const gate = deferred();
    const handled: string[] = [];
    const handler = async (turn: Turn<string>) => {
      handled.push(...turn.inputs);
      await gate.promise;
    };
    guard.submit("k", "a", handler);
    guard.submit("k", "b", handler);
    guard.submit("k", "c", handler);
    const closing = track(guard.close({ timeout: Number.POSITIVE_INFINITY }));
    expect(guard.closed).toBe(true);
    expect(await guard.submit("k", "late", handler, { id: "late-1" })).toBe("dropped");
    expect(await guard.submit("other", "late2", handler)).toBe("dropped");
    await flush();
    expect(closing.settled).toBe(false);
    expect(handled).toEqual(["a"]);
    gate.resolve();
    const report = await closing.promise;
    expect(handled).toEqual(["a", "b", "c"]);
    expect(report.aborted).toBe(0);
    expect(drops.drops).toEqual([
      { key: "k", input: "late", id: "late-1", reason: "shutdown" },
      { key: "other", input: "late2", id: undefined, reason: "shutdown" },
    ]);
    expect(guard.activeCount).toBe(0);
    expect(store.keyCount).toBe(0);
    expect(store.pendingTotal).toBe(0);
    // Idempotent: the same report.
    expect(await guard.close()).toBe(report);
  });
});

describe("G4 The transport is never blocked", () => {
  it("submit resolves before a slow turn finishes, for the first input and for pending input", async () => {
    const guard = createGuard<string>();
    const gate = deferred();
    let finished = false;
    const handler = async () => {
      await gate.promise;
      finished = true;
    };
    expect(await guard.submit("k", "a", handler)).toBe("started");
    expect(await guard.submit("k", "b", handler)).toBe("queued");
    expect(finished).toBe(false);
    expect(guard.isBusy("k")).toBe(true);
    gate.resolve();
    await guard.onIdle();
    expect(finished).toBe(true);
  });

  it("submit resolves even when the handler never settles", async () => {
    const guard = createGuard<string>({ turnTimeout: Number.POSITIVE_INFINITY });
    const never = new Promise<void>(() => {});
    expect(await guard.submit("k", "a", () => never)).toBe("started");
    expect(await guard.submit("k", "b", () => never)).toBe("queued");
    expect(guard.pendingCount("k")).toBe(1);
  });

  it("submit never throws synchronously, even for a handler that throws synchronously", async () => {
    const errors = errorRecorder<string>();
    const guard = createGuard<string>({ onError: errors.onError });
    const boom = new Error("boom");
    let promise: Promise<string> | undefined;
    expect(() => {
      promise = guard.submit("k", "a", () => {
        throw boom;
      });
    }).not.toThrow();
    expect(await promise).toBe("started");
    await guard.onIdle();
    expect(errors.errors.map((e) => e.error)).toEqual([boom]);
  });

  it("awaitTurn (serverless, tests) resolves only once the input's turn settled", async () => {
    const guard = createGuard<string>({ awaitTurn: true, onError: () => {} });
    const gate = deferred();
    const outcome = track(guard.submit("k", "a", () => gate.promise));
    await flush();
    expect(outcome.settled).toBe(false);
    gate.resolve();
    expect(await outcome.promise).toBe("started");
    const boom = new Error("boom");
    await expect(
      guard.submit("k", "b", async () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
  });
});

describe("G5 Isolation", () => {
  const failures = {
    "throws synchronously": (error: Error) => () => {
      throw error;
    },
    rejects: (error: Error) => async () => {
      await Promise.resolve();
      throw error;
    },
  };

  for (const [kind, make] of Object.entries(failures)) {
    it(`a handler that ${kind}: the key is free afterwards, the next input runs, onError once`, async () => {
      const errors = errorRecorder<string>();
      const store = memoryStore();
      const guard = createGuard<string>({ store, onError: errors.onError });
      const boom = new Error(kind);
      const handled: string[][] = [];
      const fences: number[] = [];
      const failing = make(boom);
      const first = guard.submit("k", "a", (turn) => {
        fences.push(turn.fence);
        return failing();
      });
      const second = guard.submit("k", "b", (turn) => {
        handled.push([...turn.inputs]);
      });
      expect(await first).toBe("started");
      expect(await second).toBe("queued");
      await guard.onIdle();
      expect(handled).toEqual([["b"]]);
      expect(errors.errors).toHaveLength(1);
      expect(errors.errors[0]?.error).toBe(boom);
      expect(errors.errors[0]?.info).toEqual({ key: "k", inputs: ["a"], fence: fences[0] });
      expect(guard.isBusy("k")).toBe(false);
      expect(store.keyCount).toBe(0);
      // The key is free: a new input claims it at once.
      expect(await guard.submit("k", "c", () => {})).toBe("started");
      await guard.onIdle();
      expect(errors.errors).toHaveLength(1);
    });
  }

  it("a handler that returns early (no await, no value): the key is free and the next input runs", async () => {
    const errors = errorRecorder<string>();
    const store = memoryStore();
    const guard = createGuard<string>({ store, onError: errors.onError });
    const handled: string[] = [];
    const handler = (turn: Turn<string>) => {
      if (turn.inputs[0] === "/help") return; // a command handled without an agent
      handled.push(...turn.inputs);
    };
    const first = guard.submit("k", "/help", handler);
    const second = guard.submit("k", "hello", handler);
    expect(await first).toBe("started");
    expect(await second).toBe("queued");
    await guard.onIdle();
    expect(handled).toEqual(["hello"]);
    expect(errors.errors).toEqual([]);
    expect(guard.isBusy("k")).toBe(false);
    expect(store.keyCount).toBe(0);
    expect(await guard.submit("k", "again", handler)).toBe("started");
    await guard.onIdle();
    expect(handled).toEqual(["hello", "again"]);
  });

  it("a failing key never stops other keys or its own later turns", async () => {
    const errors = errorRecorder<number>();
    const guard = createGuard<number>({ mode: "queue", onError: errors.onError });
    const handled: string[] = [];
    const handler = async (turn: Turn<number>) => {
      await Promise.resolve();
      if (turn.key === "bad") throw new Error(`bad ${turn.inputs[0]}`);
      handled.push(`${turn.key}${turn.inputs[0]}`);
    };
    for (let i = 0; i < 3; i++) {
      guard.submit("bad", i, handler);
      guard.submit("good", i, handler);
    }
    await guard.onIdle();
    expect(handled).toEqual(["good0", "good1", "good2"]);
    expect(errors.errors.map((e) => [(e.error as Error).message, e.info.inputs])).toEqual([
      ["bad 0", [0]],
      ["bad 1", [1]],
      ["bad 2", [2]],
    ]);
  });

  it("a handler that times out and settles later frees its key for the next input", async () => {
    useFakeTimers();
    const errors = errorRecorder<string>();
    const guard = createGuard<string>({ turnTimeout: 100, onError: errors.onError });
    const handled: string[] = [];
    guard.submit("k", "slow", async (turn) => {
      await new Promise<void>((resolve) => turn.signal.addEventListener("abort", () => resolve()));
      throw turn.signal.reason; // the abort reason itself: already reported once
    });
    guard.submit("k", "next", (turn) => void handled.push(...turn.inputs));
    await vi.advanceTimersByTimeAsync(100);
    await guard.onIdle();
    expect(handled).toEqual(["next"]);
    expect(errors.errors).toHaveLength(1);
    expect(errors.errors[0]?.error).toBeInstanceOf(TurnTimeoutError);
    expect(guard.isBusy("k")).toBe(false);
  });
});

describe("G6 Bounded", () => {
  it("after 100,000 inputs over 10,000 keys have settled, the guard holds no per-key state", async () => {
    const store = memoryStore();
    let dropped = 0;
    const guard = createGuard<number>({
      store,
      maxPendingTotal: 100_000,
      onDrop: () => {
        dropped++;
      },
    });
    let handled = 0;
    let turns = 0;
    const handler = async (turn: Turn<number>) => {
      turns++;
      await Promise.resolve();
      handled += turn.inputs.length;
    };
    const KEYS = 10_000;
    const ROUNDS = 10;
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < KEYS; k++) guard.submit(`chat-${k}`, round * KEYS + k, handler);
      if (round === 4) await flush(3); // some keys finish mid-stream and are claimed again
    }
    expect(guard.activeCount).toBe(KEYS);
    await guard.onIdle();
    expect(handled + dropped).toBe(KEYS * ROUNDS);
    expect(dropped).toBe(0);
    expect(turns).toBeGreaterThanOrEqual(KEYS);
    expect(guard.activeCount).toBe(0);
    expect(store.keyCount).toBe(0);
    expect(store.pendingTotal).toBe(0);
    for (let k = 0; k < KEYS; k++) {
      if (guard.isBusy(`chat-${k}`) || guard.pendingCount(`chat-${k}`) !== 0) {
        throw new Error(`chat-${k} still has state`);
      }
    }
  });

  it("pending input is capped per key (maxPending) and across keys (maxPendingTotal)", async () => {
    const drops = dropRecorder<string>();
    const store = memoryStore();
    const guard = createGuard<string>({
      mode: "queue",
      maxPending: 3,
      maxPendingTotal: 5,
      store,
      onDrop: drops.onDrop,
    });
    const gate = deferred();
    const handler = () => gate.promise;
    for (let i = 0; i < 6; i++) guard.submit("a", `a${i}`, handler);
    expect(guard.pendingCount("a")).toBe(3);
    for (let i = 0; i < 6; i++) guard.submit("b", `b${i}`, handler);
    expect(guard.pendingCount("b")).toBe(2);
    expect(store.pendingTotal).toBe(5);
    expect(drops.drops.map((d) => `${d.input}:${d.reason}`)).toEqual([
      "a1:overflow",
      "a2:overflow",
      "b3:overflow",
      "b4:overflow",
      "b5:overflow",
    ]);
    gate.resolve();
    await guard.onIdle();
    expect(store.pendingTotal).toBe(0);
  });
});

describe("G7 Liveness", () => {
  it("turnTimeout aborts the signal with TurnTimeoutError and reports it once", async () => {
    useFakeTimers();
    const errors = errorRecorder<string>();
    const guard = createGuard<string>({ turnTimeout: 100, onError: errors.onError });
    const stuck: GuardEvents<string>["stuck"][] = [];
    guard.on("stuck", (event) => void stuck.push(event));
    let signal: AbortSignal | undefined;
    let fence = 0;
    const finished = deferred();
    guard.submit("k", "a", (turn) => {
      signal = turn.signal;
      fence = turn.fence;
      return finished.promise;
    });
    await vi.advanceTimersByTimeAsync(99);
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(signal?.aborted).toBe(true);
    const reason = signal?.reason as TurnTimeoutError;
    expect(reason).toBeInstanceOf(TurnTimeoutError);
    expect(reason).toBeInstanceOf(TurnAbortedError);
    expect(reason.name).toBe("AbortError");
    expect([reason.code, reason.key, reason.fence, reason.timeout, reason.abandoned]).toEqual([
      "timeout",
      "k",
      fence,
      100,
      false,
    ]);
    expect(errors.errors).toEqual([{ error: reason, info: { key: "k", inputs: ["a"], fence } }]);
    expect(stuck).toEqual([{ key: "k", fence, error: reason, abandoned: false }]);
    finished.resolve();
    await guard.onIdle();
    expect(errors.errors).toHaveLength(1);
  });

  it('onStuck "wait": the key stays held until the timed-out turn settles', async () => {
    useFakeTimers();
    const guard = createGuard<string>({ turnTimeout: 100, onStuck: "wait", onError: () => {} });
    const ignoring = deferred(); // a handler that ignores its signal
    const log: string[] = [];
    guard.submit("k", "a", async () => {
      await ignoring.promise;
      log.push("a done");
    });
    expect(await guard.submit("k", "b", () => void log.push("b"))).toBe("queued");
    await vi.advanceTimersByTimeAsync(1_000);
    expect(guard.isBusy("k")).toBe(true);
    expect(guard.pendingCount("k")).toBe(1);
    expect(log).toEqual([]);
    ignoring.resolve();
    await guard.onIdle();
    expect(log).toEqual(["a done", "b"]);
    expect(guard.isBusy("k")).toBe(false);
  });

  it('onStuck "abandon": the next turn starts, the old turn is stale with a lower fence, reported', async () => {
    useFakeTimers();
    const errors = errorRecorder<string>();
    const guard = createGuard<string>({
      turnTimeout: 100,
      onStuck: "abandon",
      onError: errors.onError,
    });
    const stuck: GuardEvents<string>["stuck"][] = [];
    guard.on("stuck", (event) => void stuck.push(event));
    const ignoring = deferred();
    let old: Turn<string> | undefined;
    let next: Turn<string> | undefined;
    let oldRunningWhenNextStarted = false;
    let oldDone = false;
    guard.submit("k", "a", async (turn) => {
      old = turn;
      await ignoring.promise;
      oldDone = true;
    });
    guard.submit("k", "b", (turn) => {
      next = turn;
      oldRunningWhenNextStarted = !oldDone;
      return new Promise<void>(() => {}); // holds the key from now on
    });
    await vi.advanceTimersByTimeAsync(99);
    expect(next).toBeUndefined();
    expect(old?.stale).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(next?.inputs).toEqual(["b"]);
    expect(oldRunningWhenNextStarted).toBe(true);
    expect(old?.stale).toBe(true);
    expect(next?.stale).toBe(false);
    expect(old?.fence).toBeLessThan(next?.fence as number);
    expect(await old?.take()).toEqual([]);
    const reason = old?.signal.reason as TurnTimeoutError;
    expect(reason).toBeInstanceOf(TurnTimeoutError);
    expect(reason.abandoned).toBe(true);
    expect(stuck).toEqual([{ key: "k", fence: old?.fence, error: reason, abandoned: true }]);
    expect(errors.errors).toEqual([
      { error: reason, info: { key: "k", inputs: ["a"], fence: old?.fence } },
    ]);
    // The late settle of the abandoned turn changes nothing for the key.
    ignoring.resolve();
    await flush();
    expect(guard.isBusy("k")).toBe(true);
    expect(next?.stale).toBe(false);
    expect(errors.errors).toHaveLength(1);
  });

  it("a turn is never timed out before its own turnTimeout, whatever other turns did", async () => {
    useFakeTimers();
    const guard = createGuard<string>({ turnTimeout: 100, onStuck: "abandon", onError: () => {} });
    const never = () => new Promise<void>(() => {});
    guard.submit("a", "a1", never); // t=0, deadline 100
    await vi.advanceTimersByTimeAsync(10);
    guard.submit("a", "a2", never); // starts at t=100 when a1 is abandoned, deadline 200
    await vi.advanceTimersByTimeAsync(140);
    let signal: AbortSignal | undefined;
    guard.submit("b", "b1", (turn) => {
      signal = turn.signal;
      return never();
    }); // t=150, deadline 250
    await vi.advanceTimersByTimeAsync(99); // t=249
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1); // t=250
    expect(abortCode(signal)).toBe("timeout");
  });

  it("close at its timeout aborts the running turn (shutdown), releases it and reports it", async () => {
    useFakeTimers();
    const drops = dropRecorder<string>();
    const store = memoryStore();
    const guard = createGuard<string>({ store, onDrop: drops.onDrop, onError: () => {} });
    let signal: AbortSignal | undefined;
    guard.submit("k", "a", (turn) => {
      signal = turn.signal;
      return new Promise<void>(() => {}); // ignores its signal
    });
    guard.submit("k", "b", () => {});
    const closing = track(guard.close({ timeout: 500 }));
    await vi.advanceTimersByTimeAsync(499);
    expect(closing.settled).toBe(false);
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const report = await closing.promise;
    expect(abortCode(signal)).toBe("shutdown");
    expect((signal?.reason as TurnAbortedError | undefined)?.key).toBe("k");
    expect(report.aborted).toBe(1);
    expect(report.dropped).toEqual([{ key: "k", input: "b", id: undefined, reason: "shutdown" }]);
    expect(drops.drops).toEqual(report.dropped);
    expect(guard.activeCount).toBe(0);
    expect(store.keyCount).toBe(0);
    expect(store.pendingTotal).toBe(0);
  });

  it("close() awaited inside a running handler resolves without deadlock", async () => {
    const guard = createGuard<string>();
    const log: string[] = [];
    const other = deferred();
    guard.submit("other", "x", async () => {
      await other.promise;
      log.push("other done");
    });
    const done = deferred<number>();
    guard.submit("k", "shutdown", async () => {
      const report = await guard.close({ timeout: Number.POSITIVE_INFINITY });
      done.resolve(report.aborted);
    });
    await flush();
    // close still waits for the other key's turn…
    expect(log).toEqual([]);
    other.resolve();
    // …and resolves once it finished, though its caller's own turn was still running.
    expect(await done.promise).toBe(0);
    expect(log).toEqual(["other done"]);
    expect(guard.activeCount).toBe(0);
  });

  // After its first await a handler is no longer recognised as the caller (that would take
  // AsyncLocalStorage, which slows every await of the process on Node 20). Documented: awaited
  // there, close() waits for its own turn until its timeout — bounded, never a deadlock — and
  // called without await it resolves as soon as the turn has finished.
  it("close() awaited inside a handler after an await resolves at its timeout, never later", async () => {
    useFakeTimers();
    const guard = createGuard<string>({ onError: () => {} });
    const closing = deferred<number>();
    guard.submit("k", "shutdown", async () => {
      await Promise.resolve(); // e.g. `await ctx.reply("bye")`
      const report = await guard.close({ timeout: 5_000 });
      closing.resolve(report.aborted);
    });
    const result = track(closing.promise);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(result.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(result.settled).toBe(true);
    expect(await closing.promise).toBe(1);
    expect(guard.activeCount).toBe(0);
  });

  it("close() called without await inside a handler resolves once that turn has finished", async () => {
    const guard = createGuard<string>({ onError: () => {} });
    const order: string[] = [];
    let closed: Promise<unknown> | undefined;
    guard.submit("k", "shutdown", async () => {
      await Promise.resolve();
      closed = guard.close({ timeout: 60_000 }).then((report) => order.push("closed") && report);
      await Promise.resolve();
      order.push("handler done");
    });
    await guard.onIdle();
    expect(await closed).toEqual({ aborted: 0, dropped: [] });
    expect(order).toEqual(["handler done", "closed"]);
  });
});

describe("G8 Control bypasses the queue", () => {
  it("stop() during the preparation phase aborts the turn; nothing runs for the dropped input", async () => {
    const drops = dropRecorder<string>();
    const guard = createGuard<string>({ onDrop: drops.onDrop });
    const preparation = deferred();
    const ran: string[][] = [];
    let signal: AbortSignal | undefined;
    let stopped: Promise<boolean> | undefined;
    const handler = async (turn: Turn<string>) => {
      ran.push([...turn.inputs]);
      if (turn.inputs[0] !== "a") return;
      signal = turn.signal;
      guard.submit("k", "b", handler); // arrives while the turn prepares
      stopped = guard.stop("k"); // "/stop" before the handler awaited anything
      await preparation.promise;
    };
    expect(await guard.submit("k", "a", handler)).toBe("started");
    expect(await stopped).toBe(true);
    expect(signal?.aborted).toBe(true);
    const reason = signal?.reason as TurnAbortedError;
    expect(reason).toBeInstanceOf(TurnAbortedError);
    expect([reason.code, reason.key]).toEqual(["stopped", "k"]);
    expect(drops.drops).toEqual([{ key: "k", input: "b", id: undefined, reason: "stopped" }]);
    expect(guard.pendingCount("k")).toBe(0);
    preparation.resolve();
    await guard.onIdle();
    await macrotask();
    expect(ran).toEqual([["a"]]);
  });

  it("stop() during the turn's first await aborts it with reason stopped and drops its pending input", async () => {
    const drops = dropRecorder<string>();
    const errors = errorRecorder<string>();
    const guard = createGuard<string>({ onDrop: drops.onDrop, onError: errors.onError });
    const ran: string[][] = [];
    let signal: AbortSignal | undefined;
    const handler = async (turn: Turn<string>) => {
      ran.push([...turn.inputs]);
      signal = turn.signal;
      // Preparation that honours the signal, like fetch does.
      await new Promise<void>((_, reject) =>
        turn.signal.addEventListener("abort", () => reject(turn.signal.reason)),
      );
    };
    guard.submit("k", "a", handler);
    guard.submit("k", "b", handler);
    guard.submit("k", "c", handler);
    await flush();
    expect(await guard.stop("k")).toBe(true);
    expect(abortCode(signal)).toBe("stopped");
    expect(drops.drops.map((d) => `${d.input}:${d.reason}`)).toEqual(["b:stopped", "c:stopped"]);
    await guard.onIdle();
    await macrotask();
    expect(ran).toEqual([["a"]]);
    // Rejecting with its own abort reason is not an error.
    expect(errors.errors).toEqual([]);
    expect(guard.isBusy("k")).toBe(false);
  });

  it("stop() during the settle window drops the turn's inputs as stopped; the handler never runs", async () => {
    useFakeTimers();
    const drops = dropRecorder<string>();
    const store = memoryStore();
    const guard = createGuard<string>({ settle: 100, store, onDrop: drops.onDrop });
    let runs = 0;
    const handler = () => {
      runs++;
    };
    expect(await guard.submit("k", "a", handler, { id: "1" })).toBe("started");
    await vi.advanceTimersByTimeAsync(50);
    expect(await guard.submit("k", "b", handler, { id: "2" })).toBe("queued");
    expect(await guard.stop("k")).toBe(true);
    expect(drops.drops.map((d) => `${d.input}:${d.id}:${d.reason}`).sort()).toEqual([
      "a:1:stopped",
      "b:2:stopped",
    ]);
    expect(guard.isBusy("k")).toBe(false);
    expect(store.keyCount).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(runs).toBe(0);
    // Input admitted after the stop runs as usual.
    expect(await guard.submit("k", "c", handler)).toBe("started");
    await vi.advanceTimersByTimeAsync(100);
    await guard.onIdle();
    expect(runs).toBe(1);
  });

  it("stop() is not queued behind the turn; input after it runs only once the stopped turn settled", async () => {
    const drops = dropRecorder<string>();
    const guard = createGuard<string>({ onDrop: drops.onDrop });
    const ignoring = deferred(); // this turn ignores its signal
    const log: string[] = [];
    let signal: AbortSignal | undefined;
    guard.submit("k", "a", async (turn) => {
      signal = turn.signal;
      log.push("a start");
      await ignoring.promise;
      log.push("a end");
    });
    expect(await guard.stop("idle-key")).toBe(false);
    expect(await guard.stop("k")).toBe(true); // resolves while the turn still runs
    expect(abortCode(signal)).toBe("stopped");
    expect(guard.pendingCount("k")).toBe(0);
    expect(await guard.submit("k", "b", () => void log.push("b"))).toBe("queued");
    await flush();
    expect(log).toEqual(["a start"]);
    ignoring.resolve();
    await guard.onIdle();
    expect(log).toEqual(["a start", "a end", "b"]);
    expect(drops.drops).toEqual([]);
  });

  it("a callback the running turn waits for is delivered beside it, not queued behind it", async () => {
    const guard = createGuard<string>();
    const approvals = new Map<string, (answer: string) => void>();
    const log: string[] = [];
    guard.submit("k", "deploy?", async (turn) => {
      const answer = await new Promise<string>((resolve) => approvals.set(turn.key, resolve));
      log.push(`approved: ${answer}`);
    });
    // The button press bypasses the guard (adapters do not submit callbacks): it answers at once.
    await flush();
    expect(guard.isBusy("k")).toBe(true);
    approvals.get("k")?.("yes");
    await guard.onIdle();
    expect(log).toEqual(["approved: yes"]);
  });
});

describe("Events", () => {
  it("admitted, queued, started, finished, dropped and error fire with their payloads", async () => {
    const guard = createGuard<string>({ onError: () => {} });
    const events: [string, unknown][] = [];
    for (const name of [
      "admitted",
      "queued",
      "started",
      "finished",
      "dropped",
      "error",
      "stuck",
    ] as const) {
      guard.on(name, (payload) => void events.push([name, payload]));
    }
    const boom = new Error("boom");
    const gate = deferred();
    let fence1 = 0;
    let fence2 = 0;
    guard.submit(
      "k",
      "a",
      async (turn) => {
        fence1 = turn.fence;
        await gate.promise;
        throw boom;
      },
      { id: "1" },
    );
    guard.submit(
      "k",
      "b",
      (turn) => {
        fence2 = turn.fence;
      },
      { id: "2" },
    );
    guard.submit("k", "a-again", () => {}, { id: "1" });
    gate.resolve();
    await guard.onIdle();
    expect(events).toEqual([
      ["admitted", { key: "k", id: "1", input: "a", outcome: "started" }],
      ["started", { key: "k", fence: fence1, inputs: ["a"] }],
      ["admitted", { key: "k", id: "2", input: "b", outcome: "queued" }],
      ["queued", { key: "k", id: "2", input: "b", pending: 1 }],
      ["dropped", { key: "k", input: "a-again", id: "1", reason: "duplicate" }],
      ["error", { error: boom, key: "k", fence: fence1, inputs: ["a"] }],
      ["finished", { key: "k", fence: fence1, inputs: ["a"], failed: true }],
      ["started", { key: "k", fence: fence2, inputs: ["b"] }],
      ["finished", { key: "k", fence: fence2, inputs: ["b"], failed: false }],
    ]);
  });

  it("stuck fires with the timeout error, then error and finished when the turn settles", async () => {
    useFakeTimers();
    const guard = createGuard<string>({ turnTimeout: 50, onError: () => {} });
    const events: [string, unknown][] = [];
    for (const name of ["stuck", "error", "finished"] as const) {
      guard.on(name, (payload) => void events.push([name, payload]));
    }
    let turn: Turn<string> | undefined;
    guard.submit("k", "a", (t) => {
      turn = t;
      return new Promise<void>((_, reject) =>
        t.signal.addEventListener("abort", () => reject(t.signal.reason)),
      );
    });
    await vi.advanceTimersByTimeAsync(50);
    await guard.onIdle();
    const fence = turn?.fence as number;
    const error = turn?.signal.reason as TurnTimeoutError;
    expect(events).toEqual([
      ["error", { error, key: "k", fence, inputs: ["a"] }],
      ["stuck", { key: "k", fence, error, abandoned: false }],
      ["finished", { key: "k", fence, inputs: ["a"], failed: true }],
    ]);
  });
});
