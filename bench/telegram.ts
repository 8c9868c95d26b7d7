// === Offline grammY bots and Telegram updates for the benchmarks
//
// A real `Bot` (`new Bot(token, { botInfo })`, so no `getMe` call) whose API calls are answered in
// process by a transformer: `ctx.reply` goes through grammY's whole API client up to the HTTP
// request, which is never made.

import { Bot, type Context, type Transformer } from "grammy";
import type { Message, Update, UserFromGetMe } from "grammy/types";

export const BOT_INFO: UserFromGetMe = {
  id: 42,
  is_bot: true,
  first_name: "Bench",
  username: "bench_bot",
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

const SENT: Message.TextMessage = {
  message_id: 1,
  date: 0,
  chat: { id: 1, type: "private", first_name: "Ada" },
  text: "ok",
};

/** Answers every API call at once, as Telegram would answer `sendMessage`. */
const answerLocally: Transformer = async () => ({ ok: true, result: SENT }) as never;

/** A bot that needs no network: botInfo given, API answered in process. */
export function offlineBot<C extends Context = Context>(): Bot<C> {
  const bot = new Bot<C>(`${BOT_INFO.id}:BENCH`, { botInfo: BOT_INFO });
  bot.api.config.use(answerLocally);
  return bot;
}

/** The chat id of the `n`th chat (private chats). */
export function chatId(n: number): number {
  return 100_000 + n;
}

let nextUpdateId = 1;

/** A text message update in the `n`th chat, with a fresh update id. */
export function textUpdate(n: number, text = "hi"): Update {
  const updateId = nextUpdateId++;
  return {
    update_id: updateId,
    message: {
      message_id: updateId,
      date: 1_700_000_000,
      chat: { id: chatId(n), type: "private", first_name: "Ada" },
      from: { id: chatId(n), is_bot: false, first_name: "Ada" },
      text,
    },
  };
}

/** `count` updates spread round-robin over `chats` chats. */
export function roundRobin(count: number, chats: number): Update[] {
  const updates: Update[] = new Array(count);
  for (let i = 0; i < count; i++) updates[i] = textUpdate(i % chats);
  return updates;
}

/** The key `sequentialize` uses, as the runner's documentation writes it. */
export function chatConstraint(ctx: Context): string | undefined {
  return ctx.chat?.id.toString();
}

/**
 * Hand `updates` to the bot the way grammY's runner does: a window of updates in flight at once,
 * the next window once they have all been handled (and `drain` resolved, for work that outlives
 * `handleUpdate`, such as detached turns).
 */
export async function deliverInWindows<C extends Context>(
  bot: Bot<C>,
  updates: readonly Update[],
  window: number,
  drain?: () => Promise<void>,
): Promise<void> {
  const inFlight: Promise<void>[] = new Array(window);
  for (let start = 0; start < updates.length; start += window) {
    const end = Math.min(start + window, updates.length);
    inFlight.length = end - start;
    for (let i = start; i < end; i++) inFlight[i - start] = bot.handleUpdate(updates[i] as Update);
    await Promise.all(inFlight);
    if (drain !== undefined) await drain();
  }
}
