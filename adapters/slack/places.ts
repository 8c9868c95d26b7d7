// === Where a Slack payload belongs: its input, its place and its key
//
// Messages are keyed per thread (team or enterprise + channel + `thread_ts ?? ts`; a DM by its
// channel unless in a thread), slash commands per channel (they carry no thread). Block actions
// and message shortcuts get the key of the message they were used on, so an approval button finds
// the turn of its thread.

import type { AckFn, Context, RespondFn, SayFn, SlashCommand, types } from "@slack/bolt";
import type {
  SlackInput,
  SlackMiddlewareArgs,
  SlackTurnContext,
  SlackUserMessage,
} from "./types.js";

/** The loosely typed view of middleware arguments the adapter reads. */
export interface Args {
  readonly body: Record<string, unknown>;
  readonly event?: Record<string, unknown>;
  readonly command?: SlashCommand;
  readonly context: Context & SlackTurnContext;
  readonly client: SlackMiddlewareArgs["client"];
  readonly ack?: AckFn<unknown>;
  readonly say?: SayFn;
  readonly respond?: RespondFn;
  next(): Promise<void>;
}

/** Where a payload was written: channel, its thread (if any) and its own timestamp. */
interface Place {
  readonly channel: string;
  readonly thread: string | undefined;
  readonly ts: string | undefined;
  readonly dm: boolean;
}

/** Message subtypes that carry new input from a person. Every other subtype passes through. */
const USER_SUBTYPES = new Set<string | undefined>([
  undefined,
  "file_share",
  "thread_broadcast",
  "me_message",
]);

/** Mentions at the start of a message (`<@U0BOT> stop`), stripped before the stop check. */
export const LEADING_MENTIONS = /^(?:\s*<@[^>]*>)+/;

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

export function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null
    ? (value as Record<string, unknown>)
    : undefined;
}

/** The event if it is a message or an app mention written by a person, else undefined. */
function userMessage(event: Record<string, unknown> | undefined) {
  if (event === undefined || (event.type !== "message" && event.type !== "app_mention")) {
    return undefined;
  }
  if (!USER_SUBTYPES.has(event.subtype as string | undefined)) return undefined;
  if (event.bot_id !== undefined || event.hidden === true) return undefined;
  if (str(event.user) === undefined || str(event.channel) === undefined) return undefined;
  if (str(event.ts) === undefined) return undefined;
  return event as unknown as SlackUserMessage | types.AppMentionEvent;
}

/** The payload the guard admits, or undefined when it passes through. */
export function inputOf(args: Args): SlackInput | undefined {
  if (args.event !== undefined) return userMessage(args.event);
  const command = args.command;
  if (command !== undefined && str(command.channel_id) !== undefined) return command;
  return undefined;
}

/** Team, or enterprise for org-wide installs: whose installation received the payload. */
function tenantOf(context: Context): string {
  if (context.isEnterpriseInstall && context.enterpriseId !== undefined) {
    return context.enterpriseId;
  }
  return context.teamId ?? context.enterpriseId ?? "";
}

function isDm(channel: string, channelType: unknown): boolean {
  return channelType === undefined ? channel.startsWith("D") : channelType === "im";
}

/** Where a payload belongs: messages (any subtype), commands, block actions, message shortcuts. */
function placeOf(args: Args): Place | undefined {
  const event = args.event;
  if (event !== undefined) {
    if (event.type !== "message" && event.type !== "app_mention") return undefined;
    const channel = str(event.channel);
    if (channel === undefined) return undefined;
    // An edit or a deletion belongs where the message it changes was written.
    const message =
      record(event.message) ?? record(event.previous_message) ?? (event as Record<string, unknown>);
    const dm = isDm(channel, event.channel_type);
    return { channel, thread: str(message.thread_ts), ts: str(message.ts), dm };
  }
  const command = args.command;
  if (command !== undefined) {
    // A slash command carries no message, so no thread: it belongs to the channel.
    const channel = str(command.channel_id);
    if (channel === undefined) return undefined;
    return { channel, thread: undefined, ts: undefined, dm: isDm(channel, undefined) };
  }
  // Block actions and message shortcuts: the message the button or shortcut was used on.
  const body = args.body;
  const container = record(body.container);
  const channel = str(record(body.channel)?.id) ?? str(container?.channel_id);
  if (channel === undefined) return undefined;
  const message = record(body.message);
  return {
    channel,
    thread: str(message?.thread_ts) ?? str(container?.thread_ts),
    ts: str(message?.ts) ?? str(container?.message_ts),
    dm: isDm(channel, undefined),
  };
}

/** The key of a channel: a DM's and a slash command's key, and the scope of a stop command. */
export function channelKey(context: Context, channel: string): string {
  return `slack:${tenantOf(context)}:${channel}`;
}

/** Default key: tenant + channel + `thread_ts ?? ts`; a DM (and a command) by channel alone. */
export function defaultKey(args: SlackMiddlewareArgs): string | undefined {
  const loose = args as unknown as Args;
  const place = placeOf(loose);
  if (place === undefined) return undefined;
  const base = channelKey(loose.context, place.channel);
  const thread = place.dm ? place.thread : (place.thread ?? place.ts);
  return thread === undefined ? base : `${base}:${thread}`;
}

/** True for a slash command. */
export function isCommand(input: SlackInput): input is SlashCommand {
  return "command" in input && typeof input.command === "string";
}
