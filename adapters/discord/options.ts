// === Options of `discordGuard()`

import type { Client, Interaction } from "discord.js";
import type { DropReason, ErrorInfo, Guard, GuardOptions } from "session-guard";
import { commonOptions, stopWords } from "../kit/options.js";
import { type ReactionOptions, shownSettings } from "../kit/shown.js";
import { internalsOf } from "./rebuild.js";
import { DISCORD_SHOWN, discordEmoji } from "./shown.js";
import type { DiscordInput, DiscordMessage, GuardedCommand } from "./types.js";

/** An interaction token lives 15 minutes from its creation. */
export const TOKEN_LIFETIME = 15 * 60_000;

/** Options of `discordGuard()`: every core option, plus the Discord-specific ones. */
export interface DiscordGuardOptions extends GuardOptions<DiscordInput> {
  /**
   * Share an existing core guard (several bots or platforms on one guard). Core options then
   * belong to `createGuard`, not here.
   */
  guard?: Guard<unknown>;
  /**
   * The key of a message or interaction. Default: `dc:<bot id>:<guild id | "dm">:<channel id>`
   * (threads and forum posts have their own channel id), plus `:<user id>` with `perUser`.
   * Returning `undefined` leaves the input to no one: a message or command is then ignored by
   * the wrappers (use it to skip chatter that is not addressed to the bot; a command ignored this
   * way is never answered, so Discord shows "The application did not respond").
   */
  key?: (input: DiscordMessage | Interaction) => string | undefined;
  /** Give each user a turn of their own in a channel (adds the user id to the default key). */
  perUser?: boolean;
  /**
   * Message texts that stop the channel's turn (trimmed, any case, after a leading mention of the
   * bot: "@bot stop" stops too). Default `["stop"]`.
   */
  stopText?: readonly string[];
  /** Slash-command names that stop the channel's turn. Default `["stop"]`. */
  stopCommands?: readonly string[];
  /**
   * Called after a stop message or stop command took effect (`stopped`: whether anything was
   * running or pending). Given, it answers the stop command itself (within Discord's 3 s);
   * without it a stop command is answered "Stopped." or "Nothing to stop." and a stop message is
   * not answered.
   */
  onStop?: (source: DiscordMessage | GuardedCommand, stopped: boolean) => unknown;
  /** Defer commands (and answer stop commands) ephemerally: only the user sees them. Default false. */
  ephemeral?: boolean;
  /** Show "Bot is typing…" while a message turn runs (renewed every 8 s). Default true. */
  typing?: boolean;
  /**
   * Ms before an interaction's token dies (15 minutes after it was created) at which a command
   * still waiting is dropped as `expired` instead of run, leaving its handler time to answer.
   * Default 60,000.
   */
  expiryMargin?: number;
  /**
   * @deprecated Give the texts in `reactions.dropped` instead (they then serve messages and
   * commands alike). Still honoured: the text a deferred command is edited to when it is dropped
   * before it ran (stopped, busy, overflow, expired while its token lives, shutdown); `undefined`
   * leaves it, `false` turns this off. Default: the `reactions.dropped` notice of the reason when
   * it is a text, else a short English sentence per reason (a deferred command is always told,
   * even with `reactions` off: it would show "thinking…" until its token dies).
   */
  dropReply?: false | ((reason: DropReason, interaction: GuardedCommand) => string | undefined);
  /**
   * Follow edits and deletions of pending messages. Default `true`: wire the listeners the guard
   * hands out, one line each — `client.on(Events.MessageUpdate, guard.messageUpdate)`,
   * `client.on(Events.MessageDelete, guard.messageDelete)`,
   * `client.on(Events.MessageBulkDelete, guard.messageDeleteBulk)`. An edit replaces the pending
   * message, a deletion withdraws it (dropped as `withdrawn`); an edit of a running turn's message
   * reaches `turn.onRevision`. `false`: those listeners do nothing.
   */
  revisions?: boolean;
  /**
   * Show the user what became of a message. Default `false`. `true`: a message that has to wait
   * gets a 👀 reaction, taken off when its turn starts; a dropped one gets a short reply (`busy`,
   * `overflow`, `expired`) or a 🤷 reaction (`stopped`). An object changes that:
   * `{ queued: "⏳", dropped: { busy: "One at a time, please.", stopped: { react: "🛑" } } }`; its
   * texts also answer dropped commands. Needs the Add Reactions permission (and Send Messages for
   * notices). A failing call goes to `onError`; the turn runs on.
   */
  reactions?: boolean | ReactionOptions;
  /**
   * Make the wrapped listeners resolve only once the input's turn has settled. Default `false`:
   * they resolve at admission and the turn runs detached. An adapter setting: with a shared
   * `guard` it applies to this adapter's inputs, whatever the guard's own default. Listeners never
   * reject either way; turn errors go to `onError`.
   */
  awaitTurn?: boolean;
  /**
   * Receives the errors of turns (with an own guard) and errors raised in the adapter outside a
   * turn: a throwing `key` function, a throwing pass-through handler, a failed deferral, stop
   * answer or typing indicator. With a shared `guard`, only the latter; without it they go to the
   * shared guard's `onError`.
   */
  onError?: (error: unknown, info: ErrorInfo<DiscordInput>) => void;
  /**
   * The client whose events the wrapped listeners receive. Required with a shared store
   * (`redisStore`): inputs travel between replicas as their raw gateway payloads, which the adapter
   * reads from this client's `raw` event, and an input admitted on another replica is rebuilt here
   * with this client. Create the guard before `client.login()`.
   *
   * @example
   * ```ts
   * const store = redisStore({ client: createClient({ url: process.env.REDIS_URL }) });
   * const guard = discordGuard({ store, client });
   * client.on(Events.MessageCreate, guard.message(handler)); // one message handler per guard
   * ```
   */
  client?: Client;
}

/** Options that belong to the adapter, not to the core guard. */
export const ADAPTER_OPTIONS: ReadonlySet<string> = new Set([
  "client",
  "guard",
  "key",
  "perUser",
  "stopText",
  "stopCommands",
  "onStop",
  "ephemeral",
  "typing",
  "expiryMargin",
  "dropReply",
  "revisions",
  "reactions",
  "awaitTurn",
]);

const DROP_REPLIES: Readonly<Record<DropReason, string | undefined>> = {
  stopped: "Stopped before it started.",
  busy: "Still busy with an earlier request here; try again when it is done.",
  overflow: "Too many requests are waiting here; this one was dropped.",
  expired: "This request waited too long and expired; please send it again.",
  shutdown: "The bot is restarting; please send this again in a moment.",
  superseded: "A newer request replaced this one.",
  duplicate: undefined,
  withdrawn: undefined,
};

function defaultDropReply(reason: DropReason): string | undefined {
  return DROP_REPLIES[reason];
}

/** The adapter's own options, checked, with their defaults. */
export function checkOptions(options: DiscordGuardOptions) {
  const { check, awaitTurn, shared } = commonOptions(
    "discordGuard",
    options,
    "(input) => string | undefined",
  );
  const {
    guard,
    key,
    perUser = false,
    stopText = ["stop"],
    stopCommands = ["stop"],
    onStop,
    ephemeral = false,
    typing = true,
    expiryMargin = 60_000,
    dropReply,
    client,
    revisions = true,
  } = options;
  check.flag("revisions", revisions);
  const shown = shownSettings(
    check,
    options.reactions,
    DISCORD_SHOWN,
    discordEmoji((message) => check.error(message)),
  );
  if (
    dropReply !== undefined &&
    typeof options.reactions === "object" &&
    options.reactions?.dropped !== undefined
  ) {
    throw check.error(
      `"dropReply" and "reactions.dropped" both say what a dropped input is told; "dropReply" is deprecated: give the texts in "reactions.dropped" alone.`,
    );
  }
  // A dropped command is told the reason's notice text, else the default sentence.
  const commandReply = (reason: DropReason): string | undefined => {
    const notice = shown?.dropped.get(reason);
    return notice !== undefined && "reply" in notice ? notice.reply : defaultDropReply(reason);
  };
  check.flag("perUser", perUser);
  check.flag("ephemeral", ephemeral);
  check.flag("typing", typing);
  check.fn("onStop", onStop, "(source, stopped) => unknown");
  if (dropReply !== false && dropReply !== undefined) {
    check.fn("dropReply", dropReply, "(reason, interaction) => string | undefined, or false");
  }
  check.words("stopText", stopText, '["stop", "cancel"]');
  check.words("stopCommands", stopCommands, '["stop"]');
  if (key !== undefined && perUser) {
    throw check.error(
      `"perUser" shapes the default key; with your own "key" function, add the user id there.`,
    );
  }
  check.ms("expiryMargin", expiryMargin, TOKEN_LIFETIME, " (an interaction token's 15 minutes)");
  check.framework(
    "client",
    client,
    ["on", "emit"],
    "the discord.js Client whose events the wrapped listeners receive",
  );
  if (shared && client === undefined) {
    throw check.error(
      `a shared store ("store", e.g. redisStore) needs "client": discordGuard({ store, client }). Inputs travel between replicas as their raw gateway payloads, read from the client, and are rebuilt on the replica that runs them with its client.`,
    );
  }
  if (shared && internalsOf(client as Client) === undefined) {
    throw check.error(
      `this discord.js client lacks what a shared store needs to rebuild messages and interactions from raw payloads (client.actions.MessageCreate and InteractionCreate, as in discord.js 14). Use discord.js 14, or the default memory store.`,
    );
  }
  return {
    stopText: stopWords(stopText),
    guard,
    key,
    perUser,
    // Only with a store of its own: a shared `guard` comes with its creator's handler and codec.
    client: shared ? client : undefined,
    stopCommands: new Set(stopCommands),
    onStop,
    ephemeral,
    typing,
    expiryMargin,
    dropReply: dropReply === false ? undefined : (dropReply ?? commandReply),
    revisions,
    shown,
    awaitTurn,
  };
}
