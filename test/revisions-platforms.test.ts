// Issue 14, what only one platform has (the shared behaviour is in support/revision-contract.ts):
// Telegram business deletions, album edits and channel posts; Slack unfurls and bot edits;
// Discord embed-only updates, partial and bulk deletions, and `dropReply` beside `reactions`.
// Real framework objects, offline; turns held open with deferred promises.

import { Events, Partials } from "discord.js";
import type { Context } from "grammy";
import type { Message, Update } from "grammy/types";
import { discordGuard } from "session-guard/discord";
import { sessionGuard, type TurnFlavor } from "session-guard/grammy";
import { type SlackInput, type SlackTurnContext, slackGuard } from "session-guard/slack";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CHANNEL_A, offlineClient } from "./support/discord-fixtures.js";
import {
  nextUpdateId,
  offlineBot,
  photoUpdate,
  privateChat,
  recordApi,
  textUpdate,
  user,
} from "./support/grammy-fixtures.js";
import { deferred, dropRecorder } from "./support/helpers.js";
import {
  deliver,
  disposeDeliveries,
  editOf,
  message,
  offlineApp,
  quietLogger,
  recordWebApi,
  textOf as slackText,
} from "./support/slack-fixtures.js";

type Ctx = TurnFlavor<Context>;
const closers: { close(options?: { timeout?: number }): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const guard of closers.splice(0)) await guard.close({ timeout: 0 });
  disposeDeliveries();
});

function until(check: () => boolean, what: string): Promise<void> {
  return vi.waitFor(
    () => {
      if (!check()) throw new Error(`still waiting for ${what}`);
    },
    { timeout: 2_000, interval: 2 },
  );
}

describe("grammY", () => {
  /** A bot whose first turn is held; every turn's texts are recorded. */
  function telegram(options: Parameters<typeof sessionGuard<Ctx>>[0] = {}) {
    const bot = offlineBot<Ctx>();
    recordApi(bot);
    const { drops, onDrop } = dropRecorder<Ctx>();
    const errors: unknown[] = [];
    const guard = sessionGuard<Ctx>({ onDrop, onError: (e) => void errors.push(e), ...options });
    closers.push(guard);
    bot.use(guard);
    const gate = deferred();
    const turns: string[][] = [];
    const handled: string[] = [];
    /** The text of the context each turn's handler ran with (not `ctx.turn.inputs`). */
    const own: string[] = [];
    bot.on(["edited_message", "edited_channel_post", "deleted_business_messages"], (ctx) => {
      handled.push(Object.keys(ctx.update).filter((k) => k !== "update_id")[0] as string);
    });
    bot.use(async (ctx) => {
      turns.push(ctx.turn.inputs.map((c) => c.msg?.text ?? c.msg?.caption ?? ""));
      own.push(ctx.msg?.text ?? "");
      if (turns.length === 1) await gate.promise;
    });
    const send = (update: Update) => bot.handleUpdate(structuredClone(update));
    return { bot, guard, gate, turns, drops, errors, handled, own, send };
  }

  const business = (text: string, messageId: number): Update => ({
    update_id: nextUpdateId(),
    business_message: {
      message_id: messageId,
      date: 0,
      chat: privateChat(7),
      from: user,
      text,
      business_connection_id: "conn",
    } as Message & Update.Private,
  });

  it("deleted_business_messages withdraws a pending business message; the deletion reaches the handlers", async () => {
    const t = telegram();
    await t.send(business("first", 1));
    await until(() => t.turns.length === 1, "the first turn");
    await t.send(business("keep", 2));
    await t.send(business("oops", 3));
    await t.send({
      update_id: nextUpdateId(),
      deleted_business_messages: {
        business_connection_id: "conn",
        chat: privateChat(7),
        message_ids: [3],
      },
    });
    await until(() => t.drops.length === 1, "the withdrawal");
    expect(t.drops.map((d) => [d.reason, d.id])).toEqual([["withdrawn", "tg:42:conn:7:3"]]);
    expect(await t.guard.guard.outcome("tg:42:conn:7:3")).toMatchObject({
      state: "dropped",
      reason: "withdrawn",
    });
    t.gate.resolve();
    await t.guard.onIdle();
    expect(t.turns).toEqual([["first"], ["keep"]]);
    expect(t.handled).toEqual(["deleted_business_messages"]);
  });

  it("a business message and the bot's own chat with that user share chat and message ids, not submitted ids", async () => {
    const t = telegram();
    await t.send(business("business", 5));
    await t.send(textUpdate(7, "direct")); // another message id sequence, perhaps the same number
    const direct = textUpdate(7, "direct 5");
    (direct.message as { message_id: number }).message_id = 5;
    await t.send(direct);
    t.gate.resolve();
    await t.guard.onIdle();
    expect(t.drops).toEqual([]);
    expect(t.turns.flat()).toEqual(["business", "direct", "direct 5"]);
  });

  it("an edit of an album photo's caption in its settle window reaches the album's turn", async () => {
    const t = telegram({ mediaGroupSettle: 50 });
    const photos = [photoUpdate(1, "g1", "sunset"), photoUpdate(1, "g1", "sunriss")];
    for (const photo of photos) await t.send(photo);
    const second = photos[1]?.message as Message;
    await t.send({
      update_id: nextUpdateId(),
      edited_message: { ...second, caption: "sunrise", edit_date: 1 },
    } as Update);
    t.gate.resolve();
    await until(() => t.turns.length === 1, "the album's turn");
    await t.guard.onIdle();
    expect(t.turns).toEqual([["sunset", "sunrise"]]);
  });

  it("an edited channel post replaces the pending post, and the handler's own context carries the edit", async () => {
    const t = telegram();
    const channel = { id: -1001, type: "channel", title: "News" } as const;
    const post = (text: string, id: number): Update => ({
      update_id: nextUpdateId(),
      channel_post: { message_id: id, date: 0, chat: channel, text } as Message & Update.Channel,
    });
    await t.send(post("first", 1));
    await until(() => t.turns.length === 1, "the first turn");
    await t.send(post("tpyo", 2));
    await t.send({
      update_id: nextUpdateId(),
      edited_channel_post: { message_id: 2, date: 0, edit_date: 1, chat: channel, text: "typo" },
    } as Update);
    t.gate.resolve();
    await t.guard.onIdle();
    expect(t.turns).toEqual([["first"], ["typo"]]);
    expect(t.own).toEqual(["first", "typo"]);
    expect(t.handled).toEqual(["edited_channel_post"]);
  });

  it("revisions: false leaves pending messages as they were; edits still reach the handlers", async () => {
    const t = telegram({ revisions: false });
    await t.send(textUpdate(1, "first"));
    await until(() => t.turns.length === 1, "the first turn");
    const pending = textUpdate(1, "tpyo");
    await t.send(pending);
    await t.send({
      update_id: nextUpdateId(),
      edited_message: { ...(pending.message as Message), text: "typo", edit_date: 1 },
    } as Update);
    t.gate.resolve();
    await t.guard.onIdle();
    expect(t.turns).toEqual([["first"], ["tpyo"]]);
    expect(t.handled).toEqual(["edited_message"]);
  });

  it.each([
    [{ reactions: { queued: "🚀" } }, /Telegram's reaction emoji/],
    [{ reactions: { dropped: { duplicate: "again?" } } }, /only busy, overflow, expired/],
    [{ reactions: { dropped: { busy: 3 } } }, /must be a notice text/],
    [{ reactions: "yes" }, /"reactions" must be true, false/],
    [{ revisions: "on" }, /"revisions" must be true or false/],
  ])("a wrong option throws a TypeError that says how to fix it: %j", (options, message) => {
    expect(() => sessionGuard(options as never)).toThrow(TypeError);
    expect(() => sessionGuard(options as never)).toThrow(message);
  });
});

describe("Slack", () => {
  function slack() {
    const api = recordWebApi();
    const app = offlineApp<SlackTurnContext>(api, quietLogger());
    const guard = slackGuard({});
    closers.push(guard);
    app.use(guard);
    const gate = deferred();
    const turns: string[][] = [];
    app.message(async ({ context }) => {
      const turn = context.turn;
      if (turn === undefined) return;
      turns.push(turn.inputs.map((i: SlackInput) => slackText(i)));
      if (turns.length === 1) await gate.promise;
    });
    const post = async (body: Record<string, unknown>) => void (await deliver(app, body).done);
    return { guard, gate, turns, post };
  }

  it("a link unfurl (message_changed with the same text) and an edit of a bot's message change nothing", async () => {
    const s = slack();
    await s.post(message("first", { channel: "D1" }));
    await until(() => s.turns.length === 1, "the first turn");
    const pending = message("see https://example.com", { channel: "D1" });
    await s.post(pending);
    // Slack adds the preview: same text, attachments added.
    const unfurl = editOf(pending, "see https://example.com");
    await s.post(unfurl as unknown as Record<string, unknown>);
    // An edit event whose new message is a bot's (bot_id set).
    const botEdit = editOf(pending, "changed by a bot");
    (botEdit.event.message as Record<string, unknown>).bot_id = "B0OTHER";
    await s.post(botEdit as unknown as Record<string, unknown>);
    s.gate.resolve();
    await s.guard.onIdle();
    expect(s.turns).toEqual([["first"], ["see https://example.com"]]);
  });
});

describe("Discord", () => {
  function discord(options: Parameters<typeof discordGuard>[0] = {}, partialMessages = false) {
    const bot = offlineClient(
      partialMessages ? { client: { partials: [Partials.Channel, Partials.Message] } } : {},
    );
    const { drops, onDrop } = dropRecorder<unknown>();
    const guard = discordGuard({ typing: false, onDrop, ...options });
    closers.push(guard);
    const gate = deferred();
    const turns: string[][] = [];
    bot.client.on(
      Events.MessageCreate,
      guard.message(async (_message, turn) => {
        turns.push(turn.inputs.map((m) => m.content));
        if (turns.length === 1) await gate.promise;
      }),
    );
    bot.client.on(Events.MessageUpdate, guard.messageUpdate);
    bot.client.on(Events.MessageDelete, guard.messageDelete);
    bot.client.on(Events.MessageBulkDelete, guard.messageDeleteBulk);
    return { bot, guard, gate, turns, drops };
  }
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };

  it("bulk deletion withdraws every pending message it names; an uncached one is skipped quietly", async () => {
    const d = discord();
    d.bot.sendMessage("first");
    await until(() => d.turns.length === 1, "the first turn");
    const keep = d.bot.sendMessage("keep");
    const gone = [d.bot.sendMessage("gone 1"), d.bot.sendMessage("gone 2")];
    await settle();
    d.bot.dispatch("MESSAGE_DELETE_BULK", {
      ids: [...gone, "999"],
      channel_id: CHANNEL_A,
      guild_id: (d.bot.client.channels.cache.get(CHANNEL_A) as { guildId: string }).guildId,
    });
    await until(() => d.drops.length === 2, "the withdrawals");
    expect(d.drops.map((x) => x.reason)).toEqual(["withdrawn", "withdrawn"]);
    d.gate.resolve();
    await d.guard.onIdle();
    expect(d.turns).toEqual([["first"], ["keep"]]);
    expect(keep).toBeTypeOf("string");
  });

  it("the deletion of an uncached message (a partial, with Partials.Message) withdraws it by its channel's key", async () => {
    const d = discord({}, true);
    d.bot.sendMessage("first");
    await until(() => d.turns.length === 1, "the first turn");
    const gone = d.bot.sendMessage("gone");
    await settle();
    // A cache sweeper took it: discord.js hands the listener a partial without author or content.
    const channel = d.bot.client.channels.cache.get(CHANNEL_A) as unknown as {
      messages: { cache: Map<string, unknown> };
    };
    channel.messages.cache.delete(gone);
    d.bot.deleteMessage(gone);
    await until(() => d.drops.length === 1, "the withdrawal");
    expect(d.drops.map((x) => x.reason)).toEqual(["withdrawn"]);
    d.gate.resolve();
    await d.guard.onIdle();
    expect(d.turns).toEqual([["first"]]);
  });

  it("an update that leaves the content alone (an embed added) replaces nothing", async () => {
    const d = discord();
    const seen: unknown[] = [];
    d.bot.sendMessage("first");
    await until(() => d.turns.length === 1, "the first turn");
    const id = d.bot.sendMessage("https://example.com");
    await settle();
    const running = d.guard.guard.replace.bind(d.guard.guard);
    d.guard.guard.replace = (...args) => {
      seen.push(args[1]);
      return running(...args);
    };
    d.bot.editMessage(id, "https://example.com");
    await settle();
    expect(seen).toEqual([]);
    d.bot.editMessage(id, "https://example.org");
    await settle();
    expect(seen).toEqual([expect.stringContaining(id)]);
    d.gate.resolve();
    await d.guard.onIdle();
  });

  it("the texts of reactions.dropped also answer a dropped command (its deferred reply is edited)", async () => {
    const d = discord({
      mode: "reject",
      reactions: { dropped: { busy: "One at a time, please." } },
    });
    d.bot.client.on(
      Events.InteractionCreate,
      d.guard.interaction(() => {
        throw new Error("a dropped command must not run");
      }),
    );
    d.bot.sendMessage("first");
    await until(() => d.turns.length === 1, "the first turn");
    const ask = d.bot.sendCommand("ask");
    await until(() => d.bot.labels().some((l) => l.startsWith(`edit token-${ask}`)), "the notice");
    expect(d.bot.labels().filter((l) => l.includes(ask))).toEqual([
      `defer ${ask}`,
      `edit token-${ask}: One at a time, please.`,
    ]);
    d.gate.resolve();
    await d.guard.onIdle();
  });

  it("dropReply and reactions.dropped together throw a TypeError (dropReply is deprecated)", () => {
    expect(() =>
      discordGuard({ dropReply: () => "no", reactions: { dropped: { busy: "later" } } }),
    ).toThrow(/"dropReply" is deprecated/);
    expect(() => discordGuard({ reactions: { queued: "eyes" } })).toThrow(TypeError);
  });
});
