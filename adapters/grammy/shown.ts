// === Reactions and notices on Telegram (the kit's `ShownOutcomes`, see ../kit/shown.ts)
//
// A reaction is `setMessageReaction` with one emoji (an empty list takes the bot's reaction off);
// a notice is a message replying to the dropped one, in its forum topic. Bots may only react with
// Telegram's allowed reaction emoji, so the option is checked against that list at creation.
// Business messages get neither: the reaction or the reply would appear as the business owner's.

import type { Context } from "grammy";
import type { Message, ReactionTypeEmoji } from "grammy/types";
import type { ShownPlatform } from "../kit/shown.js";

/** The emoji Telegram lets bots react with (Bot API `ReactionTypeEmoji`). */
const REACTION_EMOJI: ReadonlySet<string> = new Set([
  "👍",
  "👎",
  "❤",
  "🔥",
  "🥰",
  "👏",
  "😁",
  "🤔",
  "🤯",
  "😱",
  "🤬",
  "😢",
  "🎉",
  "🤩",
  "🤮",
  "💩",
  "🙏",
  "👌",
  "🕊",
  "🤡",
  "🥱",
  "🥴",
  "😍",
  "🐳",
  "❤‍🔥",
  "🌚",
  "🌭",
  "💯",
  "🤣",
  "⚡",
  "🍌",
  "🏆",
  "💔",
  "🤨",
  "😐",
  "🍓",
  "🍾",
  "💋",
  "🖕",
  "😈",
  "😴",
  "😭",
  "🤓",
  "👻",
  "👨‍💻",
  "👀",
  "🎃",
  "🙈",
  "😇",
  "😨",
  "🤝",
  "✍",
  "🤗",
  "🫡",
  "🎅",
  "🎄",
  "☃",
  "💅",
  "🤪",
  "🗿",
  "🆒",
  "💘",
  "🙉",
  "🦄",
  "😘",
  "💊",
  "🙊",
  "😎",
  "👾",
  "🤷‍♂",
  "🤷",
  "🤷‍♀",
  "😡",
] satisfies ReactionTypeEmoji["emoji"][]);

/** The defaults on Telegram: 👀 while waiting, 🤷 when stopped before its turn. */
export const TELEGRAM_SHOWN = { queued: "👀", stopped: "🤷" } as const;

/** Throws unless `value` is an emoji Telegram lets bots react with. */
export function telegramEmoji(error: (message: string) => TypeError) {
  return (name: string, value: string): void => {
    if (!REACTION_EMOJI.has(value)) {
      throw error(
        `"${name}" must be one of Telegram's reaction emoji (${[...REACTION_EMOJI].join(" ")}), got ${JSON.stringify(value)}.`,
      );
    }
  };
}

/** The message of a context that can carry a reaction or notice. */
function messageOf(input: unknown): Message | undefined {
  const update = (input as Partial<Context> | null)?.update;
  if (update === undefined || (input as Partial<Context>).api === undefined) return undefined;
  return update.message ?? update.channel_post ?? update.guest_message;
}

export const telegramShown: ShownPlatform<Context> = {
  owns: (input): input is Context => messageOf(input) !== undefined,
  idOf: (ctx) => {
    const message = messageOf(ctx) as Message;
    return `${message.chat.id}:${message.message_id}`;
  },
  react: (ctx, emoji) => {
    const message = messageOf(ctx) as Message;
    const reaction = [{ type: "emoji", emoji } as ReactionTypeEmoji];
    return ctx.api.setMessageReaction(message.chat.id, message.message_id, reaction);
  },
  unreact: (ctx) => {
    const message = messageOf(ctx) as Message;
    return ctx.api.setMessageReaction(message.chat.id, message.message_id, []);
  },
  reply: (ctx, text) => {
    const message = messageOf(ctx) as Message;
    return ctx.api.sendMessage(message.chat.id, text, {
      reply_parameters: { message_id: message.message_id, allow_sending_without_reply: true },
      ...(message.is_topic_message ? { message_thread_id: message.message_thread_id } : {}),
    });
  },
};
