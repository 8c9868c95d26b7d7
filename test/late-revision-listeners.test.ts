// A revision of a running turn's input that comes before the handler subscribes to `onRevision`
// (the turn has started; the handler, or middleware before it, has not reached the call yet) is
// not lost: the listener hears the latest one of each input on a microtask after subscribing.
// Found by a tarball adversary: with async middleware between the guard and the handler, most
// edits of a message whose turn was starting went unheard.

import { createGuard, type ErrorInfo, type Revision, type Turn } from "session-guard";
import { describe, expect, it } from "vitest";
import { deferred, errorRecorder, flush } from "./support/helpers.js";

/** A guard whose handler waits for `subscribe()` before it subscribes, then for `done()`. */
function lateSubscriber() {
  const heard: Revision<string>[] = [];
  const subscribe = deferred();
  const done = deferred();
  const guard = createGuard<string>({
    handler: async (turn) => {
      await subscribe.promise;
      turn.onRevision((revision) => void heard.push(revision));
      await done.promise;
    },
  });
  return { guard, heard, subscribe: () => subscribe.resolve(), done: () => done.resolve() };
}

describe("onRevision after the revision", () => {
  it("hears an edit and a deletion that came before it subscribed, the latest of each input", async () => {
    const t = lateSubscriber();
    await t.guard.submit("k", "a", undefined, { id: "a" });
    expect(await t.guard.replace("k", "a", "a'")).toBe("in-turn");
    expect(await t.guard.replace("k", "a", "a''")).toBe("in-turn");
    expect(await t.guard.withdraw("k", "a")).toBe("in-turn");
    t.subscribe();
    await flush();
    expect(t.heard).toEqual([{ id: "a", input: undefined }]);
    t.done();
    await t.guard.onIdle();
  });

  it("an edit told live after subscribing is not followed by an older one it missed", async () => {
    const { guard, turn, done } = await heldTurn();
    expect(await guard.replace("k", "a", "old")).toBe("in-turn");
    const heard: unknown[] = [];
    turn().onRevision((revision) => void heard.push(revision.input));
    // Told at once (the listener is subscribed), before the missed one's microtask.
    const newer = guard.replace("k", "a", "new");
    await flush();
    expect(await newer).toBe("in-turn");
    expect(heard).toEqual(["new"]);
    done();
    await guard.onIdle();
  });

  it("a listener that unsubscribes before the microtask hears nothing; one that throws goes to onError", async () => {
    const errors = errorRecorder<string>();
    const { guard, turn, done } = await heldTurn(errors.onError);
    expect(await guard.replace("k", "a", "a'")).toBe("in-turn");
    const heard: unknown[] = [];
    const unsubscribe = turn().onRevision((revision) => void heard.push(revision));
    unsubscribe();
    const boom = new Error("listener failed");
    turn().onRevision(() => {
      throw boom;
    });
    await flush();
    expect(heard).toEqual([]);
    expect(errors.errors.map((e) => e.error)).toEqual([boom]);
    done();
    await guard.onIdle();
  });
});

/** A running turn of input "a" (id "a") held until `done()`; `turn()` is its turn. */
async function heldTurn(onError?: (error: unknown, info: ErrorInfo<string>) => void) {
  const gate = deferred();
  let running: Turn<string> | undefined;
  const guard = createGuard<string>({
    ...(onError === undefined ? {} : { onError }),
    handler: async (turn) => {
      running = turn;
      await gate.promise;
    },
  });
  await guard.submit("k", "a", undefined, { id: "a" });
  await flush();
  return {
    guard,
    turn: () => running as Turn<string>,
    done: () => gate.resolve(),
  };
}
