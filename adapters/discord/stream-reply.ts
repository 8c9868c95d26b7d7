// === `streamReply(message)`: an agent's answer streamed into one Discord message
//
// Binds the kit's reply stream to Discord: the first text replies to the user's message (or is
// sent to a channel), later text edits that reply. Discord allows five edits per five seconds per
// channel, so edits are paced at 1.2 s by default. discord.js queues rate-limited requests on its
// own; a client whose `rest.rejectOnRateLimit` makes it throw a `RateLimitError` instead has that
// error's `retryAfter` honoured here. Only types are imported from discord.js.

import type { Message } from "discord.js";
import { type ReplyStream, replyStream, type StreamReplyOptions } from "../kit/reply-stream.js";

export type { ReplyStream, StreamReplyOptions } from "../kit/reply-stream.js";

/** Where the answer goes: the user's message (answered with a reply) or a channel to send to. */
export type DiscordReplyTarget =
  | {
      /** Reply to this message (`message.reply`): the answer shows what it answers. */
      reply(content: string): Promise<Message>;
    }
  | {
      /** Send to this channel (`channel.send`, after `channel.isSendable()`). */
      send(content: string): Promise<Message>;
    };

/** Discord's limit on a message's content; longer answers continue in a new message. */
const MAX_LENGTH = 2_000;

function retryAfter(error: unknown): number | undefined {
  const failure = error as { retryAfter?: unknown; timeToReset?: unknown } | null;
  if (typeof failure?.retryAfter !== "number" || typeof failure.timeToReset !== "number") {
    return undefined;
  }
  return failure.retryAfter; // @discordjs/rest gives it in ms
}

/**
 * Stream an answer into one Discord message: `write` the text as it comes, then `end()` it. Edits
 * are coalesced and paced (every 1.2 s by default), never more than one in flight. Once `signal`
 * aborts no preview is sent, but `end()` still sends the final text. An answer longer than 2,000
 * characters continues in a new message.
 *
 * @example
 * ```ts
 * client.on(Events.MessageCreate, guard.message(async (message, turn) => {
 *   const reply = streamReply(message, { signal: turn.signal });
 *   for await (const delta of agent(turn.inputs, turn.signal)) reply.write(delta);
 *   await reply.end();
 * }));
 * ```
 */
export function streamReply(
  target: DiscordReplyTarget,
  options: StreamReplyOptions = {},
): ReplyStream<Message> {
  const record = (target ?? {}) as Record<string, unknown>;
  let post: (text: string) => Promise<Message>;
  if (typeof record.reply === "function") {
    post = (text) => (target as { reply(content: string): Promise<Message> }).reply(text);
  } else if (typeof record.send === "function") {
    post = (text) => (target as { send(content: string): Promise<Message> }).send(text);
  } else {
    throw new TypeError(
      "streamReply(target): target must be the message to answer or a channel you can send to (channel.isSendable()).",
    );
  }
  return replyStream<Message>(
    {
      where: "streamReply",
      maxLength: MAX_LENGTH,
      interval: 1_200,
      post,
      edit: (message, text) => message.edit(text),
      retryAfter,
    },
    options,
  );
}
