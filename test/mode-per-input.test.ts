// The busy mode chosen per input (issue 15): a function of the input and its key's state, what a
// mix of modes on one key means, and a throwing function.

import type { Context } from "grammy";
import { createGuard, type Mode, type ModeState, TurnAbortedError } from "session-guard";
import { sessionGuard, type TurnFlavor } from "session-guard/grammy";
import { describe, expect, it, vi } from "vitest";
import { botInfo, offlineBot, recordApi, textOf, textUpdate } from "./support/grammy-fixtures.js";
import { deferred, dropRecorder, errorRecorder, flush } from "./support/helpers.js";

interface Msg {
  readonly text: string;
  readonly mode?: Mode;
}

/** A guard whose mode is each message's own, with its first turn ("a") held until `release()`. */
async function mixed() {
  const turns: string[][] = [];
  const gate = deferred();
  const drops = dropRecorder<Msg>();
  const aborted: string[] = [];
  const states: ModeState[] = [];
  const guard = createGuard<Msg>({
    onDrop: drops.onDrop,
    mode: (msg, state) => {
      states.push(state);
      return msg.mode ?? "collect";
    },
    handler: async (turn) => {
      turns.push(turn.inputs.map((m) => m.text));
      turn.signal.addEventListener("abort", () => void aborted.push(turn.inputs[0]?.text ?? ""));
      if (turn.inputs[0]?.text === "a") await gate.promise;
    },
  });
  await guard.submit("k", { text: "a" });
  await flush();
  const send = (text: string, mode?: Mode) => guard.submit("k", { text, mode });
  return { guard, turns, release: () => gate.resolve(), drops: drops.drops, aborted, send, states };
}

describe("a mode per input: what a mix means on one key", () => {
  it("a queue input behind collected ones runs alone, after them; later ones run after it", async () => {
    const { guard, turns, release, send } = await mixed();
    await send("b");
    await send("c");
    await send("q", "queue");
    await send("d");
    await send("e");
    release();
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["b", "c"], ["q"], ["d", "e"]]);
  });

  it("an interrupt input aborts the running turn; waiting steer input runs with it", async () => {
    const { guard, turns, release, send, aborted } = await mixed();
    await send("s1", "steer");
    expect(aborted).toEqual([]);
    await send("i", "interrupt");
    expect(aborted).toEqual(["a"]);
    release();
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["s1", "i"]]);
  });

  it("latest after queue: queued inputs stay, collected ones are superseded", async () => {
    const { guard, turns, release, send, drops } = await mixed();
    await send("c1");
    await send("q", "queue");
    await send("c2");
    await send("l", "latest");
    release();
    await guard.onIdle();
    expect(drops.map((d) => [d.input.text, d.reason])).toEqual([
      ["c1", "superseded"],
      ["c2", "superseded"],
    ]);
    expect(turns).toEqual([["a"], ["q"], ["l"]]);
  });

  it("reject drops only the input that chose it", async () => {
    const { guard, turns, release, send, drops } = await mixed();
    await send("b");
    expect(await send("r", "reject")).toBe("dropped");
    await send("c");
    release();
    await guard.onIdle();
    expect(drops.map((d) => [d.input.text, d.reason])).toEqual([["r", "busy"]]);
    expect(turns).toEqual([["a"], ["b", "c"]]);
  });

  it("steer's take() stops at an input that runs alone (FIFO)", async () => {
    const taken: string[][] = [];
    const go = deferred();
    const guard = createGuard<Msg>({
      mode: (msg) => msg.mode ?? "steer",
      handler: async (turn) => {
        if (turn.inputs[0]?.text !== "a") return;
        await go.promise;
        taken.push((await turn.take()).map((m) => m.text));
      },
    });
    await guard.submit("k", { text: "a" });
    await guard.submit("k", { text: "b" });
    await guard.submit("k", { text: "q", mode: "queue" });
    await guard.submit("k", { text: "c" });
    go.resolve();
    await guard.onIdle();
    expect(taken).toEqual([["b"]]);
  });

  it("the function is not called for an idle key, and sees pending, age and the running turn", async () => {
    const { guard, release, send, states } = await mixed();
    expect(states).toEqual([]);
    await send("b");
    await new Promise((resolve) => setTimeout(resolve, 25));
    await send("c");
    expect(states[0]).toMatchObject({ key: "k", pending: 0, oldestPendingMs: 0 });
    expect(states[0]?.running?.fence).toBeGreaterThan(0);
    expect(states[1]?.pending).toBe(1);
    expect(states[1]?.oldestPendingMs).toBeGreaterThanOrEqual(20);
    expect(states[1]?.running?.ms).toBeGreaterThanOrEqual(20);
    release();
    await guard.onIdle();
  });

  it("escalates under pressure in a few lines: collect, then latest past 3, then reject past 5", async () => {
    const gate = deferred();
    const drops = dropRecorder<number>();
    const turns: number[][] = [];
    const guard = createGuard<number>({
      onDrop: drops.onDrop,
      mode: (_n, { pending }) => (pending >= 5 ? "reject" : pending >= 3 ? "latest" : "collect"),
      handler: async (turn) => {
        turns.push([...turn.inputs]);
        if (turn.inputs[0] === 0) await gate.promise;
      },
    });
    for (let n = 0; n <= 5; n++) await guard.submit("k", n);
    gate.resolve();
    await guard.onIdle();
    // 1, 2, 3 collected; 4 arrives with 3 pending: latest supersedes them; 5 with 1 pending: collect.
    expect(drops.drops.map((d) => [d.input, d.reason])).toEqual([
      [1, "superseded"],
      [2, "superseded"],
      [3, "superseded"],
    ]);
    expect(turns).toEqual([[0], [4, 5]]);
  });
});

describe("a mode function that fails", () => {
  it("a throw or a wrong answer goes to onError with the input, which is collected, not lost", async () => {
    const errors = errorRecorder<Msg>();
    const gate = deferred();
    const turns: string[][] = [];
    const guard = createGuard<Msg>({
      onError: errors.onError,
      mode: (msg) => {
        if (msg.text === "boom") throw new Error("mode failed");
        return (msg.text === "bad" ? "fast" : "queue") as Mode;
      },
      handler: async (turn) => {
        turns.push(turn.inputs.map((m) => m.text));
        if (turn.inputs[0]?.text === "a") await gate.promise;
      },
    });
    await guard.submit("k", { text: "a" });
    expect(await guard.submit("k", { text: "boom" })).toBe("queued");
    expect(await guard.submit("k", { text: "bad" })).toBe("queued");
    gate.resolve();
    await guard.onIdle();
    expect(turns).toEqual([["a"], ["boom", "bad"]]);
    expect(errors.errors.map((e) => [(e.error as Error).message, e.info.key])).toEqual([
      ["mode failed", "k"],
      [expect.stringMatching(/answered "fast".*one of collect/), "k"],
    ]);
    expect(errors.errors[0]?.info.inputs).toEqual([{ text: "boom" }]);
  });

  it("an interrupt chosen by the function aborts with the superseded reason", async () => {
    const reasons: unknown[] = [];
    const gate = deferred();
    const guard = createGuard<string>({
      mode: (text) => (text.startsWith("@bot") ? "interrupt" : "collect"),
      handler: async (turn) => {
        turn.signal.addEventListener("abort", () => void reasons.push(turn.signal.reason));
        if (turn.inputs[0] === "a") await gate.promise;
      },
    });
    await guard.submit("k", "a");
    await flush();
    await guard.submit("k", "chatter");
    expect(reasons).toEqual([]);
    await guard.submit("k", "@bot stop that");
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(TurnAbortedError);
    expect((reasons[0] as TurnAbortedError).code).toBe("superseded");
    gate.resolve();
    await guard.onIdle();
  });

  it("a function that submits to its own key or throws odd values never wedges nor loses input", async () => {
    const errors = errorRecorder<string>();
    const gate = deferred();
    const turns: string[][] = [];
    const guard: ReturnType<typeof createGuard<string>> = createGuard<string>({
      onError: errors.onError,
      mode: (text) => {
        if (text === "nest") void guard.submit("k", "nested");
        if (text === "undefined") throw undefined;
        if (text === "proxy") {
          const { proxy, revoke } = Proxy.revocable({}, {});
          revoke();
          throw proxy;
        }
        return "collect";
      },
      handler: async (turn) => {
        turns.push([...turn.inputs]);
        if (turn.inputs[0] === "a") await gate.promise;
      },
    });
    await guard.submit("k", "a");
    await guard.submit("k", "nest");
    await guard.submit("k", "undefined");
    await guard.submit("k", "proxy");
    gate.resolve();
    await guard.onIdle();
    // The nested submit was admitted first (the function ran before "nest" was admitted).
    expect(turns).toEqual([["a"], ["nested", "nest", "undefined", "proxy"]]);
    expect(errors.errors).toHaveLength(2);
    expect(errors.errors.every((e) => e.info.key === "k")).toBe(true);
  });
});

describe("with a real grammY Bot", () => {
  it("a reply to the bot interrupts, chatter is collected, and the next turn reads what was carried", async () => {
    const bot = offlineBot<TurnFlavor<Context>>();
    recordApi(bot);
    const seen: { texts: string[]; carried: unknown[] }[] = [];
    const aborts: string[] = [];
    bot.use(
      sessionGuard<TurnFlavor<Context>>({
        mode: (ctx) =>
          ctx.msg?.reply_to_message?.from?.id === ctx.me.id ? "interrupt" : "collect",
      }),
    );
    bot.on("message", async (ctx) => {
      const texts = ctx.turn.inputs.map(textOf);
      seen.push({ texts, carried: ctx.turn.carried.map((c) => c.value) });
      if (texts[0] !== "write a poem") return;
      ctx.turn.carry("Roses are red,");
      await new Promise<void>((resolve) =>
        ctx.turn.signal.addEventListener("abort", () => resolve(), { once: true }),
      );
      aborts.push(ctx.turn.signal.reason.code);
    });
    await bot.handleUpdate(textUpdate(1, "write a poem"));
    await bot.handleUpdate(textUpdate(1, "ambient chatter"));
    expect(aborts).toEqual([]);
    // A reply to the bot's message: Telegram puts the replied-to message in reply_to_message.
    const correction = textUpdate(1, "make it rhyme");
    Object.assign(correction.message as object, {
      reply_to_message: {
        message_id: 99,
        date: 0,
        chat: { id: 1, type: "private", first_name: "Ada" },
        from: botInfo(),
        text: "Roses are red,",
      },
    });
    await bot.handleUpdate(correction);
    await vi.waitFor(() => expect(seen).toHaveLength(2));
    expect(aborts).toEqual(["superseded"]);
    expect(seen[1]).toEqual({
      texts: ["ambient chatter", "make it rhyme"],
      carried: ["Roses are red,"],
    });
  });
});
