// Admission: settle window, de-duplication, overflow, total cap, pending TTL, expiresAt, awaitTurn.

import { createGuard, type Handler, type TurnAbortedError } from "session-guard";
import { afterEach, describe, expect, it, vi } from "vitest";
import { deferred, dropRecorder, flush, track } from "./support/helpers.js";

afterEach(() => {
  vi.useRealTimers();
});

/** Records the inputs of every turn as it starts. */
function recorder() {
  const turns: string[][] = [];
  const run =
    (body?: () => unknown): Handler<string> =>
    (turn) => {
      turns.push([...turn.inputs]);
      return body?.();
    };
  return { turns, run };
}

describe("settle window", () => {
  it("a burst within settle ms of the first input becomes one turn", async () => {
    vi.useFakeTimers();
    const guard = createGuard<string>({ settle: 50 });
    const { turns, run } = recorder();
    expect(await guard.submit("k", "a", run())).toBe("started");
    expect(guard.isBusy("k")).toBe(true);
    await vi.advanceTimersByTimeAsync(20);
    expect(await guard.submit("k", "b", run())).toBe("queued");
    await vi.advanceTimersByTimeAsync(29);
    expect(await guard.submit("k", "c", run())).toBe("queued");
    expect(turns).toEqual([]); // nothing ran during the window
    await vi.advanceTimersByTimeAsync(1);
    expect(turns).toEqual([["a", "b", "c"]]);
    await guard.onIdle();
    expect(turns).toEqual([["a", "b", "c"]]);
  });

  it("input arriving after the turn started is pending and runs without a new window", async () => {
    vi.useFakeTimers();
    const guard = createGuard<string>({ settle: 50 });
    const { turns, run } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run(() => gate.promise),
    );
    await vi.advanceTimersByTimeAsync(50);
    expect(turns).toEqual([["a"]]);
    expect(await guard.submit("k", "b", run())).toBe("queued");
    expect(await guard.submit("k", "c", run())).toBe("queued");
    expect(guard.pendingCount("k")).toBe(2);
    gate.resolve();
    await flush();
    // The next batch is handed over at once (a settle window applies to a fresh claim only).
    expect(turns).toEqual([["a"], ["b", "c"]]);
    await guard.onIdle();
  });

  it("in queue mode the window delays the turn but does not coalesce", async () => {
    vi.useFakeTimers();
    const guard = createGuard<string>({ settle: 50, mode: "queue" });
    const { turns, run } = recorder();
    await guard.submit("k", "a", run());
    await guard.submit("k", "b", run());
    await guard.submit("k", "c", run());
    await vi.advanceTimersByTimeAsync(49);
    expect(turns).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["b"], ["c"]]);
  });

  it("an alone input does not wait for the window, and does not collect a burst", async () => {
    vi.useFakeTimers();
    const guard = createGuard<string>({ settle: 50 });
    const { turns, run } = recorder();
    await guard.submit("k", "X", run(), { alone: true });
    expect(turns).toEqual([["X"]]);
    await guard.onIdle();
  });

  it("each key has its own window", async () => {
    vi.useFakeTimers();
    const guard = createGuard<string>({ settle: 50 });
    const { turns, run } = recorder();
    await guard.submit("k1", "a", run());
    await vi.advanceTimersByTimeAsync(30);
    await guard.submit("k2", "x", run());
    await vi.advanceTimersByTimeAsync(20);
    expect(turns).toEqual([["a"]]);
    await guard.submit("k2", "y", run());
    await vi.advanceTimersByTimeAsync(30);
    expect(turns).toEqual([["a"], ["x", "y"]]);
    await guard.onIdle();
  });
});

describe("de-duplication", () => {
  it("the same id within the window is a duplicate, reported to onDrop, and never runs", async () => {
    vi.useFakeTimers();
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ dedupe: 1_000, onDrop });
    const { turns, run } = recorder();
    const gate = deferred();
    expect(
      await guard.submit(
        "k",
        "a",
        run(() => gate.promise),
        { id: "1" },
      ),
    ).toBe("started");
    // While the first is running...
    expect(await guard.submit("k", "a again", run(), { id: "1" })).toBe("duplicate");
    expect(guard.pendingCount("k")).toBe(0);
    gate.resolve();
    await guard.onIdle();
    // ...and after it finished, within the window.
    await vi.advanceTimersByTimeAsync(999);
    expect(await guard.submit("k", "a late", run(), { id: "1" })).toBe("duplicate");
    await guard.onIdle();
    expect(turns).toEqual([["a"]]);
    expect(drops).toEqual([
      { key: "k", input: "a again", id: "1", reason: "duplicate" },
      { key: "k", input: "a late", id: "1", reason: "duplicate" },
    ]);
  });

  it("a pending input's id is a duplicate too", async () => {
    const guard = createGuard<string>();
    const { turns, run } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run(() => gate.promise),
    );
    expect(await guard.submit("k", "b", run(), { id: "b" })).toBe("queued");
    expect(await guard.submit("k", "b", run(), { id: "b" })).toBe("duplicate");
    expect(guard.pendingCount("k")).toBe(1);
    gate.resolve();
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["b"]]);
  });

  it("after the window the same id is admitted again", async () => {
    vi.useFakeTimers();
    const guard = createGuard<string>({ dedupe: 1_000 });
    const { turns, run } = recorder();
    await guard.submit("k", "a", run(), { id: "1" });
    await guard.onIdle();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await guard.submit("k", "a redelivered", run(), { id: "1" })).toBe("started");
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["a redelivered"]]);
    // ...and is remembered again from then on.
    expect(await guard.submit("k", "a third", run(), { id: "1" })).toBe("duplicate");
  });

  it("dedupe: false turns it off", async () => {
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ dedupe: false, onDrop });
    const { turns, run } = recorder();
    expect(await guard.submit("k", "a", run(), { id: "1" })).toBe("started");
    await guard.onIdle();
    expect(await guard.submit("k", "a", run(), { id: "1" })).toBe("started");
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["a"]]);
    expect(drops).toEqual([]);
  });

  it("ids are global across keys", async () => {
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ onDrop });
    const { turns, run } = recorder();
    expect(await guard.submit("k1", "a", run(), { id: "same" })).toBe("started");
    expect(await guard.submit("k2", "b", run(), { id: "same" })).toBe("duplicate");
    await guard.onIdle();
    expect(turns).toEqual([["a"]]);
    expect(drops).toEqual([{ key: "k2", input: "b", id: "same", reason: "duplicate" }]);
  });

  it("inputs without an id are never duplicates", async () => {
    const guard = createGuard<string>();
    const { turns, run } = recorder();
    expect(await guard.submit("k", "a", run())).toBe("started");
    await guard.onIdle();
    expect(await guard.submit("k", "a", run())).toBe("started");
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["a"]]);
  });
});

describe("overflow at maxPending", () => {
  it('"drop-oldest" evicts the oldest pending input (reason overflow)', async () => {
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ maxPending: 2, overflow: "drop-oldest", onDrop });
    const { turns, run } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run(() => gate.promise),
    );
    expect(await guard.submit("k", "b", run(), { id: "b" })).toBe("queued");
    expect(await guard.submit("k", "c", run())).toBe("queued");
    expect(await guard.submit("k", "d", run())).toBe("queued");
    expect(await guard.submit("k", "e", run())).toBe("queued");
    expect(guard.pendingCount("k")).toBe(2);
    expect(drops).toEqual([
      { key: "k", input: "b", id: "b", reason: "overflow" },
      { key: "k", input: "c", id: undefined, reason: "overflow" },
    ]);
    gate.resolve();
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["d", "e"]]);
  });

  it('"drop-newest" refuses the new input (reason overflow) and submit resolves dropped', async () => {
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ maxPending: 2, overflow: "drop-newest", onDrop });
    const { turns, run } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run(() => gate.promise),
    );
    expect(await guard.submit("k", "b", run())).toBe("queued");
    expect(await guard.submit("k", "c", run())).toBe("queued");
    expect(await guard.submit("k", "d", run(), { id: "d" })).toBe("dropped");
    expect(guard.pendingCount("k")).toBe(2);
    expect(drops).toEqual([{ key: "k", input: "d", id: "d", reason: "overflow" }]);
    gate.resolve();
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["b", "c"]]);
  });

  it("maxPending: 0 keeps no pending input at all", async () => {
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ maxPending: 0, onDrop });
    const { turns, run } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run(() => gate.promise),
    );
    expect(await guard.submit("k", "b", run())).toBe("dropped");
    expect(drops.map((d) => [d.input, d.reason])).toEqual([["b", "overflow"]]);
    gate.resolve();
    await guard.onIdle();
    expect(turns).toEqual([["a"]]);
  });
});

describe("maxPendingTotal", () => {
  it("caps pending input across keys; new input past it is dropped (overflow)", async () => {
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ maxPendingTotal: 2, onDrop });
    const { turns, run } = recorder();
    const gate1 = deferred();
    const gate2 = deferred();
    await guard.submit(
      "k1",
      "a",
      run(() => gate1.promise),
    );
    await guard.submit(
      "k2",
      "x",
      run(() => gate2.promise),
    );
    expect(await guard.submit("k1", "b", run())).toBe("queued");
    expect(await guard.submit("k2", "y", run())).toBe("queued");
    // The cap refuses the newcomer even under "drop-oldest": it protects memory, not a chat.
    expect(await guard.submit("k1", "c", run())).toBe("dropped");
    expect(await guard.submit("k2", "z", run())).toBe("dropped");
    // An idle key still starts a turn: only pending input counts.
    expect(await guard.submit("k3", "p", run())).toBe("started");
    expect(drops.map((d) => [d.key, d.input, d.reason])).toEqual([
      ["k1", "c", "overflow"],
      ["k2", "z", "overflow"],
    ]);

    gate1.resolve();
    await flush();
    // k1's pending input moved into a turn: there is room again.
    expect(await guard.submit("k2", "w", run())).toBe("queued");
    gate2.resolve();
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["x"], ["p"], ["b"], ["y", "w"]]);
  });
});

describe("maxPendingTotal with replacing policies", () => {
  it("at the cap, latest still replaces and drop-oldest still evicts within the key", async () => {
    const { drops, onDrop } = dropRecorder<string>();
    const latest = createGuard<string>({ mode: "latest", maxPendingTotal: 1, onDrop });
    const gate = deferred();
    await latest.submit("k", "a", () => gate.promise);
    expect(await latest.submit("k", "b", () => {})).toBe("queued");
    expect(await latest.submit("k", "c", () => {})).toBe("queued");
    expect(latest.pendingCount("k")).toBe(1);
    gate.resolve();
    await latest.onIdle();

    const oldest = createGuard<string>({ maxPending: 1, maxPendingTotal: 1, onDrop });
    const gate2 = deferred();
    await oldest.submit("k", "x", () => gate2.promise);
    expect(await oldest.submit("k", "y", () => {})).toBe("queued");
    expect(await oldest.submit("k", "z", () => {})).toBe("queued");
    expect(oldest.pendingCount("k")).toBe(1);
    gate2.resolve();
    await oldest.onIdle();
    expect(drops.map((d) => [d.input, d.reason])).toEqual([
      ["b", "superseded"],
      ["y", "overflow"],
    ]);
  });
});

describe("pendingTtl", () => {
  it("pending input older than pendingTtl is dropped as expired when due, while the turn runs", async () => {
    vi.useFakeTimers();
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ pendingTtl: 100, onDrop });
    const { turns, run } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run(() => gate.promise),
    );
    await guard.submit("k", "b", run(), { id: "b" });
    await vi.advanceTimersByTimeAsync(60);
    await guard.submit("k", "c", run());
    await vi.advanceTimersByTimeAsync(39); // b is 99 ms old
    expect(drops).toEqual([]);
    expect(guard.pendingCount("k")).toBe(2);
    await vi.advanceTimersByTimeAsync(1); // b is 100 ms old: dropped now, not when "a" ends
    expect(drops).toEqual([{ key: "k", input: "b", id: "b", reason: "expired" }]);
    expect(guard.pendingCount("k")).toBe(1);
    await vi.advanceTimersByTimeAsync(20); // c is 60 ms old
    expect(drops).toHaveLength(1);
    gate.resolve();
    await guard.onIdle();
    expect(drops).toEqual([{ key: "k", input: "b", id: "b", reason: "expired" }]);
    expect(turns).toEqual([["a"], ["c"]]);
  });

  it("when every pending input expired, the key is released and nothing runs", async () => {
    vi.useFakeTimers();
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ pendingTtl: 100, onDrop });
    const { turns, run } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run(() => gate.promise),
    );
    await guard.submit("k", "b", run());
    await guard.submit("k", "c", run());
    await vi.advanceTimersByTimeAsync(100);
    gate.resolve();
    await guard.onIdle();
    expect(turns).toEqual([["a"]]);
    expect(drops.map((d) => [d.input, d.reason])).toEqual([
      ["b", "expired"],
      ["c", "expired"],
    ]);
    expect(guard.isBusy("k")).toBe(false);
    expect(guard.pendingCount("k")).toBe(0);
  });

  it("applies in queue mode to each waiting input", async () => {
    vi.useFakeTimers();
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ mode: "queue", pendingTtl: 100, onDrop });
    const { turns, run } = recorder();
    const gate = deferred();
    const slow = deferred();
    await guard.submit(
      "k",
      "a",
      run(() => gate.promise),
    );
    await guard.submit(
      "k",
      "b",
      run(() => slow.promise),
    );
    await vi.advanceTimersByTimeAsync(50);
    await guard.submit("k", "c", run());
    gate.resolve();
    await flush();
    expect(turns).toEqual([["a"], ["b"]]);
    await vi.advanceTimersByTimeAsync(110); // c is now 110 ms old; b started in time
    slow.resolve();
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["b"]]);
    expect(drops.map((d) => [d.input, d.reason])).toEqual([["c", "expired"]]);
  });

  it("an input that starts a turn at once is never expired", async () => {
    vi.useFakeTimers();
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ pendingTtl: 10, onDrop });
    const { turns, run } = recorder();
    await guard.submit(
      "k",
      "a",
      run(() => vi.advanceTimersByTimeAsync(50)),
    );
    await guard.onIdle();
    expect(turns).toEqual([["a"]]);
    expect(drops).toEqual([]);
  });
});

describe("per-input expiresAt", () => {
  it("drops a pending input whose expiresAt passed; others run", async () => {
    vi.useFakeTimers();
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ onDrop });
    const { turns, run } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run(() => gate.promise),
    );
    await guard.submit("k", "b", run(), { expiresAt: Date.now() + 50, id: "b" });
    await guard.submit("k", "c", run(), { expiresAt: Date.now() + 500 });
    await guard.submit("k", "d", run());
    await vi.advanceTimersByTimeAsync(100);
    gate.resolve();
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["c", "d"]]);
    expect(drops).toEqual([{ key: "k", input: "b", id: "b", reason: "expired" }]);
  });

  it("the earlier of expiresAt and pendingTtl wins", async () => {
    vi.useFakeTimers();
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ pendingTtl: 100, onDrop });
    const { turns, run } = recorder();
    const gate = deferred();
    await guard.submit(
      "k",
      "a",
      run(() => gate.promise),
    );
    await guard.submit("k", "b", run(), { expiresAt: Date.now() + 10_000 }); // ttl wins: 100
    await guard.submit("k", "c", run(), { expiresAt: Date.now() + 30 }); // expiresAt wins: 30
    await vi.advanceTimersByTimeAsync(50);
    await guard.submit("k", "d", run());
    await vi.advanceTimersByTimeAsync(60); // b 110 ms old, d 60 ms old
    gate.resolve();
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["d"]]);
    // Each when due: c at 30 ms, b at 100 ms.
    expect(drops.map((d) => [d.input, d.reason])).toEqual([
      ["c", "expired"],
      ["b", "expired"],
    ]);
  });

  it("an expired input is not taken by steer", async () => {
    vi.useFakeTimers();
    const { drops, onDrop } = dropRecorder<string>();
    const guard = createGuard<string>({ mode: "steer", onDrop });
    const gate = deferred();
    const taken = deferred<string[]>();
    await guard.submit("k", "a", async (turn) => {
      await gate.promise;
      taken.resolve(await turn.take());
    });
    await guard.submit("k", "b", () => {}, { expiresAt: Date.now() + 10 });
    await guard.submit("k", "c", () => {});
    await vi.advanceTimersByTimeAsync(20);
    gate.resolve();
    expect(await taken.promise).toEqual(["c"]);
    expect(drops.map((d) => [d.input, d.reason])).toEqual([["b", "expired"]]);
    await guard.onIdle();
  });
});

describe("awaitTurn", () => {
  it("submit resolves only after the input's turn settled", async () => {
    const guard = createGuard<string>({ awaitTurn: true });
    const log: string[] = [];
    const gate = deferred();
    const first = track(
      guard.submit("k", "a", async () => {
        await gate.promise;
        log.push("a done");
      }),
    );
    const second = track(guard.submit("k", "b", () => void log.push("b done")));
    await flush();
    expect(first.settled).toBe(false);
    expect(second.settled).toBe(false);
    gate.resolve();
    expect(await first.promise).toBe("started");
    expect(await second.promise).toBe("queued");
    expect(log).toEqual(["a done", "b done"]);
  });

  it("a queued input's submit waits for its own turn, not the one it waited behind", async () => {
    const guard = createGuard<string>({ awaitTurn: true });
    const gate1 = deferred();
    const gate2 = deferred();
    const first = track(guard.submit("k", "a", () => gate1.promise));
    const second = track(guard.submit("k", "b", () => gate2.promise));
    gate1.resolve();
    expect(await first.promise).toBe("started");
    await flush();
    expect(second.settled).toBe(false);
    gate2.resolve();
    expect(await second.promise).toBe("queued");
  });

  it("can be asked per input", async () => {
    const guard = createGuard<string>();
    const gate = deferred();
    const awaited = track(guard.submit("k", "a", () => gate.promise, { awaitTurn: true }));
    await flush();
    expect(awaited.settled).toBe(false);
    gate.resolve();
    expect(await awaited.promise).toBe("started");

    const gate2 = deferred();
    const detached = guard.submit("k", "b", () => gate2.promise, { awaitTurn: false });
    expect(await detached).toBe("started");
    gate2.resolve();
    await guard.onIdle();

    const opted = createGuard<string>({ awaitTurn: true });
    expect(await opted.submit("k", "c", () => new Promise(() => {}), { awaitTurn: false })).toBe(
      "started",
    );
  });

  it("rejects with the handler's error, unwrapped; onError still gets it exactly once", async () => {
    const onError = vi.fn();
    const guard = createGuard<string>({ awaitTurn: true, onError });
    const boom = new Error("boom");
    await expect(
      guard.submit("k", "a", () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    const later = new Error("later");
    await expect(
      guard.submit("k", "b", async () => {
        await flush(2);
        throw later;
      }),
    ).rejects.toBe(later);
    await guard.onIdle();
    expect(onError).toHaveBeenCalledTimes(2);
    expect(onError.mock.calls[0]?.[0]).toBe(boom);
    expect(onError.mock.calls[0]?.[1]).toMatchObject({ key: "k", inputs: ["a"] });
    expect(onError.mock.calls[1]?.[0]).toBe(later);
    expect(onError.mock.calls[1]?.[1]).toMatchObject({ key: "k", inputs: ["b"] });
  });

  it("every input of a failed coalesced turn rejects; the key is free afterwards", async () => {
    const onError = vi.fn();
    const guard = createGuard<string>({ awaitTurn: true, onError });
    const gate = deferred();
    const boom = new Error("boom");
    const first = guard.submit("k", "a", () => gate.promise);
    const second = guard.submit("k", "b", () => {
      throw boom;
    });
    const third = guard.submit("k", "c", () => {
      throw boom;
    });
    second.catch(() => {});
    third.catch(() => {});
    gate.resolve();
    expect(await first).toBe("started");
    await expect(second).rejects.toBe(boom);
    await expect(third).rejects.toBe(boom);
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]?.[1]).toMatchObject({ inputs: ["b", "c"] });
    expect(await guard.submit("k", "d", () => {})).toBe("started");
  });

  it("a failed awaited turn forgets its ids, so the redelivery runs", async () => {
    const guard = createGuard<string>({ awaitTurn: true, onError: () => {} });
    const ran: string[] = [];
    await expect(
      guard.submit(
        "k",
        "a",
        () => {
          throw new Error("first try fails");
        },
        { id: "update-1" },
      ),
    ).rejects.toThrow("first try fails");
    expect(
      await guard.submit("k", "a", () => void ran.push("redelivery"), { id: "update-1" }),
    ).toBe("started");
    expect(ran).toEqual(["redelivery"]);
    // Having succeeded, the id is remembered again.
    expect(await guard.submit("k", "a", () => void ran.push("third"), { id: "update-1" })).toBe(
      "duplicate",
    );
    expect(ran).toEqual(["redelivery"]);
  });

  it("a failed detached turn keeps its ids: no one is waiting to redeliver", async () => {
    const guard = createGuard<string>({ onError: () => {} });
    await guard.submit(
      "k",
      "a",
      () => {
        throw new Error("fails");
      },
      { id: "update-1" },
    );
    await guard.onIdle();
    expect(await guard.submit("k", "a", () => {}, { id: "update-1" })).toBe("duplicate");
  });

  it("a duplicate resolves duplicate, also under awaitTurn", async () => {
    const guard = createGuard<string>({ awaitTurn: true });
    expect(await guard.submit("k", "a", () => {}, { id: "1" })).toBe("started");
    expect(await guard.submit("k", "a", () => {}, { id: "1" })).toBe("duplicate");
  });

  it("an input dropped at admission resolves dropped at once, also under awaitTurn", async () => {
    const guard = createGuard<string>({ awaitTurn: true, mode: "reject" });
    const gate = deferred();
    const first = guard.submit("k", "a", () => gate.promise);
    expect(await guard.submit("k", "b", () => {})).toBe("dropped");
    gate.resolve();
    expect(await first).toBe("started");
  });

  it("a stopped turn does not reject its awaiters; its pending input resolves dropped", async () => {
    const onError = vi.fn();
    const guard = createGuard<string>({ awaitTurn: true, onError });
    const running = deferred();
    const first = guard.submit("k", "a", async (turn) => {
      running.resolve();
      await new Promise<void>((_, reject) =>
        turn.signal.addEventListener("abort", () => reject(turn.signal.reason)),
      );
    });
    const second = guard.submit("k", "b", () => {});
    await running.promise;
    expect(await guard.stop("k")).toBe(true);
    expect(await first).toBe("started");
    expect(await second).toBe("dropped");
    expect(onError).not.toHaveBeenCalled();
  });

  it("a stopped turn whose SDK throws its own abort error does not reject its awaiters", async () => {
    const guard = createGuard<string>({ awaitTurn: true, onError: () => {} });
    const running = deferred();
    let reason: unknown;
    const first = guard.submit(
      "k",
      "a",
      async (turn) => {
        running.resolve();
        await new Promise<void>((_, reject) =>
          turn.signal.addEventListener("abort", () => {
            reason = turn.signal.reason;
            // Many SDKs reject with an error of their own rather than signal.reason.
            reject(Object.assign(new Error("Request was aborted."), { name: "AbortError" }));
          }),
        );
      },
      { id: "update-1" },
    );
    await running.promise;
    await guard.stop("k");
    expect(await first).toBe("started");
    expect((reason as TurnAbortedError).code).toBe("stopped");
    // The stopped input was handled: its redelivery is a duplicate, not a second run.
    expect(await guard.submit("k", "a", () => {}, { id: "update-1" })).toBe("duplicate");
  });

  it("a superseded (interrupted) turn does not reject its awaiters", async () => {
    const guard = createGuard<string>({ awaitTurn: true, mode: "interrupt" });
    const first = guard.submit("k", "a", async (turn) => {
      await new Promise<void>((_, reject) =>
        turn.signal.addEventListener("abort", () => reject(turn.signal.reason)),
      );
    });
    await flush();
    const second = guard.submit("k", "b", () => {});
    expect(await first).toBe("started");
    expect(await second).toBe("queued");
  });
});
