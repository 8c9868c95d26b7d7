// === `streamReply(ctx)`: an agent's answer streamed into one Telegram message
//
// Binds the kit's reply stream to Telegram: the first text is sent with `ctx.reply` (which keeps
// the forum topic and business connection), later text with `editMessageText`. Telegram allows
// about one message per second in a private chat and twenty a minute in a group, edits included,
// and answers 429 with `retry_after` when a bot goes faster; a 400 "message is not modified" means
// the chat already shows the text. Only types are imported from grammy.

import type { Context } from "grammy";
import type { Message } from "grammy/types";
import { type ReplyStream, replyStream, type StreamReplyOptions } from "../kit/reply-stream.js";

export type { ReplyStream, StreamReplyOptions } from "../kit/reply-stream.js";

/** Telegram's limit on a message's text. */
const MAX_LENGTH = 4096;

/** What a failed Bot API call carries (grammY's `GrammyError`), read without importing grammY. */
interface ApiFailure {
  error_code?: unknown;
  description?: unknown;
  parameters?: { retry_after?: unknown };
}

function retryAfter(error: unknown): number | undefined {
  const failure = error as ApiFailure | null;
  if (failure?.error_code !== 429) return undefined;
  const seconds = failure.parameters?.retry_after;
  return typeof seconds === "number" ? seconds * 1000 : 1000;
}

function unchanged(error: unknown): boolean {
  const failure = error as ApiFailure | null;
  return (
    failure?.error_code === 400 &&
    typeof failure.description === "string" &&
    failure.description.includes("message is not modified")
  );
}

/**
 * Stream an answer into the chat of `ctx` by editing one message: `write` the text as it comes,
 * then `end()` it. Edits are coalesced and paced (by default one a second in a private chat, one
 * every three seconds in a group), never more than one in flight; a 429 `retry_after` is honoured.
 * Once `signal` aborts no preview is sent, but `end()` still sends the final text. An answer longer
 * than 4096 characters continues in a new message. The text is sent as plain text.
 *
 * @example
 * ```ts
 * bot.on("message", async (ctx) => {
 *   const reply = streamReply(ctx, { signal: ctx.turn.signal, placeholder: "…" });
 *   try {
 *     for await (const delta of agent(ctx.turn.inputs, ctx.turn.signal)) reply.write(delta);
 *     await reply.end();
 *   } catch (error) {
 *     if (!ctx.turn.signal.aborted) throw error;
 *     await reply.end(`${reply.text} … (stopped)`);
 *   }
 * });
 * ```
 */
export function streamReply(
  ctx: Context,
  options: StreamReplyOptions = {},
): ReplyStream<Message.TextMessage> {
  const chat = ctx.chat;
  if (chat === undefined) {
    throw new TypeError(
      "streamReply(ctx): this update has no chat to answer in; call it with the context of a message.",
    );
  }
  const business = ctx.businessConnectionId;
  return replyStream<Message.TextMessage>(
    {
      where: "streamReply",
      maxLength: MAX_LENGTH,
      interval: chat.type === "private" ? 1_000 : 3_000,
      post: (text) => ctx.reply(text),
      edit: async (message, text) => {
        try {
          await ctx.api.editMessageText(message.chat.id, message.message_id, text, {
            ...(business === undefined ? {} : { business_connection_id: business }),
          });
        } catch (error) {
          if (!unchanged(error)) throw error;
        }
      },
      retryAfter,
    },
    options,
  );
}
