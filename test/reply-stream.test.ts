// `streamReply`: an answer streamed into one message by edits that are coalesced, paced, never more
// than one in flight, stopped by the turn's signal, and always finished by `end()`. Driven through a
// real offline grammY bot (its `ctx.reply` and `editMessageText`), on fake timers so pacing is
// exact; Slack and Discord bind the same stream to their calls (checked at the end).

import { webApi } from "@slack/bolt";
import { Events } from "discord.js";
import { type Context, GrammyError, type Transformer } from "grammy";
import type { Update } from "grammy/types";
import { discordGuard, streamReply as discordStreamReply } from "session-guard/discord";
import { streamReply } from "session-guard/grammy";
import { streamReply as slackStreamReply } from "session-guard/slack";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { pieces } from "../adapters/kit/reply-stream.js";
import { answerEdits, CHANNEL_A, offlineClient } from "./support/discord-fixtures.js";
import { type ApiCall, offlineBot, recordApi, textUpdate } from "./support/grammy-fixtures.js";
import { deferred, flush } from "./support/helpers.js";
import { recordWebApi } from "./support/slack-fixtures.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A real bot whose API calls are recorded (with the fake clock's time), and a message's context. */
async function chat(respond?: (call: ApiCall) => unknown, update?: Update) {
  const bot = offlineBot();
  const at: number[] = [];
  const api = recordApi(bot, (call) => {
    at.push(performance.now());
    return respond?.(call);
  });
  let ctx: Context | undefined;
  bot.on("message", (c) => {
    ctx = c;
  });
  await bot.handleUpdate(update ?? textUpdate(1, "hi"));
  const calls = () => api.calls.filter((c) => c.method !== "getMe");
  const texts = () => calls().map((c) => `${c.method}: ${c.payload.text as string}`);
  return { ctx: ctx as Context, api, at, calls, texts };
}

describe("streamReply (grammY)", () => {
  it("coalesces writes: one call per interval, each with the latest text, the final text last", async () => {
    const { ctx, texts, at } = await chat();
    const reply = streamReply(ctx);
    for (const word of ["The ", "answer ", "is "]) reply.write(word);
    await flush();
    expect(texts()).toEqual(["sendMessage: The answer is "]);
    for (let i = 0; i < 10; i++) {
      reply.write(`${i} `);
      await vi.advanceTimersByTimeAsync(250); // 10 writes over 2.5 s of a 1 s interval
    }
    const ended = reply.end("The answer is 42.");
    await vi.advanceTimersByTimeAsync(1_000);
    const messages = await ended;
    expect(messages).toHaveLength(1);
    const sent = texts();
    expect(sent[0]).toBe("sendMessage: The answer is ");
    expect(sent.at(-1)).toBe("editMessageText: The answer is 42.");
    expect(sent.length).toBeLessThanOrEqual(5); // 14 writes, at most one call a second
    for (let i = 1; i < at.length; i++) {
      expect((at[i] as number) - (at[i - 1] as number)).toBeGreaterThanOrEqual(1_000);
    }
  });

  it("never has more than one call in flight; the next carries the text written meanwhile", async () => {
    const gates: ReturnType<typeof deferred<void>>[] = [];
    const { ctx, calls } = await chat(async (call) => {
      if (call.method !== "editMessageText") return undefined;
      const gate = deferred();
      gates.push(gate);
      await gate.promise;
      return true;
    });
    const reply = streamReply(ctx, { interval: 100 });
    reply.write("a");
    await flush();
    reply.write("b");
    await vi.advanceTimersByTimeAsync(100);
    expect(calls().map((c) => c.payload.text)).toEqual(["a", "ab"]); // the edit hangs
    for (const more of ["c", "d", "e"]) {
      reply.write(more);
      await vi.advanceTimersByTimeAsync(500);
    }
    expect(calls()).toHaveLength(2); // still the one hanging edit
    gates[0]?.resolve();
    await vi.advanceTimersByTimeAsync(100);
    expect(calls().map((c) => c.payload.text)).toEqual(["a", "ab", "abcde"]);
    gates[1]?.resolve();
    await reply.end();
    expect(calls()).toHaveLength(3);
  });

  it("sends no edit after the signal aborted, except the final text from end()", async () => {
    const { ctx, texts } = await chat();
    const controller = new AbortController();
    const reply = streamReply(ctx, { signal: controller.signal });
    reply.write("Thinking");
    await flush();
    reply.write(" about it");
    controller.abort();
    reply.write(" and more");
    await vi.advanceTimersByTimeAsync(5_000);
    expect(texts()).toEqual(["sendMessage: Thinking"]);
    const ended = reply.end(`${reply.text} (stopped)`);
    await vi.advanceTimersByTimeAsync(1_000);
    await ended;
    expect(texts()).toEqual([
      "sendMessage: Thinking",
      "editMessageText: Thinking about it and more (stopped)",
    ]);
  });

  it("posts the placeholder at once and replaces it with the answer", async () => {
    const { ctx, texts } = await chat();
    const reply = streamReply(ctx, { placeholder: "…", interval: 0 });
    await flush();
    expect(texts()).toEqual(["sendMessage: …"]);
    reply.write("Done.");
    await reply.end();
    expect(texts()).toEqual(["sendMessage: …", "editMessageText: Done."]);
  });

  it("sends nothing for a blank answer", async () => {
    const { ctx, texts } = await chat();
    const reply = streamReply(ctx, { interval: 0 });
    reply.write("  \n");
    expect(await reply.end()).toEqual([]);
    expect(texts()).toEqual([]);
  });

  it("waits out Telegram's 429 retry_after, then sends the latest text", async () => {
    const bot = offlineBot();
    const api = recordApi(bot);
    let refused = 0;
    // Outermost transformer: answers the first edit as Telegram does when a bot edits too fast.
    const tooMany: Transformer = async (prev, method, payload, signal) => {
      if (method === "editMessageText" && refused++ === 0) {
        return {
          ok: false,
          error_code: 429,
          description: "Too Many Requests: retry after 7",
          parameters: { retry_after: 7 },
        } as never;
      }
      return prev(method, payload, signal);
    };
    bot.api.config.use(tooMany);
    let ctx: Context | undefined;
    bot.on("message", (c) => {
      ctx = c;
    });
    await bot.handleUpdate(textUpdate(1, "hi"));
    const reply = streamReply(ctx as Context, { interval: 100 });
    reply.write("one");
    await flush();
    reply.write(" two");
    await vi.advanceTimersByTimeAsync(100); // refused: retry after 7 s
    reply.write(" three");
    await vi.advanceTimersByTimeAsync(6_000);
    expect(api.calls.map((c) => c.payload.text)).toEqual(["one"]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(api.calls.map((c) => c.payload.text)).toEqual(["one", "one two three"]);
    expect(refused).toBe(2);
    await reply.end();
  });

  it("takes Telegram's 'message is not modified' as done", async () => {
    const { ctx, texts } = await chat((call) => {
      if (call.method === "editMessageText") {
        throw new GrammyError(
          "Call to 'editMessageText' failed!",
          {
            ok: false,
            error_code: 400,
            description:
              "Bad Request: message is not modified: specified new message content and reply markup are exactly the same",
          },
          "editMessageText",
          call.payload,
        );
      }
      return undefined;
    });
    const reply = streamReply(ctx, { interval: 0 });
    reply.write("Same");
    await flush();
    await expect(reply.end("Same ")).resolves.toHaveLength(1);
    expect(texts()).toEqual(["sendMessage: Same", "editMessageText: Same "]);
  });

  it("rejects end() with the platform's error when the final text cannot be sent", async () => {
    const refusal = new Error("Forbidden: bot was blocked by the user");
    const { ctx } = await chat((call) => {
      if (call.method === "editMessageText") throw refusal;
      return undefined;
    });
    const reply = streamReply(ctx, { interval: 0 });
    reply.write("Hello");
    await flush();
    reply.write(", world");
    await flush(); // this preview fails; previews stop
    await expect(reply.end()).rejects.toBe(refusal);
  });

  it("continues past 4096 characters in a new message, cut at a line break", async () => {
    const { ctx, calls } = await chat();
    const reply = streamReply(ctx, { interval: 0 });
    const first = `${"a".repeat(3000)}\n${"b".repeat(1000)}`;
    reply.write(first);
    await flush();
    reply.write("b".repeat(500)); // past 4096: the first message ends at its line break
    await reply.end();
    const sent = calls().map((c) => [c.method, (c.payload.text as string).length]);
    expect(sent).toEqual([
      ["sendMessage", 4001],
      ["editMessageText", 3000],
      ["sendMessage", 1500],
    ]);
    expect(reply.messages).toHaveLength(2);
  });

  it("answers in the forum topic of the message", async () => {
    const { ctx, calls } = await chat(undefined, textUpdate(-100, "hi", { topic: 5 }));
    const reply = streamReply(ctx, { interval: 0 });
    reply.write("In the topic");
    await reply.end();
    expect(calls()[0]?.payload).toMatchObject({ chat_id: -100, message_thread_id: 5 });
  });

  it("refuses wrong options and misuse with errors that say how to fix them", async () => {
    const { ctx } = await chat();
    expect(() => streamReply(ctx, { interval: -1 })).toThrow(
      /streamReply: "interval" must be an integer number of ms 0 or more, got -1/,
    );
    expect(() => streamReply(ctx, { signal: "stop" as never })).toThrow(
      /"signal" must be an AbortSignal \(turn.signal\)/,
    );
    expect(() => streamReply(ctx, { edits: 3 } as never)).toThrow(/unknown option "edits"/);
    const reply = streamReply(ctx, { interval: 0 });
    expect(() => reply.write(42 as never)).toThrow(TypeError);
    await reply.end("done");
    expect(() => reply.write("more")).toThrow(/write\(\) after end\(\)/);
    await expect(reply.end()).rejects.toThrow(/end\(\) was already called/);
  });
});

describe("pieces", () => {
  it("keeps every cut once the text is past it, and never splits a surrogate pair", () => {
    const text = `${"x".repeat(9)}😀${"y".repeat(20)}`;
    const cut = pieces(text, 10);
    expect(cut[0]).toBe("x".repeat(9));
    expect(cut.join("")).toBe(text);
    const grown = pieces(`${text}zzz`, 10);
    expect(grown.slice(0, cut.length - 1)).toEqual(cut.slice(0, -1));
  });
});

describe("streamReply on Slack and Discord", () => {
  it("Slack: chat.postMessage in the thread, then chat.update of that message (a real WebClient)", async () => {
    vi.useRealTimers(); // web-api's request queue runs on timers
    const api = recordWebApi();
    const client = new webApi.WebClient("xoxb-test", {
      fetch: api.fetch,
      retryConfig: { retries: 0 },
    });
    const reply = slackStreamReply(
      { client, channel: "C1", thread_ts: "1699999999.000001" },
      {
        interval: 0,
      },
    );
    reply.write("Hello");
    await flush(); // the post is in flight
    const [message] = await reply.end("Hello, Slack");
    expect(
      api.calls.map((c) => [c.method, c.params.text, c.params.thread_ts ?? c.params.ts]),
    ).toEqual([
      ["chat.postMessage", "Hello", "1699999999.000001"],
      ["chat.update", "Hello, Slack", message?.ts],
    ]);
  });

  it("Discord: replies to the message, then edits that reply (a real Client)", async () => {
    vi.useRealTimers(); // discord.js's REST queue runs on timers
    const bot = offlineClient({ respond: answerEdits });
    const guard = discordGuard({ typing: false });
    try {
      const done = deferred<readonly unknown[]>();
      bot.client.on(
        Events.MessageCreate,
        guard.message(async (message) => {
          const reply = discordStreamReply(message, { interval: 0 });
          reply.write("Hello");
          await flush(); // the reply is in flight
          done.resolve(await reply.end("Hello, Discord"));
        }),
      );
      const asked = bot.sendMessage("hi");
      const [sent] = (await done.promise) as { id: string }[];
      const calls = bot.rest.calls.map((c) => `${c.method} ${c.route}: ${c.body?.content}`);
      expect(calls).toEqual([
        `POST /channels/${CHANNEL_A}/messages: Hello`,
        `PATCH /channels/${CHANNEL_A}/messages/${sent?.id}: Hello, Discord`,
      ]);
      expect(bot.rest.calls[0]?.body?.message_reference).toMatchObject({ message_id: asked });
    } finally {
      await guard.close({ timeout: 0 });
      await bot.destroy();
    }
  });
});
