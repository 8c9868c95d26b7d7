// `guard.replace(key, id, input, { from })`: the new content derived from the pending input where
// this process holds it. Adapters use it to keep a pending object's identity (grammY swaps the
// edited message into the pending context, whose `next` is the rest of the middleware chain).

import { createGuard, type Revision } from "session-guard";
import { afterEach, describe, expect, it, vi } from "vitest";
import { deferred, errorRecorder } from "./support/helpers.js";

interface Message {
  id: string;
  text: string;
  edits: number;
}

afterEach(() => {
  vi.useRealTimers();
});

/** A guard of messages whose first turn blocks until `release()`; records every turn's inputs. */
async function busy(extra: Parameters<typeof createGuard<Message>>[0] = {}) {
  const turns: Message[][] = [];
  const gate = deferred();
  const guard = createGuard<Message>({
    mode: "collect",
    handler: async (turn) => {
      turns.push([...turn.inputs]);
      if (turn.inputs[0]?.id === "a") await gate.promise;
    },
    ...extra,
  });
  await guard.submit("k", { id: "a", text: "a", edits: 0 }, undefined, { id: "a" });
  return { guard, turns, release: () => gate.resolve() };
}

const bump = (text: string) => (pending: Message) =>
  Object.assign(pending, { text, edits: pending.edits + 1 });

describe("replace with from", () => {
  it("derives the pending input from itself: the object keeps its identity", async () => {
    const { guard, turns, release } = await busy();
    const pending = { id: "b", text: "b", edits: 0 };
    await guard.submit("k", pending, undefined, { id: "b" });
    const edited = { id: "b", text: "b'", edits: 1 };
    expect(await guard.replace("k", "b", edited, { from: bump("b'") })).toBe("replaced");
    expect(await guard.replace("k", "b", edited, { from: bump("b''") })).toBe("replaced");
    release();
    await guard.onIdle();
    expect(turns[1]).toHaveLength(1);
    expect(turns[1]?.[0]).toBe(pending);
    expect(pending).toEqual({ id: "b", text: "b''", edits: 2 });
  });

  it("a turn still in its settle window hands its input to from as well", async () => {
    vi.useFakeTimers();
    const turns: Message[][] = [];
    const guard = createGuard<Message>({
      settle: 100,
      handler: (turn) => void turns.push([...turn.inputs]),
    });
    const first = { id: "a", text: "a", edits: 0 };
    await guard.submit("k", first, undefined, { id: "a" });
    expect(await guard.replace("k", "a", { ...first }, { from: bump("a'") })).toBe("replaced");
    await vi.advanceTimersByTimeAsync(150);
    await guard.onIdle();
    expect(turns).toEqual([[{ id: "a", text: "a'", edits: 1 }]]);
    expect(turns[0]?.[0]).toBe(first);
  });

  it("a running turn hears the plain input; from is not called for it", async () => {
    const heard: Revision<Message>[] = [];
    const from = vi.fn(bump("never"));
    const gate = deferred();
    const guard = createGuard<Message>({
      handler: async (turn) => {
        turn.onRevision((revision) => void heard.push(revision));
        await gate.promise;
      },
    });
    await guard.submit("k", { id: "r", text: "r", edits: 0 }, undefined, { id: "r" });
    const edit = { id: "r", text: "r'", edits: 1 };
    expect(await guard.replace("k", "r", edit, { from })).toBe("in-turn");
    expect(from).not.toHaveBeenCalled();
    expect(heard).toEqual([{ id: "r", input: edit }]);
    gate.resolve();
    await guard.onIdle();
  });

  it("a from that throws leaves the plain input in place and goes to onError", async () => {
    const errors = errorRecorder<Message>();
    const { guard, turns, release } = await busy({ onError: errors.onError });
    await guard.submit("k", { id: "b", text: "b", edits: 0 }, undefined, { id: "b" });
    const boom = new Error("from failed");
    const edited = { id: "b", text: "b'", edits: 1 };
    const result = await guard.replace("k", "b", edited, {
      from: () => {
        throw boom;
      },
    });
    expect(result).toBe("replaced");
    expect(errors.errors).toHaveLength(1);
    expect(errors.errors[0]?.error).toBe(boom);
    expect(errors.errors[0]?.info.key).toBe("k");
    release();
    await guard.onIdle();
    expect(turns[1]).toEqual([edited]);
  });

  it.each([
    [
      "a promise (an async function)",
      async (pending: Message) => Object.assign(pending, { text: "late" }),
      /must return the new input itself, got a promise/,
    ],
    [
      "undefined (a block body without return)",
      (pending: Message) => {
        pending.text = "forgot to return";
      },
      /must return the new input itself, got undefined/,
    ],
  ])(
    "a from that answers %s is a TypeError to onError; the input given is used",
    async (_what, from, message) => {
      const errors = errorRecorder<Message>();
      const { guard, turns, release } = await busy({ onError: errors.onError });
      await guard.submit("k", { id: "b", text: "b", edits: 0 }, undefined, { id: "b" });
      const edited = { id: "b", text: "b'", edits: 1 };
      expect(await guard.replace("k", "b", edited, { from: from as never })).toBe("replaced");
      expect(errors.errors).toHaveLength(1);
      expect(errors.errors[0]?.error).toBeInstanceOf(TypeError);
      expect(String(errors.errors[0]?.error)).toMatch(message);
      release();
      await guard.onIdle();
      expect(turns[1]).toEqual([edited]);
    },
  );

  it("a from that withdraws or stops its own input answers ended, not replaced", async () => {
    const { guard, turns, release } = await busy();
    await guard.submit("k", { id: "b", text: "b", edits: 0 }, undefined, { id: "b" });
    await guard.submit("k", { id: "c", text: "c", edits: 0 }, undefined, { id: "c" });
    const withdrawing = (pending: Message) => {
      void guard.withdraw("k", "b");
      return pending;
    };
    expect(
      await guard.replace("k", "b", { id: "b", text: "x", edits: 1 }, { from: withdrawing }),
    ).toBe("ended");
    expect(await guard.outcome("b")).toMatchObject({ state: "dropped", reason: "withdrawn" });
    const stopping = (pending: Message) => {
      void guard.stop("k");
      return pending;
    };
    expect(
      await guard.replace("k", "c", { id: "c", text: "x", edits: 1 }, { from: stopping }),
    ).toBe("ended");
    release();
    await guard.onIdle();
    expect(turns.flat().map((m) => m.id)).toEqual(["a"]);
  });

  it("wrong options are a TypeError that says how to pass them", async () => {
    const { guard, release } = await busy();
    const input = { id: "b", text: "b", edits: 0 };
    await expect(guard.replace("k", "b", input, { from: 1 } as never)).rejects.toThrow(
      /"from" must be a function \(pending\) => newInput, got number/,
    );
    await expect(guard.replace("k", "b", input, { form: bump("x") } as never)).rejects.toThrow(
      /unknown option "form"/,
    );
    await expect(guard.replace("k", "b", input, null as never)).rejects.toThrow(
      /options must be a plain object such as \{ from: \(pending\) => … \}, got null/,
    );
    await expect(guard.replace("k", "b", input, [bump("x")] as never)).rejects.toThrow(
      /options must be a plain object .*, got an array/,
    );
    await expect(guard.replace("k", "b", input, new Map() as never)).rejects.toThrow(
      /options must be a plain object .*, got a Map object/,
    );
    release();
    await guard.onIdle();
  });
});
