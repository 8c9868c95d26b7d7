// === Options of `slackGuard()`

import type { App } from "@slack/bolt";
import type { ErrorInfo, Guard, GuardOptions } from "session-guard";
import { commonOptions, stopWords } from "../kit/options.js";
import { type ReactionOptions, shownSettings } from "../kit/shown.js";
import { SLACK_SHOWN, slackEmoji } from "./shown.js";
import type { SlackInput, SlackMiddlewareArgs, SlackQueued } from "./types.js";

/** Options of `slackGuard()`: every core option, plus the Slack-specific ones. */
export interface SlackGuardOptions extends GuardOptions<SlackInput> {
  /**
   * Share an existing core guard (several apps or platforms on one guard). Core options then
   * belong to `createGuard`, not here.
   */
  guard?: Guard<unknown>;
  /**
   * The key of a payload: `undefined` lets it pass unguarded. Default: team (or enterprise for
   * org-wide installs) + channel + `thread_ts ?? ts`; a DM is one key unless the message is in a
   * thread; a slash command is keyed by its channel.
   */
  key?: (args: SlackMiddlewareArgs) => string | undefined;
  /** More payloads that pass straight through (block actions, edits, bot messages always do). */
  bypass?: (args: SlackMiddlewareArgs) => boolean;
  /**
   * Message texts that stop the turn of their key (trimmed, any case, after a leading
   * `@mention`); the message then reaches your listeners without a turn. Default `["stop"]`.
   */
  stopTexts?: readonly string[];
  /**
   * Slash commands that stop every turn of their channel, threads included; the command then
   * reaches your listener, which acknowledges it. Default `["/stop"]`.
   */
  stopCommands?: readonly string[];
  /**
   * Called when a payload has to wait behind a running turn, after the guard acknowledged it —
   * to tell the user (a reaction, an ephemeral `respond`). Runs detached; errors go to `onError`.
   */
  onQueued?: (queued: SlackQueued) => unknown;
  /**
   * In an assistant thread (`app.assistant(…)`), the status shown while a turn runs, e.g.
   * `"is thinking…"` (`assistant.threads.setStatus`, renewed every 60 s, cleared when the turn
   * ends). Default: none. Needs the `assistant:write` scope.
   */
  status?: string;
  /**
   * Follow edits and deletions of pending messages. Default `true`: `message_changed` replaces the
   * pending message (`context.turn.inputs` then holds the edited one), `message_deleted`
   * withdraws it (dropped as `withdrawn`); an edit of a running turn's message reaches
   * `context.turn.onRevision`. Link unfurls and edits of bot messages change nothing. The change
   * events still reach your listeners, without a turn. `false`: they pass through untouched.
   */
  revisions?: boolean;
  /**
   * Show the user what became of a message. Default `false`. `true`: a message that has to wait
   * gets an :eyes: reaction, taken off when its turn starts; a dropped one gets a short ephemeral
   * notice (`busy`, `overflow`, `expired`; a slash command through `respond`) or a :shrug:
   * reaction (`stopped`). An object changes that, with Slack emoji names:
   * `{ queued: "hourglass_flowing_sand", dropped: { busy: "One at a time, please.", stopped: false } }`.
   * Needs the `reactions:write` scope (and `chat:write` for notices). A failing call goes to
   * `onError`; the turn runs on.
   */
  reactions?: boolean | ReactionOptions;
  /**
   * Keep the middleware (and so `processEvent`) waiting until the payload's turn has settled, and
   * reject with the turn's error: for FaaS receivers that must not return before the work is
   * done. Default `false`: the turn runs detached and Bolt answers Slack at once. With
   * `processBeforeResponse: true` or AwsLambdaReceiver, a turn longer than 3 s then makes Slack
   * retry the event (`http_timeout`); the retry is dropped as a duplicate only if it reaches the
   * same guard or a shared store. An adapter setting: with a shared `guard` it applies to this
   * app's payloads, whatever the guard's own default.
   */
  awaitTurn?: boolean;
  /**
   * Receives the errors of turns (with an own guard) and errors raised in the adapter outside a
   * turn: a failed stop, a failing `onQueued`. With a shared `guard`, only the latter; without it
   * they go to the shared guard's `onError`.
   */
  onError?: (error: unknown, info: ErrorInfo<SlackInput>) => void;
  /**
   * The Bolt app this middleware is installed on. Required with a shared store (`redisStore`):
   * payloads travel between replicas as the request body Bolt received, and a turn whose latest
   * payload was admitted on another replica runs here through `app.processEvent`, so it reaches
   * your listeners like any payload, with `context.turn` set and `context.acknowledged` true (the
   * receiving replica answered Slack).
   *
   * @example
   * ```ts
   * const store = redisStore({ client: createClient({ url: process.env.REDIS_URL }) });
   * const app = new App<SlackTurnContext>({ token, signingSecret });
   * app.use(slackGuard({ store, app }));
   * ```
   */
  app?: Pick<App, "processEvent">;
}

/** Options that belong to the adapter, not to the core guard. */
export const ADAPTER_OPTIONS: ReadonlySet<string> = new Set([
  "app",
  "guard",
  "key",
  "bypass",
  "stopTexts",
  "stopCommands",
  "onQueued",
  "status",
  "revisions",
  "reactions",
  "awaitTurn",
]);

/** The adapter's own options, checked, with their defaults. */
export function checkOptions(options: SlackGuardOptions) {
  const { check, awaitTurn, shared } = commonOptions(
    "slackGuard",
    options,
    "(args) => string | undefined",
  );
  const { guard, key, bypass, stopTexts = ["stop"], stopCommands = ["/stop"] } = options;
  const { onQueued, status, app } = options;
  check.framework(
    "app",
    app,
    ["processEvent"],
    "the Bolt App this middleware is installed on (new App(…))",
  );
  if (shared && app === undefined) {
    throw check.error(
      `a shared store ("store", e.g. redisStore) needs "app": slackGuard({ store, app }). Payloads admitted on another replica run on this one through app.processEvent.`,
    );
  }
  check.fn("bypass", bypass, "(args) => boolean");
  check.fn("onQueued", onQueued, "({ key, input, say, … }) => void");
  if (status !== undefined && (typeof status !== "string" || status.trim() === "")) {
    throw check.error(
      `"status" must be the assistant status text shown while a turn runs, e.g. "is thinking…", got ${JSON.stringify(status)}.`,
    );
  }
  const { revisions = true } = options;
  check.flag("revisions", revisions);
  const shown = shownSettings(
    check,
    options.reactions,
    SLACK_SHOWN,
    slackEmoji((message) => check.error(message)),
  );
  const texts = check.words("stopTexts", stopTexts, '["stop", "cancel"]');
  const commands = check.words("stopCommands", stopCommands, '["/stop"]');
  return {
    guard,
    key,
    bypass,
    // On a shared store only (a shared `guard` comes with its creator's handler and codec).
    app: shared ? app : undefined,
    stopTexts: stopWords(texts),
    // Slack sends the command with its slash; accept the name either way.
    stopCommands: new Set(
      commands.map((c) => (c.startsWith("/") ? c : `/${c}`).trim().toLowerCase()),
    ),
    onQueued,
    status,
    revisions,
    shown,
    awaitTurn,
  };
}
