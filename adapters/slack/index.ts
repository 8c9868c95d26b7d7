// === session-guard/slack: `app.use(slackGuard())`
//
// Thin adapter over the core, installed as Bolt global middleware. It derives the key and the
// de-duplication id of a payload, decides what bypasses the guard (edits, bot messages, block
// actions, stop), acknowledges what it does not hand to a listener at once, and maps "run the rest
// of the middleware chain" onto a turn. Bolt's `next` runs the payload it was called with, so a
// turn runs the `next` of its latest payload, with every coalesced payload in `context.turn.inputs`.
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
// Across replicas (a shared store such as `redisStore`), a payload travels as the request body Bolt
// received. A turn whose latest payload was admitted on another replica has no `next` here: the
// adapter replays that body through `app.processEvent` with a no-op `ack` (the receiving replica
// already answered Slack) and a marker its middleware recognises, so the payload runs the app's
// middleware and listeners as usual and gets the current turn instead of being admitted again.
//
// Only types are imported from @slack/bolt: at run time this file needs nothing but the core.

import type {
  AckFn,
  AllMiddlewareArgs,
  AnyMiddlewareArgs,
  App,
  Context,
  Middleware,
  RespondFn,
  SayFn,
  SlashCommand,
  types,
} from "@slack/bolt";
import type { Codec, Drop, ErrorInfo, Guard, GuardOptions, Turn } from "session-guard";
import { adapterGuard, type GuardControls, withGuardControls } from "../kit/guard.js";

// === Types users see

/** A message event written by a person: the message subtypes the guard admits. */
export type SlackUserMessage =
  | types.GenericMessageEvent
  | types.FileShareMessageEvent
  | types.ThreadBroadcastMessageEvent
  // A /me message in a thread carries `thread_ts` too, though Slack's type leaves it out.
  | (types.MeMessageEvent & { thread_ts?: string });

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
  readonly context: Context;
  /** A Web API client with the payload's token (add a reaction, post in the thread). */
  readonly client: SlackMiddlewareArgs["client"];
  /** Posts to the payload's channel (not its thread: pass `thread_ts`). */
  readonly say: SayFn | undefined;
  /** Answers a slash command through its `response_url` (ephemeral by default). */
  readonly respond: RespondFn | undefined;
}

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

// === Internals

/** Options that belong to the adapter, not to the core guard. */
const ADAPTER_OPTIONS = new Set([
  "app",
  "guard",
  "key",
  "bypass",
  "stopTexts",
  "stopCommands",
  "onQueued",
  "awaitTurn",
]);

/** Message subtypes that carry new input from a person. Every other subtype passes through. */
const USER_SUBTYPES = new Set<string | undefined>([
  undefined,
  "file_share",
  "thread_broadcast",
  "me_message",
]);

/** A response_url lasts 30 minutes; a command still waiting after this is dropped (`expired`). */
const COMMAND_LIFETIME = 29 * 60_000;

/** Mentions at the start of a message (`<@U0BOT> stop`), stripped before the stop check. */
const LEADING_MENTIONS = /^(?:\s*<@[^>]*>)+/;

/** The loosely typed view of middleware arguments this file reads. */
interface Args {
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

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function record(value: unknown): Record<string, unknown> | undefined {
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
function inputOf(args: Args): SlackInput | undefined {
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
function channelKey(context: Context, channel: string): string {
  return `slack:${tenantOf(context)}:${channel}`;
}

/** Default key: tenant + channel + `thread_ts ?? ts`; a DM (and a command) by channel alone. */
function defaultKey(args: SlackMiddlewareArgs): string | undefined {
  const loose = args as unknown as Args;
  const place = placeOf(loose);
  if (place === undefined) return undefined;
  const base = channelKey(loose.context, place.channel);
  const thread = place.dm ? place.thread : (place.thread ?? place.ts);
  return thread === undefined ? base : `${base}:${thread}`;
}

/** The keys this adapter holds, by channel, so that a stop command can stop a whole channel. */
class ChannelKeys {
  readonly #keysOf = new Map<string, Set<string>>();
  readonly #channelsOf = new Map<string, Set<string>>();
  readonly #held: (key: string) => boolean;
  /** Sweep idle keys when the index grows past this (amortized: it doubles with live keys). */
  #limit = 64;

  constructor(held: (key: string) => boolean) {
    this.#held = held;
  }

  add(channel: string, key: string): void {
    let channels = this.#channelsOf.get(key);
    if (channels === undefined) {
      channels = new Set();
      this.#channelsOf.set(key, channels);
      if (this.#channelsOf.size > this.#limit) {
        for (const known of [...this.#channelsOf.keys()]) if (known !== key) this.release(known);
        this.#limit = Math.max(64, 2 * this.#channelsOf.size);
      }
    }
    channels.add(channel);
    let keys = this.#keysOf.get(channel);
    if (keys === undefined) this.#keysOf.set(channel, (keys = new Set()));
    keys.add(key);
  }

  has(key: string): boolean {
    return this.#channelsOf.has(key);
  }

  /** The held keys of a channel; idle ones are forgotten on the way. */
  of(channel: string): string[] {
    const keys = this.#keysOf.get(channel);
    if (keys === undefined) return [];
    for (const key of [...keys]) this.release(key);
    return [...(this.#keysOf.get(channel) ?? [])];
  }

  /** Forget a key once it is idle (no turn, nothing pending). */
  release(key: string): void {
    const channels = this.#channelsOf.get(key);
    if (channels === undefined || this.#held(key)) return;
    this.#channelsOf.delete(key);
    for (const channel of channels) {
      const keys = this.#keysOf.get(channel);
      keys?.delete(key);
      if (keys?.size === 0) this.#keysOf.delete(channel);
    }
  }
}

/** Ids of stop messages seen recently: the double delivery and retries of a stop act once. */
class RecentIds {
  readonly #expiry = new Map<string, number>();
  readonly #window: number;

  constructor(window: number) {
    this.#window = window;
  }

  /** True if `id` was seen within the window; remembers it otherwise. */
  seen(id: string): boolean {
    if (this.#window <= 0) return false;
    const now = Date.now();
    // Insertion order is expiry order: drop the expired head, and cap the size.
    for (const [old, expiry] of this.#expiry) {
      if (expiry > now && this.#expiry.size < 10_000) break;
      this.#expiry.delete(old);
    }
    if ((this.#expiry.get(id) ?? 0) > now) return true;
    this.#expiry.set(id, now + this.#window);
    return false;
  }
}

const NOOP = (): void => {};
const DONE: Promise<void> = Promise.resolve();

/** A turn being replayed through `app.processEvent`, by the request body it replays. */
interface Replay {
  readonly turn: Turn<SlackInput>;
  /** The middleware saw the replayed body (else the app stopped it before the guard). */
  reached: boolean;
  failed: boolean;
  error: unknown;
}

/** The request body each payload (an event, a command) came in: what crosses replicas. */
const bodies = new WeakMap<object, Record<string, unknown>>();

/** What a payload looks like in a shared store. */
interface Serialized {
  readonly b: Record<string, unknown>;
}

/**
 * How payloads travel through a shared store: the request body Bolt received, as JSON; rebuilt on
 * the replica that runs the turn as the event (or command) it carries, with its body remembered
 * for the replay.
 */
const BODY_CODEC: Codec<SlackInput> = {
  encode(input: SlackInput): Serialized {
    const body = bodies.get(input);
    if (body === undefined) {
      throw new TypeError(
        "slackGuard: this payload has no request body to send to another replica (only payloads that came through the middleware can travel).",
      );
    }
    return { b: body };
  },
  decode(data: unknown): SlackInput {
    const body = (data as Serialized).b;
    // Events API: the event inside the envelope; a slash command is its body.
    const input = (record(body.event) ?? body) as unknown as SlackInput;
    bodies.set(input, body);
    return input;
  },
};

/** Replayed payloads were acknowledged by the replica that received them: acknowledge nothing. */
const NO_ACK: AckFn<unknown> = async () => {};

/**
 * Run a turn whose latest payload was admitted on another replica: replay its body through the
 * app, so it runs the middleware and listeners like any payload, and let the middleware attach
 * the turn.
 */
async function replay(
  app: Pick<App, "processEvent">,
  replays: WeakMap<object, Replay>,
  turn: Turn<SlackInput>,
): Promise<void> {
  const input = turn.inputs[turn.inputs.length - 1] as SlackInput;
  const body = bodies.get(input) as Record<string, unknown>;
  const entry: Replay = { turn, reached: false, failed: false, error: undefined };
  replays.set(body, entry);
  try {
    await app.processEvent({ body, ack: NO_ACK });
  } finally {
    replays.delete(body);
  }
  if (entry.failed) throw entry.error;
  if (!entry.reached) {
    throw new Error(
      `slackGuard: the payload replayed for key "${turn.key}" through app.processEvent never reached the guard's middleware. Install it with app.use(guard) on the app given as "app", before middleware that may end a payload.`,
    );
  }
}

function describeInput(input: SlackInput): string {
  return "command" in input && typeof input.command === "string"
    ? `command ${input.command}`
    : `ts ${(input as types.AppMentionEvent).ts}`;
}

function logTurnError(error: unknown, info: ErrorInfo<unknown>): void {
  const what = (info.inputs as SlackInput[]).map(describeInput).join(", ") || "no input";
  const where = info.fence === undefined ? "an input for key" : "the turn for key";
  console.error(`session-guard/slack: ${where} "${info.key}" (${what}) failed:`, error);
}

function checkStrings(where: string, name: string, value: unknown, example: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v.trim() === "")) {
    throw new TypeError(
      `${where}: "${name}" must be an array of non-empty strings, e.g. ${example}, got ${JSON.stringify(value)}.`,
    );
  }
  return value as string[];
}

function checkOptions(options: SlackGuardOptions) {
  const where = "slackGuard";
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${where}: options must be an object, got ${String(options)}.`);
  }
  const {
    guard,
    key,
    bypass,
    stopTexts = ["stop"],
    stopCommands = ["/stop"],
    onQueued,
    awaitTurn = false,
    onError,
    dedupe,
  } = options;
  if (typeof awaitTurn !== "boolean") {
    throw new TypeError(`${where}: "awaitTurn" must be true or false, got ${String(awaitTurn)}.`);
  }
  if (onError !== undefined && typeof onError !== "function") {
    throw new TypeError(`${where}: "onError" must be a function (error, info) => void.`);
  }
  const app = options.app;
  if (
    app !== undefined &&
    (typeof app !== "object" || app === null || typeof app.processEvent !== "function")
  ) {
    throw new TypeError(
      `${where}: "app" must be the Bolt App this middleware is installed on (new App(…)), got ${String(app)}.`,
    );
  }
  const shared = (options.store as { shared?: unknown } | undefined)?.shared === true;
  if (shared && app === undefined) {
    throw new TypeError(
      `${where}: a shared store ("store", e.g. redisStore) needs "app": slackGuard({ store, app }). Payloads admitted on another replica run on this one through app.processEvent.`,
    );
  }
  if (key !== undefined && typeof key !== "function") {
    throw new TypeError(`${where}: "key" must be a function (args) => string | undefined.`);
  }
  if (bypass !== undefined && typeof bypass !== "function") {
    throw new TypeError(`${where}: "bypass" must be a function (args) => boolean.`);
  }
  if (onQueued !== undefined && typeof onQueued !== "function") {
    throw new TypeError(
      `${where}: "onQueued" must be a function ({ key, input, say, … }) => void.`,
    );
  }
  const texts = checkStrings(where, "stopTexts", stopTexts, '["stop", "cancel"]');
  const commands = checkStrings(where, "stopCommands", stopCommands, '["/stop"]');
  return {
    guard,
    key,
    bypass,
    // Only with a store of its own: a shared `guard` comes with its creator's handler and codec.
    app: shared ? app : undefined,
    stopTexts: new Set(texts.map((text) => text.trim().toLowerCase())),
    // Slack sends the command with its slash; accept the name either way.
    stopCommands: new Set(
      commands.map((c) => (c.startsWith("/") ? c : `/${c}`).trim().toLowerCase()),
    ),
    onQueued,
    awaitTurn,
    onError,
    // Stop messages are never admitted, so the adapter de-duplicates them itself, in the same
    // window as the core (whose option has already been validated by then).
    stopWindow: dedupe === false ? 0 : typeof dedupe === "number" ? dedupe : 10 * 60_000,
  };
}

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
  const { bypass, stopTexts, stopCommands, onQueued, awaitTurn } = settings;
  const keyOf = settings.key ?? defaultKey;
  const app = settings.app;
  /** Payloads being replayed for turns whose latest payload came from another replica. */
  const replays = new WeakMap<object, Replay>();
  // On a shared store, payloads travel as their request bodies and turns of other replicas'
  // payloads replay here.
  const replaying =
    app === undefined
      ? {}
      : { codec: BODY_CODEC, handler: (turn: Turn<SlackInput>) => replay(app, replays, turn) };
  const { guard, reportError } = adapterGuard<SlackInput>(
    "slackGuard",
    { ...options, ...replaying },
    ADAPTER_OPTIONS,
    { onError: logTurnError },
  );

  const running = new ChannelKeys((key) => guard.isBusy(key) || guard.pendingCount(key) > 0);
  // With the memory store a finished turn has released its key, or started the next batch, by
  // the next microtask; keys that go idle another way are swept as the index grows.
  guard.on("finished", ({ key }) => {
    if (running.has(key)) queueMicrotask(() => running.release(key));
  });
  const stopIds = new RecentIds(settings.stopWindow);

  /** Middleware arguments of payloads waiting to be announced to `onQueued`. */
  const waiting = new WeakMap<object, Args>();
  if (onQueued !== undefined) {
    guard.on("queued", ({ key, input, pending }) => {
      const args = waiting.get(input as object);
      if (args === undefined) return; // another adapter's input on a shared guard
      waiting.delete(input as object);
      // On a later microtask: the guard acknowledges a queued command right after admission,
      // and the acknowledgement must reach Slack before anything the user's callback sends.
      queueMicrotask(() => {
        try {
          const result = onQueued({
            key,
            pending,
            input,
            body: args.body as SlackQueued["body"],
            context: args.context,
            client: args.client,
            say: args.say,
            respond: args.respond,
          });
          if (result instanceof Promise) {
            result.catch((error: unknown) => reportError(error, key, input));
          }
        } catch (error) {
          reportError(error, key, input);
        }
      });
    });
  }

  /**
   * Payloads that need an acknowledgement, until the guard has admitted or dropped them (see
   * `admit`): called when the `admitted` or `dropped` event names them.
   */
  const outcomes = new WeakMap<object, () => void>();
  const outcome = ({ input }: { input: unknown }) => outcomes.get(input as object)?.();
  guard.on("admitted", outcome);
  guard.on("dropped", outcome);

  const stop = (key: string): Promise<boolean> => guard.stop(key);

  /** Stop every turn of a channel: its own key (DM, commands) and every thread in it. */
  function stopChannel(channel: string, input: SlackInput): void {
    const keys = new Set([channel, ...running.of(channel)]);
    for (const key of keys) {
      guard.stop(key).catch((error: unknown) => reportError(error, key, input));
    }
  }

  function admit(
    args: Args,
    key: string,
    channel: string,
    input: SlackInput,
    id: string | undefined,
  ): Promise<void> {
    const command = "command" in input && typeof input.command === "string";
    let ran = false;
    if (onQueued !== undefined) waiting.set(input, args);
    if (app !== undefined) bodies.set(input, args.body);
    // Who answers Slack is decided once the guard has admitted or dropped the payload: the
    // listener when its turn started at once, the guard otherwise. The memory store decides within
    // `submit`; a shared store a round trip later — and a payload it failed to store is never
    // acknowledged (the error reaches Bolt; for a command, Slack tells the user it failed).
    const needsAck = args.ack !== undefined;
    let known = false;
    let submitted = false;
    let answered: Promise<void> | undefined;
    let whenAnswered: ((answer: Promise<void>) => void) | undefined;
    const answer = (stored: boolean) => {
      if (answered !== undefined) return;
      outcomes.delete(input);
      if (stored && !ran && args.ack !== undefined) {
        // Queued, dropped, or waiting for a slot: nobody else answers Slack within its 3 s.
        args.context.acknowledged = true;
        answered = args.ack();
      } else {
        // The listener got the payload at once: acknowledging it is the listener's job.
        answered = DONE;
      }
      whenAnswered?.(answered);
    };
    if (needsAck) {
      outcomes.set(input, () => {
        known = true;
        // A turn that starts runs its listener right after `admitted`: answer after that.
        if (submitted) queueMicrotask(() => answer(true));
      });
    }
    const admitted = guard.submit(
      key,
      input,
      (turn) => {
        ran = true;
        running.add(channel, key);
        args.context.turn = turn;
        return args.next();
      },
      {
        id,
        // A command answers on its own (response_url, ack): never coalesced with other input.
        alone: command,
        expiresAt: command ? Date.now() + COMMAND_LIFETIME : undefined,
        awaitTurn,
      },
    );
    submitted = true;
    // On a shared store the key may be held once admission answers; `running` forgets idle keys.
    if (app !== undefined || guard.isBusy(key)) running.add(channel, key);
    const settled = admitted.then(NOOP);
    if (!needsAck) return settled;
    if (known) answer(true);
    else
      admitted.then(
        () => answer(true),
        () => answer(false),
      );
    if (answered === DONE) return settled;
    const acked =
      answered ??
      new Promise<void>((resolve) => {
        whenAnswered = resolve;
      });
    return Promise.all([acked, settled]).then(NOOP);
  }

  const middleware = async (all: SlackMiddlewareArgs): Promise<void> => {
    const args = all as unknown as Args;
    const context = args.context;
    const replaying = replays.get(args.body);
    if (replaying !== undefined && !replaying.reached) {
      // A turn of this replica running a payload admitted elsewhere: attach it, never re-admit.
      // The receiving replica answered Slack (Bolt for events, the guard for what it queued).
      replaying.reached = true;
      context.acknowledged = true;
      context.turn = replaying.turn;
      const input = replaying.turn.inputs[replaying.turn.inputs.length - 1] as SlackInput;
      const where =
        "command" in input ? input.channel_id : (input as types.AppMentionEvent).channel;
      running.add(channelKey(context, where), replaying.turn.key);
      // The turn's error goes to `onError` like a local turn's, not to Bolt's `app.error`.
      return args.next().catch((error: unknown) => {
        replaying.failed = true;
        replaying.error = error;
      });
    }
    // Events API payloads were acknowledged by Bolt; anything else carries an `ack`.
    if (context.acknowledged === undefined) context.acknowledged = args.ack === undefined;
    const input = inputOf(args);
    // Anything the guard does not admit runs its listeners at once, beside any turn.
    if (input === undefined || bypass?.(all)) return args.next();
    const key = keyOf(all);
    if (key === undefined) return args.next();
    if ("command" in input && typeof input.command === "string") {
      const channel = channelKey(context, input.channel_id);
      if (stopCommands.has(input.command.toLowerCase())) {
        // Control bypasses the queue: stop now, then let the command's listener answer.
        stopChannel(channel, input);
        return args.next();
      }
      return admit(args, key, channel, input, undefined);
    }
    const message = input as types.AppMentionEvent;
    const channel = channelKey(context, message.channel);
    // Global, not per team: one message of a Slack Connect channel arrives once per installation.
    const id = `slack:${message.channel}:${message.ts}`;
    const text = typeof message.text === "string" ? message.text : "";
    if (stopTexts.has(text.replace(LEADING_MENTIONS, "").trim().toLowerCase())) {
      if (stopIds.seen(id)) {
        guard.reportDrop({ key, input, id, reason: "duplicate" });
        return;
      }
      stop(key).catch((error: unknown) => reportError(error, key, input));
      return args.next();
    }
    return admit(args, key, channel, input, id);
  };

  return withGuardControls(Object.assign(middleware, { keyOf }), guard, {
    stop,
  }) as unknown as SlackGuardMiddleware;
}

export type { Drop, ErrorInfo, Guard, GuardOptions, Turn };
