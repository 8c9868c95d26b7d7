// === Keys and ids of Telegram updates
//
// The key of an update is the bot, the chat and, in a forum, the topic: `tg:<bot id>:<chat>[:<topic>]`.
// Scoping by bot lets several bots share one guard or store. Only updates that carry new input
// (a message, a business or guest message, a channel post) are admitted; a bot command is read
// from its leading `bot_command` entity, and one addressed to another bot is ordinary input.

import type { Context } from "grammy";
import type { Message, UserFromGetMe } from "grammy/types";

/** The updates that carry new user input. Everything else with a chat passes through. */
export function incomingMessage(ctx: Context): Message | undefined {
  const update = ctx.update;
  return update.message ?? update.business_message ?? update.guest_message ?? update.channel_post;
}

/** The bot command an update starts with (`/stop@this_bot` → "stop"), if it is addressed to us. */
export function commandOf(ctx: Context, message: Message): string | undefined {
  const text = message.text;
  if (text === undefined || text.charCodeAt(0) !== 47 /* "/" */) return undefined;
  const entity = message.entities?.[0];
  if (entity === undefined || entity.type !== "bot_command" || entity.offset !== 0)
    return undefined;
  const command = text.slice(1, entity.length);
  const at = command.indexOf("@");
  if (at < 0) return command;
  const target = command.slice(at + 1);
  return target.toLowerCase() === ctx.me.username.toLowerCase() ? command.slice(0, at) : undefined;
}

/** `tg:<bot id>:`, the prefix of a bot's keys and ids; remembered, as it is built per update. */
let lastBot: UserFromGetMe | undefined;
let lastPrefix = "";
export function prefixOf(me: UserFromGetMe): string {
  if (me !== lastBot) {
    lastBot = me;
    lastPrefix = `tg:${me.id}:`;
  }
  return lastPrefix;
}

/**
 * The id a message is submitted with: the bot, the business connection (a business chat shares its
 * id with the bot's own chat with that user, not its message ids), the chat and the message id.
 * An edit or a deletion names the same message, so it finds the pending input by this id; a
 * redelivered update carries the same message, so it is still a duplicate.
 */
export function messageIdOf(me: UserFromGetMe, message: Message): string {
  const connection = message.business_connection_id;
  const chat = connection === undefined ? message.chat.id : `${connection}:${message.chat.id}`;
  return `${prefixOf(me)}${chat}:${message.message_id}`;
}

/** Where an edited message was first delivered, by the field of its edit. */
const EDITED = [
  ["edited_message", "message"],
  ["edited_channel_post", "channel_post"],
  ["edited_business_message", "business_message"],
] as const;

/** An edit of a message: the edited message, and the update field it first arrived in. */
export interface Edit {
  readonly field: "message" | "channel_post" | "business_message";
  readonly message: Message;
}

/** The edit an update carries, if it is one. */
export function editOf(ctx: Context): Edit | undefined {
  const update = ctx.update;
  for (const [edited, field] of EDITED) {
    const message = update[edited];
    if (message !== undefined) return { field, message };
  }
  return undefined;
}

/** The key of a chat (and forum topic). */
function chatKey(ctx: Context, chatId: number, topic: number | undefined): string {
  const prefix = prefixOf(ctx.me);
  return topic === undefined ? prefix + chatId : `${prefix}${chatId}:${topic}`;
}

/** Default key: bot id + chat id, plus the forum topic. Scoped by bot so bots can share a guard. */
export function defaultKey(ctx: Context): string | undefined {
  // The common case first: a new message, without grammY's getter chains.
  const incoming = incomingMessage(ctx);
  if (incoming !== undefined) {
    return chatKey(
      ctx,
      incoming.chat.id,
      incoming.is_topic_message ? incoming.message_thread_id : undefined,
    );
  }
  const chatId = ctx.chatId;
  if (chatId === undefined) return undefined;
  // ctx.msg includes a callback query's message, so a button gets its topic's key too.
  const message = ctx.msg;
  const topic = message?.is_topic_message
    ? message.message_thread_id
    : ctx.update.stopped_message_generation?.message_thread_id;
  return chatKey(ctx, chatId, topic);
}
