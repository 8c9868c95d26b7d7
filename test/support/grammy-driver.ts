// The adapter contract's driver for grammY: a real offline `Bot` (`new Bot(token, { botInfo })`,
// API calls answered by a recording transformer) with `sessionGuard` installed first; input goes
// in through `bot.handleUpdate`. Chat "a" is private chat 1, chat "b" private chat 2.

import type { Context } from "grammy";
import type { Update } from "grammy/types";
import { sessionGuard, type TurnFlavor } from "session-guard/grammy";
import {
  type AdapterDriver,
  type Chat,
  type ContractBot,
  type Delivery,
  guardRecords,
  throwingKey,
} from "./adapter-contract.js";
import {
  callbackQueryUpdate,
  commandUpdate,
  nextUpdateId,
  offlineBot,
  recordApi,
  stoppedGenerationUpdate,
  textOf,
  textUpdate,
} from "./grammy-fixtures.js";

type Ctx = TurnFlavor<Context>;

const CHATS: Record<Chat, number> = { a: 1, b: 2 };
const chatOf = (id: number | undefined): Chat => (id === CHATS.b ? "b" : "a");
const keyOf = (chat: Chat) => `tg:42:${CHATS[chat]}`;

/** What the contract calls an input: its text, or the kind of update that carries none. */
function describeCtx(ctx: Context): string {
  if (ctx.update.stopped_message_generation !== undefined) return "stopped_message_generation";
  return textOf(ctx);
}

function stopUpdate(chat: number, form: string): Update {
  return form === "stopped_message_generation"
    ? stoppedGenerationUpdate(chat)
    : commandUpdate(chat, form);
}

export const grammyDriver: AdapterDriver = {
  name: "grammY",
  pressName: "callback query",
  stopForms: ["/stop", "/stop@test_bot", "stopped_message_generation"],
  stopsPassOn: true,
  redeliveredStops: ["/stop", "stopped_message_generation"],

  create(hooks, options = {}): ContractBot {
    const bot = offlineBot<Ctx>();
    const api = recordApi(
      bot,
      options.failReactions
        ? (call) => {
            if (call.method === "setMessageReaction") throw new Error("Bad Request: no rights");
          }
        : undefined,
    );
    /** The text of each message sent, by message id (reactions name messages by id). */
    const textById = new Map<unknown, string>();
    const records = guardRecords((input) => describeCtx(input as Context));
    const frameworkErrors: unknown[] = [];
    const guard = sessionGuard<Ctx>({
      awaitTurn: options.awaitTurn ?? false,
      onError: records.onError,
      onDrop: records.onDrop,
      reactions: options.reactions ?? false,
      ...(options.mode === undefined ? {} : { mode: options.mode }),
      ...throwingKey(options.keyThrowsOn, textOf, (ctx: Ctx) => keyOf(chatOf(ctx.chatId))),
    });
    guard.on("queued", records.onQueued);
    guard.on("admitted", records.onAdmitted);
    bot.use(guard);
    bot.on("callback_query:data", async (ctx) => {
      let turn = true;
      try {
        void ctx.turn;
      } catch {
        turn = false;
      }
      await hooks.press({ chat: chatOf(ctx.chatId), data: ctx.callbackQuery.data, turn });
      await ctx.answerCallbackQuery();
    });
    bot.use(async (ctx) => {
      let turn: Ctx["turn"];
      try {
        turn = ctx.turn;
      } catch {
        hooks.passed(chatOf(ctx.chatId), describeCtx(ctx));
        return;
      }
      turn.onRevision(({ input }) =>
        hooks.revised?.(chatOf(ctx.chatId), input === undefined ? undefined : describeCtx(input)),
      );
      await hooks.turn({
        chat: chatOf(ctx.chatId),
        key: turn.key,
        texts: turn.inputs.map(describeCtx),
        latest: describeCtx(ctx),
        signal: turn.signal,
      });
    });

    const handle = (update: Update) =>
      bot.handleUpdate(structuredClone(update)).catch((error: unknown) => {
        frameworkErrors.push(error);
      });
    const deliver = async (update: Update, text: string): Promise<Delivery> => {
      const message = update.message;
      const id = message === undefined ? "" : `tg:42:${message.chat.id}:${message.message_id}`;
      if (message !== undefined) textById.set(message.message_id, text);
      const delivery = { id, text, raw: update };
      await handle(update);
      return delivery;
    };

    return {
      guard,
      keyOf,
      send: (chat, text) => deliver(textUpdate(CHATS[chat], text), text),
      sendStop: (chat, form) => deliver(stopUpdate(CHATS[chat], form), form),
      press: (chat, data) => deliver(callbackQueryUpdate(CHATS[chat], data), data),
      redeliver: (delivery) => handle(delivery.raw as Update),
      edit: async (delivery, text) => {
        const message = (delivery.raw as Update).message;
        const edited = { ...message, text, edit_date: Math.floor(Date.now() / 1000) };
        await handle({ update_id: nextUpdateId(), edited_message: edited } as Update);
      },
      shown: () =>
        api.calls.flatMap((c) => {
          const text = textById.get(c.payload.message_id);
          if (c.method === "setMessageReaction") {
            const reaction = c.payload.reaction as { emoji: string }[];
            return [
              reaction.length === 0 ? `unreact ${text}` : `react ${text} ${reaction[0]?.emoji}`,
            ];
          }
          const replyTo = (c.payload.reply_parameters as { message_id?: number } | undefined)
            ?.message_id;
          return c.method === "sendMessage" && replyTo !== undefined
            ? [`notice ${textById.get(replyTo)}: ${c.payload.text}`]
            : [];
        }),
      answersTo: async (press) => {
        const id = (press.raw as Update).callback_query?.id;
        return api.calls.filter(
          (c) => c.method === "answerCallbackQuery" && c.payload.callback_query_id === id,
        ).length;
      },
      textOf: (input) => describeCtx(input as Context),
      queued: records.queued,
      admitted: records.admitted,
      drops: records.drops,
      errors: records.errors,
      frameworkErrors,
      dispose: async () => void (await guard.close({ timeout: 0 })),
    };
  },
};
