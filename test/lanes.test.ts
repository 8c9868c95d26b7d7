// Lanes: guard.run(key, fn, { onBusy }) for cron, heartbeat and recovery work on a chat's key.

import { ContendedError, createGuard, DroppedError, type Turn } from "session-guard";
import { afterEach, describe, expect, it, vi } from "vitest";
import { deferred, dropRecorder, flush, track } from "./support/helpers.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("guard.run on an idle key", () => {
  it.each(["wait", "skip", "throw"] as const)(
    "runs at once and resolves fn's value (onBusy %s)",
    async (onBusy) => {
      const guard = createGuard<string>();
      let seen: Turn<string> | undefined;
      const value = await guard.run(
        "k",
        async (turn) => {
          seen = turn;
          expect(guard.isBusy("k")).toBe(true);
          return { answer: 42 };
        },
        { onBusy },
      );
      expect(value).toEqual({ answer: 42 });
      expect(seen?.key).toBe("k");
      expect(seen?.inputs).toEqual([]);
      expect(seen?.fence).toBeGreaterThan(0);
      await guard.onIdle();
      expect(guard.isBusy("k")).toBe(false);
    },
  );

  it("a synchronous fn's value is returned too", async () => {
    const guard = createGuard();
    expect(await guard.run("k", () => "sync")).toBe("sync");
  });

  it("chat input arriving during a lane waits for it", async () => {
    const guard = createGuard<string>();
    const log: string[] = [];
    const gate = deferred();
    const lane = guard.run("k", async () => {
      log.push("lane start");
      await gate.promise;
      log.push("lane end");
      return "done";
    });
    expect(
      await guard.submit("k", "m", (turn) => void log.push(`chat ${turn.inputs.join()}`)),
    ).toBe("queued");
    await flush();
    expect(log).toEqual(["lane start"]);
    gate.resolve();
    expect(await lane).toBe("done");
    await guard.onIdle();
    expect(log).toEqual(["lane start", "lane end", "chat m"]);
  });
});

describe('onBusy: "wait"', () => {
  it("waits for the chat turn and never overlaps it", async () => {
    const guard = createGuard<string>();
    const log: string[] = [];
    const gate = deferred();
    await guard.submit("k", "a", async () => {
      log.push("chat start");
      await gate.promise;
      log.push("chat end");
    });
    const lane = track(
      guard.run(
        "k",
        (turn) => {
          log.push(`lane inputs=${JSON.stringify(turn.inputs)}`);
          return 7;
        },
        { onBusy: "wait" },
      ),
    );
    await flush();
    expect(lane.settled).toBe(false);
    expect(log).toEqual(["chat start"]);
    gate.resolve();
    expect(await lane.promise).toBe(7);
    expect(log).toEqual(["chat start", "chat end", "lane inputs=[]"]);
  });

  it("is the default", async () => {
    const guard = createGuard<string>();
    const gate = deferred();
    await guard.submit("k", "a", () => gate.promise);
    const lane = track(guard.run("k", () => "ran"));
    await flush();
    expect(lane.settled).toBe(false);
    gate.resolve();
    expect(await lane.promise).toBe("ran");
  });

  it("with waitTimeout rejects ContendedError after the timeout; the lane never runs later", async () => {
    vi.useFakeTimers();
    const guard = createGuard<string>();
    const gate = deferred();
    const log: string[] = [];
    await guard.submit("k", "a", () => gate.promise);
    const fn = vi.fn(() => "late");
    const lane = track(guard.run("k", fn, { onBusy: "wait", waitTimeout: 30 }));
    lane.promise.catch(() => {});
    await guard.submit("k", "b", () => void log.push("b"));
    expect(guard.pendingCount("k")).toBe(2);
    await vi.advanceTimersByTimeAsync(29);
    expect(lane.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(lane.settled).toBe(true);
    const error = await lane.promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ContendedError);
    expect((error as ContendedError).key).toBe("k");
    expect((error as ContendedError).waited).toBe(30);
    expect(guard.pendingCount("k")).toBe(1); // the lane left the queue; b is still there

    gate.resolve();
    await guard.onIdle();
    await vi.advanceTimersByTimeAsync(100);
    expect(fn).not.toHaveBeenCalled();
    expect(log).toEqual(["b"]);
  });

  it("with waitTimeout, a lane that got the key in time runs and resolves", async () => {
    vi.useFakeTimers();
    const guard = createGuard<string>();
    const gate = deferred();
    await guard.submit("k", "a", () => gate.promise);
    const laneGate = deferred();
    const lane = track(
      guard.run(
        "k",
        async () => {
          await laneGate.promise;
          return "ok";
        },
        { waitTimeout: 30 },
      ),
    );
    await vi.advanceTimersByTimeAsync(10);
    gate.resolve();
    await flush();
    // It is running now; its timeout passing while it runs does not withdraw it.
    await vi.advanceTimersByTimeAsync(100);
    expect(lane.settled).toBe(false);
    laneGate.resolve();
    expect(await lane.promise).toBe("ok");
  });

  it("is never coalesced with chat inputs: FIFO, with the lane as a turn of its own", async () => {
    const guard = createGuard<string>({ mode: "collect" });
    const log: string[] = [];
    const gate = deferred();
    const chat = (turn: Turn<string>) => void log.push(`chat ${turn.inputs.join()}`);
    await guard.submit("k", "a", async (turn) => {
      chat(turn);
      await gate.promise;
    });
    await guard.submit("k", "m1", chat);
    const lane = guard.run("k", (turn) => {
      log.push(`lane ${JSON.stringify(turn.inputs)}`);
    });
    await guard.submit("k", "m2", chat);
    await guard.submit("k", "m3", chat);
    gate.resolve();
    await lane;
    await guard.onIdle();
    expect(log).toEqual(["chat a", "chat m1", "lane []", "chat m2,m3"]);
  });

  it("a lane's turn.take() never pulls chat inputs into the lane (steer)", async () => {
    const guard = createGuard<string>({ mode: "steer" });
    const log: string[] = [];
    const gate = deferred();
    const lane = guard.run("k", async (turn) => {
      await gate.promise;
      const taken = await turn.take();
      log.push(`lane took ${JSON.stringify(taken)} inputs ${JSON.stringify(turn.inputs)}`);
    });
    await guard.submit("k", "m", (turn) => void log.push(`chat ${turn.inputs.join()}`));
    gate.resolve();
    await lane;
    await guard.onIdle();
    expect(log).toEqual(["lane took [] inputs []", "chat m"]);
  });

  it("is not evicted by chat overflow and does not supersede or get superseded (latest)", async () => {
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ mode: "latest", onDrop });
    const log: string[] = [];
    const gate = deferred();
    await guard.submit("k", "a", () => gate.promise);
    await guard.submit("k", "b", () => {});
    const lane = guard.run("k", () => void log.push("lane"));
    await guard.submit("k", "c", (turn) => void log.push(`chat ${turn.inputs.join()}`));
    gate.resolve();
    await lane;
    await guard.onIdle();
    expect(log).toEqual(["lane", "chat c"]);
    expect(drops.map((d) => [d.input, d.reason])).toEqual([["b", "superseded"]]);
  });

  it("waits in reject mode too (the mode applies to chat input only)", async () => {
    const guard = createGuard<string>({ mode: "reject" });
    const gate = deferred();
    await guard.submit("k", "a", () => gate.promise);
    const lane = track(guard.run("k", () => "ran"));
    await flush();
    expect(lane.settled).toBe(false);
    gate.resolve();
    expect(await lane.promise).toBe("ran");
  });

  it("does not interrupt the chat turn in interrupt mode", async () => {
    const guard = createGuard<string>({ mode: "interrupt" });
    const gate = deferred();
    let signal: AbortSignal | undefined;
    await guard.submit("k", "a", (turn) => {
      signal = turn.signal;
      return gate.promise;
    });
    const lane = guard.run("k", () => "ran");
    expect(signal?.aborted).toBe(false);
    gate.resolve();
    expect(await lane).toBe("ran");
  });

  it("is not interrupted by chat input in interrupt mode; the input runs after it", async () => {
    const guard = createGuard<string>({ mode: "interrupt" });
    const gate = deferred();
    const order: string[] = [];
    let signal: AbortSignal | undefined;
    const lane = guard.run("k", async (turn) => {
      signal = turn.signal;
      await gate.promise;
      order.push("lane done");
      return "ran";
    });
    await guard.submit("k", "hello", (turn) => void order.push(`chat ${turn.inputs.join()}`));
    expect(signal?.aborted).toBe(false);
    gate.resolve();
    expect(await lane).toBe("ran");
    await guard.onIdle();
    expect(order).toEqual(["lane done", "chat hello"]);
  });
});

describe('onBusy: "skip" and "throw"', () => {
  it('"skip" resolves undefined when busy and never runs fn', async () => {
    const guard = createGuard<string>();
    const gate = deferred();
    await guard.submit("k", "a", () => gate.promise);
    const fn = vi.fn(() => "ran");
    expect(await guard.run("k", fn, { onBusy: "skip" })).toBeUndefined();
    gate.resolve();
    await guard.onIdle();
    expect(fn).not.toHaveBeenCalled();
    expect(guard.isBusy("k")).toBe(false);
  });

  it('"throw" rejects ContendedError naming the key and never runs fn', async () => {
    const onDrop = vi.fn();
    const guard = createGuard<string>({ onDrop });
    const gate = deferred();
    await guard.submit("k", "a", () => gate.promise);
    const fn = vi.fn(() => "ran");
    const error = await guard.run("k", fn, { onBusy: "throw" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ContendedError);
    expect((error as ContendedError).key).toBe("k");
    expect((error as ContendedError).waited).toBe(0);
    expect((error as ContendedError).name).toBe("ContendedError");
    gate.resolve();
    await guard.onIdle();
    expect(fn).not.toHaveBeenCalled();
    expect(onDrop).not.toHaveBeenCalled(); // a lane is not an input
  });

  it("the contention is per key", async () => {
    const guard = createGuard<string>();
    const gate = deferred();
    await guard.submit("k1", "a", () => gate.promise);
    expect(await guard.run("k2", () => "other key", { onBusy: "throw" })).toBe("other key");
    gate.resolve();
    await guard.onIdle();
  });

  it("a lane holding the key makes another lane skip or throw", async () => {
    const guard = createGuard<string>();
    const gate = deferred();
    const first = guard.run("k", () => gate.promise.then(() => "first"));
    expect(await guard.run("k", () => "second", { onBusy: "skip" })).toBeUndefined();
    await expect(guard.run("k", () => "third", { onBusy: "throw" })).rejects.toBeInstanceOf(
      ContendedError,
    );
    gate.resolve();
    expect(await first).toBe("first");
  });
});

describe("lane errors and shutdown", () => {
  it("a lane's error rejects run() and reaches onError once; the key is free afterwards", async () => {
    const onError = vi.fn();
    const guard = createGuard<string>({ onError });
    const boom = new Error("boom");
    await expect(
      guard.run("k", () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    const later = new Error("async boom");
    await expect(guard.run("k", () => Promise.reject(later))).rejects.toBe(later);
    await guard.onIdle();
    expect(onError).toHaveBeenCalledTimes(2);
    expect(onError.mock.calls[0]?.[0]).toBe(boom);
    expect(onError.mock.calls[0]?.[1]).toMatchObject({ key: "k", inputs: [] });
    expect(onError.mock.calls[1]?.[0]).toBe(later);
    expect(guard.isBusy("k")).toBe(false);
    expect(await guard.submit("k", "next", () => {})).toBe("started");
  });

  it("a waiting lane's error does not stop the chat input queued behind it", async () => {
    const onError = vi.fn();
    const guard = createGuard<string>({ onError });
    const log: string[] = [];
    const gate = deferred();
    await guard.submit("k", "a", () => gate.promise);
    const lane = guard.run("k", () => {
      throw new Error("lane failed");
    });
    lane.catch(() => {});
    await guard.submit("k", "b", () => void log.push("b"));
    gate.resolve();
    await expect(lane).rejects.toThrow("lane failed");
    await guard.onIdle();
    expect(log).toEqual(["b"]);
    expect(onError).toHaveBeenCalledTimes(1);
  });

  it('stop() while a lane waits rejects it with DroppedError reason "stopped"', async () => {
    const guard = createGuard<string>();
    const fn = vi.fn();
    await guard.submit("k", "a", (turn) => {
      return new Promise<void>((resolve) => turn.signal.addEventListener("abort", () => resolve()));
    });
    const lane = guard.run("k", fn);
    lane.catch(() => {});
    expect(await guard.stop("k")).toBe(true);
    const error = await lane.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DroppedError);
    expect((error as DroppedError).reason).toBe("stopped");
    expect((error as DroppedError).key).toBe("k");
    await guard.onIdle();
    expect(fn).not.toHaveBeenCalled();
  });

  it('run() after close rejects DroppedError "shutdown"', async () => {
    const guard = createGuard<string>();
    await guard.close();
    const fn = vi.fn();
    let promise: Promise<unknown> | undefined;
    expect(() => {
      promise = guard.run("k", fn);
    }).not.toThrow();
    const error = await promise?.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DroppedError);
    expect((error as DroppedError).reason).toBe("shutdown");
    expect((error as DroppedError).key).toBe("k");
    expect(fn).not.toHaveBeenCalled();
  });
});
