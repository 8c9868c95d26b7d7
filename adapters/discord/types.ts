// === Types of the Discord adapter users see

import type {
  ChatInputCommandInteraction,
  ClientEvents,
  Collection,
  Interaction,
  MessageContextMenuCommandInteraction,
  PartialMessage,
  Snowflake,
  UserContextMenuCommandInteraction,
} from "discord.js";
import type { Turn } from "session-guard";
import type { GuardControls } from "../kit/guard.js";

/** A message as `Events.MessageCreate` hands it to listeners. */
export type DiscordMessage = ClientEvents["messageCreate"][0];

/**
 * The interactions the guard runs as turns: slash commands and context-menu commands. They are
 * deferred at admission and answered with `editReply`/`followUp`.
 */
export type GuardedCommand =
  | ChatInputCommandInteraction
  | MessageContextMenuCommandInteraction
  | UserContextMenuCommandInteraction;

/**
 * Interactions that pass through untouched, beside any turn: buttons, select menus, modal submits,
 * autocomplete and activity entry points. A turn waiting for a button never deadlocks.
 */
export type PassThroughInteraction = Exclude<Interaction, GuardedCommand>;

/** What the guard admits: messages and guarded commands. */
export type DiscordInput = DiscordMessage | GuardedCommand;

/**
 * The turn a guarded message or command runs in. `inputs` holds every input of the turn, oldest
 * first: the coalesced messages of a message turn, or the one interaction of a command's turn
 * (interactions are never coalesced). `signal` is a standard `AbortSignal` (stop, interrupt,
 * timeout, shutdown). See the core `Turn` for `fence`, `take()`, `onPending`, `pendingCount` and
 * `stale`.
 */
export type DiscordTurn<T> = Turn<T>;

/** Runs a message turn: `message` is the latest message, `turn.inputs` all coalesced ones. */
export type MessageHandler = (
  message: DiscordMessage,
  turn: DiscordTurn<DiscordMessage>,
) => unknown;

/** Runs a command's turn. The interaction is already deferred: answer with `editReply`. */
export type CommandHandler<T extends GuardedCommand = ChatInputCommandInteraction> = (
  interaction: T,
  turn: DiscordTurn<T>,
) => unknown;

/**
 * Handles every interaction: a guarded command with its turn (already deferred: answer with
 * `editReply`), anything else (buttons, select menus, modals, autocomplete) at once, untouched,
 * with `turn` undefined.
 */
export type InteractionHandler = (
  interaction: Interaction,
  turn: DiscordTurn<GuardedCommand> | undefined,
) => unknown;

/** What `discordGuard()` returns: the listener wrappers and the guard's methods. */
export interface DiscordGuard extends GuardControls<DiscordInput> {
  /**
   * Wrap a `messageCreate` listener. Messages of bots (this one included), webhooks and system
   * messages never reach `handler`; a stop text stops the channel's turn instead. With a shared
   * store there is one message handler per guard: it also runs messages admitted on other
   * replicas (a second, different one throws a `TypeError`).
   */
  message(handler: MessageHandler): (message: DiscordMessage) => Promise<void>;
  /**
   * Wrap an `interactionCreate` listener. Slash and context-menu commands run as turns (deferred
   * at once); stop commands stop the channel's turn; everything else passes through at once.
   */
  interaction(handler: InteractionHandler): (interaction: Interaction) => Promise<void>;
  /**
   * Wrap the `execute` of one command (the discord.js guide's command collection). A stop command
   * given to it stops the channel's turn instead of running `handler`. With a shared store, a
   * command admitted on another replica is emitted on this replica's client as `interactionCreate`,
   * so your routing reaches this wrapper, which runs `handler` with the turn.
   */
  command<T extends GuardedCommand = ChatInputCommandInteraction>(
    handler: CommandHandler<T>,
  ): (interaction: T) => Promise<void>;
  /** A ready-made `execute` for a stop command, whatever its name: stops the channel's turn. */
  stopCommand(interaction: GuardedCommand): Promise<void>;
  /**
   * The `messageUpdate` listener: `client.on(Events.MessageUpdate, guard.messageUpdate)`. An edit
   * of a pending message replaces it (its turn sees the edited message); of a running turn's
   * message, reaches `turn.onRevision`. Edits that leave the content alone (an embed Discord
   * added) and partial messages without content are skipped. Never rejects.
   */
  messageUpdate(
    oldMessage: ClientEvents["messageUpdate"][0],
    newMessage: ClientEvents["messageUpdate"][1],
  ): Promise<void>;
  /**
   * The `messageDelete` listener: `client.on(Events.MessageDelete, guard.messageDelete)`. A
   * pending message that is deleted is withdrawn (dropped as `withdrawn`); a running turn's
   * message reaches `turn.onRevision`. Works on partial (uncached) messages. Never rejects.
   */
  messageDelete(message: ClientEvents["messageDelete"][0]): Promise<void>;
  /**
   * The `messageDeleteBulk` listener: `client.on(Events.MessageBulkDelete,
   * guard.messageDeleteBulk)`. Each deleted message is withdrawn as by `messageDelete`.
   */
  messageDeleteBulk(
    messages:
      | ReadonlyMap<Snowflake, DiscordMessage | PartialMessage>
      | Collection<Snowflake, DiscordMessage | PartialMessage>,
  ): Promise<void>;
  /** The key of a message or interaction (components included), or `undefined`. */
  keyOf(input: DiscordMessage | Interaction): string | undefined;
  /**
   * Close the guard (see `Guard.close`). Close it before `client.destroy()`: running turns still
   * answer through the client. Commands that arrive afterwards are dropped (`shutdown`) and told so.
   */
  close: GuardControls<DiscordInput>["close"];
}
