// Groups (an album's photos run in one turn), stops with an id and by prefix, a submit's own
// onDrop, and input that has expired before it was admitted: the core features the adapters build
// on, against the memory store. (The Redis store runs the same contract in store-contract.test.ts.)

import { createGuard, type Mode, memoryStore } from "session-guard";
import { afterEach, describe, expect, it, vi } from "vitest";
import { deferred, dropRecorder, flush } from "./support/helpers.js";

afterEach(() => {
  vi.useRealTimers();
});

/** Every turn's inputs, in the order the turns ran. */
function turns() {
  const ran: string[][] = [];
  const run = (turn: { inputs: readonly string[] }) => void ran.push([...turn.inputs]);
  return { ran, run };
}

describe("groups: inputs that share a group run in one turn", () => {
  const MODES: Mode[] = ["collect", "queue", "steer", "interrupt", "latest", "reject"];

  for (const mode of MODES) {
    it(`${mode}: an album on an idle key waits until the group is quiet, then runs as one turn`, async () => {
      vi.useFakeTimers();
      const guard = createGuard<string>({ mode });
      const { ran, run } = turns();
      const album = { group: "album:1", settle: 100 };
      expect(await guard.submit("k", "p1", run, { ...album, id: "1" })).toBe("started");
      await vi.advanceTimersByTimeAsync(60);
      // In reject mode too: the photo joins its album, which is still gathering.
      expect(await guard.submit("k", "p2", run, { ...album, id: "2" })).toBe("queued");
      await vi.advanceTimersByTimeAsync(60);
      // The window restarted with p2: the turn has not run yet.
      expect(ran).toEqual([]);
      expect(await guard.submit("k", "p3", run, { ...album, id: "3" })).toBe("queued");
      await vi.advanceTimersByTimeAsync(150);
      await guard.onIdle();
      expect(ran).toEqual([["p1", "p2", "p3"]]);
    });
  }

  it("queue mode: an album queued behind a turn is one turn, ahead of the message after it", async () => {
    vi.useFakeTimers();
    const guard = createGuard<string>({ mode: "queue" });
    const { ran, run } = turns();
    const gate = deferred();
    await guard.submit("k", "a", async (turn) => {
      run(turn);
      await gate.promise;
    });
    const album = { group: "album:7", settle: 50 };
    await guard.submit("k", "p1", run, album);
    await guard.submit("k", "m", run);
    await guard.submit("k", "p2", run, album);
    gate.resolve();
    await vi.advanceTimersByTimeAsync(200);
    await guard.onIdle();
    expect(ran).toEqual([["a"], ["p1", "p2"], ["m"]]);
  });

  it("a photo that arrives after its turn began its window at another batch still joins it", async () => {
    vi.useFakeTimers();
    const guard = createGuard<string>({ mode: "collect" });
    const { ran, run } = turns();
    const gate = deferred();
    await guard.submit("k", "a", async (turn) => {
      run(turn);
      await gate.promise;
    });
    const album = { group: "album:2", settle: 100 };
    await guard.submit("k", "p1", run, album);
    gate.resolve();
    await vi.advanceTimersByTimeAsync(30);
    // p1's turn now holds the key and waits out the group's window: p2 joins it.
    expect(await guard.submit("k", "p2", run, album)).toBe("queued");
    await vi.advanceTimersByTimeAsync(300);
    await guard.onIdle();
    expect(ran).toEqual([["a"], ["p1", "p2"]]);
  });

  it("latest: a photo never supersedes an earlier photo of its own album; a new message supersedes the album", async () => {
    const drops = dropRecorder<string>();
    const guard = createGuard<string>({ mode: "latest", onDrop: drops.onDrop });
    const { ran, run } = turns();
    const gate = deferred();
    await guard.submit("k", "a", async (turn) => {
      run(turn);
      await gate.promise;
    });
    await guard.submit("k", "p1", run, { group: "g", settle: 0 });
    await guard.submit("k", "p2", run, { group: "g", settle: 0 });
    expect(drops.drops).toEqual([]);
    await guard.submit("k", "m", run);
    expect(drops.drops.map((d) => `${d.input}:${d.reason}`)).toEqual([
      "p1:superseded",
      "p2:superseded",
    ]);
    gate.resolve();
    await guard.onIdle();
    expect(ran).toEqual([["a"], ["m"]]);
  });

  it("a stop during the group's window drops the whole album as stopped; the handler never runs", async () => {
    vi.useFakeTimers();
    const drops = dropRecorder<string>();
    const guard = createGuard<string>({ onDrop: drops.onDrop });
    const { ran, run } = turns();
    const album = { group: "album:3", settle: 100 };
    await guard.submit("k", "p1", run, album);
    await guard.submit("k", "p2", run, album);
    expect(await guard.stop("k")).toBe(true);
    await vi.advanceTimersByTimeAsync(500);
    await guard.onIdle();
    expect(ran).toEqual([]);
    expect(drops.drops.map((d) => `${d.input}:${d.reason}`).sort()).toEqual([
      "p1:stopped",
      "p2:stopped",
    ]);
  });

  it("settle without group, or a bad group, is refused with a TypeError", async () => {
    const guard = createGuard<string>();
    await expect(guard.submit("k", "x", () => {}, { settle: 10 })).rejects.toThrow(
      /"settle" goes with "group"/,
    );
    await expect(guard.submit("k", "x", () => {}, { group: "" })).rejects.toThrow(TypeError);
    await expect(guard.submit("k", "x", () => {}, { group: "g", settle: -1 })).rejects.toThrow(
      /"settle" must be an integer/,
    );
    expect(guard.activeCount).toBe(0);
  });
});

it("steer: take() leaves an album pending (its rest may still arrive); it runs whole, as the next turn", async () => {
  vi.useFakeTimers();
  const guard = createGuard<string>({ mode: "steer" });
  const turns: string[][] = [];
  const gate = deferred();
  await guard.submit("k", "m1", async (turn) => {
    turns.push([...turn.inputs]);
    await vi.advanceTimersByTimeAsync(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    turns.push(["took", ...(await turn.take())]);
    await gate.promise;
  });
  const record = (turn: { inputs: readonly string[] }) => void turns.push([...turn.inputs]);
  await guard.submit("k", "m2", record);
  await guard.submit("k", "photo1", record, { group: "album:1", settle: 50 });
  await vi.advanceTimersByTimeAsync(40); // the turn takes m2, not photo1
  await guard.submit("k", "photo2", record, { group: "album:1", settle: 50 });
  gate.resolve();
  await vi.advanceTimersByTimeAsync(200);
  await guard.onIdle();
  expect(turns).toEqual([["m1"], ["took", "m2"], ["photo1", "photo2"]]);
});

it("reject mode: an album arriving while another turn runs is refused as busy, photo by photo", async () => {
  const guard = createGuard<string>({ mode: "reject" });
  const gate = deferred();
  await guard.submit("k", "a", () => gate.promise);
  expect(await guard.submit("k", "p1", () => {}, { group: "g", settle: 10 })).toBe("dropped");
  expect(await guard.submit("k", "p2", () => {}, { group: "g", settle: 10 })).toBe("dropped");
  gate.resolve();
  await guard.onIdle();
});

describe("stop with an id: a redelivered stop stops nothing", () => {
  it("the same stop id twice: the second is a duplicate and leaves the later turn running", async () => {
    const guard = createGuard<string>();
    const first = deferred();
    let aborted = 0;
    await guard.submit("k", "a", async (turn) => {
      turn.signal.addEventListener("abort", () => aborted++);
      await first.promise;
    });
    expect(await guard.stop("k", { id: "stop-1" })).toBe(true);
    first.resolve();
    await guard.onIdle();
    const second = deferred();
    let laterAborted = false;
    await guard.submit("k", "b", async (turn) => {
      turn.signal.addEventListener("abort", () => {
        laterAborted = true;
      });
      await second.promise;
    });
    expect(await guard.stop("k", { id: "stop-1" })).toBe(false);
    expect(laterAborted).toBe(false);
    expect(await guard.stop("k", { id: "stop-2" })).toBe(true);
    expect(laterAborted).toBe(true);
    second.resolve();
    await guard.onIdle();
    expect(aborted).toBe(1);
  });

  it("stop ids share the inputs' de-duplication window, and dedupe: false turns it off", async () => {
    const off = createGuard<string>({ dedupe: false });
    const gate = deferred();
    await off.submit("k", "a", () => gate.promise);
    expect(await off.stop("k", { id: "s" })).toBe(true);
    await off.submit("k", "b", () => gate.promise);
    expect(await off.stop("k", { id: "s" })).toBe(true);
    gate.resolve();
    await off.onIdle();
  });

  it("a bad stop id or unknown stop option is a TypeError", async () => {
    const guard = createGuard<string>();
    await expect(guard.stop("k", { id: 7 as never })).rejects.toThrow(TypeError);
    await expect(guard.stop("k", { id: "" })).rejects.toThrow(/non-empty string/);
    await expect(guard.stop("k", { ID: "x" } as never)).rejects.toThrow(/unknown option "ID"/);
    await expect(guard.stop("k", "x" as never)).rejects.toThrow(TypeError);
  });
});

describe("stopWhere: every key with a prefix", () => {
  it("stops the channel and each of its threads, and nothing else", async () => {
    const drops = dropRecorder<string>();
    const guard = createGuard<string>({ onDrop: drops.onDrop });
    const gate = deferred();
    const aborted: string[] = [];
    const hold = (name: string) => async (turn: { signal: AbortSignal }) => {
      turn.signal.addEventListener("abort", () => aborted.push(name));
      await gate.promise;
    };
    await guard.submit("T:C1:", "channel", hold("channel"));
    await guard.submit("T:C1:111", "thread", hold("thread"));
    await guard.submit("T:C1:111", "pending", () => {});
    await guard.submit("T:C2:", "other", hold("other"));
    expect(await guard.stopWhere("T:C1:")).toBe(true);
    expect(aborted.sort()).toEqual(["channel", "thread"]);
    expect(drops.drops.map((d) => `${d.input}:${d.reason}`)).toEqual(["pending:stopped"]);
    expect(await guard.stopWhere("T:C9:")).toBe(false);
    gate.resolve();
    await guard.onIdle();
  });

  it("with an id, a redelivered channel stop stops nothing", async () => {
    const guard = createGuard<string>();
    const gate = deferred();
    await guard.submit("T:C1:1", "a", () => gate.promise);
    expect(await guard.stopWhere("T:C1:", { id: "cmd-1" })).toBe(true);
    gate.resolve();
    await guard.onIdle();
    const later = deferred();
    let aborted = false;
    await guard.submit("T:C1:2", "b", async (turn) => {
      turn.signal.addEventListener("abort", () => {
        aborted = true;
      });
      await later.promise;
    });
    expect(await guard.stopWhere("T:C1:", { id: "cmd-1" })).toBe(false);
    expect(aborted).toBe(false);
    later.resolve();
    await guard.onIdle();
  });
});

describe("a submit's own onDrop", () => {
  it("is called once for that input's drop, whatever the reason, besides the guard's onDrop", async () => {
    const guardDrops = dropRecorder<string>();
    const guard = createGuard<string>({ mode: "latest", onDrop: guardDrops.onDrop });
    const gate = deferred();
    await guard.submit("k", "a", () => gate.promise);
    const own: string[] = [];
    await guard.submit("k", "b", () => {}, {
      onDrop: (drop) => void own.push(`${drop.input}:${drop.reason}`),
    });
    await guard.submit("k", "c", () => {});
    expect(own).toEqual(["b:superseded"]);
    expect(guardDrops.drops.map((d) => d.input)).toEqual(["b"]);
    gate.resolve();
    await guard.onIdle();
    expect(own).toEqual(["b:superseded"]);
  });

  it("a throwing own onDrop goes to onError once and the guard goes on", async () => {
    const errors: unknown[] = [];
    const guard = createGuard<string>({
      mode: "reject",
      onError: (error) => void errors.push(error),
    });
    const gate = deferred();
    await guard.submit("k", "a", () => gate.promise);
    const boom = new Error("notice failed");
    expect(
      await guard.submit("k", "b", () => {}, {
        onDrop: () => {
          throw boom;
        },
      }),
    ).toBe("dropped");
    expect(errors).toEqual([boom]);
    gate.resolve();
    await guard.onIdle();
  });
});

describe("input that expired before it was admitted", () => {
  it("never claims a free key: it is dropped as expired and nothing runs", async () => {
    const drops = dropRecorder<string>();
    const store = memoryStore();
    const guard = createGuard<string>({ store, onDrop: drops.onDrop });
    let ran = false;
    expect(
      await guard.submit(
        "k",
        "late",
        () => {
          ran = true;
        },
        { expiresAt: Date.now() - 1 },
      ),
    ).toBe("dropped");
    await flush();
    expect(ran).toBe(false);
    expect(drops.drops.map((d) => `${d.input}:${d.reason}`)).toEqual(["late:expired"]);
    expect(store.keyCount).toBe(0);
  });
});
