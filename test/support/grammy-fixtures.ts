// Reusable grammY fixtures: offline bots (`new Bot(token, { botInfo })`), update factories, and a
// transformer that records every outgoing API call and answers it locally. Nothing here touches
// the network: a transformer that never calls `prev` keeps grammY's HTTP client out of the way.

import { Bot, type BotConfig, type Context, type Transformer } from "grammy";
import type { Chat, Message, Update, User, UserFromGetMe } from "grammy/types";

/** A complete `getMe` answer, so that `new Bot(token, { botInfo })` needs no `init()` call. */
export function botInfo(id = 42, username = "test_bot"): UserFromGetMe {
  return {
    id,
    is_bot: true,
    first_name: "Test",
    username,
    can_join_groups: true,
    can_read_all_group_messages: false,
    supports_inline_queries: false,
    can_connect_to_business: false,
    has_main_web_app: false,
    has_topics_enabled: false,
    allows_users_to_create_topics: false,
    can_manage_bots: false,
    supports_join_request_queries: false,
  };
}

/** One outgoing API call, as the transformer saw it. */
export interface ApiCall {
  readonly method: string;
  readonly payload: Record<string, unknown>;
  /** The signal the caller passed, the very same object. */
  readonly signal: unknown;
}

/** What `recordApi` answers a call with: a result, or `undefined` for the default answer. */
export type Responder = (call: ApiCall) => Promise<unknown> | unknown;

/** The calls a bot made, oldest first, and helpers to read them. */
export interface ApiRecorder {
  readonly calls: ApiCall[];
  /** The `text` of every `sendMessage`, in order. */
  texts(): string[];
  /** The `text` of every `sendMessage` to one chat, in order. */
  textsTo(chatId: number): string[];
}

let messageIds = 1000;

/** A realistic `result` for a method (a sent message for `send*`, `true` otherwise). */
function defaultResult(method: string, payload: Record<string, unknown>): unknown {
  if (!method.startsWith("send") || method === "sendChatAction" || method === "sendMessageDraft") {
    return true;
  }
  const chatId = payload.chat_id as number;
  const message: Record<string, unknown> = {
    message_id: ++messageIds,
    date: 0,
    chat: chatId < 0 ? { id: chatId, type: "supergroup", title: "G" } : privateChat(chatId),
  };
  if (typeof payload.text === "string") message.text = payload.text;
  if (typeof payload.message_thread_id === "number") {
    message.message_thread_id = payload.message_thread_id;
    message.is_topic_message = true;
  }
  return message;
}

/**
 * Install a transformer on `bot.api` that records every call and answers it without a network.
 * Install it before `bot.handleUpdate`: each update's Api copies the transformers present then.
 * `respond` may answer a call itself (returning a promise delays the answer); by default sent
 * messages come back as realistic `Message` objects.
 */
export function recordApi<C extends Context>(bot: Bot<C>, respond?: Responder): ApiRecorder {
  const calls: ApiCall[] = [];
  const transformer: Transformer = async (_prev, method, payload, signal) => {
    const call: ApiCall = {
      method,
      payload: { ...(payload as Record<string, unknown>) },
      signal,
    };
    calls.push(call);
    let result = respond === undefined ? undefined : await respond(call);
    if (result === undefined) result = defaultResult(method, call.payload);
    // A transformer is generic in the method, so its answer cannot be typed per method.
    return { ok: true, result } as never;
  };
  bot.api.config.use(transformer);
  const sends = () => calls.filter((c) => c.method === "sendMessage");
  return {
    calls,
    texts: () => sends().map((c) => c.payload.text as string),
    textsTo: (chatId) =>
      sends()
        .filter((c) => c.payload.chat_id === chatId)
        .map((c) => c.payload.text as string),
  };
}

/** An offline bot with `botInfo` set (no `init()` call, no network). */
export function offlineBot<C extends Context = Context>(
  options: { id?: number; username?: string; config?: Omit<BotConfig<C>, "botInfo"> } = {},
): Bot<C> {
  const { id = 42, username = "test_bot", config } = options;
  return new Bot<C>(`${id}:TEST`, { ...config, botInfo: botInfo(id, username) });
}

// === Update factories

let updateIds = 1;
let incomingIds = 1;

/** The next fresh `update_id` (unique across the test file). */
export function nextUpdateId(): number {
  return updateIds++;
}

/** The user who sends every update (id 7). */
export const user: User = { id: 7, is_bot: false, first_name: "Ada" };

/** A private chat with the given id (positive ids are private chats here). */
export function privateChat(id: number): Chat.PrivateChat {
  return { id, type: "private", first_name: "Ada" };
}

/** A forum supergroup with the given (negative) id. */
export function forumChat(id: number): Chat.SupergroupChat {
  return { id, type: "supergroup", title: "Forum", is_forum: true };
}

/** Options shared by the message factories. */
export interface MessageOptions {
  /** Reuse an update id (a redelivery); default: a fresh one. */
  update_id?: number;
  /** Put the message in this forum topic (`is_topic_message` + `message_thread_id`). */
  topic?: number;
}

function chatFor(chatId: number): Chat.PrivateChat | Chat.SupergroupChat {
  return chatId < 0 ? forumChat(chatId) : privateChat(chatId);
}

function messageUpdate(chatId: number, fields: object, options: MessageOptions): Update {
  const message = {
    message_id: incomingIds++,
    date: Math.floor(Date.now() / 1000),
    chat: chatFor(chatId),
    from: user,
    ...(options.topic === undefined
      ? {}
      : { message_thread_id: options.topic, is_topic_message: true }),
    ...fields,
  } as Message & Update.NonChannel;
  return { update_id: options.update_id ?? nextUpdateId(), message };
}

/** A text message in `chatId` (negative ids are forum supergroups). */
export function textUpdate(chatId: number, text: string, options: MessageOptions = {}): Update {
  return messageUpdate(chatId, { text }, options);
}

/** A bot command such as `/stop` or `/stop@test_bot`, with its `bot_command` entity. */
export function commandUpdate(chatId: number, command: string, options: MessageOptions = {}) {
  const text = command.startsWith("/") ? command : `/${command}`;
  const length = text.indexOf(" ") < 0 ? text.length : text.indexOf(" ");
  return messageUpdate(
    chatId,
    { text, entities: [{ type: "bot_command", offset: 0, length }] },
    options,
  );
}

/** One photo of an album (`media_group_id`), with an optional caption. */
export function photoUpdate(
  chatId: number,
  mediaGroupId: string | undefined,
  caption?: string,
  options: MessageOptions = {},
): Update {
  const n = incomingIds;
  return messageUpdate(
    chatId,
    {
      photo: [{ file_id: `photo-${n}`, file_unique_id: `u-${n}`, width: 90, height: 90 }],
      ...(mediaGroupId === undefined ? {} : { media_group_id: mediaGroupId }),
      ...(caption === undefined ? {} : { caption }),
    },
    options,
  );
}

/** A button press on a message the bot sent to `chatId` (in forum topic `topic`, if given). */
export function callbackQueryUpdate(chatId: number, data: string, topic?: number): Update {
  const update_id = nextUpdateId();
  const message = {
    message_id: 1,
    date: 0,
    chat: chatFor(chatId),
    text: "Approve?",
    ...(topic === undefined ? {} : { message_thread_id: topic, is_topic_message: true }),
  };
  return {
    update_id,
    callback_query: {
      id: `cb-${update_id}`,
      from: user,
      chat_instance: `ci-${chatId}`,
      data,
      message,
    },
  };
}

/** Bot API 10.3: the user pressed stop on a streamed draft. */
export function stoppedGenerationUpdate(chatId: number, draftId = 1, topic?: number): Update {
  return {
    update_id: nextUpdateId(),
    stopped_message_generation: {
      chat: privateChat(chatId),
      draft_id: draftId,
      ...(topic === undefined ? {} : { message_thread_id: topic }),
    },
  };
}

/** An inline query: an update without a chat. */
export function inlineQueryUpdate(query: string): Update {
  const update_id = nextUpdateId();
  return { update_id, inline_query: { id: `iq-${update_id}`, from: user, query, offset: "" } };
}

/** An edited message: it has a chat but carries no new input. */
export function editedMessageUpdate(chatId: number, text: string): Update {
  return {
    update_id: nextUpdateId(),
    edited_message: {
      message_id: 1,
      date: 0,
      edit_date: 1,
      chat: privateChat(chatId),
      from: user,
      text,
    } as Message & Update.Edited & Update.NonChannel,
  };
}

/** The text or caption of a context's message, or `""`. */
export function textOf(ctx: Context): string {
  return ctx.msg?.text ?? ctx.msg?.caption ?? "";
}
