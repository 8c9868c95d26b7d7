// === `streamReply({ client, channel, thread_ts })`: an agent's answer streamed into one message
//
// Binds the kit's reply stream to Slack: the first text is posted with `chat.postMessage` (in the
// thread, when given), later text replaces it with `chat.update`. `chat.update` is a tier 3 method
// (about 50 calls a minute per workspace), so edits are paced at 1.2 s by default. Bolt's
// `WebClient` waits out a 429 on its own; one built with `rejectRateLimitedCalls` throws instead,
// and its `retryAfter` is honoured here. Only types are imported from @slack/bolt.

import type { webApi } from "@slack/bolt";
import { type ReplyStream, replyStream, type StreamReplyOptions } from "../kit/reply-stream.js";

export type { ReplyStream, StreamReplyOptions } from "../kit/reply-stream.js";

/** Where the answer goes: the listener's `client`, the channel and, for a thread, its `ts`. */
export interface SlackReplyTarget {
  /** The `client` Bolt hands the listener (`({ client }) => …`). */
  readonly client: webApi.WebClient;
  /** The channel id of the message being answered. */
  readonly channel: string;
  /** The thread to answer in (`message.thread_ts ?? message.ts` to always answer in a thread). */
  readonly thread_ts?: string | undefined;
}

/** A posted Slack message: what `chat.update` needs to replace its text. */
export interface SlackReplyMessage {
  /** The channel the message is in. */
  readonly channel: string;
  /** The message's timestamp, its id. */
  readonly ts: string;
}

/**
 * Slack renders up to 40,000 characters but advises at most 4,000 in `text`; longer answers
 * continue in a new message.
 */
const MAX_LENGTH = 4_000;

function retryAfter(error: unknown): number | undefined {
  const failure = error as { code?: unknown; retryAfter?: unknown } | null;
  if (failure?.code !== "slack_webapi_rate_limited_error") return undefined;
  return typeof failure.retryAfter === "number" ? failure.retryAfter * 1000 : 1000;
}

/**
 * Stream an answer into one Slack message: `write` the text as it comes, then `end()` it. Edits
 * (`chat.update`) are coalesced and paced (every 1.2 s by default), never more than one in flight.
 * Once `signal` aborts no preview is sent, but `end()` still sends the final text. An answer longer
 * than 4,000 characters continues in a new message.
 *
 * @example
 * ```ts
 * app.message(async ({ message, client, context }) => {
 *   if (message.subtype !== undefined || context.turn === undefined) return;
 *   const reply = streamReply(
 *     { client, channel: message.channel, thread_ts: message.thread_ts },
 *     { signal: context.turn.signal },
 *   );
 *   for await (const delta of agent(context.turn.inputs, context.turn.signal)) reply.write(delta);
 *   await reply.end();
 * });
 * ```
 */
export function streamReply(
  target: SlackReplyTarget,
  options: StreamReplyOptions = {},
): ReplyStream<SlackReplyMessage> {
  const { client, channel, thread_ts } = target ?? {};
  if (typeof client?.chat?.postMessage !== "function" || typeof channel !== "string") {
    throw new TypeError(
      "streamReply(target): target must be { client, channel, thread_ts? } with the listener's client and the message's channel.",
    );
  }
  return replyStream<SlackReplyMessage>(
    {
      where: "streamReply",
      maxLength: MAX_LENGTH,
      interval: 1_200,
      post: async (text) => {
        const posted = await client.chat.postMessage({
          channel,
          text,
          ...(thread_ts === undefined ? {} : { thread_ts }),
        });
        return { channel: posted.channel ?? channel, ts: posted.ts as string };
      },
      edit: (message, text) =>
        client.chat.update({ channel: message.channel, ts: message.ts, text }),
      retryAfter,
    },
    options,
  );
}
