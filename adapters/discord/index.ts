// === session-guard/discord: guard.message / guard.interaction / guard.command
//
// Thin adapter over the core for discord.js 14. discord.js has no middleware chain, so the adapter
// wraps listeners: `client.on(Events.MessageCreate, guard.message(handler))`, an interaction
// wrapper, and a command wrapper for the command-collection pattern. Every wrapper of one
// `discordGuard()` shares one core guard, so a slash command and a message in the same channel
// never run at the same time. Like every adapter it does three things: derive the key and the
// de-duplication id, decide what bypasses the guard (components, stop), and run the handler as a
// turn.
//
// Discord-specific duties:
// - An interaction needs a first response within 3 s, and its token lasts 15 minutes. Every guarded
//   command is deferred at admission, before it waits, so its handler always answers with
//   `editReply`/`followUp`; one still waiting when its token is about to die is dropped (`expired`).
// - An interaction carries its own answer, so it is never coalesced: it is a turn of its own.
// - discord.js clients capture rejected listener promises as `'error'` events, which crash a
//   process that does not listen for them. The listeners returned here never reject.
//
// Across replicas (a shared store such as `redisStore`), an input travels as the raw gateway
// payload it arrived as (`MESSAGE_CREATE`, `INTERACTION_CREATE`), which the adapter keeps from the
// client's `raw` event until the wrapped listener has it. The replica that runs the turn rebuilds
// the discord.js object from that payload with its own client, the way discord.js's own
// `MessageCreate` and `InteractionCreate` actions build them (internal API: checked at creation).
// A message turn then runs the handler of `guard.message(…)`; an interaction is emitted on the
// client with a marker, so the user's own routing (a command collection) reaches the wrapper that
// runs it, which attaches the turn instead of admitting it again. An interaction's token works from
// any process (`editReply`/`followUp` use the webhook route), but its first response must come
// within 3 s from the replica that received it: with a shared store a command is deferred first
// and admitted only once the deferral went through, so a replica that runs it can rely on it.
//
// Only types are imported from discord.js: at run time this file needs nothing but the core.

import type {
  ChatInputCommandInteraction,
  Client,
  ClientEvents,
  Interaction,
  MessageContextMenuCommandInteraction,
  UserContextMenuCommandInteraction,
} from "discord.js";
import {
  type Codec,
  type Drop,
  type DropReason,
  type ErrorInfo,
  type Guard,
  type GuardOptions,
  StoreError,
  type Turn,
} from "session-guard";
import { adapterGuard, type GuardControls, withGuardControls } from "../kit/guard.js";

// === Types users see

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
   * The text a deferred command is edited to when it is dropped before it ran (stopped, busy,
   * overflow, expired while its token lives, shutdown); `undefined` leaves it, `false` turns this
   * off. Default: a short English sentence per reason.
   */
  dropReply?: false | ((reason: DropReason, interaction: GuardedCommand) => string | undefined);
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
  /** The key of a message or interaction (components included), or `undefined`. */
  keyOf(input: DiscordMessage | Interaction): string | undefined;
  /**
   * Close the guard (see `Guard.close`). Close it before `client.destroy()`: running turns still
   * answer through the client. Commands that arrive afterwards are dropped (`shutdown`) and told so.
   */
  close: GuardControls<DiscordInput>["close"];
}

// === Internals

/** An interaction token lives 15 minutes from its creation. */
const TOKEN_LIFETIME = 15 * 60_000;
/** Discord shows "typing…" for 10 s after each request; renew it before it fades. */
const TYPING_EVERY = 8_000;
const DONE: Promise<void> = Promise.resolve();
const DEFERRED: Promise<boolean> = Promise.resolve(true);
const NOOP = (): void => {};

/** Options that belong to the adapter, not to the core guard. */
const ADAPTER_OPTIONS = new Set([
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
};

/** What a deferred command is edited to when a shared store could not take it (Redis down). */
const REFUSED_REPLY = "This request could not be taken right now; please send it again.";

function defaultDropReply(reason: DropReason): string | undefined {
  return DROP_REPLIES[reason];
}

function isMessage(input: DiscordMessage | Interaction): input is DiscordMessage {
  return "author" in input;
}

function isGuardedCommand(interaction: Interaction): interaction is GuardedCommand {
  return interaction.isChatInputCommand() || interaction.isContextMenuCommand();
}

/** Messages that never reach a handler: bots (this one included), webhooks, system messages. */
function isIgnored(message: DiscordMessage): boolean {
  return (
    message.author.bot ||
    message.webhookId !== null ||
    message.system ||
    message.author.id === message.client.user?.id
  );
}

/** A message's text as a stop word: trimmed, lower case, without a leading mention of the bot. */
function stopWordOf(message: DiscordMessage): string {
  let text = message.content.trim();
  const bot = message.client.user?.id;
  if (bot !== undefined && text.startsWith("<@")) {
    for (const mention of [`<@${bot}>`, `<@!${bot}>`]) {
      if (text.startsWith(mention)) text = text.slice(mention.length).trim();
    }
  }
  return text.toLowerCase();
}

/** Default key: bot + guild (or `dm`) + channel (+ user). Scoped by bot so bots can share a guard. */
function defaultKey(input: DiscordMessage | Interaction, perUser: boolean): string {
  const user = isMessage(input) ? input.author.id : input.user.id;
  const bot = input.client.user?.id ?? "-";
  // Every message and command has a channel; an interaction without one is keyed by its user.
  const channel = input.channelId ?? `@${user}`;
  const key = `dc:${bot}:${input.guildId ?? "dm"}:${channel}`;
  return perUser ? `${key}:${user}` : key;
}

function logTurnError(error: unknown, info: ErrorInfo<unknown>): void {
  const ids = (info.inputs as { id?: unknown }[])
    .map((input) => input?.id)
    .filter((id) => id !== undefined);
  console.error(
    `session-guard/discord: the turn for key "${info.key}" (inputs ${ids.join(", ") || "none"}) failed:`,
    error,
  );
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "function") return "a function";
  if (value === null) return "null";
  if (typeof value === "object") return Array.isArray(value) ? "an array" : "an object";
  return String(value);
}

function checkOptions(options: DiscordGuardOptions) {
  const where = "discordGuard";
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${where}: options must be an object, got ${describe(options)}.`);
  }
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
    dropReply = defaultDropReply,
    awaitTurn = false,
    onError,
  } = options;
  const flag = (name: string, value: unknown) => {
    if (typeof value !== "boolean") {
      throw new TypeError(`${where}: "${name}" must be true or false, got ${describe(value)}.`);
    }
  };
  const fn = (name: string, value: unknown, shape: string) => {
    if (value !== undefined && typeof value !== "function") {
      throw new TypeError(
        `${where}: "${name}" must be a function ${shape}, got ${describe(value)}.`,
      );
    }
  };
  const words = (name: string, value: unknown, example: string) => {
    if (!Array.isArray(value) || value.some((w) => typeof w !== "string" || w.trim() === "")) {
      throw new TypeError(
        `${where}: "${name}" must be an array of non-empty strings, e.g. ${example} ([] turns it off), got ${describe(value)}.`,
      );
    }
  };
  flag("perUser", perUser);
  flag("ephemeral", ephemeral);
  flag("typing", typing);
  flag("awaitTurn", awaitTurn);
  fn("key", key, "(input) => string | undefined");
  fn("onStop", onStop, "(source, stopped) => unknown");
  fn("onError", onError, "(error, info) => void");
  if (dropReply !== false)
    fn("dropReply", dropReply, "(reason, interaction) => string | undefined, or false");
  words("stopText", stopText, '["stop", "cancel"]');
  words("stopCommands", stopCommands, '["stop"]');
  if (key !== undefined && perUser) {
    throw new TypeError(
      `${where}: "perUser" shapes the default key; with your own "key" function, add the user id there.`,
    );
  }
  if (
    typeof expiryMargin !== "number" ||
    !Number.isInteger(expiryMargin) ||
    expiryMargin < 0 ||
    expiryMargin >= TOKEN_LIFETIME
  ) {
    throw new TypeError(
      `${where}: "expiryMargin" must be an integer number of ms from 0 to less than 900000 (an interaction token's 15 minutes), got ${describe(expiryMargin)}.`,
    );
  }
  const client = options.client;
  if (
    client !== undefined &&
    (typeof client !== "object" ||
      client === null ||
      typeof client.on !== "function" ||
      typeof client.emit !== "function")
  ) {
    throw new TypeError(
      `${where}: "client" must be the discord.js Client whose events the wrapped listeners receive, got ${describe(client)}.`,
    );
  }
  const shared = (options.store as { shared?: unknown } | undefined)?.shared === true;
  if (shared && client === undefined) {
    throw new TypeError(
      `${where}: a shared store ("store", e.g. redisStore) needs "client": discordGuard({ store, client }). Inputs travel between replicas as their raw gateway payloads, read from the client, and are rebuilt on the replica that runs them with its client.`,
    );
  }
  if (shared && internalsOf(client as Client) === undefined) {
    throw new TypeError(
      `${where}: this discord.js client lacks what a shared store needs to rebuild messages and interactions from raw payloads (client.actions.MessageCreate and InteractionCreate, as in discord.js 14). Use discord.js 14, or the default memory store.`,
    );
  }
  return {
    guard,
    key,
    perUser,
    // Only with a store of its own: a shared `guard` comes with its creator's handler and codec.
    client: shared ? client : undefined,
    stopText: new Set(stopText.map((w) => w.trim().toLowerCase())),
    stopCommands: new Set(stopCommands),
    onStop,
    ephemeral,
    typing,
    expiryMargin,
    dropReply: dropReply === false ? undefined : dropReply,
    awaitTurn,
    onError,
  };
}

// === Across replicas

/** A raw gateway payload: a `MESSAGE_CREATE` or `INTERACTION_CREATE` dispatch's `d`. */
type RawPayload = Record<string, unknown> & { readonly id: string };

/** What an input looks like in a shared store: the raw payload of a message or interaction. */
type Serialized = { readonly m: RawPayload } | { readonly i: RawPayload };

/** How long a raw payload waits for its listener before it is forgotten. */
const RAW_WAIT = 60_000;
/** Raw payloads kept at most while they wait for their listeners. */
const RAW_MAX = 10_000;

/**
 * The discord.js internals the adapter rebuilds objects with on a shared store: the client's
 * actions, which build messages and interactions from gateway payloads (discord.js 14).
 */
interface ClientInternals {
  readonly actions: {
    readonly MessageCreate: { getChannel(data: Record<string, unknown>): unknown };
    readonly InteractionCreate: { handle(data: unknown): unknown };
  };
  emit(event: string, ...args: unknown[]): boolean;
}

function internalsOf(client: Client): ClientInternals | undefined {
  const actions = (client as unknown as Partial<ClientInternals>).actions;
  if (
    typeof actions?.MessageCreate?.getChannel !== "function" ||
    typeof actions.InteractionCreate?.handle !== "function"
  ) {
    return undefined;
  }
  return client as unknown as ClientInternals;
}

/**
 * A message rebuilt from its `MESSAGE_CREATE` payload as discord.js's `MessageCreate` action builds
 * it (the channel resolved, or created as a partial DM channel, and the message cached in it),
 * without emitting it again.
 */
function rebuildMessage(client: ClientInternals, data: RawPayload): DiscordMessage {
  const channel = client.actions.MessageCreate.getChannel({
    id: data.channel_id,
    author: data.author,
    ...("guild_id" in data && { guild_id: data.guild_id }),
    ...("channel_type" in data && { type: data.channel_type }),
  }) as { isTextBased?(): boolean; messages?: { _add(data: unknown): DiscordMessage } } | null;
  if (channel?.isTextBased?.() !== true || channel.messages === undefined) {
    throw new Error(
      `discordGuard: message ${data.id} cannot be rebuilt on this replica: its channel ${String(data.channel_id)} is unknown to this client (give every replica the same intents and partials, e.g. Partials.Channel for DMs).`,
    );
  }
  return channel.messages._add(data);
}

/**
 * An interaction rebuilt from its `INTERACTION_CREATE` payload by discord.js's own
 * `InteractionCreate` action (which picks the class and resolves the channel), its
 * `interactionCreate` event caught here, synchronously, instead of reaching the client's listeners.
 */
function rebuildInteraction(client: ClientInternals, data: RawPayload): GuardedCommand {
  let built: unknown;
  const own = Object.hasOwn(client, "emit");
  const emit = client.emit;
  client.emit = function (this: unknown, event: string, ...args: unknown[]): boolean {
    if (event === "interactionCreate" && built === undefined) {
      built = args[0];
      return true;
    }
    return emit.call(this, event, ...args);
  };
  try {
    client.actions.InteractionCreate.handle(data);
  } finally {
    if (own) client.emit = emit;
    else delete (client as { emit?: unknown }).emit;
  }
  if (built === undefined) {
    throw new Error(
      `discordGuard: interaction ${data.id} cannot be rebuilt on this replica (discord.js created no interaction from its payload).`,
    );
  }
  return built as GuardedCommand;
}

/** An input that cannot travel: the adapter never saw the gateway payload it came in. */
function noRawPayload(what: "message" | "interaction", id: string): TypeError {
  return new TypeError(
    `discordGuard: ${what} ${id} has no raw gateway payload to send to another replica. With a shared store, wrap listeners of the client given as "client", and create the guard before client.login().`,
  );
}

/** Raw payloads of inputs, from the client's `raw` event until their listener takes them. */
class RawPayloads {
  readonly #byId = new Map<string, { readonly data: RawPayload; readonly at: number }>();

  put(data: RawPayload): void {
    const now = Date.now();
    // Insertion order is age order: forget payloads no listener took (bots, other channels).
    for (const [id, held] of this.#byId) {
      if (held.at > now - RAW_WAIT && this.#byId.size < RAW_MAX) break;
      this.#byId.delete(id);
    }
    this.#byId.set(data.id, { data, at: now });
  }

  take(id: string): RawPayload | undefined {
    const held = this.#byId.get(id);
    if (held !== undefined) this.#byId.delete(id);
    return held?.data;
  }
}

/** A turn being replayed as an `interactionCreate` event, by the interaction it replays. */
interface Replay {
  readonly turn: Turn<DiscordInput>;
  /** A guarded wrapper received it (else the user's routing did not reach one). */
  reached: boolean;
  result: Promise<unknown> | undefined;
}

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
  const { stopText, stopCommands, onStop, ephemeral, typing, expiryMargin, dropReply, awaitTurn } =
    settings;
  const userKey = settings.key;
  const perUser = settings.perUser;
  const keyOf = (input: DiscordMessage | Interaction): string | undefined =>
    userKey === undefined ? defaultKey(input, perUser) : userKey(input);
  const client = settings.client;
  const internals = client === undefined ? undefined : (internalsOf(client) as ClientInternals);
  /** Deferrals of this adapter's commands: resolves true once deferred, false if that failed. */
  const deferrals = new WeakMap<object, Promise<boolean>>();
  /** On a shared store: the handler of `guard.message(…)`, for messages of other replicas. */
  let messageHandler: MessageHandler | undefined;
  /** On a shared store: raw payloads waiting for their listeners, and what each input carries. */
  const raws = new RawPayloads();
  const serialized = new WeakMap<object, Serialized>();
  let wantsMessages = false;
  let wantsInteractions = false;
  /** Interactions being replayed for turns whose command came from another replica. */
  const replays = new WeakMap<object, Replay>();

  /** Run a turn whose latest input was admitted on another replica (and rebuilt here). */
  const runRemote = (turn: Turn<DiscordInput>): unknown => {
    const latest = turn.inputs[turn.inputs.length - 1] as DiscordInput;
    if (isMessage(latest)) {
      if (messageHandler === undefined) {
        throw new Error(
          `discordGuard: a message admitted on another replica for key "${turn.key}" has no handler here: wrap the messageCreate listener with guard.message(handler) on every replica.`,
        );
      }
      return runMessageTurn(messageHandler, latest, turn);
    }
    // Emitted as the client would, so the user's own routing (a command collection) reaches the
    // wrapper that runs it; that wrapper attaches this turn instead of admitting it again.
    const entry: Replay = { turn, reached: false, result: undefined };
    replays.set(latest, entry);
    try {
      (internals as ClientInternals).emit("interactionCreate", latest);
    } finally {
      replays.delete(latest);
    }
    if (!entry.reached) {
      throw new Error(
        `discordGuard: the command /${latest.commandName} admitted on another replica for key "${turn.key}" reached no guarded wrapper here when emitted as interactionCreate: route it to guard.interaction(…) or guard.command(…) on every replica, before any await.`,
      );
    }
    return entry.result;
  };

  /** How inputs travel through a shared store: their raw payloads, rebuilt with this client. */
  const codec: Codec<DiscordInput> = {
    encode(input: DiscordInput): Serialized {
      const data = serialized.get(input);
      if (data === undefined) {
        throw noRawPayload(isMessage(input) ? "message" : "interaction", input.id);
      }
      return data;
    },
    decode(data: unknown): DiscordInput {
      const payload = data as Serialized;
      const rebuilt =
        "m" in payload
          ? rebuildMessage(internals as ClientInternals, payload.m)
          : rebuildInteraction(internals as ClientInternals, payload.i);
      if (!isMessage(rebuilt)) {
        // The replica that received it deferred it before admitting it: the handler answers with
        // editReply/followUp, and a drop notice can be edited in from here.
        rebuilt.deferred = true;
        rebuilt.ephemeral = ephemeral;
        deferrals.set(rebuilt, DEFERRED);
      }
      serialized.set(rebuilt, payload);
      return rebuilt;
    },
  };

  const adapter = adapterGuard<DiscordInput>(
    "discordGuard",
    client === undefined ? options : { ...options, codec, handler: runRemote },
    ADAPTER_OPTIONS,
    { onError: logTurnError },
  );
  const guard = adapter.guard;
  if (client !== undefined) {
    client.on("raw", (packet: { t?: unknown; d?: unknown }) => {
      const data = packet?.d as RawPayload | undefined;
      if (typeof data?.id !== "string") return;
      if (packet.t === "MESSAGE_CREATE" && wantsMessages) raws.put(data);
      // Application commands (type 2) are what the guard admits; components pass through.
      else if (packet.t === "INTERACTION_CREATE" && wantsInteractions && data.type === 2) {
        raws.put(data);
      }
    });
  }
  /** Errors raised here, outside a turn (an interaction is reported as the input involved). */
  const reportError = (error: unknown, key: string, input?: DiscordInput | Interaction): void =>
    adapter.reportError(error, key, input as DiscordInput | undefined);

  /** The key of an input for an error report; never throws. */
  const keyForReport = (input: DiscordMessage | Interaction): string => {
    try {
      return keyOf(input) ?? "";
    } catch {
      return "";
    }
  };

  if (dropReply !== undefined) {
    // A command dropped before it ran would show "thinking…" until its token dies: answer it.
    guard.on("dropped", (drop: Drop<DiscordInput>) => {
      const deferral = deferrals.get(drop.input as object);
      if (deferral === undefined) return;
      const interaction = drop.input as GuardedCommand;
      let text: string | undefined;
      try {
        text = dropReply(drop.reason, interaction);
      } catch (error) {
        reportError(error, drop.key, interaction);
        return;
      }
      if (text === undefined) return;
      deferral
        .then((deferred) => {
          if (!deferred || Date.now() >= interaction.createdTimestamp + TOKEN_LIFETIME) return;
          return interaction.editReply({ content: text });
        })
        .catch((error: unknown) => reportError(error, drop.key, interaction));
    });
  }

  /** Submit one input; a refused admission is reported, never thrown or rejected. */
  const admit = (
    key: string | undefined,
    input: DiscordInput,
    run: (turn: Turn<DiscordInput>) => unknown,
    options: { id: string; alone?: boolean; expiresAt?: number },
    onRefused?: () => void,
  ): Promise<void> => {
    if (typeof key !== "string" || key === "") {
      reportError(
        new TypeError(
          `discordGuard: "key" must return a non-empty string (or undefined to ignore the input), got ${describe(key)}.`,
        ),
        "",
        input,
      );
      onRefused?.();
      return DONE;
    }
    return guard.submit(key, input, run, { ...options, awaitTurn }).then(NOOP, (error: unknown) => {
      // Awaiting the turn, a turn's error was reported by the guard already; only a refused
      // admission (the store failed) is this adapter's to report.
      if (!awaitTurn || (error instanceof StoreError && error.operation === "acquireOrEnqueue")) {
        reportError(error, key, input);
        onRefused?.();
      }
    });
  };

  /** Keep "typing…" alive while a message turn runs; answers the function that ends it. */
  const keepTyping = (message: DiscordMessage, key: string): (() => void) => {
    const channel = message.channel;
    if (!("sendTyping" in channel)) return NOOP;
    let timer: ReturnType<typeof setInterval> | undefined;
    let failed = false;
    const send = () => {
      channel.sendTyping().catch((error: unknown) => {
        if (failed) return;
        // Report once and give up for this turn: a channel that refuses typing refuses it again.
        failed = true;
        clearInterval(timer);
        reportError(error, key, message);
      });
    };
    send();
    timer = setInterval(send, TYPING_EVERY);
    timer.unref?.();
    return () => clearInterval(timer);
  };

  const runMessageTurn = async (
    handler: MessageHandler,
    message: DiscordMessage,
    turn: Turn<DiscordInput>,
  ): Promise<unknown> => {
    const stopTyping = typing ? keepTyping(message, turn.key) : NOOP;
    try {
      return await handler(message, turn as unknown as DiscordTurn<DiscordMessage>);
    } finally {
      stopTyping();
    }
  };

  /** Stop the key, then answer the stop (`onStop`, or the default reply to a stop command). */
  const stopFrom = async (source: DiscordMessage | GuardedCommand, key: string): Promise<void> => {
    let stopped = false;
    try {
      stopped = await guard.stop(key);
    } catch (error) {
      reportError(error, key, source);
    }
    try {
      if (onStop !== undefined) await onStop(source, stopped);
      else if (!isMessage(source)) {
        await source.reply({
          content: stopped ? "Stopped." : "Nothing to stop.",
          ...(ephemeral ? { flags: "Ephemeral" as const } : {}),
        });
      }
    } catch (error) {
      reportError(error, key, source);
    }
  };

  /** Admit a guarded command: stop, drop at once if its token is too old, else defer and submit. */
  const admitCommand = <T extends GuardedCommand>(
    interaction: T,
    handler: CommandHandler<T>,
  ): Promise<void> => {
    const replaying = replays.get(interaction);
    if (replaying !== undefined) {
      // A turn of this replica running a command admitted elsewhere: run it, never re-admit it.
      // (Another guarded wrapper the routing also reaches leaves it alone.)
      if (replaying.reached) return DONE;
      replaying.reached = true;
      const turn = replaying.turn as unknown as DiscordTurn<T>;
      const result = new Promise<unknown>((resolve) => resolve(handler(interaction, turn)));
      replaying.result = result;
      return result.then(NOOP, NOOP);
    }
    const raw = client === undefined ? undefined : raws.take(interaction.id);
    const key = keyOf(interaction);
    if (key === undefined) return DONE;
    if (stopCommands.has(interaction.commandName)) return stopFrom(interaction, key);
    const id = `dc:${interaction.client.user?.id ?? "-"}:${interaction.id}`;
    const expiresAt = interaction.createdTimestamp + TOKEN_LIFETIME - expiryMargin;
    if (expiresAt <= Date.now()) {
      guard.reportDrop({ key, input: interaction, id, reason: "expired" });
      return DONE;
    }
    if (client !== undefined) {
      if (raw === undefined) {
        // It could never run on another replica: refuse it before it is deferred.
        reportError(noRawPayload("interaction", interaction.id), key, interaction);
        return DONE;
      }
      serialized.set(interaction, { i: raw });
    }
    // Answer Discord now (3 s), whether the command runs at once or waits; the turn starts its
    // handler only once the deferral went through, so `editReply` always works there.
    const deferral = interaction.deferReply(ephemeral ? { flags: "Ephemeral" } : {}).then(
      () => true,
      (error: unknown) => {
        if (client !== undefined && (error as { code?: unknown } | null)?.code === 40060) {
          // "Already acknowledged": another process received the same interaction and took it.
          guard.reportDrop({ key, input: interaction, id, reason: "duplicate" });
        } else reportError(error, key, interaction);
        return false;
      },
    );
    deferrals.set(interaction, deferral);
    const run = async (turn: Turn<DiscordInput>) => {
      // Without a deferral the interaction cannot be answered; the failure was reported.
      if (await deferral) return handler(interaction, turn as unknown as DiscordTurn<T>);
    };
    if (client !== undefined) {
      // Another replica may run it, relying on the deferral: store it only once deferred. (Input
      // of its channel that arrives meanwhile may be admitted before it.) Discord never
      // redelivers an interaction, so one the store refused is told to send it again.
      const refused = () => {
        if (dropReply === undefined) return;
        interaction
          .editReply({ content: REFUSED_REPLY })
          .catch((error: unknown) => reportError(error, key, interaction));
      };
      return deferral.then((deferred) =>
        deferred ? admit(key, interaction, run, { id, alone: true, expiresAt }, refused) : DONE,
      );
    }
    return admit(key, interaction, run, { id, alone: true, expiresAt });
  };

  const message = (handler: MessageHandler) => {
    checkHandler("message", handler);
    if (client !== undefined) {
      if (messageHandler !== undefined && messageHandler !== handler) {
        throw new TypeError(
          "discordGuard: with a shared store, wrap one message handler per guard: a message admitted on another replica runs here with the handler given to guard.message(…), so there can be only one.",
        );
      }
      messageHandler = handler;
      wantsMessages = true;
    }
    return (message: DiscordMessage): Promise<void> => {
      try {
        const raw = client === undefined ? undefined : raws.take(message.id);
        if (isIgnored(message)) return DONE;
        const key = keyOf(message);
        if (key === undefined) return DONE;
        if (stopText.size > 0 && stopText.has(stopWordOf(message))) {
          return stopFrom(message, key);
        }
        const id = `dc:${message.client.user?.id ?? "-"}:${message.id}`;
        if (client !== undefined) {
          if (raw === undefined) {
            // It could never run on another replica: refuse it rather than keep it local.
            reportError(noRawPayload("message", message.id), key, message);
            return DONE;
          }
          serialized.set(message, { m: raw });
        }
        return admit(key, message, (turn) => runMessageTurn(handler, message, turn), { id });
      } catch (error) {
        reportError(error, keyForReport(message), message);
        return DONE;
      }
    };
  };

  /** A component, autocomplete or modal: the handler runs now, beside any turn. */
  const passThrough = (handler: InteractionHandler, interaction: PassThroughInteraction) => {
    const fail = (error: unknown) => reportError(error, keyForReport(interaction), interaction);
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
    wantsInteractions = true;
    return (interaction: Interaction): Promise<void> => {
      try {
        if (!isGuardedCommand(interaction)) return passThrough(handler, interaction);
        return admitCommand(interaction, handler);
      } catch (error) {
        reportError(error, keyForReport(interaction), interaction);
        return DONE;
      }
    };
  };

  const command = <T extends GuardedCommand = ChatInputCommandInteraction>(
    handler: CommandHandler<T>,
  ) => {
    checkHandler("command", handler);
    wantsInteractions = true;
    return (interaction: T): Promise<void> => {
      try {
        if (!isGuardedCommand(interaction)) {
          throw new TypeError(
            "discordGuard: command() runs slash and context-menu commands; hand buttons, menus and modals to interaction() or to your own listener.",
          );
        }
        return admitCommand(interaction, handler);
      } catch (error) {
        reportError(error, keyForReport(interaction), interaction);
        return DONE;
      }
    };
  };

  const stopCommand = (interaction: GuardedCommand): Promise<void> => {
    try {
      if (client !== undefined) raws.take(interaction.id);
      const key = keyOf(interaction);
      return key === undefined ? DONE : stopFrom(interaction, key);
    } catch (error) {
      reportError(error, keyForReport(interaction), interaction);
      return DONE;
    }
  };

  return withGuardControls({ message, interaction, command, stopCommand, keyOf }, guard);
}

export type { Drop, DropReason, ErrorInfo, Guard, GuardOptions, Turn };
