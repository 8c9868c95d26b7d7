// Carried work (issue 15): a turn cut short hands what it did on to its key's next turn.

import {
  type Carried,
  CarryTooLargeError,
  createGuard,
  type Turn,
  type TurnAbortedError,
} from "session-guard";
import { afterEach, describe, expect, it, vi } from "vitest";
import { deferred, errorRecorder, flush } from "./support/helpers.js";

afterEach(() => {
  vi.useRealTimers();
});

/** Resolves when `signal` aborts (never rejects). */
const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));

describe("a turn cut short hands its work on", () => {
  it("superseded (interrupt): the next turn sees the partial answer and the correction", async () => {
    const seen: { inputs: string[]; carried: readonly Carried[] }[] = [];
    const guard = createGuard<string>({
      mode: "interrupt",
      handler: async (turn) => {
        seen.push({ inputs: [...turn.inputs], carried: turn.carried });
        if (turn.inputs[0] !== "question") return;
        turn.carry({ partial: "The capital of Australia is Syd" });
        await aborted(turn.signal);
        turn.carry({ partial: "The capital of Australia is Sydney" }); // the last value wins
      },
    });
    await guard.submit("k", "question");
    await flush();
    await guard.submit("k", "no, I meant New Zealand");
    await guard.onIdle();
    expect(seen).toHaveLength(2);
    const [first, second] = seen;
    expect(first?.carried).toEqual([]);
    expect(second?.inputs).toEqual(["no, I meant New Zealand"]);
    expect(second?.carried).toEqual([
      { value: { partial: "The capital of Australia is Sydney" }, fence: 1, reason: "superseded" },
    ]);
  });

  it("accumulates over turns cut short in a row, oldest first; a turn that ends well clears it", async () => {
    const carried: (readonly Carried[])[] = [];
    const gates = [deferred(), deferred(), deferred()];
    let n = 0;
    const guard = createGuard<string>({
      mode: "interrupt",
      handler: async (turn) => {
        const i = n++;
        carried.push(turn.carried);
        if (i < 2) {
          turn.carry(`work ${i}`);
          await aborted(turn.signal);
          return;
        }
        await gates[2]?.promise;
      },
    });
    await guard.submit("k", "a");
    await flush();
    await guard.submit("k", "b"); // supersedes a
    await flush();
    await guard.submit("k", "c"); // supersedes b
    await flush();
    gates[2]?.resolve();
    await guard.onIdle();
    await guard.submit("k", "d"); // after a turn that ended well: nothing carried
    await guard.onIdle();
    expect(carried.map((list) => list.map((c) => [c.value, c.reason]))).toEqual([
      [],
      [["work 0", "superseded"]],
      [
        ["work 0", "superseded"],
        ["work 1", "superseded"],
      ],
      [],
    ]);
    // The fences say which turn carried what.
    expect(carried[2]?.[0]?.fence).toBeLessThan(carried[2]?.[1]?.fence as number);
  });

  it("a turn cut short that carried nothing passes on what it received", async () => {
    const carried: (readonly Carried[])[] = [];
    let n = 0;
    const guard = createGuard<string>({
      mode: "interrupt",
      handler: async (turn) => {
        const i = n++;
        carried.push(turn.carried);
        if (i === 0) turn.carry("first");
        if (i < 2) await aborted(turn.signal);
      },
    });
    await guard.submit("k", "a");
    await flush();
    await guard.submit("k", "b");
    await flush();
    await guard.submit("k", "c");
    await guard.onIdle();
    expect(carried[2]?.map((c) => c.value)).toEqual(["first"]);
  });

  it("timeout: an overdue turn's work reaches the next turn", async () => {
    vi.useFakeTimers();
    const carried: (readonly Carried[])[] = [];
    const guard = createGuard<string>({
      turnTimeout: 1_000,
      onError: () => {},
      handler: async (turn) => {
        carried.push(turn.carried);
        if (turn.inputs[0] !== "slow") return;
        turn.carry({ step: 3 });
        await aborted(turn.signal);
      },
    });
    await guard.submit("k", "slow");
    await guard.submit("k", "next");
    await vi.advanceTimersByTimeAsync(1_001);
    await guard.onIdle();
    expect(carried[1]).toEqual([{ value: { step: 3 }, fence: 1, reason: "timeout" }]);
  });

  for (const ending of ["returns", "throws", "is stopped"] as const) {
    it(`a turn that ${ending} discards what was carried`, async () => {
      const carried: (readonly Carried[])[] = [];
      const release = deferred();
      const guard = createGuard<string>({
        onError: () => {},
        handler: async (turn) => {
          carried.push(turn.carried);
          if (turn.inputs[0] !== "a") return;
          turn.carry("work");
          await release.promise;
          if (ending === "throws") throw new Error("failed");
        },
      });
      await guard.submit("k", "a");
      await guard.submit("k", "b");
      if (ending === "is stopped") {
        await guard.stop("k");
        await guard.submit("k", "c");
      }
      release.resolve();
      await guard.onIdle();
      expect(carried.at(-1)).toEqual([]);
      expect(carried).toHaveLength(2);
    });
  }

  it("is dropped when the key is released with nothing pending (idle keys cost nothing)", async () => {
    const carried: (readonly Carried[])[] = [];
    const guard = createGuard<string>({
      turnTimeout: 20,
      onError: () => {},
      handler: async (turn) => {
        carried.push(turn.carried);
        if (turn.inputs[0] !== "slow") return;
        turn.carry("work");
        await aborted(turn.signal);
      },
    });
    await guard.submit("k", "slow");
    await guard.onIdle();
    await guard.submit("k", "later");
    await guard.onIdle();
    expect(carried).toEqual([[], []]);
  });

  it("carry(undefined) withdraws this turn's value; carrying after the turn settled does nothing", async () => {
    const carried: (readonly Carried[])[] = [];
    let first: Turn<string> | undefined;
    const guard = createGuard<string>({
      mode: "interrupt",
      handler: async (turn) => {
        carried.push(turn.carried);
        if (turn.inputs[0] !== "a") return;
        first = turn;
        turn.carry("draft");
        turn.carry(undefined);
        await aborted(turn.signal);
      },
    });
    await guard.submit("k", "a");
    await flush();
    await guard.submit("k", "b");
    await guard.onIdle();
    expect(carried[1]).toEqual([]);
    first?.carry("too late");
    await guard.submit("k", "c");
    await guard.onIdle();
    expect(carried[2]).toEqual([]);
  });
});

describe("what can be carried", () => {
  it("past maxCarry (all of the key's carried work) a carry throws CarryTooLargeError and keeps nothing new", async () => {
    const errors: unknown[] = [];
    const carried: (readonly Carried[])[] = [];
    let n = 0;
    const guard = createGuard<string>({
      mode: "interrupt",
      maxCarry: 100,
      handler: async (turn) => {
        const i = n++;
        carried.push(turn.carried);
        if (i === 0) turn.carry("x".repeat(60)); // 62 bytes as JSON
        if (i === 1) {
          try {
            turn.carry("y".repeat(60)); // 62 + 62 > 100
          } catch (error) {
            errors.push(error);
          }
          turn.carry("ok"); // 62 + 4
        }
        if (i < 2) await aborted(turn.signal);
      },
    });
    await guard.submit("k", "a");
    await flush();
    await guard.submit("k", "b");
    await flush();
    await guard.submit("k", "c");
    await guard.onIdle();
    expect(errors).toHaveLength(1);
    const error = errors[0] as CarryTooLargeError;
    expect(error).toBeInstanceOf(CarryTooLargeError);
    expect(error).toMatchObject({ key: "k", bytes: 124, limit: 100 });
    expect(error.message).toMatch(/raise maxCarry/);
    expect(carried[2]?.map((c) => c.value)).toEqual(["x".repeat(60), "ok"]);
  });

  it("counts bytes, not characters", async () => {
    const errors: unknown[] = [];
    const guard = createGuard<string>({
      maxCarry: 10,
      handler: (turn) => {
        try {
          turn.carry("ééééé"); // 5 characters, 12 bytes as JSON
        } catch (error) {
          errors.push(error);
        }
      },
    });
    await guard.submit("k", "a");
    await guard.onIdle();
    expect((errors[0] as CarryTooLargeError).bytes).toBe(12);
  });

  it("only plain JSON data: anything JSON would change is refused with a TypeError", async () => {
    const errors: unknown[] = [];
    const guard = createGuard<string>({
      handler: (turn) => {
        for (const value of [new Date(), { n: Number.NaN }, [undefined], () => 1, new Map()]) {
          try {
            turn.carry(value);
          } catch (error) {
            errors.push(error);
          }
        }
      },
    });
    await guard.submit("k", "a");
    await guard.onIdle();
    expect(errors).toHaveLength(5);
    for (const error of errors) {
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/turn\.carry\(value\): .*not plain JSON data/);
    }
  });

  it("a value that cannot be read (a throwing getter) is a TypeError with the cause", async () => {
    const errors: unknown[] = [];
    const guard = createGuard<string>({
      handler: (turn) => {
        try {
          turn.carry({
            get broken() {
              throw new Error("getter");
            },
          });
        } catch (error) {
          errors.push(error);
        }
      },
    });
    await guard.submit("k", "a");
    await guard.onIdle();
    expect(errors[0]).toBeInstanceOf(TypeError);
    expect(((errors[0] as Error).cause as Error).message).toBe("getter");
  });

  it("the next turn reads a snapshot: changing the object after carry() changes nothing", async () => {
    const carried: (readonly Carried[])[] = [];
    const guard = createGuard<string>({
      mode: "interrupt",
      handler: async (turn) => {
        carried.push(turn.carried);
        if (turn.inputs[0] !== "a") return;
        const work = { steps: ["search"] };
        turn.carry(work);
        work.steps.push("after");
        await aborted(turn.signal);
      },
    });
    await guard.submit("k", "a");
    await flush();
    await guard.submit("k", "b");
    await guard.onIdle();
    expect(carried[1]?.[0]?.value).toEqual({ steps: ["search"] });
  });

  it("maxCarry is checked up front", () => {
    expect(() => createGuard({ maxCarry: -1 })).toThrow(/maxCarry.*an integer of at least 0/);
    expect(() => createGuard({ maxCarry: Number.NaN })).toThrow(TypeError);
  });

  it("the abort reason a handler sees is still the turn's", async () => {
    const reasons: unknown[] = [];
    const errors = errorRecorder<string>();
    const guard = createGuard<string>({
      mode: "interrupt",
      onError: errors.onError,
      handler: async (turn) => {
        if (turn.inputs[0] !== "a") return;
        turn.carry("w");
        await aborted(turn.signal);
        reasons.push(turn.signal.reason);
        throw turn.signal.reason;
      },
    });
    await guard.submit("k", "a");
    await flush();
    await guard.submit("k", "b");
    await guard.onIdle();
    expect((reasons[0] as TurnAbortedError).code).toBe("superseded");
    expect(errors.errors).toEqual([]);
  });
});
