// close() and the store's background work: a store that works on its own (`attach`) is told to
// stop (`detach`) exactly once, after the guard let go of its last key — also when it held none.
// And a turn close() cuts short at its timeout: its inputs fail, with the error at onError.

import { createGuard, TurnAbortedError } from "session-guard";
import { describe, expect, it } from "vitest";
import { deferred, macrotask } from "./support/helpers.js";
import { delegatingStore, watchProcess } from "./support/hostile.js";

function attachedStore() {
  const calls = { attached: 0, detached: 0 };
  const store = delegatingStore({
    attach: () => {
      calls.attached++;
      return () => void calls.detached++;
    },
  });
  return { store, calls };
}

describe("close() stops the store's background work once", () => {
  it("an idle guard detaches at close", async () => {
    const { store, calls } = attachedStore();
    const guard = createGuard<string>({ store });
    expect(calls).toEqual({ attached: 1, detached: 0 });
    await guard.close();
    await guard.close();
    expect(calls).toEqual({ attached: 1, detached: 1 });
  });

  it("a guard with a running turn detaches once that turn has ended, not before", async () => {
    const { store, calls } = attachedStore();
    const guard = createGuard<string>({ store });
    const gate = deferred();
    await guard.submit("k", "a", () => gate.promise);
    const closing = guard.close({ timeout: 60_000 });
    await Promise.resolve();
    expect(calls.detached).toBe(0);
    gate.resolve();
    await closing;
    expect(calls).toEqual({ attached: 1, detached: 1 });
  });
});

describe("a store whose attach answers no function, or whose detach throws", () => {
  it("closes without an unhandled rejection; a throwing detach reaches onError once", async () => {
    const watched = watchProcess();
    const errors: unknown[] = [];
    const odd = createGuard<string>({ store: delegatingStore({ attach: () => [] as never }) });
    const boom = new Error("detach failed");
    const throwing = createGuard<string>({
      store: delegatingStore({
        attach: () => () => {
          throw boom;
        },
      }),
      onError: (error) => void errors.push(error),
    });
    await odd.close();
    await throwing.close();
    await macrotask();
    watched.stop();
    expect(watched.unhandled).toEqual([]);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).cause).toBe(boom);
  });
});

describe("a turn cut short by close's timeout", () => {
  it("is reported to onError once, and its inputs fail with that error", async () => {
    const errors: unknown[] = [];
    const guard = createGuard<string>({ onError: (error) => void errors.push(error) });
    const settled: string[] = [];
    guard.on("settled", ({ outcome }) => void settled.push(outcome.state));
    const gate = deferred();
    let caught: unknown;
    await guard.submit(
      "k",
      "a",
      async (turn) => {
        await gate.promise;
        // The handler sees the abort and ends on it, as a well-behaved one does.
        caught = turn.signal.reason;
        throw turn.signal.reason;
      },
      { id: "a" },
    );
    const report = await guard.close({ timeout: 10 });
    expect(report.aborted).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TurnAbortedError);
    expect(errors[0]).toMatchObject({ code: "shutdown", key: "k" });
    expect(await guard.outcome("a")).toMatchObject({ state: "failed" });
    gate.resolve();
    await macrotask();
    expect(caught).toBe(errors[0]);
    // Rejecting with its own abort reason is not a second error.
    expect(errors).toHaveLength(1);
    expect(settled).toEqual(["failed"]);
  });
});
