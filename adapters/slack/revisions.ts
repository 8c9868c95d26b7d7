// === Slack edits and deletions of pending messages
//
// `message_changed` replaces the pending message (ids `slack:<channel>:<ts>`, as it was
// admitted), `message_deleted` withdraws it. Slack sends `message_changed` for more than a
// person's edit, and those must change nothing:
// - a link unfurl (Slack adds the preview to the message): the text is the same as before;
// - an edit of a bot's message, the app's own included (its `bot_id`, or the app's own user).
// The change events still reach your listeners afterwards, without a turn, as before.

import type { types } from "@slack/bolt";
import { type Args, record } from "./places.js";
import type { SlackUserMessage } from "./types.js";

/** What a change event asks of the guard: the message's id, and its edited form (none: deleted). */
export interface SlackRevision {
  readonly id: string;
  readonly edited: SlackUserMessage | undefined;
  /** The request body of the edited message as Bolt would deliver it, for other replicas. */
  readonly body: Record<string, unknown> | undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** The revision a payload carries: a person's edit, or a deletion; `undefined` for anything else. */
export function revisionOf(args: Args): SlackRevision | undefined {
  const event = args.event;
  if (event === undefined || event.type !== "message") return undefined;
  const channel = str(event.channel);
  if (channel === undefined) return undefined;
  if (event.subtype === "message_deleted") {
    const ts = str(event.deleted_ts) ?? str(record(event.previous_message)?.ts);
    return ts === undefined
      ? undefined
      : { id: `slack:${channel}:${ts}`, edited: undefined, body: undefined };
  }
  if (event.subtype !== "message_changed") return undefined;
  const message = record(event.message);
  const previous = record(event.previous_message);
  const ts = str(message?.ts);
  if (message === undefined || ts === undefined) return undefined;
  const user = str(message.user);
  if (message.bot_id !== undefined || user === undefined || user === args.context.botUserId) {
    return undefined;
  }
  // An unfurl or another change that leaves the text alone is no edit of the person's.
  if (previous !== undefined && previous.text === message.text) return undefined;
  // The edited message as a message event of its own: the channel and the time of the edit
  // come from the change event that carried it.
  const edited = {
    ...message,
    type: "message",
    channel,
    ...(event.channel_type === undefined ? {} : { channel_type: event.channel_type }),
    event_ts: str(event.event_ts) ?? ts,
  } as unknown as types.GenericMessageEvent;
  return { id: `slack:${channel}:${ts}`, edited, body: { ...args.body, event: edited } };
}
