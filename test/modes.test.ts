// Busy modes: what happens to input that arrives while its key's turn runs.

import { createGuard, type Handler, type Mode, type Turn, TurnAbortedError } from "session-guard";
import { afterEach, describe, expect, it, vi } from "vitest";
import { deferred, dropRecorder, flush, sleep } from "./support/helpers.js";

afterEach(() => {
  vi.useRealTimers();
});

/** A recorder of turns: each turn's inputs, fence and which input's `run` handled it. */
function recorder() {
  const turns: { inputs: string[]; fence: number; by: string }[] = [];
  const run =
    (by: string, body?: (turn: Turn<string>) => unknown): Handler<string> =>
    (turn) => {
      turns.push({ inputs: [...turn.inputs], fence: turn.fence, by });
      return body?.(turn);
    };
  return { turns, run, inputs: () => turns.map((t) => t.inputs) };
}

describe("collect", () => {
  it("coalesces every pending input into exactly one next turn, oldest first", async () => {
    const guard = createGuard<string>({ mode: "collect" });
    const { run, turns, inputs } = recorder();
    const gate = deferred();
    expect(
      await guard.submit(
        "k",
        "a",
        run("a", () => gate.promise),
      ),
    ).toBe("started");
    expect(await guard.submit("k", "b", run("b"))).toBe("queued");
    expect(await guard.submit("k", "c", run("c"))).toBe("queued");
    expect(await guard.submit("k", "d", run("d"))).toBe("queued");
    expect(guard.pendingCount("k")).toBe(3);
    expect(inputs()).toEqual([["a"]]);

    gate.resolve();
    await guard.onIdle();
    expect(inputs()).toEqual([["a"], ["b", "c", "d"]]);
    // The coalesced turn runs the latest input's `run`, under a higher fence.
    expect(turns[1]?.by).toBe("d");
    expect(turns[1]?.fence).toBeGreaterThan(turns[0]?.fence as number);
    expect(guard.isBusy("k")).toBe(false);
    expect(guard.pendingCount("k")).toBe(0);
  });

  it("input arriving during the coalesced turn waits for a third turn", async () => {
    const guard = createGuard<string>();
    const { run, inputs } = recorder();
    const first = deferred();
    const second = deferred();
    const secondStarted = deferred();
    await guard.submit(
      "k",
      "a",
      run("a", () => first.promise),
    );
    await guard.submit("k", "b", run("b"));
    await guard.submit(
      "k",
      "c",
      run("c", () => {
        secondStarted.resolve();
        return second.promise;
      }),
    );
    first.resolve();
    await secondStarted.promise;
    expect(await guard.submit("k", "d", run("d"))).toBe("queued");
    expect(await guard.submit("k", "e", run("e"))).toBe("queued");
    second.resolve();
    await guard.onIdle();
    expect(inputs()).toEqual([["a"], ["b", "c"], ["d", "e"]]);
  });

  it("keeps keys independent", async () => {
    const guard = createGuard<string>();
    const { run, inputs } = recorder();
    const gate = deferred();
    expect(
      await guard.submit(
        "k1",
        "a",
        run("a", () => gate.promise),
      ),
    ).toBe("started");
    expect(await guard.submit("k2", "x", run("x"))).toBe("started");
    expect(await guard.submit("k1", "b", run("b"))).toBe("queued");
    gate.resolve();
    await guard.onIdle();
    expect(inputs()).toEqual([["a"], ["x"], ["b"]]);
  });
});

describe("queue", () => {
  it("keeps one turn per pending input, in order", async () => {
    const guard = createGuard<string>({ mode: "queue" });
    const { run, turns, inputs } = recorder();
    const gate = deferred();
    expect(
      await guard.submit(
        "k",
        "a",
        run("a", () => gate.promise),
      ),
    ).toBe("started");
    for (const input of ["b", "c", "d"]) {
      expect(await guard.submit("k", input, run(input))).toBe("queued");
    }
    expect(guard.pendingCount("k")).toBe(3);
    gate.resolve();
    await guard.onIdle();
    expect(inputs()).toEqual([["a"], ["b"], ["c"], ["d"]]);
    expect(turns.map((t) => t.by)).toEqual(["a", "b", "c", "d"]);
    const fences = turns.map((t) => t.fence);
    for (let i = 1; i < fences.length; i++) {
      expect(fences[i]).toBeGreaterThan(fences[i - 1] as number);
    }
  });

  it("never overlaps the turns it queues", async () => {
    const guard = createGuard<string>({ mode: "queue" });
    const log: string[] = [];
    const slow: Handler<string> = async (turn) => {
      log.push(`start ${turn.inputs.join()}`);
      await sleep(5);
      log.push(`end ${turn.inputs.join()}`);
    };
    await Promise.all(["a", "b", "c"].map((input) => guard.submit("k", input, slow)));
    await guard.onIdle();
    expect(log).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
  });
});

describe("steer", () => {
  it("take() moves pending inputs into the running turn; later input waits for the next turn", async () => {
    const guard = createGuard<string>({ mode: "steer" });
    const { run, inputs } = recorder();
    const beforeTake = deferred();
    const tookIt = deferred<{ taken: string[]; inputs: string[] }>();
    const finish = deferred();
    await guard.submit(
      "k",
      "a",
      run("a", async (turn) => {
        expect(await turn.take()).toEqual([]); // nothing pending yet
        await beforeTake.promise;
        const taken = await turn.take();
        tookIt.resolve({ taken, inputs: [...turn.inputs] });
        await finish.promise;
      }),
    );
    await flush();
    expect(await guard.submit("k", "b", run("b"))).toBe("queued");
    expect(await guard.submit("k", "c", run("c"))).toBe("queued");
    beforeTake.resolve();
    const { taken, inputs: during } = await tookIt.promise;
    expect(taken).toEqual(["b", "c"]);
    expect(during).toEqual(["a", "b", "c"]);
    expect(guard.pendingCount("k")).toBe(0);

    expect(await guard.submit("k", "d", run("d"))).toBe("queued");
    expect(await guard.submit("k", "e", run("e"))).toBe("queued");
    finish.resolve();
    await guard.onIdle();
    // The first turn's record was taken before take(); what it left runs as one next turn.
    expect(inputs()).toEqual([["a"], ["d", "e"]]);
  });

  it("taken inputs are appended to turn.inputs even when it was read before", async () => {
    const guard = createGuard<string>({ mode: "steer" });
    const gate = deferred();
    const seen = deferred<{ before: readonly string[]; after: string[] }>();
    await guard.submit("k", "a", async (turn) => {
      const before = [...turn.inputs]; // read (and cached) before take()
      await gate.promise;
      await turn.take();
      seen.resolve({ before, after: [...turn.inputs] });
    });
    await guard.submit("k", "b", () => {});
    gate.resolve();
    const { before, after } = await seen.promise;
    expect(before).toEqual(["a"]);
    expect(after).toEqual(["a", "b"]);
    await guard.onIdle();
  });

  it("take() leaves alone inputs pending, and everything after them, for FIFO order", async () => {
    const guard = createGuard<string>({ mode: "steer" });
    const { run, inputs } = recorder();
    const gate = deferred();
    const taken = deferred<string[]>();
    let after: string[] = [];
    await guard.submit(
      "k",
      "a",
      run("a", async (turn) => {
        await gate.promise;
        taken.resolve(await turn.take());
        after = [...turn.inputs];
      }),
    );
    await guard.submit("k", "b", run("b"));
    await guard.submit("k", "X", run("X"), { alone: true });
    await guard.submit("k", "c", run("c"));
    gate.resolve();
    expect(await taken.promise).toEqual(["b"]);
    await guard.onIdle();
    expect(after).toEqual(["a", "b"]);
    // Turn inputs as each turn started: X runs by itself, then c.
    expect(inputs()).toEqual([["a"], ["X"], ["c"]]);
  });

  it("take() with an alone input at the head of the queue takes nothing", async () => {
    const guard = createGuard<string>({ mode: "steer" });
    const { run, inputs } = recorder();
    const gate = deferred();
    const taken = deferred<string[]>();
    await guard.submit(
      "k",
      "a",
      run("a", async (turn) => {
        await gate.promise;
        taken.resolve(await turn.take());
      }),
    );
    await guard.submit("k", "X", run("X"), { alone: true });
    await guard.submit("k", "b", run("b"));
    gate.resolve();
    expect(await taken.promise).toEqual([]);
    await guard.onIdle();
    expect(inputs()).toEqual([["a"], ["X"], ["b"]]);
  });

  it("the turn of an alone input never takes other inputs into it", async () => {
    const guard = createGuard<string>({ mode: "steer" });
    const { run, inputs } = recorder();
    const gate = deferred();
    const taken = deferred<string[]>();
    await guard.submit(
      "k",
      "X",
      run("X", async (turn) => {
        await gate.promise;
        taken.resolve(await turn.take());
      }),
      { alone: true },
    );
    await guard.submit("k", "b", run("b"));
    gate.resolve();
    expect(await taken.promise).toEqual([]);
    await guard.onIdle();
    expect(inputs()).toEqual([["X"], ["b"]]);
  });

  it("without take() pending input is collected into the next turn", async () => {
    const guard = createGuard<string>({ mode: "steer" });
    const { run, inputs } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run("a", () => gate.promise),
    );
    await guard.submit("k", "b", run("b"));
    await guard.submit("k", "c", run("c"));
    gate.resolve();
    await guard.onIdle();
    expect(inputs()).toEqual([["a"], ["b", "c"]]);
  });

  it("take() after the turn settled resolves [] and leaves the input to the next turn", async () => {
    const guard = createGuard<string>({ mode: "steer" });
    const { run, inputs } = recorder();
    let stale: Turn<string> | undefined;
    await guard.submit(
      "k",
      "a",
      run("a", (turn) => {
        stale = turn;
      }),
    );
    await guard.onIdle();
    const gate = deferred();
    await guard.submit(
      "k",
      "b",
      run("b", () => gate.promise),
    );
    await guard.submit("k", "c", run("c"));
    expect(stale?.stale).toBe(true);
    expect(await stale?.take()).toEqual([]);
    expect(guard.pendingCount("k")).toBe(1);
    gate.resolve();
    await guard.onIdle();
    expect(inputs()).toEqual([["a"], ["b"], ["c"]]);
  });
});

describe("interrupt", () => {
  it("aborts the running turn (superseded) and starts the next only after it settled", async () => {
    const onError = vi.fn();
    const guard = createGuard<string>({ mode: "interrupt", onError });
    const log: string[] = [];
    const release = deferred();
    let signal: AbortSignal | undefined;
    let fence = 0;
    await guard.submit("k", "a", async (turn) => {
      signal = turn.signal;
      fence = turn.fence;
      log.push("a start");
      await release.promise; // ignores its signal for a while
      log.push("a end");
    });
    expect(signal?.aborted).toBe(false);

    expect(
      await guard.submit("k", "b", (turn) => void log.push(`next ${turn.inputs.join()}`)),
    ).toBe("queued");
    expect(signal?.aborted).toBe(true);
    const reason = signal?.reason as TurnAbortedError;
    expect(reason).toBeInstanceOf(TurnAbortedError);
    expect(reason.code).toBe("superseded");
    expect(reason.key).toBe("k");
    expect(reason.fence).toBe(fence);

    expect(
      await guard.submit("k", "c", (turn) => void log.push(`next ${turn.inputs.join()}`)),
    ).toBe("queued");
    await sleep(20);
    expect(log).toEqual(["a start"]); // the old turn still runs: nothing overlaps it
    expect(guard.isBusy("k")).toBe(true);
    expect(guard.pendingCount("k")).toBe(2);

    release.resolve();
    await guard.onIdle();
    expect(log).toEqual(["a start", "a end", "next b,c"]);
    expect(onError).not.toHaveBeenCalled();
  });

  it("a turn that rethrows its abort reason is not an error; the next turn runs", async () => {
    const onError = vi.fn();
    const guard = createGuard<string>({ mode: "interrupt", onError });
    const log: string[] = [];
    await guard.submit("k", "a", async (turn) => {
      await new Promise<void>((_, reject) =>
        turn.signal.addEventListener("abort", () => reject(turn.signal.reason)),
      );
    });
    await guard.submit("k", "b", (turn) => {
      log.push(`${turn.inputs.join()} aborted=${turn.signal.aborted}`);
    });
    await guard.onIdle();
    expect(log).toEqual(["b aborted=false"]);
    expect(onError).not.toHaveBeenCalled();
  });

  it("does not interrupt a turn that has not started yet (settle window)", async () => {
    vi.useFakeTimers();
    const guard = createGuard<string>({ mode: "interrupt", settle: 50 });
    const log: string[] = [];
    await guard.submit("k", "a", () => {});
    await guard.submit("k", "b", (turn) => {
      log.push(`${turn.inputs.join()} aborted=${turn.signal.aborted}`);
    });
    await vi.advanceTimersByTimeAsync(50);
    await guard.onIdle();
    expect(log).toEqual(["a,b aborted=false"]);
  });
});

describe("latest", () => {
  it("keeps only the newest pending input; earlier ones are dropped as superseded", async () => {
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ mode: "latest", onDrop });
    const { run, inputs } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run("a", () => gate.promise),
    );
    expect(await guard.submit("k", "b", run("b"), { id: "id-b" })).toBe("queued");
    expect(await guard.submit("k", "c", run("c"), { id: "id-c" })).toBe("queued");
    expect(await guard.submit("k", "d", run("d"), { id: "id-d" })).toBe("queued");
    expect(guard.pendingCount("k")).toBe(1);
    expect(drops).toEqual([
      { key: "k", input: "b", id: "id-b", reason: "superseded" },
      { key: "k", input: "c", id: "id-c", reason: "superseded" },
    ]);
    gate.resolve();
    await guard.onIdle();
    expect(inputs()).toEqual([["a"], ["d"]]);
    expect(drops).toHaveLength(2);
  });

  it("never supersedes alone inputs", async () => {
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ mode: "latest", onDrop });
    const { run, inputs } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run("a", () => gate.promise),
    );
    await guard.submit("k", "b", run("b"));
    await guard.submit("k", "X", run("X"), { alone: true });
    await guard.submit("k", "c", run("c"));
    await guard.submit("k", "Y", run("Y"), { alone: true });
    await guard.submit("k", "d", run("d"));
    expect(drops.map((d) => [d.input, d.reason])).toEqual([
      ["b", "superseded"],
      ["c", "superseded"],
    ]);
    expect(guard.pendingCount("k")).toBe(3);
    gate.resolve();
    await guard.onIdle();
    expect(inputs()).toEqual([["a"], ["X"], ["Y"], ["d"]]);
  });

  it("an alone input does not supersede what is pending", async () => {
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ mode: "latest", onDrop });
    const { run, inputs } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run("a", () => gate.promise),
    );
    await guard.submit("k", "b", run("b"));
    await guard.submit("k", "X", run("X"), { alone: true });
    expect(drops).toEqual([]);
    gate.resolve();
    await guard.onIdle();
    expect(inputs()).toEqual([["a"], ["b"], ["X"]]);
  });
});

describe("reject", () => {
  it("drops input that arrives during a turn with reason busy; submit resolves dropped", async () => {
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ mode: "reject", onDrop });
    const { run, inputs } = recorder();
    const gate = deferred();
    expect(
      await guard.submit(
        "k",
        "a",
        run("a", () => gate.promise),
      ),
    ).toBe("started");
    expect(await guard.submit("k", "b", run("b"), { id: "1" })).toBe("dropped");
    expect(await guard.submit("k", "c", run("c"))).toBe("dropped");
    expect(guard.pendingCount("k")).toBe(0);
    expect(drops).toEqual([
      { key: "k", input: "b", id: "1", reason: "busy" },
      { key: "k", input: "c", id: undefined, reason: "busy" },
    ]);
    gate.resolve();
    await guard.onIdle();
    expect(await guard.submit("k", "d", run("d"))).toBe("started");
    await guard.onIdle();
    expect(inputs()).toEqual([["a"], ["d"]]);
  });
});

describe("alone inputs", () => {
  it.each<Mode>(["collect", "steer", "interrupt"])(
    "are never coalesced (%s): messages before coalesce, the alone one runs by itself, messages after coalesce",
    async (mode) => {
      const guard = createGuard<string>({ mode });
      const { run, inputs } = recorder();
      const gate = deferred();
      await guard.submit(
        "k",
        "a",
        run("a", () => gate.promise),
      );
      await guard.submit("k", "m1", run("m1"));
      await guard.submit("k", "m2", run("m2"));
      expect(await guard.submit("k", "X", run("X"), { alone: true })).toBe("queued");
      await guard.submit("k", "m3", run("m3"));
      await guard.submit("k", "m4", run("m4"));
      gate.resolve();
      await guard.onIdle();
      expect(inputs()).toEqual([["a"], ["m1", "m2"], ["X"], ["m3", "m4"]]);
    },
  );

  it("two alone inputs in a row are two turns", async () => {
    const guard = createGuard<string>();
    const { run, inputs } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run("a", () => gate.promise),
    );
    await guard.submit("k", "X", run("X"), { alone: true });
    await guard.submit("k", "Y", run("Y"), { alone: true });
    gate.resolve();
    await guard.onIdle();
    expect(inputs()).toEqual([["a"], ["X"], ["Y"]]);
  });
});

describe("turn.onPending", () => {
  it("fires with the pending count; its unsubscribe works", async () => {
    const guard = createGuard<string>();
    const counts: number[] = [];
    const other: number[] = [];
    const gate = deferred();
    const ready = deferred<() => void>();
    let pendingSeen = -1;
    await guard.submit("k", "a", async (turn) => {
      const unsubscribe = turn.onPending((n) => counts.push(n));
      turn.onPending((n) => other.push(n));
      ready.resolve(unsubscribe);
      await gate.promise;
      pendingSeen = turn.pendingCount;
    });
    const unsubscribe = await ready.promise;
    await guard.submit("k", "b", () => {});
    await guard.submit("k", "c", () => {});
    expect(counts).toEqual([1, 2]);
    unsubscribe();
    await guard.submit("k", "d", () => {});
    expect(counts).toEqual([1, 2]);
    expect(other).toEqual([1, 2, 3]);
    gate.resolve();
    await guard.onIdle();
    expect(pendingSeen).toBe(3);
  });

  it("a listener that throws goes to onError with the turn; the others and the turn go on", async () => {
    const errors: [unknown, string, number | undefined, readonly string[]][] = [];
    const guard = createGuard<string>({
      onError: (error, info) => errors.push([error, info.key, info.fence, info.inputs]),
    });
    const counts: number[] = [];
    const gate = deferred();
    const ready = deferred();
    const boom = new Error("listener failed");
    let fence = 0;
    await guard.submit("k", "a", async (turn) => {
      fence = turn.fence;
      turn.onPending(() => {
        throw boom;
      });
      turn.onPending((n) => counts.push(n));
      ready.resolve();
      await gate.promise;
    });
    await ready.promise;
    expect(await guard.submit("k", "b", () => {})).toBe("queued");
    expect(errors).toEqual([[boom, "k", fence, ["a"]]]);
    expect(counts).toEqual([1]);
    gate.resolve();
    await guard.onIdle();
    expect(errors).toHaveLength(1);
  });

  it("in latest mode reports the count after superseding", async () => {
    const guard = createGuard<string>({ mode: "latest" });
    const counts: number[] = [];
    const gate = deferred();
    await guard.submit("k", "a", (turn) => {
      turn.onPending((n) => counts.push(n));
      return gate.promise;
    });
    await guard.submit("k", "b", () => {});
    await guard.submit("k", "c", () => {});
    expect(counts).toEqual([1, 1]);
    gate.resolve();
    await guard.onIdle();
  });

  it("does not fire for input rejected in reject mode", async () => {
    const guard = createGuard<string>({ mode: "reject" });
    const counts: number[] = [];
    const gate = deferred();
    await guard.submit("k", "a", (turn) => {
      turn.onPending((n) => counts.push(n));
      return gate.promise;
    });
    await guard.submit("k", "b", () => {});
    expect(counts).toEqual([]);
    gate.resolve();
    await guard.onIdle();
  });

  it("a throwing listener goes to onError and does not block admission", async () => {
    const onError = vi.fn();
    const guard = createGuard<string>({ onError });
    const gate = deferred();
    const boom = new Error("listener");
    await guard.submit("k", "a", (turn) => {
      turn.onPending(() => {
        throw boom;
      });
      return gate.promise;
    });
    expect(await guard.submit("k", "b", () => {})).toBe("queued");
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]?.[0]).toBe(boom);
    gate.resolve();
    await guard.onIdle();
  });
});
