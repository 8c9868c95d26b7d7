// Revisions and outcomes (issue 14, core): pending input follows edits and deletions by id, a
// running turn hears of them, and every input has one recorded outcome.

import {
  createGuard,
  type Drop,
  type Mode,
  memoryStore,
  type Outcome,
  type Revision,
  type Turn,
} from "session-guard";
import { afterEach, describe, expect, it, vi } from "vitest";
import { deferred, dropRecorder, errorRecorder, flush } from "./support/helpers.js";

afterEach(() => {
  vi.useRealTimers();
});

/** A guard whose first turn (input "a") blocks until `release()`, then records every turn. */
async function busyGuard(mode: Mode, extra: Parameters<typeof createGuard<string>>[0] = {}) {
  const turns: string[][] = [];
  const gate = deferred();
  const drops = dropRecorder<string>();
  const settled: { id: string | undefined; outcome: Outcome }[] = [];
  const guard = createGuard<string>({
    mode,
    onDrop: drops.onDrop,
    handler: async (turn) => {
      turns.push([...turn.inputs]);
      if (turn.inputs[0] === "a") await gate.promise;
    },
    ...extra,
  });
  guard.on("settled", ({ id, outcome }) => void settled.push({ id, outcome }));
  expect(await guard.submit("k", "a", undefined, { id: "a" })).toBe("started");
  return { guard, turns, release: () => gate.resolve(), drops: drops.drops, settled };
}

const COALESCING: Mode[] = ["collect", "steer", "interrupt"];
const POSITIONS = [
  ["first", 0],
  ["middle", 1],
  ["last", 2],
] as const;

describe("replace and withdraw a pending input, in every mode", () => {
  for (const mode of [...COALESCING, "queue"] as Mode[]) {
    for (const [where, at] of POSITIONS) {
      const ids = ["b", "c", "d"];
      const target = ids[at] as string;

      it(`${mode}: replacing the ${where} pending input keeps its place and id`, async () => {
        const { guard, turns, release, drops } = await busyGuard(mode);
        for (const id of ids) await guard.submit("k", id, undefined, { id });
        expect(await guard.replace("k", target, `${target}'`)).toBe("replaced");
        expect(guard.pendingCount("k")).toBe(3);
        release();
        await guard.onIdle();
        const expected = ids.map((id) => (id === target ? `${id}'` : id));
        if (mode === "queue") expect(turns.slice(1)).toEqual(expected.map((input) => [input]));
        else expect(turns.slice(1)).toEqual([expected]);
        expect(drops).toEqual([]);
        expect((await guard.outcome(target))?.state).toBe("handled");
      });

      it(`${mode}: withdrawing the ${where} pending input drops it as withdrawn, once`, async () => {
        const { guard, turns, release, drops, settled } = await busyGuard(mode);
        for (const id of ids) await guard.submit("k", id, undefined, { id });
        expect(await guard.withdraw("k", target)).toBe("withdrawn");
        expect(guard.pendingCount("k")).toBe(2);
        // A second withdrawal finds it ended.
        expect(await guard.withdraw("k", target)).toBe("ended");
        release();
        await guard.onIdle();
        const expected = ids.filter((id) => id !== target);
        if (mode === "queue") expect(turns.slice(1)).toEqual(expected.map((input) => [input]));
        else expect(turns.slice(1)).toEqual([expected]);
        expect(drops).toEqual([{ key: "k", input: target, id: target, reason: "withdrawn" }]);
        expect(await guard.outcome(target)).toMatchObject({
          key: "k",
          state: "dropped",
          reason: "withdrawn",
        });
        // Every input ended exactly once.
        expect(settled.map((s) => s.id).sort()).toEqual(["a", "b", "c", "d"]);
      });
    }
  }

  it("latest: the edited pending input is still the newest; a superseded one has ended", async () => {
    const { guard, turns, release, drops } = await busyGuard("latest");
    for (const id of ["b", "c"]) await guard.submit("k", id, undefined, { id });
    expect(drops.map((d) => [d.id, d.reason])).toEqual([["b", "superseded"]]);
    expect(await guard.replace("k", "b", "b'")).toBe("ended");
    expect(await guard.replace("k", "c", "c'")).toBe("replaced");
    release();
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["c'"]]);
    // A later newcomer still supersedes the edited input: the edit did not make it older or newer.
    const second = await busyGuard("latest");
    await second.guard.submit("k", "x", undefined, { id: "x" });
    await second.guard.replace("k", "x", "x'");
    await second.guard.submit("k", "y", undefined, { id: "y" });
    second.release();
    await second.guard.onIdle();
    expect(second.turns).toEqual([["a"], ["y"]]);
    expect(second.drops.map((d) => [d.input, d.reason])).toEqual([["x'", "superseded"]]);
  });

  it("latest: withdrawing the pending input leaves nothing to run", async () => {
    const { guard, turns, release, drops } = await busyGuard("latest");
    await guard.submit("k", "b", undefined, { id: "b" });
    expect(await guard.withdraw("k", "b")).toBe("withdrawn");
    release();
    await guard.onIdle();
    expect(turns).toEqual([["a"]]);
    expect(drops.map((d) => d.reason)).toEqual(["withdrawn"]);
  });

  it("reject: a rejected input has ended; the running one is in the turn", async () => {
    const { guard, release } = await busyGuard("reject");
    expect(await guard.submit("k", "b", undefined, { id: "b" })).toBe("dropped");
    expect(await guard.replace("k", "b", "b'")).toBe("ended");
    expect(await guard.withdraw("k", "b")).toBe("ended");
    expect(await guard.outcome("b")).toMatchObject({ state: "dropped", reason: "busy" });
    expect(await guard.replace("k", "a", "a'")).toBe("in-turn");
    release();
    await guard.onIdle();
  });
});

describe("the running turn hears of revisions of its own inputs", () => {
  it("in-turn: the turn's inputs do not change, its onRevision listeners get the edit or deletion", async () => {
    const revisions: Revision<string>[] = [];
    const gate = deferred();
    const seen: string[][] = [];
    const guard = createGuard<string>({
      handler: async (turn) => {
        turn.onRevision((revision) => void revisions.push(revision));
        await gate.promise;
        seen.push([...turn.inputs]);
      },
    });
    await guard.submit("k", "a", undefined, { id: "a" });
    await flush();
    expect(await guard.replace("k", "a", "a'")).toBe("in-turn");
    expect(await guard.withdraw("k", "a")).toBe("in-turn");
    gate.resolve();
    await guard.onIdle();
    expect(revisions).toEqual([
      { id: "a", input: "a'" },
      { id: "a", input: undefined },
    ]);
    expect(seen).toEqual([["a"]]);
    // The input was handled: its turn ran it.
    expect(await guard.outcome("a")).toMatchObject({ state: "handled" });
    expect(await guard.replace("k", "a", "a''")).toBe("ended");
  });

  it("input a steering turn took in is in the turn too", async () => {
    const revisions: Revision<string>[] = [];
    const took = deferred();
    const gate = deferred();
    const guard = createGuard<string>({
      mode: "steer",
      handler: async (turn) => {
        turn.onRevision((revision) => void revisions.push(revision));
        await took.promise;
        await turn.take();
        await gate.promise;
      },
    });
    await guard.submit("k", "a", undefined, { id: "a" });
    await guard.submit("k", "b", undefined, { id: "b" });
    took.resolve();
    await flush();
    expect(await guard.replace("k", "b", "b'")).toBe("in-turn");
    gate.resolve();
    await guard.onIdle();
    expect(revisions).toEqual([{ id: "b", input: "b'" }]);
  });

  it("a turn still waiting out its settle window has not shown its inputs: they change", async () => {
    vi.useFakeTimers();
    const turns: string[][] = [];
    const drops = dropRecorder<string>();
    const guard = createGuard<string>({
      settle: 100,
      onDrop: drops.onDrop,
      handler: (turn) => void turns.push([...turn.inputs]),
    });
    await guard.submit("k", "a", undefined, { id: "a" });
    await guard.submit("k", "b", undefined, { id: "b" });
    expect(await guard.replace("k", "a", "a'")).toBe("replaced");
    await vi.advanceTimersByTimeAsync(150);
    await guard.onIdle();
    expect(turns).toEqual([["a'", "b"]]);

    await guard.submit("k", "c", undefined, { id: "c" });
    expect(await guard.withdraw("k", "c")).toBe("withdrawn");
    await vi.advanceTimersByTimeAsync(150);
    await guard.onIdle();
    expect(turns).toEqual([["a'", "b"]]);
    expect(drops.drops.map((d) => [d.id, d.reason])).toEqual([["c", "withdrawn"]]);
    expect(guard.isBusy("k")).toBe(false);
  });

  it("a throwing onRevision listener goes to onError; the turn and the other listeners go on", async () => {
    const errors = errorRecorder<string>();
    const gate = deferred();
    const heard: string[] = [];
    const guard = createGuard<string>({
      onError: errors.onError,
      handler: async (turn) => {
        turn.onRevision(() => {
          throw new Error("listener");
        });
        turn.onRevision(({ input }) => void heard.push(String(input)));
        await gate.promise;
      },
    });
    await guard.submit("k", "a", undefined, { id: "a" });
    await flush();
    expect(await guard.replace("k", "a", "a'")).toBe("in-turn");
    gate.resolve();
    await guard.onIdle();
    expect(heard).toEqual(["a'"]);
    expect(errors.errors.map((e) => (e.error as Error).message)).toEqual(["listener"]);
  });
});

describe("ended and unknown", () => {
  it("an id never admitted, or admitted for another key, is unknown", async () => {
    const { guard, release } = await busyGuard("collect");
    await guard.submit("k", "b", undefined, { id: "b" });
    expect(await guard.replace("k", "nope", "x")).toBe("unknown");
    expect(await guard.withdraw("k", "nope")).toBe("unknown");
    expect(await guard.replace("other", "b", "x")).toBe("unknown");
    expect(await guard.outcome("nope")).toBeUndefined();
    release();
    await guard.onIdle();
  });

  it("an input whose turn is over has ended, whether handled or failed", async () => {
    const guard = createGuard<string>({
      onError: () => {},
      handler: (turn) => {
        if (turn.inputs[0] === "bad") throw new Error("boom");
      },
    });
    await guard.submit("k", "ok", undefined, { id: "ok" });
    await guard.submit("k", "bad", undefined, { id: "bad" });
    await guard.onIdle();
    expect(await guard.replace("k", "ok", "x")).toBe("ended");
    expect(await guard.withdraw("k", "bad")).toBe("ended");
    expect((await guard.outcome("ok"))?.state).toBe("handled");
    expect((await guard.outcome("bad"))?.state).toBe("failed");
  });

  it("outcomes are forgotten after the de-duplication window, like the ids", async () => {
    vi.useFakeTimers();
    const guard = createGuard<string>({ dedupe: 1_000, handler: () => {} });
    await guard.submit("k", "a", undefined, { id: "a" });
    await guard.onIdle();
    expect((await guard.outcome("a"))?.state).toBe("handled");
    await vi.advanceTimersByTimeAsync(1_001);
    expect(await guard.outcome("a")).toBeUndefined();
    expect(await guard.replace("k", "a", "x")).toBe("unknown");
  });

  it("an input that waits longer than the window keeps its record", async () => {
    vi.useFakeTimers();
    const gate = deferred();
    const guard = createGuard<string>({
      dedupe: 1_000,
      handler: async (turn) => {
        if (turn.inputs[0] === "a") await gate.promise;
      },
    });
    await guard.submit("k", "a", undefined, { id: "a" });
    await guard.submit("k", "b", undefined, { id: "b" });
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(1_000);
      // Other traffic rotates the generations meanwhile.
      await guard.submit(`x${i}`, "x", undefined, { id: `x${i}` });
    }
    expect((await guard.outcome("b"))?.state).toBe("pending");
    expect((await guard.outcome("a"))?.state).toBe("running");
    expect(await guard.replace("k", "b", "b'")).toBe("replaced");
    gate.resolve();
    await guard.onIdle();
    expect((await guard.outcome("b"))?.state).toBe("handled");
  });
});

describe("outcomes: one per input", () => {
  it("moves pending → running (with the fence) → handled, and settles once", async () => {
    const { guard, release, settled } = await busyGuard("collect");
    await guard.submit("k", "b", undefined, { id: "b" });
    const pending = await guard.outcome("b");
    expect(pending).toMatchObject({ key: "k", state: "pending" });
    expect(pending?.fence).toBeUndefined();
    const running = await guard.outcome("a");
    expect(running?.state).toBe("running");
    expect(typeof running?.fence).toBe("number");
    expect(typeof running?.at).toBe("number");
    release();
    await guard.onIdle();
    const b = await guard.outcome("b");
    expect(b?.state).toBe("handled");
    expect(b?.fence).toBeGreaterThan(running?.fence as number);
    expect(settled.map((s) => [s.id, s.outcome.state])).toEqual([
      ["a", "handled"],
      ["b", "handled"],
    ]);
  });

  it("a duplicate leaves the original's record alone and does not settle again", async () => {
    const { guard, release, settled } = await busyGuard("collect");
    expect(await guard.submit("k", "a-again", undefined, { id: "a" })).toBe("duplicate");
    expect((await guard.outcome("a"))?.state).toBe("running");
    release();
    await guard.onIdle();
    expect(settled.map((s) => s.id)).toEqual(["a"]);
  });

  // The memory store keeps its de-duplication ids in the same records as the outcomes: a mark and
  // an outcome must not be taken for one another.
  it("de-duplication marks and outcomes share a record on the memory store without mixing", async () => {
    let fail = true;
    const guard = createGuard<string>({
      handler: () => {
        if (fail) throw new Error("agent down");
      },
      onError: () => {},
    });
    // A stop's id is de-duplicated, and is no input: no outcome.
    expect(await guard.stop("k", { id: "stop-1" })).toBe(false);
    expect(await guard.outcome("stop-1")).toBeUndefined();
    // An awaited input that failed is forgotten for de-duplication (the platform redelivers it),
    // while its outcome stays "failed" until the redelivery runs as a new input.
    await expect(guard.submit("k", "a", undefined, { id: "a", awaitTurn: true })).rejects.toThrow(
      "agent down",
    );
    expect(await guard.outcome("a")).toMatchObject({ state: "failed" });
    fail = false;
    expect(await guard.submit("k", "a", undefined, { id: "a", awaitTurn: true })).toBe("started");
    expect(await guard.outcome("a")).toMatchObject({ state: "handled" });
    // The redelivery is marked again: a third delivery is a duplicate.
    expect(await guard.submit("k", "a", undefined, { id: "a" })).toBe("duplicate");
    expect(await guard.outcome("a")).toMatchObject({ state: "handled" });
  });

  // Hostile: the store's cap (maxIds) bounds outcomes too. Records pushed out early are forgotten
  // ("unknown"), never wrong, and no input is lost with them.
  it("a tiny maxIds forgets outcomes early, never answers a wrong state, and loses no input", async () => {
    const gate = deferred();
    const ran: string[] = [];
    const guard = createGuard<string>({
      store: memoryStore({ maxIds: 2 }),
      mode: "queue",
      handler: async (turn) => {
        ran.push(...turn.inputs);
        if (turn.inputs[0] === "a") await gate.promise;
      },
    });
    for (const id of ["a", "b", "c", "d", "e"]) await guard.submit("k", id, undefined, { id });
    for (const id of ["a", "b", "c", "d", "e"]) {
      const outcome = await guard.outcome(id);
      // Running (a) or pending (the rest), or forgotten: nothing else.
      if (outcome !== undefined) expect(outcome.state).toBe(id === "a" ? "running" : "pending");
    }
    gate.resolve();
    await guard.onIdle();
    expect(ran).toEqual(["a", "b", "c", "d", "e"]);
    for (const id of ["a", "b", "c", "d", "e"]) {
      const outcome = await guard.outcome(id);
      if (outcome !== undefined) expect(outcome.state).toBe("handled");
    }
    // The newest are still known.
    expect(await guard.outcome("e")).toMatchObject({ state: "handled" });
  });

  it("settled fires for inputs without an id too, never for lanes", async () => {
    const events: { id: string | undefined; state: string }[] = [];
    const guard = createGuard<string>({ handler: () => {} });
    guard.on("settled", ({ id, outcome }) => void events.push({ id, state: outcome.state }));
    await guard.submit("k", "plain");
    await guard.run("k", () => "lane");
    await guard.onIdle();
    expect(events).toEqual([{ id: undefined, state: "handled" }]);
  });

  it("a stop, a close and an expiry are dropped outcomes with their reasons", async () => {
    vi.useFakeTimers();
    const gate = deferred();
    const guard = createGuard<string>({
      pendingTtl: 1_000,
      handler: async (turn) => {
        if (turn.inputs[0] === "a") await gate.promise;
      },
    });
    await guard.submit("k", "a", undefined, { id: "a" });
    await guard.submit("k", "old", undefined, { id: "old" });
    await vi.advanceTimersByTimeAsync(1_001);
    await guard.submit("k", "b", undefined, { id: "b" });
    await guard.stop("k");
    gate.resolve();
    await guard.onIdle();
    expect(await guard.outcome("old")).toMatchObject({ state: "dropped", reason: "expired" });
    expect(await guard.outcome("b")).toMatchObject({ state: "dropped", reason: "stopped" });
    // A stopped turn handled its inputs (G3: they were not lost, the user asked for the stop).
    expect((await guard.outcome("a"))?.state).toBe("handled");
    await guard.close();
    expect(await guard.submit("k", "late", undefined, { id: "late" })).toBe("dropped");
    expect(await guard.outcome("late")).toMatchObject({ state: "dropped", reason: "shutdown" });
  });
});

describe("steer's take() racing a withdrawal", () => {
  for (const order of ["withdraw first", "take first"] as const) {
    it(`${order}: the input either leaves or runs in the turn, and ends once`, async () => {
      const took: string[][] = [];
      const drops: Drop<string>[] = [];
      const settled: string[] = [];
      const ready = deferred<Turn<string>>();
      const gate = deferred();
      const guard = createGuard<string>({
        mode: "steer",
        onDrop: (drop) => void drops.push(drop),
        handler: async (turn) => {
          if (turn.inputs[0] === "a") {
            ready.resolve(turn);
            await gate.promise;
          }
        },
      });
      guard.on("settled", ({ id }) => void settled.push(String(id)));
      await guard.submit("k", "a", undefined, { id: "a" });
      await guard.submit("k", "b", undefined, { id: "b" });
      const turn = await ready.promise;
      const [first, second] =
        order === "withdraw first"
          ? [guard.withdraw("k", "b"), turn.take()]
          : [turn.take(), guard.withdraw("k", "b")];
      const answers = await Promise.all([first, second]);
      took.push(order === "withdraw first" ? (answers[1] as string[]) : (answers[0] as string[]));
      const result = order === "withdraw first" ? answers[0] : answers[1];
      if (order === "withdraw first") {
        expect(result).toBe("withdrawn");
        expect(took).toEqual([[]]);
        expect(drops.map((d) => d.reason)).toEqual(["withdrawn"]);
      } else {
        expect(result).toBe("in-turn");
        expect(took).toEqual([["b"]]);
        expect(drops).toEqual([]);
      }
      gate.resolve();
      await guard.onIdle();
      expect(settled.sort()).toEqual(["a", "b"]);
    });
  }
});

describe("wrong arguments", () => {
  it("replace, withdraw and outcome reject with a TypeError that says what to pass", async () => {
    const guard = createGuard<string>({ handler: () => {} });
    await expect(guard.replace("", "a", "x")).rejects.toThrow(TypeError);
    await expect(guard.replace("k", undefined as never, "x")).rejects.toThrow(
      /"id" must be the id the input was submitted with/,
    );
    await expect(guard.withdraw("k", 42 as never)).rejects.toThrow(/String\(id\)/);
    await expect(guard.outcome("\uD800")).rejects.toThrow(/lone UTF-16 surrogate/);
    const turn = deferred<Turn<string>>();
    const gate = deferred();
    void guard.submit("k", "a", async (t) => {
      turn.resolve(t);
      await gate.promise;
    });
    const t = await turn.promise;
    expect(() => t.onRevision("x" as never)).toThrow(TypeError);
    gate.resolve();
    await guard.onIdle();
  });
});

describe("hostile shapes", () => {
  it("withdrawing the only input of a turn still in its settle window, then more input arrives", async () => {
    vi.useFakeTimers();
    const turns: string[][] = [];
    const guard = createGuard<string>({
      settle: 100,
      handler: (turn) => void turns.push([...turn.inputs]),
    });
    const first = guard.submit("k", "a", undefined, { id: "a", awaitTurn: true });
    expect(await guard.withdraw("k", "a")).toBe("withdrawn");
    await guard.submit("k", "b", undefined, { id: "b" });
    await vi.advanceTimersByTimeAsync(300);
    await guard.onIdle();
    expect(await first).toBe("dropped");
    expect(turns).toEqual([["b"]]);
    expect(guard.isBusy("k")).toBe(false);
  });

  it("a revision listener that withdraws what it hears of is told once, never recursively", async () => {
    const gate = deferred();
    const results: string[] = [];
    const heard: (string | undefined)[] = [];
    const guard: ReturnType<typeof createGuard<string>> = createGuard<string>({
      handler: async (turn) => {
        turn.onRevision(async ({ input }) => {
          heard.push(input);
          results.push(await guard.withdraw("k", "a"));
        });
        await gate.promise;
      },
    });
    await guard.submit("k", "a", undefined, { id: "a" });
    await flush();
    results.push(await guard.replace("k", "a", "a2"));
    await flush();
    gate.resolve();
    await guard.onIdle();
    // The edit, then the listener's deletion; its second deletion of the same input tells nothing.
    expect(heard).toEqual(["a2", undefined]);
    expect(results).toEqual(["in-turn", "in-turn", "in-turn"]);
  });
});

describe("outcomes at volume", () => {
  it("thousands of inputs: each id answers its own record, a reused id a new one, all forgotten after the window", async () => {
    vi.useFakeTimers();
    const guard = createGuard<number>({ dedupe: 60_000, handler: () => {} });
    const fences = new Map<string, number>();
    guard.on("settled", ({ id, outcome }) => {
      if (id !== undefined) fences.set(id, outcome.fence as number);
    });
    for (let i = 0; i < 5_000; i++) {
      await guard.submit(`k${i % 37}`, i, undefined, { id: `m${i}` });
      if (i % 500 === 0) await vi.advanceTimersByTimeAsync(1_000);
    }
    await guard.onIdle();
    for (const i of [0, 1, 1_023, 1_024, 2_047, 4_999]) {
      expect(await guard.outcome(`m${i}`)).toEqual({
        key: `k${i % 37}`,
        state: "handled",
        fence: fences.get(`m${i}`),
        at: expect.any(Number),
      });
    }
    // Past the window every final record is gone, whatever traffic came since.
    await vi.advanceTimersByTimeAsync(61_000);
    await guard.submit("k", -1, undefined, { id: "late" });
    await guard.onIdle();
    expect(await guard.outcome("m4999")).toBeUndefined();
    expect((await guard.outcome("late"))?.state).toBe("handled");
  });
});
