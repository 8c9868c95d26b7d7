// === session-guard/slack: `app.use(slackGuard())`
//
// Thin adapter over the core, installed as Bolt global middleware. It derives the key and the
// de-duplication id of a payload (places.ts), decides what bypasses the guard (edits, bot messages,
// block actions, stop: stop.ts), acknowledges what it does not hand to a listener at once
// (admit.ts), and maps "run the rest of the middleware chain" onto a turn. Bolt's `next` runs the
// payload it was called with, so a turn runs the `next` of its latest payload, with every
// coalesced payload in `context.turn.inputs`. Across replicas, see replay.ts.
//
// Facts from Bolt 5.1's sources (`dist/App.js`, `dist/receivers/*`) that shaped it:
// - `processEvent` acknowledges Events API payloads itself before the middleware chain runs; for
//   commands, actions, shortcuts, views and options it passes the receiver's own `ack` to every
//   middleware and listener. Middleware cannot replace the function a listener gets.
// - HTTPReceiver's `ack` throws `ReceiverMultipleAckError` when called twice; with
//   `processBeforeResponse: true` it only stores the response, which is sent once `processEvent`
//   resolves. AwsLambdaReceiver answers only after `processEvent` resolves, whatever the option.
// - Bolt runs every matching listener for every payload (no first-match routing), so a catch-all
//   `app.message` listener also receives edits, bot messages and the stop text.
// - `ignoreSelf` is global middleware registered in the App constructor, before this one.
// - `processEvent({ body, ack })` rebuilds everything a listener gets (authorization, context,
//   client, say, respond) from the body alone, and routes an error thrown by the middleware chain
//   to `app.error`.
//
// Only types are imported from @slack/bolt: at run time this file needs nothing but the core.

/**
 * Slack Bolt global middleware: `app.use(slackGuard())`.
 *
 * @module session-guard/slack
 */

import type { AnyMiddlewareArgs, Middleware, types } from "@slack/bolt";
import type { Drop, ErrorInfo, Guard, GuardOptions, Turn } from "session-guard";
import { adapterGuard, type GuardControls, withGuardControls } from "../kit/guard.js";
import { errorLog } from "../kit/log.js";
import { classify, SKIPPED, userKey } from "../kit/own-errors.js";
import { Replays } from "../kit/replay.js";
import { revise } from "../kit/revise.js";
import { ShownOutcomes } from "../kit/shown.js";
import { admitter } from "./admit.js";
import { ADAPTER_OPTIONS, checkOptions, type SlackGuardOptions } from "./options.js";
import {
  type Args,
  channelKey,
  defaultKey,
  inputOf,
  isCommand,
  LEADING_MENTIONS,
} from "./places.js";
import { BODY_CODEC, bodies, rebuilt, replayThrough } from "./replay.js";
import { revisionOf, type SlackRevision } from "./revisions.js";
import { slackShown } from "./shown.js";
import { Stops } from "./stop.js";
import type { SlackInput, SlackMiddlewareArgs, SlackTurn } from "./types.js";

export type { DropNotice, ReactionOptions, ShownReason } from "../kit/shown.js";
export type { SlackGuardOptions } from "./options.js";
export {
  type ReplyStream,
  type SlackReplyMessage,
  type SlackReplyTarget,
  type StreamReplyOptions,
  streamReply,
} from "./stream-reply.js";
export type {
  SlackInput,
  SlackMiddlewareArgs,
  SlackQueued,
  SlackTurn,
  SlackTurnContext,
  SlackUserMessage,
} from "./types.js";

/** The middleware, carrying the guard's methods. */
export interface SlackGuardMiddleware
  extends Middleware<AnyMiddlewareArgs>,
    GuardControls<SlackInput> {
  /**
   * The key this middleware gives a payload, or `undefined` when it has no conversation. Block
   * actions and message shortcuts get the key of the message they were pressed on, so an
   * approval button finds the turn of its thread.
   */
  keyOf(args: SlackMiddlewareArgs): string | undefined;
}

/** What the middleware does with a payload, as `read` classifies it. */
type Plan =
  | { readonly kind: "pass" }
  | { readonly kind: "stop-channel"; readonly channel: string; readonly input: SlackInput }
  | {
      readonly kind: "stop" | "admit";
      readonly key: string;
      readonly input: SlackInput;
      readonly id: string | undefined;
    }
  | { readonly kind: "revise"; readonly key: string; readonly revision: SlackRevision };
const PASS: Plan = { kind: "pass" };

const logTurnError = errorLog("slack", "", (input) => {
  const payload = input as SlackInput;
  return isCommand(payload)
    ? `command ${payload.command}`
    : `ts ${(payload as types.AppMentionEvent).ts}`;
});

/**
 * Bolt global middleware that runs one agent turn per Slack thread at a time. Install it with
 * `app.use`, before `app.assistant(…)` and any middleware that awaits.
 *
 * - User messages and app mentions are admitted under their key (team + channel + thread; a DM
 *   is one key unless in a thread); slash commands under their channel, each a turn of its own.
 *   Input that arrives during a turn is pending, handled by `mode` (default: coalesced into one
 *   next turn, every payload in `context.turn.inputs`).
 * - Edits, deletions, bot messages, other events, block actions, shortcuts and views pass
 *   through, so a turn waiting for an approval button never deadlocks.
 * - The middleware returns as soon as the payload is admitted; the turn runs detached, so Bolt
 *   answers Slack at once even with `processBeforeResponse: true`. `awaitTurn` waits instead.
 * - A command, action, shortcut or view is acknowledged by the guard only when the guard queues
 *   or drops it; then `context.acknowledged` is true and the listener must not `ack()` again.
 * - A message delivered twice (a retry, or both `message` and `app_mention`) runs once: the
 *   de-duplication id is `channel:ts`.
 * - The text `stop` (in a thread: that thread's turn) and `/stop` (every turn of the channel)
 *   stop turns, then reach your listeners unguarded.
 *
 * @example
 * ```ts
 * const app = new App<SlackTurnContext>({ token, signingSecret });
 * const guard = slackGuard({ mode: "collect" });
 * app.use(guard);
 * app.message(async ({ message, context, say }) => {
 *   const turn = context.turn;
 *   if (!turn) return; // an edit, a bot message, the stop text: not a turn
 *   await say({ text: await agent(turn), thread_ts: turn.inputs.at(-1)?.thread_ts ?? message.ts });
 * });
 * app.command("/ask", async ({ ack, respond, context }) => {
 *   if (!context.acknowledged) await ack();
 *   await respond(await agent(context.turn));
 * });
 * ```
 */
export function slackGuard(options: SlackGuardOptions = {}): SlackGuardMiddleware {
  const settings = checkOptions(options);
  const { bypass, stopTexts, stopCommands, awaitTurn, app } = settings;
  const userKeyOf = settings.key;
  const keyOf =
    userKeyOf === undefined
      ? defaultKey
      : (args: SlackMiddlewareArgs) => userKey("slackGuard", userKeyOf(args));
  /** Turns whose latest payload came from another replica, replayed through the app. */
  const replays = app === undefined ? undefined : new Replays<SlackTurn>();
  const { guard, reportError } = adapterGuard<SlackInput>(
    "slackGuard",
    app === undefined || replays === undefined
      ? options
      : { ...options, codec: BODY_CODEC, handler: replayThrough(app, replays) },
    ADAPTER_OPTIONS,
    { onError: logTurnError },
  );
  const stops = new Stops(guard, reportError);
  const platform = settings.shown === undefined ? undefined : slackShown();
  const shown =
    settings.shown === undefined || platform === undefined
      ? undefined
      : new ShownOutcomes(guard, settings.shown, platform, reportError);
  const isRebuilt = (input: unknown) => rebuilt.has(input as object);
  const { admit, runWith } = admitter({
    guard,
    awaitTurn,
    shared: app !== undefined,
    onQueued: settings.onQueued,
    status: settings.status,
    // Payloads rebuilt from another replica reach Slack through the client of their turn.
    started:
      shown === undefined
        ? undefined
        : (args, turn) => {
            for (const input of turn.inputs) platform?.reach(input, args.client, undefined);
            shown.started(turn.key, turn.inputs, isRebuilt);
          },
    report: reportError,
  });

  /** The adapter's own reading of a payload: what to do with it. May throw (see the kit). */
  const read = (all: SlackMiddlewareArgs): Plan => {
    const args = all as unknown as Args;
    if (settings.revisions) {
      const revision = revisionOf(args);
      if (revision !== undefined) {
        const key = keyOf(all);
        return key === undefined ? PASS : { kind: "revise", key, revision };
      }
    }
    const input = inputOf(args);
    // Anything the guard does not admit runs its listeners at once, beside any turn.
    if (input === undefined || bypass?.(all)) return PASS;
    const key = keyOf(all);
    if (key === undefined) return PASS;
    if (isCommand(input)) {
      if (stopCommands.has(input.command.toLowerCase())) {
        return { kind: "stop-channel", channel: channelKey(args.context, input.channel_id), input };
      }
      return { kind: "admit", key, input, id: undefined };
    }
    const message = input as types.AppMentionEvent;
    // Global, not per team: one message of a Slack Connect channel arrives once per installation.
    const id = `slack:${message.channel}:${message.ts}`;
    const text = typeof message.text === "string" ? message.text : "";
    const stop = stopTexts.has(text.replace(LEADING_MENTIONS, "").trim().toLowerCase());
    return { kind: stop ? "stop" : "admit", key, input, id };
  };
  const reportOwn = (error: unknown, all: SlackMiddlewareArgs) => {
    const args = all as unknown as Args;
    let input: SlackInput | undefined;
    try {
      input = inputOf(args);
    } catch {
      // A payload too malformed to read: reported without it.
    }
    reportError(error, "", input);
  };

  const middleware = async (all: SlackMiddlewareArgs): Promise<void> => {
    const args = all as unknown as Args;
    const context = args.context;
    const turn = replays?.attach(args.body);
    if (turn !== undefined) {
      // A turn of this replica running a payload admitted elsewhere: attach it, never re-admit.
      // The receiving replica answered Slack (Bolt for events, the guard for what it queued).
      context.acknowledged = true;
      const input = turn.inputs[turn.inputs.length - 1] as SlackInput;
      // The turn's error goes to `onError` like a local turn's, not to Bolt's `app.error`.
      return replays?.settle(args.body, runWith(args, turn, input));
    }
    // Events API payloads were acknowledged by Bolt; anything else carries an `ack`.
    if (context.acknowledged === undefined) context.acknowledged = args.ack === undefined;
    const plan = classify(read, all, reportOwn);
    if (plan === SKIPPED) return; // reported; the payload is not run
    switch (plan.kind) {
      case "pass":
        return args.next();
      case "stop-channel":
        // Control bypasses the queue: stop now, then let the command's listener answer.
        stops.channel(plan.channel, plan.input);
        return args.next();
      case "stop":
        if (!stops.text(plan.key, plan.id as string, plan.input)) {
          guard.reportDrop({ key: plan.key, input: plan.input, id: plan.id, reason: "duplicate" });
          return;
        }
        return args.next();
      case "revise": {
        // Never a turn: the pending message changes (or goes), then the listeners see the event.
        const { id, edited, body } = plan.revision;
        if (edited !== undefined) {
          bodies.set(edited, body as Record<string, unknown>);
          platform?.reach(edited, args.client, undefined);
        }
        void revise(guard, plan.key, id, edited, reportError);
        return args.next();
      }
      case "admit":
        platform?.reach(plan.input, args.client, args.respond);
        return admit(args, plan.key, plan.input, plan.id);
    }
  };

  return withGuardControls(
    Object.assign(middleware, { keyOf }),
    guard,
  ) as unknown as SlackGuardMiddleware;
}

export type { Drop, ErrorInfo, Guard, GuardOptions, Turn };
