// === session-guard/grammy: `bot.use(sessionGuard())`
//
// Thin adapter over the core. It does three things: derive the key and the de-duplication id of an
// update, decide what bypasses the guard (callback queries, stop), and map "run the rest of the
// middleware chain" onto a turn. grammY's `next` runs the update it was called with, so a turn runs
// the `next` of its latest update, with every coalesced context in `ctx.turn.inputs`.
//
// Across replicas (a shared store such as `redisStore`), an update travels as its JSON `Update`.
// A turn whose latest update was admitted on another replica has no `next` here: the adapter
// replays that update through `bot.handleUpdate` with a marker its middleware recognises, so the
// update runs the bot's middleware as usual and attaches the current turn instead of being
// admitted again. The other updates of the turn become contexts of this bot for `ctx.turn.inputs`.
//
// Only types are imported from grammy: at run time this file needs nothing but the core.

import type { Bot, Context, MiddlewareFn, NextFunction } from "grammy";
import type { Message, Update, UserFromGetMe } from "grammy/types";
import type {
  CloseOptions,
  Codec,
  Drop,
  ErrorInfo,
  Guard,
  GuardOptions,
  SubmitOptions,
  Turn,
} from "session-guard";
import { adapterGuard, type GuardControls, withGuardControls } from "../kit/guard.js";

// === Types users see

/**
 * The turn's `AbortSignal`, typed so that grammY accepts it without a cast.
 *
 * On Node, grammY types the signal parameter of its API calls with the `abort-controller` shim,
 * which a standard `AbortSignal` does not satisfy under strict TypeScript. This intersection is
 * both: pass it to `ctx.reply(text, {}, signal)` and every other API call, and to `fetch` or an AI
 * SDK. At run time it is a standard `AbortSignal`.
 */
export type TurnSignal = AbortSignal & NonNullable<Parameters<Context["reply"]>[2]>;

/** The turn a guarded update runs in, as `ctx.turn`. */
export interface GrammyTurn<C> {
  /** The key this turn holds (bot, chat and forum topic by default). */
  readonly key: string;
  /**
   * Every context of the turn, oldest first: coalesced messages, each photo of an album, then the
   * contexts `take()` moved in. The context the handler runs with is the last one admitted.
   */
  readonly inputs: readonly C[];
  /** Aborted on stop, interrupt, timeout or shutdown; `signal.reason` says which. */
  readonly signal: TurnSignal;
  /** Grows with every claim of the key: store it with what the turn writes. */
  readonly fence: number;
  /** Updates of this key waiting right now. */
  readonly pendingCount: number;
  /** True once the turn no longer holds its key. */
  readonly stale: boolean;
  /** Move pending updates into this turn (steer mode); resolves with the contexts moved. */
  take(): Promise<C[]>;
  /** Learn that updates arrived during the turn; returns the function that unsubscribes. */
  onPending(listener: (pending: number) => void): () => void;
}

/** The context flavor that adds `ctx.turn` (grammY's flavor pattern). */
export interface TurnContextFlavor {
  /**
   * The running turn. Present on updates the guard ran as a turn; reading it on a bypassed update
   * (a callback query, a stop command, an update with no chat) throws an error that says so.
   */
  readonly turn: GrammyTurn<this>;
}

/** `Context` with `ctx.turn`: `type MyContext = TurnFlavor<Context>`. */
export type TurnFlavor<C extends Context = Context> = C & TurnContextFlavor;

/** Options of `sessionGuard()`: every core option, plus the Telegram-specific ones. */
export interface SessionGuardOptions<C extends Context> extends GuardOptions<C> {
  /**
   * Share an existing core guard (several bots or platforms on one guard). Core options then
   * belong to `createGuard`, not here.
   */
  guard?: Guard<unknown>;
  /**
   * The key of an update: `undefined` lets the update pass unguarded. Default: bot id + chat id
   * (+ forum topic) — see the README for matching grammY's session key.
   */
  key?: (ctx: C) => string | undefined;
  /** More updates that pass straight through (callback queries always do). */
  bypass?: (ctx: C) => boolean;
  /** Commands that stop the chat's turn and then reach your handlers. Default `["stop"]`. */
  stopCommands?: readonly string[];
  /** Ms to wait after the last photo of an album before it enters a turn. Default 800. */
  mediaGroupSettle?: number;
  /**
   * Keep the middleware waiting until the update's turn has settled, and reject with the turn's
   * error (serverless hosts). Default `false`: the turn runs detached. An adapter setting: with a
   * shared `guard` it applies to this bot's updates, whatever the guard's own default.
   */
  awaitTurn?: boolean;
  /**
   * Receives the errors of turns (with an own guard) and errors raised in the adapter outside a
   * turn: a throwing `key` function, a stop that failed. With a shared `guard`, only the latter;
   * without it they go to the shared guard's `onError`.
   */
  onError?: (error: unknown, info: ErrorInfo<C>) => void;
  /**
   * The bot this middleware is installed on. Required with a shared store (`redisStore`): updates
   * admitted on another replica run here through `bot.handleUpdate`, and their contexts are built
   * with the bot's context class.
   */
  bot?: Bot<C>;
}

/** The middleware, carrying the guard's methods. */
export interface SessionGuardMiddleware<C extends Context>
  extends MiddlewareFn<C>,
    GuardControls<C> {
  /** The key this middleware gives an update, or `undefined` when it passes unguarded. */
  keyOf(ctx: C): string | undefined;
  /** Stop a key: abort its turn, drop its pending updates (and an album still gathering). */
  stop(key: string): Promise<boolean>;
  /** Flush gathering albums, then close the guard (see `Guard.close`). */
  close: GuardControls<C>["close"];
}

// === Internals

/** Options that belong to the adapter, not to the core guard. */
const ADAPTER_OPTIONS = new Set([
  "bot",
  "guard",
  "key",
  "bypass",
  "stopCommands",
  "mediaGroupSettle",
  "awaitTurn",
]);

/** The updates that carry new user input. Everything else with a chat passes through. */
function incomingMessage(ctx: Context) {
  const update = ctx.update;
  return update.message ?? update.business_message ?? update.guest_message ?? update.channel_post;
}

/** The bot command an update starts with (`/stop@this_bot` → "stop"), if it is addressed to us. */
function commandOf(ctx: Context, message: Message): string | undefined {
  const text = message.text;
  if (text === undefined || text.charCodeAt(0) !== 47 /* "/" */) return undefined;
  const entity = message.entities?.[0];
  if (entity === undefined || entity.type !== "bot_command" || entity.offset !== 0)
    return undefined;
  const command = text.slice(1, entity.length);
  const at = command.indexOf("@");
  if (at < 0) return command;
  const target = command.slice(at + 1);
  return target.toLowerCase() === ctx.me.username.toLowerCase() ? command.slice(0, at) : undefined;
}

/** `tg:<bot id>:`, the prefix of a bot's keys and ids; remembered, as it is built per update. */
let lastBot: UserFromGetMe | undefined;
let lastPrefix = "";
function prefixOf(me: UserFromGetMe): string {
  if (me !== lastBot) {
    lastBot = me;
    lastPrefix = `tg:${me.id}:`;
  }
  return lastPrefix;
}

/** The key of a chat (and forum topic). */
function chatKey(ctx: Context, chatId: number, topic: number | undefined): string {
  const prefix = prefixOf(ctx.me);
  return topic === undefined ? prefix + chatId : `${prefix}${chatId}:${topic}`;
}

/** Default key: bot id + chat id, plus the forum topic. Scoped by bot so bots can share a guard. */
function defaultKey(ctx: Context): string | undefined {
  // The common case first: a new message, without grammY's getter chains.
  const incoming = incomingMessage(ctx);
  if (incoming !== undefined) {
    return chatKey(
      ctx,
      incoming.chat.id,
      incoming.is_topic_message ? incoming.message_thread_id : undefined,
    );
  }
  const chatId = ctx.chatId;
  if (chatId === undefined) return undefined;
  // ctx.msg includes a callback query's message, so a button gets its topic's key too.
  const message = ctx.msg;
  const topic = message?.is_topic_message
    ? message.message_thread_id
    : ctx.update.stopped_message_generation?.message_thread_id;
  return chatKey(ctx, chatId, topic);
}

/**
 * Where an admitted context keeps its `next` until its turn runs: a property of the context, so
 * admission needs no closure per update.
 */
const NEXT = Symbol("session-guard next");
interface Pending {
  [NEXT]: NextFunction | undefined;
}

const NO_TURN: PropertyDescriptor = {
  configurable: true,
  get() {
    throw new Error(
      "ctx.turn is not available: this update was not run as a turn (a callback query, a stop command, an update without a chat, or one your `bypass` let through).",
    );
  },
};

/** Albums: the contexts of one media group, gathered until `mediaGroupSettle` passes quietly. */
interface Album<C> {
  readonly key: string;
  readonly contexts: C[];
  /**
   * De-duplication id: the media group, so a photo redelivered after its album ran is a duplicate.
   * (A photo straggling in later than `mediaGroupSettle` after its album ran is one too: reported
   * through `onDrop`, never silently lost.)
   */
  readonly id: string;
  next: NextFunction;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Callers under `awaitTurn` wait for the album's turn. */
  waiters: { resolve(): void; reject(error: unknown): void }[];
}

/** The album a context came in with, for `ctx.turn.inputs`. */
const albumOf = new WeakMap<object, readonly unknown[]>();

/** A context rebuilt from another replica's update → the context its replay runs with. */
const replayedAs = new WeakMap<object, unknown>();

function replayed<C>(input: C): C {
  return (replayedAs.get(input as object) as C | undefined) ?? input;
}

function expand<C>(inputs: readonly C[]): C[] {
  const out: C[] = [];
  for (const input of inputs) {
    const album = albumOf.get(input as object) as readonly C[] | undefined;
    if (album === undefined) out.push(replayed(input));
    else for (const photo of album) out.push(replayed(photo));
  }
  return out;
}

/** A turn being replayed through `bot.handleUpdate`, by the update object it replays. */
interface Replay {
  readonly turn: Turn<unknown>;
  readonly input: object;
  failed: boolean;
  error: unknown;
}

/** What an update (or an album's updates) looks like in a shared store. */
type Serialized = { u: Update } | { a: Update[] };

class TurnView<C> implements GrammyTurn<C> {
  readonly #turn: Turn<C>;
  #inputs: C[] | undefined;
  #seen = 0;

  constructor(turn: Turn<C>) {
    this.#turn = turn;
  }
  get key() {
    return this.#turn.key;
  }
  get inputs(): readonly C[] {
    const inputs = this.#turn.inputs;
    if (this.#inputs === undefined || this.#seen !== inputs.length) {
      this.#inputs = expand(inputs);
      this.#seen = inputs.length;
    }
    return this.#inputs;
  }
  get signal() {
    return this.#turn.signal as TurnSignal;
  }
  get fence() {
    return this.#turn.fence;
  }
  get pendingCount() {
    return this.#turn.pendingCount;
  }
  get stale() {
    return this.#turn.stale;
  }
  async take(): Promise<C[]> {
    return expand(await this.#turn.take());
  }
  onPending(listener: (pending: number) => void) {
    return this.#turn.onPending(listener);
  }
}

function logTurnError(error: unknown, info: ErrorInfo<unknown>): void {
  const updates = (info.inputs as Context[])
    .map((ctx) => ctx?.update?.update_id)
    .filter((id) => id !== undefined);
  console.error(
    `session-guard/grammy: the turn for key "${info.key}" (updates ${updates.join(", ") || "none"}) failed:`,
    error,
  );
}

function checkOptions<C extends Context>(options: SessionGuardOptions<C>) {
  const where = "sessionGuard";
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${where}: options must be an object, got ${String(options)}.`);
  }
  const { bot, store } = options;
  if (bot !== undefined && (typeof bot !== "object" || bot === null || !("handleUpdate" in bot))) {
    throw new TypeError(`${where}: "bot" must be the grammY Bot this middleware is installed on.`);
  }
  if (store?.shared === true && bot === undefined) {
    throw new TypeError(
      `${where}: a shared store (redisStore) needs "bot": sessionGuard({ store, bot }). Updates admitted on another replica run on this one through bot.handleUpdate.`,
    );
  }
  const {
    guard,
    key,
    bypass,
    stopCommands = ["stop"],
    mediaGroupSettle = 800,
    awaitTurn = false,
    onError,
  } = options;
  if (typeof awaitTurn !== "boolean") {
    throw new TypeError(`${where}: "awaitTurn" must be true or false, got ${String(awaitTurn)}.`);
  }
  if (onError !== undefined && typeof onError !== "function") {
    throw new TypeError(`${where}: "onError" must be a function (error, info) => void.`);
  }
  if (key !== undefined && typeof key !== "function") {
    throw new TypeError(`${where}: "key" must be a function (ctx) => string | undefined.`);
  }
  if (bypass !== undefined && typeof bypass !== "function") {
    throw new TypeError(`${where}: "bypass" must be a function (ctx) => boolean.`);
  }
  if (!Array.isArray(stopCommands) || stopCommands.some((c) => typeof c !== "string")) {
    throw new TypeError(
      `${where}: "stopCommands" must be an array of command names without the slash, e.g. ["stop", "cancel"].`,
    );
  }
  if (
    typeof mediaGroupSettle !== "number" ||
    !Number.isInteger(mediaGroupSettle) ||
    mediaGroupSettle < 0
  ) {
    throw new TypeError(
      `${where}: "mediaGroupSettle" must be an integer number of ms (0 or more), got ${String(mediaGroupSettle)}.`,
    );
  }
  return { guard, key, bypass, stopCommands, mediaGroupSettle, awaitTurn, onError, bot };
}

/**
 * grammY middleware that runs one agent turn per chat at a time. Install it first, with
 * `bot.use`, before any middleware that awaits.
 *
 * - The middleware returns as soon as the update is admitted; the turn runs detached, so
 *   `bot.start()` keeps serving every other chat and `webhookCallback` answers Telegram at once.
 *   `awaitTurn: true` waits instead (serverless hosts).
 * - Messages that arrive during a turn are pending input, handled by `mode` (default: coalesced
 *   into one next turn, all of them in `ctx.turn.inputs`).
 * - Callback queries pass straight through, so a turn waiting for an approval button never
 *   deadlocks. `/stop` (and Bot API 10.3's `stopped_message_generation`) stops the chat's turn and
 *   then reaches your handlers. Bot commands run as turns of their own, never coalesced.
 * - The photos of an album enter one turn together.
 *
 * @example
 * ```ts
 * type MyContext = TurnFlavor<Context>;
 * const bot = new Bot<MyContext>(token);
 * const guard = sessionGuard<MyContext>({ mode: "collect" });
 * bot.use(guard);
 * bot.command("stop", (ctx) => ctx.reply("Stopped."));
 * bot.on("message", async (ctx) => {
 *   const prompt = ctx.turn.inputs.map((c) => c.msg?.text ?? c.msg?.caption ?? "").join("\n");
 *   await ctx.reply(await agent(prompt, { signal: ctx.turn.signal }), {}, ctx.turn.signal);
 * });
 * bot.start();
 * ```
 */
export function sessionGuard<C extends Context = Context>(
  options: SessionGuardOptions<C> = {},
): SessionGuardMiddleware<C> {
  const settings = checkOptions(options);
  const stopCommands = new Set(settings.stopCommands);
  const bypass = settings.bypass;
  const keyOf = settings.key ?? defaultKey;
  const settleAlbum = settings.mediaGroupSettle;
  const awaitTurn = settings.awaitTurn;
  const bot = settings.bot;
  /** Updates being replayed for a turn whose latest update came from another replica. */
  const replays = new WeakMap<object, Replay>();
  // On a shared store, updates travel as JSON and turns of other replicas' updates replay here.
  const replaying =
    settings.guard === undefined && options.store?.shared === true && bot !== undefined
      ? { codec: updateCodec(bot), handler: (turn: Turn<C>) => replay(bot, replays, turn) }
      : {};
  const { guard, reportError } = adapterGuard<C>(
    "sessionGuard",
    { ...options, ...replaying },
    ADAPTER_OPTIONS,
    { onError: logTurnError },
  );
  const albums = new Map<string, Album<C>>();

  const flush = (albumKey: string, album: Album<C>): Promise<unknown> => {
    albums.delete(albumKey);
    clearTimeout(album.timer);
    const last = album.contexts[album.contexts.length - 1] as C;
    albumOf.set(last, album.contexts);
    (last as unknown as Pending)[NEXT] = album.next;
    const admitted = guard.submit(album.key, last, runTurn, {
      id: album.id,
      awaitTurn: album.waiters.length > 0,
    });
    const waiters = album.waiters;
    admitted.then(
      () => {
        for (const waiter of waiters) waiter.resolve();
      },
      (error: unknown) => {
        for (const waiter of waiters) waiter.reject(error);
      },
    );
    return admitted;
  };

  const gather = (ctx: C, next: NextFunction, key: string, group: string): Promise<void> => {
    const albumKey = `${key}:album:${group}`;
    let album = albums.get(albumKey);
    if (album === undefined) {
      album = { key, id: albumKey, contexts: [], next, timer: undefined, waiters: [] };
      albums.set(albumKey, album);
    }
    const updateId = ctx.update.update_id;
    if (album.contexts.some((c) => c.update.update_id === updateId)) {
      // A redelivered photo: the album already holds it. Report it like any duplicate.
      guard.reportDrop({ key, input: ctx, id: album.id, reason: "duplicate" });
      return Promise.resolve();
    }
    album.contexts.push(ctx);
    album.next = next;
    clearTimeout(album.timer);
    const current = album;
    album.timer = setTimeout(() => {
      flush(albumKey, current).catch((error: unknown) => reportError(error, key, ctx));
    }, settleAlbum);
    if (!awaitTurn) return Promise.resolve();
    return new Promise((resolve, reject) => current.waiters.push({ resolve, reject }));
  };

  const middleware = (ctx: C, next: NextFunction): Promise<void> | unknown => {
    const replaying = replays.get(ctx.update);
    if (replaying !== undefined) {
      // A turn of this replica running an update admitted elsewhere: attach it, never re-admit.
      replays.delete(ctx.update);
      replayedAs.set(replaying.input, ctx);
      (ctx as { turn?: GrammyTurn<C> }).turn = new TurnView(replaying.turn as Turn<C>);
      return next().catch((error: unknown) => {
        replaying.failed = true;
        replaying.error = error;
        throw error;
      });
    }
    const key = keyOf(ctx);
    const message = key === undefined ? undefined : incomingMessage(ctx);
    if (message === undefined || bypass?.(ctx)) {
      if (key !== undefined && ctx.update.stopped_message_generation !== undefined) {
        stop(key).catch((error: unknown) => reportError(error, key, ctx));
      }
      Object.defineProperty(ctx, "turn", NO_TURN);
      return next();
    }
    const command = commandOf(ctx, message);
    if (command !== undefined && stopCommands.has(command)) {
      // Control bypasses the queue: abort the turn now, then let the stop handler answer.
      stop(key as string).catch((error: unknown) => reportError(error, key as string, ctx));
      Object.defineProperty(ctx, "turn", NO_TURN);
      return next();
    }
    const group = message.media_group_id;
    if (group !== undefined) return gather(ctx, next, key as string, group);
    (ctx as unknown as Pending)[NEXT] = next;
    const updateId = ctx.update.update_id;
    // The update id is unique within one bot: a guard of this bot's own can take it as it is,
    // which its store remembers as a number. On a guard or store shared with other bots, it is
    // scoped by the bot.
    submitOptions.id = ownIds ? String(updateId) : prefixOf(ctx.me) + updateId;
    // A command answers on its own: never coalesced with the messages around it.
    submitOptions.alone = command !== undefined;
    const admitted = guard.submit(key as string, ctx, runTurn, submitOptions);
    // Detached, this resolves at admission; returned either way, so a refused admission (an
    // invalid key, a store that is down) rejects `handleUpdate` instead of going unhandled.
    return admitted;
  };

  // One options object and one turn function serve every update (`submit` reads its options
  // before it returns): admitting a plain message makes no closure and no options object.
  const submitOptions: SubmitOptions = { id: undefined, alone: false, awaitTurn };
  const ownIds = settings.guard === undefined && options.store === undefined;
  function runTurn(turn: Turn<C>, ctx: C): Promise<void> {
    const next = (ctx as unknown as Pending)[NEXT] as NextFunction;
    (ctx as unknown as Pending)[NEXT] = undefined;
    (ctx as { turn?: GrammyTurn<C> }).turn = new TurnView(turn);
    return next();
  }

  function stop(key: string): Promise<boolean> {
    let dropped = false;
    for (const [albumKey, album] of albums) {
      if (album.key !== key) continue;
      // An album still gathering is one input that never reached the guard: drop it here.
      albums.delete(albumKey);
      clearTimeout(album.timer);
      const input = album.contexts[album.contexts.length - 1] as C;
      guard.reportDrop({ key, input, id: album.id, reason: "stopped" });
      for (const waiter of album.waiters) waiter.resolve();
      dropped = true;
    }
    const stopped = guard.stop(key);
    return dropped ? stopped.then(() => true) : stopped;
  }

  const close = (closeOptions?: CloseOptions) => {
    for (const [albumKey, album] of albums) {
      flush(albumKey, album).catch((error: unknown) => reportError(error, album.key));
    }
    return guard.close(closeOptions);
  };
  return withGuardControls(Object.assign(middleware, { keyOf }), guard, { stop, close });
}

/**
 * How updates travel through a shared store: the `Update` (or an album's updates) as JSON, rebuilt
 * as contexts of `bot` on the replica that runs the turn.
 */
function updateCodec<C extends Context>(bot: Bot<C>): Codec<C> {
  const ContextConstructor = (
    bot as unknown as {
      ContextConstructor: new (...args: ConstructorParameters<typeof Context>) => C;
    }
  ).ContextConstructor;
  return {
    encode(ctx: C): Serialized {
      const album = albumOf.get(ctx) as readonly C[] | undefined;
      return album === undefined ? { u: ctx.update } : { a: album.map((c) => c.update) };
    },
    decode(data: unknown): C {
      const serialized = data as Serialized;
      const updates = "a" in serialized ? serialized.a : [serialized.u];
      const contexts = updates.map(
        (update) => new ContextConstructor(update, bot.api, bot.botInfo),
      );
      const last = contexts[contexts.length - 1] as C;
      if (contexts.length > 1 || "a" in serialized) albumOf.set(last, contexts);
      return last;
    },
  };
}

/**
 * Run a turn whose latest update was admitted on another replica: replay that update through the
 * bot, so it runs the middleware like any update, and let the middleware attach the turn.
 */
async function replay<C extends Context>(
  bot: Bot<C>,
  replays: WeakMap<object, Replay>,
  turn: Turn<C>,
): Promise<void> {
  const input = turn.inputs[turn.inputs.length - 1] as C;
  const entry: Replay = { turn: turn as Turn<unknown>, input, failed: false, error: undefined };
  replays.set(input.update, entry);
  try {
    await bot.handleUpdate(input.update);
  } catch (error) {
    // grammY wraps middleware errors in a BotError: report the turn's own error, as a local turn.
    throw entry.failed ? entry.error : error;
  } finally {
    replays.delete(input.update);
  }
  if (entry.failed) throw entry.error;
}

export type { Drop, ErrorInfo, Guard, GuardOptions, Turn };
