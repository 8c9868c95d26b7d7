// === Types of the Slack adapter users see

import type {
  AllMiddlewareArgs,
  AnyMiddlewareArgs,
  Context,
  RespondFn,
  SayFn,
  SlashCommand,
  types,
} from "@slack/bolt";
import type { Turn } from "session-guard";

/** A message event written by a person: the message subtypes the guard admits. */
export type SlackUserMessage =
  | types.GenericMessageEvent
  | types.FileShareMessageEvent
  | types.ThreadBroadcastMessageEvent
  // A /me message in a thread carries `thread_ts` too, though Slack's type leaves it out.
  | (types.MeMessageEvent & {
      /** The ts of the thread's first message, when the message is in a thread. */
      thread_ts?: string;
    });

/** An input of a turn: the payload of a user message, an app mention or a slash command. */
export type SlackInput = SlackUserMessage | types.AppMentionEvent | SlashCommand;

/**
 * The turn a guarded payload runs in, as `context.turn`: `key`, `inputs` (the coalesced payloads,
 * oldest first; the listener runs with the latest), `signal`, `fence`, `take()`, `onPending`,
 * `pendingCount`, `stale`.
 */
export type SlackTurn = Turn<SlackInput>;

/** What the guard adds to Bolt's `context`: `new App<SlackTurnContext>(…)` types it. */
export interface SlackTurnContext {
  /**
   * The running turn. Set on payloads the guard ran as a turn; `undefined` on everything it
   * passed through (edits, bot messages, the stop text, block actions, other events). Bolt hands
   * every payload to every matching listener, so check it: `if (!context.turn) return;`.
   */
  turn?: SlackTurn;
  /**
   * True when the request was acknowledged before your listener ran: by Bolt (Events API) or by
   * the guard (a command it queued or dropped). Then do not call `ack()` again — HTTP receivers
   * throw on a second ack. The pattern: `if (!context.acknowledged) await ack();`.
   */
  acknowledged?: boolean;
}

/** The arguments of Bolt global middleware. */
export type SlackMiddlewareArgs = AnyMiddlewareArgs & AllMiddlewareArgs;

/** What `onQueued` receives: a payload is waiting behind its key's running turn. */
export interface SlackQueued {
  /** The key the payload waits for. */
  readonly key: string;
  /** Inputs of that key waiting now, this one included. */
  readonly pending: number;
  /** The waiting payload (message, app mention or slash command). */
  readonly input: SlackInput;
  /** The request body, as Bolt parsed it. */
  readonly body: SlackMiddlewareArgs["body"];
  /** Bolt's context of the payload. */
  readonly context: Context;
  /** A Web API client with the payload's token (add a reaction, post in the thread). */
  readonly client: SlackMiddlewareArgs["client"];
  /** Posts to the payload's channel (not its thread: pass `thread_ts`). */
  readonly say: SayFn | undefined;
  /** Answers a slash command through its `response_url` (ephemeral by default). */
  readonly respond: RespondFn | undefined;
}
