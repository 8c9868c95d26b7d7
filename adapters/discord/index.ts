// === session-guard/discord: guard.message / guard.interaction / guard.command
//
// Thin adapter over the core for discord.js 14. discord.js has no middleware chain, so the adapter
// wraps listeners: `client.on(Events.MessageCreate, guard.message(handler))`, an interaction
// wrapper, and a command wrapper for the command-collection pattern. Every wrapper of one
// `discordGuard()` shares one core guard, so a slash command and a message in the same channel
// never run at the same time. Like every adapter it does three things: derive the key and the
// de-duplication id (keys.ts), decide what bypasses the guard (components, stop), and run the
// handler as a turn. Commands and their tokens: commands.ts; across replicas: replay.ts.
//
// discord.js clients capture rejected listener promises as `'error'` events, which crash a process
// that does not listen for them. The listeners returned here never reject: an error of the
// adapter's own (a throwing `key` function, a malformed input) goes to `onError` with the input,
// which is then not run (the kit's rule for every adapter).
//
// Only types are imported from discord.js: at run time this file needs nothing but the core.

/**
 * discord.js listener wrappers: `guard.message(…)`, `guard.interaction(…)`, `guard.command(…)`.
 *
 * @module session-guard/discord
 */

import type { ChatInputCommandInteraction, Interaction } from "discord.js";
import {
  type Drop,
  type DropReason,
  type ErrorInfo,
  type Guard,
  type GuardOptions,
  StoreError,
  type Turn,
} from "session-guard";
import { adapterGuard, withGuardControls } from "../kit/guard.js";
import { withHeartbeat } from "../kit/heartbeat.js";
import { errorLog } from "../kit/log.js";
import { describe } from "../kit/options.js";
import { userKey } from "../kit/own-errors.js";
import { ShownOutcomes } from "../kit/shown.js";
import { type AdmitOptions, commands } from "./commands.js";
import { defaultKey, isGuardedCommand, isIgnored, stopWordOf } from "./keys.js";
import { ADAPTER_OPTIONS, checkOptions, type DiscordGuardOptions } from "./options.js";
import { Remote, rebuilt } from "./replay.js";
import { revisionListeners } from "./revisions.js";
import { discordShown } from "./shown.js";
import type {
  CommandHandler,
  DiscordGuard,
  DiscordInput,
  DiscordMessage,
  DiscordTurn,
  GuardedCommand,
  InteractionHandler,
  MessageHandler,
  PassThroughInteraction,
} from "./types.js";

export type { DropNotice, ReactionOptions, ShownReason } from "../kit/shown.js";
export type { DiscordGuardOptions } from "./options.js";
export {
  type DiscordReplyTarget,
  type ReplyStream,
  type StreamReplyOptions,
  streamReply,
} from "./stream-reply.js";
export type * from "./types.js";

/** Discord shows "typing…" for 10 s after each request; renew it before it fades. */
const TYPING_EVERY = 8_000;
const DONE: Promise<void> = Promise.resolve();
const NOOP = (): void => {};

const logTurnError = errorLog("discord", "inputs", (input) => (input as { id?: unknown }).id);

function checkHandler(method: string, handler: unknown): void {
  if (typeof handler !== "function") {
    throw new TypeError(
      `discordGuard: ${method}(handler) needs the handler function, got ${describe(handler)}.`,
    );
  }
}

/**
 * Guards a discord.js bot: one agent turn per channel at a time, with messages that arrive during
 * a turn handled by `mode` (default: coalesced into one next turn).
 *
 * - Wrap listeners: `guard.message(handler)` for `messageCreate`, `guard.interaction(handler)` for
 *   `interactionCreate`, or `guard.command(handler)` as a command's `execute`. All share one guard.
 * - The listeners return as soon as the input is admitted; turns run detached. They never reject:
 *   errors go to `onError`.
 * - Slash and context-menu commands are deferred at once and run as turns of their own; answer
 *   them with `editReply`/`followUp`. A command still waiting when its token is about to expire is
 *   dropped (`expired`), never run with a dead token.
 * - Buttons, select menus and modals pass through at once. The text "stop" and `/stop` stop the
 *   channel's turn.
 *
 * @example
 * ```ts
 * const guard = discordGuard({ mode: "collect" });
 * client.on(Events.MessageCreate, guard.message(async (message, turn) => {
 *   const prompt = turn.inputs.map((m) => m.content).join("\n");
 *   await message.reply(await agent(prompt, { signal: turn.signal }));
 * }));
 * client.on(Events.InteractionCreate, guard.interaction(async (interaction, turn) => {
 *   if (interaction.isButton()) return onButton(interaction); // runs beside the turn
 *   if (!interaction.isChatInputCommand() || turn === undefined) return;
 *   const prompt = interaction.options.getString("prompt", true);
 *   await interaction.editReply(await agent(prompt, { signal: turn.signal }));
 * }));
 * ```
 */
export function discordGuard(options: DiscordGuardOptions = {}): DiscordGuard {
  const settings = checkOptions(options);
  const { stopText, typing, awaitTurn, client } = settings;
  const userKeyOf = settings.key;
  const perUser = settings.perUser;
  const keyOf = (input: DiscordMessage | Interaction): string | undefined =>
    userKeyOf === undefined
      ? defaultKey(input, perUser)
      : userKey("discordGuard", userKeyOf(input));

  const remote =
    client === undefined
      ? undefined
      : new Remote(client, {
          runMessageTurn: (handler, message, turn) => runMessageTurn(handler, message, turn),
          deferred: (interaction) => side.deferred(interaction),
        });
  const adapter = adapterGuard<DiscordInput>(
    "discordGuard",
    remote === undefined || client === undefined
      ? options
      : {
          // The default keys are the bot's own (`dc:<bot id>:…`): across replicas this guard
          // takes over only those, never another bot's on the same store prefix.
          ...(userKeyOf === undefined && options.guard === undefined
            ? { namespace: () => (client.user ? `dc:${client.user.id}:` : undefined) }
            : {}),
          ...options,
          codec: remote.codec,
          handler: remote.handler,
        },
    ADAPTER_OPTIONS,
    { onError: logTurnError },
  );
  const guard = adapter.guard;
  /** Errors raised here, outside a turn (an interaction is reported as the input involved). */
  const report = (error: unknown, key: string, input?: DiscordInput | Interaction): void =>
    adapter.reportError(error, key, input as DiscordInput | undefined);
  /** The key of an input for an error report; never throws. */
  const keyForReport = (input: DiscordMessage | Interaction): string => {
    try {
      return keyOf(input) ?? "";
    } catch {
      return "";
    }
  };
  /** Run a wrapper's own reading of an input; an error there is reported and the input not run. */
  const guarded =
    <A extends DiscordMessage | Interaction>(step: (input: A) => Promise<void>) =>
    (input: A): Promise<void> => {
      try {
        return step(input);
      } catch (error) {
        report(error, keyForReport(input), input);
        return DONE;
      }
    };

  /** Submit one input; a refused admission is reported, never thrown or rejected. */
  const admit = (
    key: string | undefined,
    input: DiscordInput,
    run: (turn: Turn<DiscordInput>) => unknown,
    submitOptions: AdmitOptions,
    onRefused?: () => void,
  ): Promise<void> => {
    if (key === undefined) return DONE;
    return guard
      .submit(key, input, run, { ...submitOptions, awaitTurn })
      .then(NOOP, (error: unknown) => {
        // Awaiting the turn, a turn's error was reported by the guard already; only a refused
        // admission (the store failed) is this adapter's to report.
        if (!awaitTurn || (error instanceof StoreError && error.operation === "acquireOrEnqueue")) {
          report(error, key, input);
          onRefused?.();
        }
      });
  };

  const side = commands({
    guard,
    remote,
    ephemeral: settings.ephemeral,
    expiryMargin: settings.expiryMargin,
    stopCommands: settings.stopCommands,
    onStop: settings.onStop,
    dropReply: settings.dropReply,
    keyOf,
    report,
    admit,
  });

  const shown =
    settings.shown === undefined
      ? undefined
      : new ShownOutcomes<DiscordInput>(guard, settings.shown, discordShown as never, report);
  const isRebuilt = (input: unknown) => rebuilt.has(input as object);

  const revisions = revisionListeners({
    guard,
    enabled: settings.revisions,
    keyOf: (message) => {
      // A partial deletion has no author: only the default key, without the user, can be read.
      if (message.author == null && (userKeyOf !== undefined || perUser)) return undefined;
      return keyOf(message as DiscordMessage);
    },
    revised: (message) => remote?.revised(message),
    report,
  });

  const runMessageTurn = (
    handler: MessageHandler,
    message: DiscordMessage,
    turn: Turn<DiscordInput>,
  ): Promise<unknown> => {
    shown?.started(turn.key, turn.inputs, isRebuilt);
    const channel = message.channel;
    const heartbeat =
      typing && "sendTyping" in channel
        ? { send: () => channel.sendTyping(), every: TYPING_EVERY }
        : undefined;
    return withHeartbeat(
      heartbeat,
      (error) => report(error, turn.key, message),
      () => handler(message, turn as unknown as DiscordTurn<DiscordMessage>),
    );
  };

  const message = (handler: MessageHandler) => {
    checkHandler("message", handler);
    remote?.wantMessages(handler);
    return guarded((message: DiscordMessage): Promise<void> => {
      const raw = remote?.take(message.id);
      if (isIgnored(message)) return DONE;
      const key = keyOf(message);
      if (key === undefined) return DONE;
      if (stopText.size > 0 && stopText.has(stopWordOf(message))) {
        return side.stopFrom(message, key);
      }
      const id = `dc:${message.client.user?.id ?? "-"}:${message.id}`;
      remote?.keep(message, raw);
      return admit(key, message, (turn) => runMessageTurn(handler, message, turn), { id });
    });
  };

  /** A component, autocomplete or modal: the handler runs now, beside any turn. */
  const passThrough = (handler: InteractionHandler, interaction: PassThroughInteraction) => {
    const fail = (error: unknown) => report(error, keyForReport(interaction), interaction);
    try {
      const result = handler(interaction, undefined);
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === "function") {
        return Promise.resolve(result).then(NOOP, fail);
      }
    } catch (error) {
      fail(error);
    }
    return DONE;
  };

  const interaction = (handler: InteractionHandler) => {
    checkHandler("interaction", handler);
    remote?.wantInteractions();
    return guarded((interaction: Interaction): Promise<void> => {
      if (!isGuardedCommand(interaction)) return passThrough(handler, interaction);
      return side.admitCommand(interaction, handler);
    });
  };

  const command = <T extends GuardedCommand = ChatInputCommandInteraction>(
    handler: CommandHandler<T>,
  ) => {
    checkHandler("command", handler);
    remote?.wantInteractions();
    return guarded((interaction: T): Promise<void> => {
      if (!isGuardedCommand(interaction)) {
        throw new TypeError(
          "discordGuard: command() runs slash and context-menu commands; hand buttons, menus and modals to interaction() or to your own listener.",
        );
      }
      return side.admitCommand(interaction, handler);
    });
  };

  const stopCommand = guarded((interaction: GuardedCommand): Promise<void> => {
    remote?.take(interaction.id);
    const key = keyOf(interaction);
    return key === undefined ? DONE : side.stopFrom(interaction, key);
  });

  return withGuardControls(
    { message, interaction, command, stopCommand, keyOf, ...revisions },
    guard,
  ) as DiscordGuard;
}

export type { Drop, DropReason, ErrorInfo, Guard, GuardOptions, Turn };
