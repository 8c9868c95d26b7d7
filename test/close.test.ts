// close() and the store's background work: a store that works on its own (`attach`) is told to
// stop (`detach`) exactly once, after the guard let go of its last key — also when it held none.

import { createGuard } from "session-guard";
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
