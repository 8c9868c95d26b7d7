// The grammY adapter on real, offline `Bot` objects: updates go in through `bot.handleUpdate` (and
// `webhookCallback`), API calls are answered by a recording transformer, and the core guard is the
// real one. Timing is controlled with deferred promises and, where the adapter itself waits (the
// album settle window), small real timers. What every adapter promises (serialization, coalescing,
// stop, bypass, de-duplication, shutdown) is the adapter contract's (adapter-contract.test.ts);
// this file holds what is grammY's own.

import { sequentialize } from "@grammyjs/runner";
import { type Bot, BotError, type Context, HttpError, webhookCallback } from "grammy";
import type { Update } from "grammy/types";
import {
  createGuard,
  type Drop,
  memoryStore,
  type Store,
  StoreError,
  type TurnAbortedError,
} from "session-guard";
import {
  type SessionGuardMiddleware,
  type SessionGuardOptions,
  sessionGuard,
  type TurnFlavor,
} from "session-guard/grammy";
import { afterEach, describe, expect, expectTypeOf, it, vi } from "vitest";
import {
  type ApiRecorder,
  callbackQueryUpdate,
  commandUpdate,
  editedMessageUpdate,
  inlineQueryUpdate,
  offlineBot,
  photoUpdate,
  recordApi,
  stoppedGenerationUpdate,
  textOf,
  textUpdate,
} from "./support/grammy-fixtures.js";
import {
  type Deferred,
  deferred,
  dropRecorder,
  errorRecorder,
  macrotask,
  sleep,
  track,
} from "./support/helpers.js";

type Ctx = TurnFlavor<Context>;

/** The guards a test created: closed after it, so no album timer or turn outlives its test. */
const opened: SessionGuardMiddleware<Ctx>[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(opened.splice(0).map((guard) => guard.close({ timeout: 0 })));
});

/** The default key of a chat (and forum topic) for the bot with id 42. */
function chatKey(chat: number, topic?: number, botId = 42): string {
  return topic === undefined ? `tg:${botId}:${chat}` : `tg:${botId}:${chat}:${topic}`;
}

/**
 * The id an update's message is submitted with: bot, chat and message id (`tg:<bot>:<chat>:<id>`),
 * which its edits and deletions name too; a redelivered update carries the same message.
 */
function updateKey(update: Update, bot = 42): string {
  const message = update.message ?? update.channel_post ?? update.business_message;
  return `tg:${bot}:${message?.chat.id}:${message?.message_id}`;
}

interface Harness {
  readonly bot: Bot<Ctx>;
  readonly api: ApiRecorder;
  readonly guard: SessionGuardMiddleware<Ctx>;
  readonly errors: ReturnType<typeof errorRecorder<Ctx>>["errors"];
  readonly drops: Drop<Ctx>[];
  /** Send one update and wait for `handleUpdate` (not for a detached turn). */
  send(update: Update): Promise<void>;
}

/** An offline bot with `sessionGuard` installed first, recording API calls, errors and drops. */
function harness(options: SessionGuardOptions<Ctx> = {}): Harness {
  const bot = offlineBot<Ctx>();
  const api = recordApi(bot);
  const { errors, onError } = errorRecorder<Ctx>();
  const { drops, onDrop } = dropRecorder<Ctx>();
  const guard = sessionGuard<Ctx>({ onError, onDrop, ...options });
  opened.push(guard);
  bot.use(guard);
  return { bot, api, guard, errors, drops, send: (update) => bot.handleUpdate(update) };
}

/** Gates that turns wait on, by name; a name without a gate does not wait. */
function gates() {
  const all = new Map<string, Deferred<void>>();
  return {
    add(...names: string[]) {
      for (const name of names) all.set(name, deferred());
    },
    wait(name: string): Promise<void> {
      return all.get(name)?.promise ?? Promise.resolve();
    },
    open(name: string) {
      all.get(name)?.resolve();
    },
  };
}

/** Resolves with the error a promise rejects with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (error: unknown) => error,
  );
}

/** Reads `ctx.turn` and answers the error message it threw, or "no error". */
function turnError(ctx: Ctx): string {
  try {
    void ctx.turn;
    return "no error";
  } catch (error) {
    return (error as Error).message;
  }
}

const NO_TURN = /ctx\.turn is not available: this update was not run as a turn/;

describe("sessionGuard: serialization per chat", () => {
  it("never coalesces a bot command with the messages around it", async () => {
    const h = harness();
    const turns: string[][] = [];
    const first = deferred();
    const record = async (ctx: Ctx) => {
      turns.push(ctx.turn.inputs.map(textOf));
      if (textOf(ctx) === "m1") await first.promise;
    };
    h.bot.command("help", record);
    h.bot.on("message", record);

    await h.send(textUpdate(1, "m1"));
    await h.send(textUpdate(1, "m2"));
    await h.send(commandUpdate(1, "/help"));
    await h.send(textUpdate(1, "m3"));
    await h.send(commandUpdate(1, "/help@test_bot"));
    await h.send(textUpdate(1, "m4"));
    await h.send(textUpdate(1, "m5"));
    first.resolve();
    await h.guard.onIdle();
    expect(turns).toEqual([["m1"], ["m2"], ["/help"], ["m3"], ["/help@test_bot"], ["m4", "m5"]]);
  });

  it("steer: ctx.turn.take() moves pending messages into the running turn; an album stays pending and runs whole, next", async () => {
    const h = harness({ mode: "steer", mediaGroupSettle: 10 });
    const log: string[] = [];
    const arrived = deferred();
    const describeInput = (c: Ctx) => (c.msg?.photo ? "photo" : textOf(c));
    h.bot.on("message", async (ctx) => {
      log.push(`turn: ${ctx.turn.inputs.map(describeInput).join(",")}`);
      const unsubscribe = ctx.turn.onPending((pending) => {
        log.push(`pending ${pending}`);
        if (pending === 3) arrived.resolve();
      });
      await arrived.promise;
      unsubscribe();
      const taken = await ctx.turn.take();
      log.push(`took: ${taken.map(describeInput).join(",")}`);
      log.push(`inputs: ${ctx.turn.inputs.map(describeInput).join(",")}`);
    });
    await h.send(textUpdate(1, "m1"));
    await macrotask();
    await h.send(textUpdate(1, "m2"));
    for (let i = 0; i < 2; i++) await h.send(photoUpdate(1, "album-steer"));
    await h.guard.onIdle();
    expect(log).toEqual([
      "turn: m1",
      "pending 1",
      "pending 2",
      "pending 3",
      // The album's rest may still be arriving: take() leaves it, and it runs as a turn of its own.
      "took: m2",
      "inputs: m1,m2",
      "turn: photo,photo",
      "took: ",
      "inputs: photo,photo",
    ]);
  });

  it("keeps forum topics apart: each topic is its own key, replies go to the topic", async () => {
    const h = harness();
    const log: string[] = [];
    const keys: (string | undefined)[] = [];
    const gate = gates();
    gate.add("t5 a", "t6 a", "general");
    h.bot.on("message", async (ctx) => {
      const text = textOf(ctx);
      keys.push(h.guard.keyOf(ctx));
      log.push(`start ${text}`);
      await gate.wait(text);
      await ctx.reply(`re ${text}`);
    });

    const forum = -100;
    await h.send(textUpdate(forum, "t5 a", { topic: 5 }));
    await h.send(textUpdate(forum, "t6 a", { topic: 6 }));
    await h.send(textUpdate(forum, "general"));
    await h.send(textUpdate(forum, "t5 b", { topic: 5 }));
    await macrotask();
    expect(log).toEqual(["start t5 a", "start t6 a", "start general"]);
    expect(keys).toEqual([chatKey(forum, 5), chatKey(forum, 6), chatKey(forum)]);
    expect(h.guard.pendingCount(chatKey(forum, 5))).toBe(1);
    expect(h.guard.pendingCount(chatKey(forum, 6))).toBe(0);

    gate.open("t6 a");
    gate.open("general");
    await macrotask();
    expect(log).toHaveLength(3); // t5 b still waits for t5 a
    gate.open("t5 a");
    await h.guard.onIdle();
    expect(log).toEqual(["start t5 a", "start t6 a", "start general", "start t5 b"]);
    const threads = h.api.calls
      .filter((c) => c.method === "sendMessage")
      .map((c) => [c.payload.text, c.payload.message_thread_id]);
    expect(threads).toEqual([
      ["re t6 a", 6],
      ["re general", undefined],
      ["re t5 a", 5],
      ["re t5 b", 5],
    ]);
  });

  it("keys buttons and stopped drafts by their topic, and a reply thread outside a forum by the chat", async () => {
    const h = harness();
    const keys: (string | undefined)[] = [];
    h.bot.on("message", (ctx) => void keys.push(h.guard.keyOf(ctx)));
    h.bot.on("callback_query", (ctx) => void keys.push(h.guard.keyOf(ctx)));
    h.bot.on("stopped_message_generation", (ctx) => void keys.push(h.guard.keyOf(ctx)));
    // message_thread_id without is_topic_message: a reply thread in a plain group, not a topic.
    const update = textUpdate(-200, "in a reply thread");
    (update.message as { message_thread_id?: number }).message_thread_id = 77;
    await h.send(update);
    await h.send(callbackQueryUpdate(-100, "ok", 5));
    await h.send(callbackQueryUpdate(-100, "ok"));
    await h.send(stoppedGenerationUpdate(1, 3, 9));
    await h.guard.onIdle();
    expect(keys).toEqual([chatKey(-200), chatKey(-100, 5), chatKey(-100), chatKey(1, 9)]);
  });
});

describe("sessionGuard: the key option", () => {
  it("a custom key decides what is serialized; undefined lets the update through", async () => {
    const h = harness({
      key: (ctx) => (textOf(ctx).startsWith("free") ? undefined : `user:${ctx.from?.id}`),
    });
    const log: string[] = [];
    const first = deferred();
    h.bot.on("message", async (ctx) => {
      log.push(`start ${textOf(ctx)}`);
      if (textOf(ctx) === "a") await first.promise;
    });
    await h.send(textUpdate(1, "a"));
    await h.send(textUpdate(2, "b")); // same user, another chat: serialized by the custom key
    await h.send(textUpdate(1, "free c")); // no key: runs at once
    await macrotask();
    expect(log).toEqual(["start a", "start free c"]);
    expect(h.guard.pendingCount("user:7")).toBe(1);
    first.resolve();
    await h.guard.onIdle();
    expect(log).toEqual(["start a", "start free c", "start b"]);
  });
});

describe("sessionGuard: an adapter's own error", () => {
  /** A group message from an anonymous admin: `sender_chat`, no `from`. */
  function anonymousAdminUpdate(chatId: number, text: string): Update {
    const update = textUpdate(chatId, text);
    const message = update.message as unknown as Record<string, unknown>;
    delete message.from;
    message.sender_chat = { id: chatId, type: "supergroup", title: "Forum" };
    return update;
  }

  it("a throwing key function goes to onError with the update; the update is not run, and bot.start() keeps polling", async () => {
    const bot = offlineBot<Ctx>();
    const batches: Update[][] = [
      [anonymousAdminUpdate(-100, "from the admin"), textUpdate(-100, "from a member")],
      [textUpdate(-100, "later")],
    ];
    const polled = deferred();
    const api = recordApi(bot, async (call) => {
      if (call.method !== "getUpdates") return undefined;
      const batch = batches.shift();
      if (batch !== undefined) return batch;
      polled.resolve();
      await sleep(10);
      return [];
    });
    const { errors, onError } = errorRecorder<Ctx>();
    // The README's per-user key, as a user writes it: `ctx.from` is missing on an anonymous admin.
    const guard = sessionGuard<Ctx>({
      key: (ctx) => `${ctx.chatId}:${(ctx.from as { id: number }).id}`,
      onError,
    });
    opened.push(guard);
    bot.use(guard);
    const ran: string[] = [];
    bot.on("message", (ctx) => void ran.push(textOf(ctx)));
    // No bot.catch: a BotError would stop polling (grammY's default error handler).
    const polling = bot.start();
    await polled.promise;
    await guard.onIdle();
    expect(bot.isRunning()).toBe(true);
    expect(ran).toEqual(["from a member", "later"]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.error).toBeInstanceOf(TypeError);
    expect(textOf(errors[0]?.info.inputs[0] as Ctx)).toBe("from the admin");
    expect(errors[0]?.info.key).toBe("");
    await bot.stop();
    await polling;
    expect(api.calls.some((c) => c.method === "sendMessage")).toBe(false);
  });

  it.each<[string, SessionGuardOptions<Ctx>, (chat: number) => Update]>([
    ["a key function that returns an empty string", { key: () => "" }, (c) => textUpdate(c, "x")],
    [
      "a key function that returns a lone surrogate",
      { key: () => "user:\uD800" },
      (c) => textUpdate(c, "x"),
    ],
    [
      "a throwing bypass function",
      {
        bypass: () => {
          throw new Error("bypass failed");
        },
      },
      (c) => textUpdate(c, "x"),
    ],
    [
      "a malformed update (a message without its chat)",
      {},
      (c) => {
        const update = textUpdate(c, "x");
        delete (update.message as unknown as Record<string, unknown>).chat;
        return update;
      },
    ],
  ])(
    "%s goes to onError with the update; handleUpdate resolves and the update is not run",
    async (_name, options, make) => {
      const h = harness(options);
      const ran: string[] = [];
      h.bot.use((ctx) => void ran.push(textOf(ctx)));
      const update = make(1);
      await h.send(update); // resolves: no BotError
      expect(ran).toEqual([]);
      expect(h.errors).toHaveLength(1);
      expect(h.errors[0]?.error).toBeInstanceOf(Error);
      expect(h.errors[0]?.info.inputs).toEqual([expect.objectContaining({ update })]);
      expect(h.guard.activeCount).toBe(0);
    },
  );
});

describe("sessionGuard: stop", () => {
  it("with awaitTurn, a turn stopped during an API call resolves its update, and a redelivery is a duplicate", async () => {
    const replying = deferred();
    const h = harness({ awaitTurn: true });
    // The answer hangs until its signal aborts; then it fails, as a network request would.
    h.bot.api.config.use(async (prev, method, payload, signal) => {
      if (method !== "sendMessage" || (payload as { text?: string }).text !== "long answer") {
        return prev(method, payload, signal);
      }
      replying.resolve();
      return new Promise((_resolve, reject) => {
        signal?.addEventListener("abort", () => reject(new Error("request aborted")));
      });
    });
    h.bot.command("stop", (ctx) => ctx.reply("Stopped."));
    let runs = 0;
    h.bot.on("message", async (ctx) => {
      runs++;
      await ctx.reply("long answer", {}, ctx.turn.signal);
    });
    const update = textUpdate(1, "question");
    const first = track(h.send(update));
    await replying.promise;
    await h.send(commandUpdate(1, "/stop"));
    await first.promise; // resolves: the stopped turn handled its input
    await h.send(update); // so a redelivery is a duplicate, not a second run
    expect(runs).toBe(1);
    expect(h.drops.map((d) => [d.reason, d.id])).toEqual([["duplicate", updateKey(update)]]);
    expect(h.api.texts()).toEqual(["Stopped."]); // the long answer never completed
  });

  it("a /stop addressed to another bot is ordinary input, not a stop", async () => {
    const h = harness();
    const turns: string[][] = [];
    const aborted: boolean[] = [];
    const first = deferred();
    h.bot.on("message", async (ctx) => {
      turns.push(ctx.turn.inputs.map(textOf));
      if (textOf(ctx) !== "m1") return;
      await first.promise;
      aborted.push(ctx.turn.signal.aborted);
    });
    await h.send(textUpdate(1, "m1"));
    await h.send(commandUpdate(1, "/stop@other_bot"));
    expect(h.guard.pendingCount(chatKey(1))).toBe(1);
    first.resolve();
    await h.guard.onIdle();
    expect(aborted).toEqual([false]);
    expect(turns).toEqual([["m1"], ["/stop@other_bot"]]);
    expect(h.drops).toEqual([]);
  });

  it("/stop in a forum topic stops that topic only", async () => {
    const h = harness();
    const aborted: string[] = [];
    const forum = -100;
    h.bot.command("stop", (ctx) => ctx.reply("Stopped."));
    h.bot.on("message", async (ctx) => {
      const signal = ctx.turn.signal;
      const text = textOf(ctx);
      await new Promise<void>((resolve) => {
        signal.addEventListener("abort", () => {
          aborted.push(text);
          resolve();
        });
        if (text === "t6") setTimeout(resolve, 30);
      });
    });
    await h.send(textUpdate(forum, "t5", { topic: 5 }));
    await h.send(textUpdate(forum, "t6", { topic: 6 }));
    await macrotask();
    await h.send(commandUpdate(forum, "/stop", { topic: 5 }));
    await h.guard.onIdle();
    expect(aborted).toEqual(["t5"]);
    const reply = h.api.calls.find((c) => c.method === "sendMessage");
    expect(reply?.payload).toMatchObject({ text: "Stopped.", message_thread_id: 5 });
  });

  it("/stop drops an album that is still gathering: every photo, each reported", async () => {
    const h = harness({ mediaGroupSettle: 30 });
    const turns: number[] = [];
    h.bot.command("stop", (ctx) => ctx.reply("Stopped."));
    h.bot.on("message", (ctx) => void turns.push(ctx.turn.inputs.length));
    const photos = [photoUpdate(1, "g-stop"), photoUpdate(1, "g-stop")];
    for (const photo of photos) await h.send(photo);
    await h.send(commandUpdate(1, "/stop"));
    await sleep(60);
    await h.guard.onIdle();
    expect(turns).toEqual([]);
    expect(h.drops.map((d) => [d.reason, d.input.update.update_id])).toEqual([
      ["stopped", photos[0]?.update_id],
      ["stopped", photos[1]?.update_id],
    ]);
    expect(h.api.texts()).toEqual(["Stopped."]);
  });
});

describe("sessionGuard: bypass", () => {
  it("reading ctx.turn on a bypassed update throws an error that says why", async () => {
    const h = harness();
    const messages: string[] = [];
    h.bot.on("callback_query", async (ctx) => {
      messages.push(turnError(ctx));
      await ctx.answerCallbackQuery();
    });
    h.bot.on("inline_query", (ctx) => void messages.push(turnError(ctx)));
    h.bot.on("message", (ctx) => void messages.push(turnError(ctx)));
    await h.send(callbackQueryUpdate(1, "x"));
    await h.send(inlineQueryUpdate("q"));
    await h.send(textUpdate(1, "guarded"));
    await h.guard.onIdle();
    expect(messages).toEqual([
      expect.stringMatching(NO_TURN),
      expect.stringMatching(NO_TURN),
      "no error",
    ]);
    expect(messages[0]).toMatch(/callback query/);
  });

  it("updates without a chat, and updates that carry no new input, pass through beside a busy turn", async () => {
    const h = harness();
    const log: string[] = [];
    const first = deferred();
    h.bot.on("message", async () => {
      log.push("turn start");
      await first.promise;
      log.push("turn end");
    });
    h.bot.on("inline_query", (ctx) => {
      log.push(`inline, key ${String(h.guard.keyOf(ctx))}`);
    });
    h.bot.on("edited_message", (ctx) => {
      log.push(`edited, key ${String(h.guard.keyOf(ctx))}`);
    });

    await h.send(textUpdate(1, "long turn"));
    await macrotask();
    await h.send(inlineQueryUpdate("weather"));
    await h.send(editedMessageUpdate(1, "fixed typo"));
    // Both ran inside their handleUpdate call, while chat 1's turn still runs.
    expect(log).toEqual(["turn start", "inline, key undefined", `edited, key ${chatKey(1)}`]);
    expect(h.guard.pendingCount(chatKey(1))).toBe(0);
    expect(h.guard.activeCount).toBe(1);
    first.resolve();
    await h.guard.onIdle();
    expect(log.at(-1)).toBe("turn end");
  });

  it("a `bypass` option lets more updates through, beside the turn", async () => {
    const h = harness({ bypass: (ctx) => textOf(ctx) === "/status" });
    const log: string[] = [];
    const first = deferred();
    h.bot.on("message", async (ctx) => {
      if (textOf(ctx) === "/status") {
        log.push(`status: ${turnError(ctx) === "no error" ? "turn" : "bypassed"}`);
        return;
      }
      log.push("turn start");
      await first.promise;
      log.push("turn end");
    });
    await h.send(textUpdate(1, "work"));
    await macrotask();
    await h.send(textUpdate(1, "/status"));
    expect(log).toEqual(["turn start", "status: bypassed"]);
    first.resolve();
    await h.guard.onIdle();
    expect(log).toEqual(["turn start", "status: bypassed", "turn end"]);
  });
});

describe("sessionGuard: albums", () => {
  it("makes an album of 4 photos one turn with all 4 contexts in ctx.turn.inputs", async () => {
    const h = harness({ mediaGroupSettle: 30 });
    const turns: { ids: number[]; captions: string[]; ctx: number }[] = [];
    const ran = deferred();
    h.bot.on("message:photo", (ctx) => {
      turns.push({
        ids: ctx.turn.inputs.map((c) => c.update.update_id),
        captions: ctx.turn.inputs.map(textOf),
        ctx: ctx.update.update_id,
      });
      ran.resolve();
    });
    const photos = [
      photoUpdate(1, "album-1", "look at these"),
      photoUpdate(1, "album-1"),
      photoUpdate(1, "album-1"),
      photoUpdate(1, "album-1"),
    ];
    for (const photo of photos) {
      await h.send(photo);
      await macrotask();
    }
    // Held until the settle window passes quietly after the last photo.
    expect(turns).toEqual([]);
    await ran.promise;
    await h.guard.onIdle();
    await sleep(40);
    const ids = photos.map((p) => p.update_id);
    expect(turns).toEqual([{ ids, captions: ["look at these", "", "", ""], ctx: ids[3] }]);
    expect(h.drops).toEqual([]);
  });

  it("an album sent during a turn joins the next turn after the messages before it", async () => {
    const h = harness({ mediaGroupSettle: 30 });
    const turns: string[][] = [];
    const first = deferred();
    const queued = deferred();
    h.bot.on("message", async (ctx) => {
      turns.push(
        ctx.turn.inputs.map((c) => (c.msg?.photo ? `photo ${c.update.update_id}` : textOf(c))),
      );
      if (textOf(ctx) === "m1") await first.promise;
    });
    h.guard.on("queued", ({ pending }) => {
      if (pending === 2) queued.resolve();
    });
    await h.send(textUpdate(1, "m1"));
    await h.send(textUpdate(1, "m2"));
    const photos = [1, 2, 3, 4].map(() => photoUpdate(1, "album-2"));
    for (const photo of photos) await h.send(photo);
    await queued.promise; // the album was admitted once its window passed
    first.resolve();
    await h.guard.onIdle();
    expect(turns).toEqual([["m1"], ["m2", ...photos.map((p) => `photo ${p.update_id}`)]]);
  });

  it("a redelivered photo joins its album once", async () => {
    const h = harness({ mediaGroupSettle: 30 });
    const turns: number[][] = [];
    const ran = deferred();
    h.bot.on("message", (ctx) => {
      turns.push(ctx.turn.inputs.map((c) => c.update.update_id));
      ran.resolve();
    });
    const photos = [photoUpdate(1, "album-3"), photoUpdate(1, "album-3")];
    await h.send(photos[0] as Update);
    await h.send(photos[0] as Update);
    await h.send(photos[1] as Update);
    await ran.promise;
    await h.guard.onIdle();
    expect(turns).toEqual([photos.map((p) => p.update_id)]);
    // Redelivered after the album's turn: a duplicate too, once its window has passed.
    await h.send(photos[1] as Update);
    await sleep(45);
    await h.guard.onIdle();
    expect(turns).toEqual([photos.map((p) => p.update_id)]);
    // Each photo is an input of its album's group, de-duplicated by its update id.
    expect(h.drops.map((d) => [d.reason, d.id, d.input.update.update_id])).toEqual([
      ["duplicate", updateKey(photos[0] as Update), photos[0]?.update_id],
      ["duplicate", updateKey(photos[1] as Update), photos[1]?.update_id],
    ]);
  });

  it("with awaitTurn, every photo's handleUpdate waits for the album's turn", async () => {
    const h = harness({ mediaGroupSettle: 30, awaitTurn: true });
    const log: string[] = [];
    h.bot.on("message", async (ctx) => {
      log.push(`turn of ${ctx.turn.inputs.length}`);
      await sleep(5);
      log.push("turn end");
    });
    const photos = [1, 2, 3].map(() => photoUpdate(1, "album-4"));
    await Promise.all(
      photos.map((photo, i) => h.send(photo).then(() => void log.push(`photo ${i} answered`))),
    );
    expect(log).toEqual([
      "turn of 3",
      "turn end",
      "photo 0 answered",
      "photo 1 answered",
      "photo 2 answered",
    ]);
  });
});

describe("sessionGuard: errors", () => {
  it("a turn that throws reaches onError, and the next message of that chat runs", async () => {
    const h = harness();
    const log: string[] = [];
    const boom = new Error("boom");
    const first = deferred();
    h.bot.on("message", async (ctx) => {
      log.push(textOf(ctx));
      if (textOf(ctx) === "explode") {
        await first.promise;
        throw boom;
      }
    });
    const explode = textUpdate(1, "explode");
    await h.send(explode); // detached: resolves although the turn will fail
    await h.send(textUpdate(1, "after"));
    first.resolve();
    await h.guard.onIdle();
    expect(log).toEqual(["explode", "after"]);
    expect(h.errors).toHaveLength(1);
    expect(h.errors[0]?.error).toBe(boom);
    expect(h.errors[0]?.info.key).toBe(chatKey(1));
    expect(h.errors[0]?.info.inputs.map((c) => c.update.update_id)).toEqual([explode.update_id]);
    expect(h.guard.isBusy(chatKey(1))).toBe(false);

    await h.send(textUpdate(1, "later"));
    await h.guard.onIdle();
    expect(log).toEqual(["explode", "after", "later"]);
    expect(h.errors).toHaveLength(1);
  });

  it("by default a failed turn is one log line with the key and update ids", async () => {
    const bot = offlineBot<Ctx>();
    recordApi(bot);
    const guard = sessionGuard<Ctx>();
    opened.push(guard);
    bot.use(guard);
    const boom = new Error("boom");
    bot.on("message", () => {
      throw boom;
    });
    const lines: unknown[][] = [];
    vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => void lines.push(args));
    const update = textUpdate(1, "x");
    await bot.handleUpdate(update);
    await guard.onIdle();
    await macrotask();
    expect(lines).toHaveLength(1);
    expect(lines[0]?.[0]).toContain(chatKey(1));
    expect(lines[0]?.[0]).toContain(String(update.update_id));
    expect(lines[0]?.[1]).toBe(boom);
  });

  it("with awaitTurn, a throwing turn rejects handleUpdate with a BotError, reaches onError once, and its redelivery runs", async () => {
    const h = harness({ awaitTurn: true });
    const boom = new Error("boom");
    let deliveries = 0;
    h.bot.on("message", async (ctx) => {
      deliveries++;
      if (deliveries === 1) throw boom;
      await ctx.reply("ok");
    });
    const update = textUpdate(1, "flaky");

    const error = await rejection(h.send(update));
    expect(error).toBeInstanceOf(BotError);
    expect((error as BotError).error).toBe(boom);
    expect((error as BotError<Ctx>).ctx.update.update_id).toBe(update.update_id);
    expect(h.errors.map((e) => e.error)).toEqual([boom]);

    // The platform redelivers after the failure: the id was forgotten, so it runs.
    await h.send(update);
    expect(deliveries).toBe(2);
    expect(h.api.texts()).toEqual(["ok"]);
    expect(h.errors).toHaveLength(1);
    expect(h.drops).toEqual([]);

    // Once it succeeded, a further redelivery is a duplicate again.
    await h.send(update);
    expect(deliveries).toBe(2);
    expect(h.drops.map((d) => d.reason)).toEqual(["duplicate"]);
  });
});

describe("sessionGuard: transport and shutdown", () => {
  it("through webhookCallback(bot, 'callback') the webhook call resolves before the turn finishes", async () => {
    const h = harness();
    const log: string[] = [];
    const gate = gates();
    gate.add("hi");
    h.bot.on("message", async (ctx) => {
      const text = textOf(ctx);
      log.push(`start ${text}`);
      await gate.wait(text);
      await ctx.reply(`answer ${text}`);
      log.push(`end ${text}`);
    });
    const handle = webhookCallback(h.bot, "callback");
    const responded: string[] = [];
    const respond = (json: string) => void responded.push(json);

    await handle(textUpdate(1, "hi"), respond);
    log.push("webhook answered");
    await handle(textUpdate(1, "again"), respond); // queued behind "hi": answered at once too
    log.push("webhook answered");
    expect(log).toEqual(["start hi", "webhook answered", "webhook answered"]);

    gate.open("hi");
    await h.guard.onIdle();
    expect(log).toEqual([
      "start hi",
      "webhook answered",
      "webhook answered",
      "end hi",
      "start again",
      "end again",
    ]);
    expect(responded).toEqual([]);
    // The answers went out as API calls, after the webhook requests were answered.
    expect(h.api.texts()).toEqual(["answer hi", "answer again"]);
  });

  it("guard.close() flushes an album still gathering, and waits for its turn", async () => {
    const h = harness({ mediaGroupSettle: 1000 });
    const log: string[] = [];
    h.bot.on("message", async (ctx) => {
      log.push(`turn of ${ctx.turn.inputs.length}`);
      await sleep(5);
      log.push("turn end");
    });
    for (let i = 0; i < 4; i++) await h.send(photoUpdate(1, "album-close"));
    const report = await h.guard.close();
    log.push("closed");
    expect(log).toEqual(["turn of 4", "turn end", "closed"]);
    expect(report).toEqual({ aborted: 0, dropped: [] });
  });
});

describe("sessionGuard: types and options", () => {
  it("typing: true shows typing… in the chat's topic while a turn runs, and only then (off by default)", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    try {
      const h = harness({ typing: true });
      const gate = deferred();
      h.bot.on("message", () => gate.promise);
      await h.send(textUpdate(-100, "hi", { topic: 5 }));
      await macrotask();
      vi.advanceTimersByTime(8_500); // two renewals
      gate.resolve();
      await h.guard.onIdle();
      vi.advanceTimersByTime(20_000); // none after the turn
      const actions = h.api.calls.filter((c) => c.method === "sendChatAction");
      expect(actions.map((c) => c.payload)).toEqual(
        Array(3).fill({ chat_id: -100, action: "typing", message_thread_id: 5 }),
      );
      const off = harness();
      off.bot.on("message", () => {});
      await off.send(textUpdate(1, "hi"));
      await off.guard.onIdle();
      expect(off.api.calls.map((c) => c.method)).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("ctx.turn.signal is accepted by grammY API calls without a cast, and aborting it cancels the call", async () => {
    // grammY's own HTTP path, with a fetch that hangs until its signal aborts: the call must be
    // cancelled by the turn's (standard) signal through grammY's abort-controller plumbing.
    const fetchSignal = deferred<{ aborted: boolean }>();
    const hangingFetch = (_url: unknown, init?: { signal?: EventTarget & { aborted: boolean } }) =>
      new Promise<never>((_resolve, reject) => {
        const signal = init?.signal;
        if (signal === undefined) return reject(new Error("no signal reached fetch"));
        fetchSignal.resolve(signal);
        signal.addEventListener("abort", () => reject(new Error("fetch aborted")));
      });
    const bot = offlineBot<Ctx>({
      config: { client: { fetch: hangingFetch as unknown as typeof fetch } },
    });
    const { errors, onError } = errorRecorder<Ctx>();
    const guard = sessionGuard<Ctx>({ onError });
    opened.push(guard);
    bot.use(guard);
    bot.command("stop", () => {});
    const outcome: unknown[] = [];
    bot.on("message", async (ctx) => {
      // Type level (checked by `tsc --noEmit`): one signal for grammY and for standard APIs.
      expectTypeOf(ctx.turn.signal).toExtend<Parameters<typeof ctx.reply>[2]>();
      expectTypeOf(ctx.turn.signal).toExtend<Parameters<typeof ctx.api.sendMessage>[3]>();
      expectTypeOf(ctx.turn.signal).toExtend<AbortSignal>();
      expectTypeOf(ctx.turn.signal).toExtend<NonNullable<RequestInit["signal"]>>();
      const standard: AbortSignal = ctx.turn.signal;
      try {
        await ctx.reply("thinking…", {}, ctx.turn.signal);
        outcome.push("sent");
      } catch (error) {
        outcome.push(error);
      }
      outcome.push((standard.reason as TurnAbortedError).code);
    });

    await bot.handleUpdate(textUpdate(1, "hi"));
    const signal = await fetchSignal.promise;
    expect(signal.aborted).toBe(false);
    await bot.handleUpdate(commandUpdate(1, "/stop"));
    await guard.onIdle();
    expect(signal.aborted).toBe(true);
    expect(outcome).toHaveLength(2);
    expect(outcome[0]).toBeInstanceOf(HttpError);
    expect(outcome[1]).toBe("stopped");
    expect(errors).toEqual([]);
  });

  it("one turn can pass its signal to many concurrent API calls without a listener-leak warning", async () => {
    const answeringFetch = async (_url: unknown, init?: { body?: unknown }) => {
      await macrotask();
      const payload = JSON.parse(String(init?.body)) as { chat_id: number; text: string };
      const result = { message_id: 1, date: 0, chat: { id: payload.chat_id }, text: payload.text };
      return new Response(JSON.stringify({ ok: true, result }));
    };
    const bot = offlineBot<Ctx>({
      config: { client: { fetch: answeringFetch as unknown as typeof fetch } },
    });
    const { errors, onError } = errorRecorder<Ctx>();
    const guard = sessionGuard<Ctx>({ onError });
    opened.push(guard);
    bot.use(guard);
    const warnings: string[] = [];
    const onWarning = (warning: Error) => void warnings.push(warning.name);
    process.on("warning", onWarning);
    const sent: string[] = [];
    bot.on("message", async (ctx) => {
      const replies = Array.from({ length: 15 }, (_, i) =>
        ctx.reply(`part ${i}`, {}, ctx.turn.signal),
      );
      for (const message of await Promise.all(replies)) sent.push(message.text);
    });
    try {
      await bot.handleUpdate(textUpdate(1, "stream"));
      await guard.onIdle();
      await macrotask();
    } finally {
      process.off("warning", onWarning);
    }
    expect(sent).toHaveLength(15);
    expect(warnings).toEqual([]);
    expect(errors).toEqual([]);
  });

  it("with a shared guard, awaitTurn is the adapter's: a failed turn rejects handleUpdate and its redelivery runs", async () => {
    const { errors, onError } = errorRecorder<Ctx>();
    const core = createGuard<Ctx>({ onError });
    const bot = offlineBot<Ctx>();
    recordApi(bot);
    const guard = sessionGuard<Ctx>({ guard: core, awaitTurn: true });
    opened.push(guard);
    bot.use(guard);
    let calls = 0;
    bot.on("message", () => {
      calls++;
      if (calls === 1) throw new Error("agent down");
    });
    const update = textUpdate(1, "hello", { update_id: 900 });
    const error = await rejection(bot.handleUpdate(update));
    expect(error).toBeInstanceOf(BotError);
    expect(((error as BotError).error as Error).message).toBe("agent down");
    expect(errors.map((e) => (e.error as Error).message)).toEqual(["agent down"]);
    // The failed turn's id was forgotten: the redelivery runs instead of being a duplicate.
    await bot.handleUpdate(update);
    expect(calls).toBe(2);
  });

  it("with a shared guard, the adapter's onError gets errors raised outside a turn", async () => {
    const turnErrors = errorRecorder<Ctx>();
    const adapterErrors = errorRecorder<Ctx>();
    // A stop that fails: the store cannot clear the key's pending input.
    const memory = memoryStore();
    const store: Store = {
      shared: false,
      acquireOrEnqueue: memory.acquireOrEnqueue.bind(memory),
      renew: memory.renew.bind(memory),
      take: memory.take.bind(memory),
      finish: memory.finish.bind(memory),
      abandon: memory.abandon.bind(memory),
      clear: () => {
        throw new Error("store down");
      },
      withdraw: memory.withdraw.bind(memory),
      forget: memory.forget.bind(memory),
      pendingCount: memory.pendingCount.bind(memory),
    };
    const failing = createGuard<Ctx>({ onError: turnErrors.onError, store });
    const bot = offlineBot<Ctx>();
    recordApi(bot);
    const guard = sessionGuard<Ctx>({ guard: failing, onError: adapterErrors.onError });
    opened.push(guard);
    bot.use(guard);
    const answered: string[] = [];
    bot.command("stop", (ctx) => {
      answered.push(textOf(ctx));
    });
    await bot.handleUpdate(commandUpdate(1, "stop"));
    await macrotask();
    expect(answered).toEqual(["/stop"]);
    expect(adapterErrors.errors.map((e) => [e.error, e.info.key])).toEqual([
      [expect.any(StoreError), chatKey(1)],
    ]);
    expect(String(adapterErrors.errors[0]?.error)).toMatch(/stop .*store down/);
    expect(turnErrors.errors).toEqual([]);
    // Without an adapter onError, they go to the shared guard's.
    const bot2 = offlineBot<Ctx>({ id: 77, username: "c_bot" });
    recordApi(bot2);
    const guard2 = sessionGuard<Ctx>({ guard: failing });
    opened.push(guard2);
    bot2.use(guard2);
    await bot2.handleUpdate(commandUpdate(1, "stop"));
    await macrotask();
    expect(turnErrors.errors.map((e) => (e.error as StoreError).operation)).toEqual(["stop"]);
  });

  it("sessionGuard({ guard }) shares one core guard between two bots, keys scoped by bot id", async () => {
    const { errors, onError } = errorRecorder<Ctx>();
    const { drops, onDrop } = dropRecorder<Ctx>();
    const core = createGuard<Ctx>({ onError, onDrop });
    const botA = offlineBot<Ctx>({ id: 42, username: "a_bot" });
    const botB = offlineBot<Ctx>({ id: 43, username: "b_bot" });
    recordApi(botA);
    recordApi(botB);
    const guardA = sessionGuard<Ctx>({ guard: core });
    const guardB = sessionGuard<Ctx>({ guard: core });
    opened.push(guardA, guardB);
    botA.use(guardA);
    botB.use(guardB);
    const log: string[] = [];
    const release = deferred();
    for (const [name, bot, guard] of [
      ["A", botA, guardA],
      ["B", botB, guardB],
    ] as const) {
      bot.on("message", async (ctx) => {
        log.push(`${name} ${textOf(ctx)} ${guard.keyOf(ctx)}`);
        await release.promise;
      });
    }

    // Same chat id and same update_id on both bots: two keys, and no duplicate.
    await botA.handleUpdate(textUpdate(1, "first", { update_id: 500 }));
    await botB.handleUpdate(textUpdate(1, "first", { update_id: 500 }));
    await botA.handleUpdate(textUpdate(1, "second", { update_id: 501 }));
    await macrotask();
    expect(log).toEqual([
      `A first ${chatKey(1, undefined, 42)}`,
      `B first ${chatKey(1, undefined, 43)}`,
    ]);
    expect(guardA.guard).toBe(core);
    expect(guardB.guard).toBe(core);
    expect(core.activeCount).toBe(2);
    expect(guardA.activeCount).toBe(2);
    expect(core.pendingCount(chatKey(1, undefined, 42))).toBe(1);
    expect(core.pendingCount(chatKey(1, undefined, 43))).toBe(0);
    expect(drops).toEqual([]);

    release.resolve();
    await core.onIdle();
    expect(log).toEqual([
      `A first ${chatKey(1, undefined, 42)}`,
      `B first ${chatKey(1, undefined, 43)}`,
      `A second ${chatKey(1, undefined, 42)}`,
    ]);
    expect(errors).toEqual([]);
  });

  it("two bots with their own guards on one store: the same update_id is no duplicate", async () => {
    const { drops, onDrop } = dropRecorder<Ctx>();
    const store = memoryStore();
    const botA = offlineBot<Ctx>({ id: 42, username: "a_bot" });
    const botB = offlineBot<Ctx>({ id: 43, username: "b_bot" });
    recordApi(botA);
    recordApi(botB);
    const guardA = sessionGuard<Ctx>({ store, onDrop, awaitTurn: true });
    const guardB = sessionGuard<Ctx>({ store, onDrop, awaitTurn: true });
    opened.push(guardA, guardB);
    botA.use(guardA);
    botB.use(guardB);
    const log: string[] = [];
    botA.on("message", (ctx) => void log.push(`A ${textOf(ctx)}`));
    botB.on("message", (ctx) => void log.push(`B ${textOf(ctx)}`));

    // The store is shared, so ids are scoped by bot; a redelivery to one bot is still a duplicate.
    // The same update (same update_id, same message) delivered to both bots, then again to B.
    const update = textUpdate(1, "hi", { update_id: 700 });
    await botA.handleUpdate(structuredClone(update));
    await botB.handleUpdate(structuredClone(update));
    await botB.handleUpdate(structuredClone(update));
    expect(log).toEqual(["A hi", "B hi"]);
    expect(drops.map((d) => [d.reason, d.id])).toEqual([["duplicate", updateKey(update, 43)]]);
  });

  it.each([
    ["options that are not an object", null],
    ["a negative mediaGroupSettle", { mediaGroupSettle: -1 }],
    ["a fractional mediaGroupSettle", { mediaGroupSettle: 1.5 }],
    ["a string mediaGroupSettle", { mediaGroupSettle: "800" }],
    ["stopCommands as a string", { stopCommands: "stop" }],
    ["stopCommands with a number", { stopCommands: ["stop", 1] }],
    ["a key that is not a function", { key: "chat" }],
    ["a bypass that is not a function", { bypass: true }],
    ["a guard that is not a guard", { guard: {} }],
    ["core options next to a shared guard", { guard: createGuard(), mode: "queue" }],
    ["an unknown mode", { mode: "fifo" }],
    ["a negative maxPending", { maxPending: -1 }],
    ["an unknown option", { sequential: true }],
  ])("throws a TypeError for %s", (_name, options) => {
    expect(() => sessionGuard(options as never)).toThrow(TypeError);
  });

  it("names the offending option in the TypeError", () => {
    expect(() => sessionGuard({ mediaGroupSettle: -1 })).toThrow(/mediaGroupSettle/);
    expect(() => sessionGuard({ stopCommands: "stop" as never })).toThrow(/stopCommands/);
    expect(() => sessionGuard({ guard: createGuard(), mode: "queue" })).toThrow(/"mode"/);
    expect(() => sessionGuard({ mode: "fifo" as never })).toThrow(/mode/);
  });
});

// === @grammyjs/runner's sequentialize tests, ported
//
// github.com/grammyjs/runner test/sequentialize.test.ts (v2.0.3). Only the single-key cases apply
// (1–6 and 9); each constraint becomes a chat, and the multi-key case 4 runs on the chat every
// one of its updates shares. session-guard runs them in its documented sequentialize-equivalent
// configuration; the real `sequentialize` runs the same cases as the reference.

const P = 1;
const Q = 2;

const SEQUENTIALIZE_EQUIVALENT = {
  mode: "queue",
  maxPending: Number.POSITIVE_INFINITY,
  dedupe: false,
  awaitTurn: true,
} as const satisfies SessionGuardOptions<Ctx>;

const implementations: [string, (bot: Bot<Ctx>) => void][] = [
  [
    "sessionGuard (queue, awaitTurn, no dedupe)",
    (bot) => {
      const guard = sessionGuard<Ctx>({ ...SEQUENTIALIZE_EQUIVALENT, onError: () => {} });
      opened.push(guard);
      bot.use(guard);
    },
  ],
  [
    "reference: @grammyjs/runner sequentialize",
    (bot) => {
      bot.use(sequentialize<Ctx>((ctx) => String(ctx.chat?.id)));
    },
  ],
];

describe.each(implementations)("sequentialize's ordering cases: %s", (_name, install) => {
  /** A bot whose message handler runs the task registered under the message's text. */
  function sequenced() {
    const bot = offlineBot<Ctx>();
    recordApi(bot);
    install(bot);
    const tasks = new Map<string, () => unknown>();
    bot.on("message", (ctx) => tasks.get(textOf(ctx))?.());
    const send = (chat: number, name: string) => bot.handleUpdate(textUpdate(chat, name));
    return { tasks, send };
  }

  it("1. should call the middleware", async () => {
    const { tasks, send } = sequenced();
    let called = 0;
    tasks.set("p", () => void called++);
    await send(P, "p");
    expect(called).toBe(1);
  });

  it("2. should handle failing middleware", async () => {
    const { tasks, send } = sequenced();
    const error = new Error("0");
    tasks.set("p", () => {
      throw error;
    });
    const rejected = await rejection(send(P, "p"));
    expect(rejected).toBeInstanceOf(BotError);
    expect((rejected as BotError).error).toBe(error);
  });

  it("3. should handle failing chained middleware", async () => {
    const { tasks, send } = sequenced();
    const log: string[] = [];
    const error = new Error("p failed");
    let qx = false;
    tasks.set("p", async () => {
      log.push("p start");
      await sleep(10);
      log.push("p throws");
      throw error;
    });
    tasks.set("q", async () => {
      log.push("q start");
      await sleep(10);
      qx = true;
      log.push("q end");
    });
    const [p, q] = await Promise.allSettled([send(P, "p"), send(P, "q")]);
    expect(p.status).toBe("rejected");
    expect(((p as PromiseRejectedResult).reason as BotError).error).toBe(error);
    expect(q.status).toBe("fulfilled");
    expect(qx).toBe(true);
    expect(log).toEqual(["p start", "p throws", "q start", "q end"]);
  });

  it("4. should handle multiple errors", async () => {
    const { tasks, send } = sequenced();
    const log: string[] = [];
    const thrown = new Map<string, Error>();
    const names: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (const kind of ["resolve x", "resolve y", "reject x", "reject y"]) {
        const name = `${kind} ${round}`;
        names.push(name);
        if (kind.startsWith("reject")) thrown.set(name, new Error(name));
        tasks.set(name, async () => {
          log.push(name);
          await sleep(1);
          const error = thrown.get(name);
          if (error !== undefined) throw error;
        });
      }
    }
    const results = await Promise.allSettled(names.map((name) => send(P, name)));
    expect(log).toEqual(names);
    const resolved = names.filter((_, i) => results[i]?.status === "fulfilled");
    expect(resolved).toEqual(names.filter((name) => name.startsWith("resolve")));
    const errors = results.flatMap((r) => (r.status === "rejected" ? [r.reason as BotError] : []));
    expect(errors).toHaveLength(6);
    // Each rejection carries its own update's error.
    expect(errors.map((e) => e.error)).toEqual(
      names.filter((name) => name.startsWith("reject")).map((name) => thrown.get(name)),
    );
    expect(errors.map((e) => textOf(e.ctx))).toEqual(
      names.filter((name) => name.startsWith("reject")),
    );
  });

  it("5. should allow unrelated updates to be executed concurrently", async () => {
    const { tasks, send } = sequenced();
    const log: string[] = [];
    const qStarted = deferred();
    tasks.set("p", async () => {
      log.push("p start");
      // Waits for q to start; if q were serialized behind p it would give up after 300 ms.
      await Promise.race([qStarted.promise, sleep(300)]);
      log.push("p end");
    });
    tasks.set("q", async () => {
      log.push("q start");
      qStarted.resolve();
      await sleep(10);
      log.push("q end");
    });
    await Promise.all([send(P, "p"), send(Q, "q")]);
    expect(log).toEqual(["p start", "q start", "p end", "q end"]);
  });

  it("6. should slow down updates", async () => {
    const { tasks, send } = sequenced();
    const log: string[] = [];
    for (const name of ["p", "q"]) {
      tasks.set(name, async () => {
        log.push(`${name} start`);
        await sleep(10);
        log.push(`${name} end`);
      });
    }
    const p = send(P, "p");
    const q = track(send(P, "q"));
    await p;
    expect(q.settled).toBe(false);
    await q.promise;
    expect(log).toEqual(["p start", "p end", "q start", "q end"]);
  });

  it("9. should respect old values", async () => {
    const { tasks, send } = sequenced();
    const log: string[] = [];
    const gate = gates();
    gate.add("p", "q");
    for (const name of ["p", "q", "r"]) {
      tasks.set(name, async () => {
        log.push(`${name} start`);
        await gate.wait(name);
        log.push(`${name} end`);
      });
    }
    const p = track(send(P, "p"));
    const q = track(send(Q, "q"));
    await sleep(10);
    const r = track(send(P, "r"));
    await macrotask();
    expect(log).toEqual(["p start", "q start"]);
    gate.open("q");
    await q.promise;
    await macrotask();
    // r waits for p (its chat), not for q.
    expect(log).toEqual(["p start", "q start", "q end"]);
    expect(r.settled).toBe(false);
    gate.open("p");
    await p.promise;
    await r.promise;
    expect(log).toEqual(["p start", "q start", "q end", "p end", "r start", "r end"]);
  });
});
