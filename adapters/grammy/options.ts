// === Options of `sessionGuard()`

import type { Bot, Context } from "grammy";
import type { ErrorInfo, Guard, GuardOptions } from "session-guard";
import { commonOptions } from "../kit/options.js";
import { type ReactionOptions, shownSettings } from "../kit/shown.js";
import { TELEGRAM_SHOWN, telegramEmoji } from "./shown.js";

/** Options of `sessionGuard()`: every core option, plus the Telegram-specific ones. */
export interface SessionGuardOptions<C extends Context> extends GuardOptions<C> {
  /**
   * Share an existing core guard (several bots or platforms on one guard). Core options then
   * belong to `createGuard`, not here.
   */
  guard?: Guard<unknown>;
  /**
   * The key of an update: `undefined` lets the update pass unguarded. Default: bot id + chat id
   * (+ forum topic) — see the README for matching grammY's session key. If it throws (or returns
   * something that is no non-empty string), the error goes to `onError` with the update, and the
   * update is not run.
   */
  key?: (ctx: C) => string | undefined;
  /** More updates that pass straight through (callback queries always do). */
  bypass?: (ctx: C) => boolean;
  /** Commands that stop the chat's turn and then reach your handlers. Default `["stop"]`. */
  stopCommands?: readonly string[];
  /**
   * Ms to wait after the last photo of an album before it enters a turn. Default 800. The photos
   * of one album run in one turn even when they reach different replicas.
   */
  mediaGroupSettle?: number;
  /**
   * Show "typing…" in the chat (`sendChatAction`, renewed every 4 s) while a turn runs. Default
   * `false`.
   */
  typing?: boolean;
  /**
   * Follow edits and deletions of pending messages. Default `true`: `edited_message`,
   * `edited_channel_post` and `edited_business_message` replace the pending message (its context
   * in `ctx.turn.inputs` then carries the edited message), `deleted_business_messages` withdraws it
   * (dropped as `withdrawn`); an edit of a running turn's message reaches `ctx.turn.onRevision`.
   * Telegram tells bots of no deletion outside business chats. The edit updates still reach your
   * handlers afterwards, without a turn. `false`: edits pass through untouched.
   */
  revisions?: boolean;
  /**
   * Show the user what became of a message. Default `false`. `true`: a message that has to wait
   * gets a 👀 reaction, taken off when its turn starts; a dropped one gets a short reply (`busy`,
   * `overflow`, `expired`) or a 🤷 reaction (`stopped`). An object changes that:
   * `{ queued: "🤔", dropped: { busy: "One at a time, please.", stopped: { react: "🫡" }, expired: false } }`.
   * Reactions must be Telegram reaction emoji. A failing call (rate limit, no rights) goes to
   * `onError`; the turn runs on.
   */
  reactions?: boolean | ReactionOptions;
  /**
   * Keep the middleware waiting until the update's turn has settled, and reject with the turn's
   * error (serverless hosts). Default `false`: the turn runs detached. An adapter setting: with a
   * shared `guard` it applies to this bot's updates, whatever the guard's own default.
   */
  awaitTurn?: boolean;
  /**
   * Receives the errors of turns (with an own guard) and errors raised in the adapter outside a
   * turn: a throwing `key` or `bypass` function, a malformed update, a stop that failed. With a
   * shared `guard`, only the latter; without it they go to the shared guard's `onError`.
   */
  onError?: (error: unknown, info: ErrorInfo<C>) => void;
  /**
   * The bot this middleware is installed on. Required with a shared store (`redisStore`): updates
   * admitted on another replica run here through `bot.handleUpdate`, and their contexts are built
   * with the bot's context class.
   */
  bot?: Bot<C>;
}

/** Options that belong to the adapter, not to the core guard. */
export const ADAPTER_OPTIONS: ReadonlySet<string> = new Set([
  "bot",
  "guard",
  "key",
  "bypass",
  "stopCommands",
  "mediaGroupSettle",
  "typing",
  "revisions",
  "reactions",
  "awaitTurn",
]);

/** The adapter's own options, checked, with their defaults. */
export function checkOptions<C extends Context>(options: SessionGuardOptions<C>) {
  const { check, awaitTurn, shared } = commonOptions(
    "sessionGuard",
    options,
    "(ctx) => string | undefined",
  );
  const { guard, key, bypass, stopCommands = ["stop"], mediaGroupSettle = 800 } = options;
  const { typing = false, bot } = options;
  check.framework("bot", bot, ["handleUpdate"], "the grammY Bot this middleware is installed on");
  if (shared && bot === undefined) {
    throw check.error(
      `a shared store (redisStore) needs "bot": sessionGuard({ store, bot }). Updates admitted on another replica run on this one through bot.handleUpdate.`,
    );
  }
  check.flag("typing", typing);
  const { revisions = true } = options;
  check.flag("revisions", revisions);
  const shown = shownSettings(
    check,
    options.reactions,
    TELEGRAM_SHOWN,
    telegramEmoji((message) => check.error(message)),
  );
  check.fn("bypass", bypass, "(ctx) => boolean");
  check.words("stopCommands", stopCommands, '["stop", "cancel"] (without the slash)');
  check.ms("mediaGroupSettle", mediaGroupSettle);
  return {
    guard,
    key,
    bypass,
    stopCommands: new Set(stopCommands),
    mediaGroupSettle,
    typing,
    revisions,
    shown,
    awaitTurn,
    bot,
    /** Turns of updates admitted on another replica replay here (own guard, shared store). */
    replaying: guard === undefined && shared && bot !== undefined,
    /** A guard and store of this bot's own: update ids need no bot scope. */
    ownIds: guard === undefined && options.store === undefined,
  };
}
