// === session-guard/grammy: `bot.use(sessionGuard())`
//
// Thin adapter over the core. It does three things: derive the key and the de-duplication id of an
// update (keys.ts), decide what bypasses the guard (callback queries, stop), and map "run the rest
// of the middleware chain" onto a turn. grammY's `next` runs the update it was called with, so a
// turn runs the `next` of its latest update, with every coalesced context in `ctx.turn.inputs`.
// Across replicas, see replay.ts; what every adapter shares lives in ../kit.
//
// An album is several updates sharing `media_group_id`, with no end marker. Each photo is its own
// input of the group `album:<media_group_id>`: the core keeps a group in one turn, in any mode and
// across replicas, and starts it once `mediaGroupSettle` ms passed without another photo.
//
// Only types are imported from grammy: at run time this file needs nothing but the core.

/**
 * grammY (Telegram) middleware: `bot.use(sessionGuard())`.
 *
 * @module session-guard/grammy
 */

import type { Context, MiddlewareFn, NextFunction } from "grammy";
import type { Message } from "grammy/types";
import type { Drop, ErrorInfo, Guard, GuardOptions, SubmitOptions, Turn } from "session-guard";
import { adapterGuard, type GuardControls, withGuardControls } from "../kit/guard.js";
import { type Heartbeat, withHeartbeat } from "../kit/heartbeat.js";
import { errorLog } from "../kit/log.js";
import { classify, SKIPPED, userKey } from "../kit/own-errors.js";
import { Replays } from "../kit/replay.js";
import { ShownOutcomes } from "../kit/shown.js";
import { commandOf, defaultKey, incomingMessage, messageIdOf, prefixOf } from "./keys.js";
import { ADAPTER_OPTIONS, checkOptions, type SessionGuardOptions } from "./options.js";
import { rebuilt, replayThrough, updateCodec } from "./replay.js";
import { isRevision, Revisions, SHARED_WAITING_MAX } from "./revisions.js";
import { telegramShown } from "./shown.js";
import { attachTurn, NO_TURN, setReplayed, shareTurn } from "./turn.js";

export type { DropNotice, ReactionOptions, ShownReason } from "../kit/shown.js";
export type { SessionGuardOptions } from "./options.js";
export { type ReplyStream, type StreamReplyOptions, streamReply } from "./stream-reply.js";
export type { GrammyTurn, TurnContextFlavor, TurnFlavor, TurnSignal } from "./turn.js";

/** The middleware, carrying the guard's methods. */
export interface SessionGuardMiddleware<C extends Context>
  extends MiddlewareFn<C>,
    GuardControls<C> {
  /** The key this middleware gives an update, or `undefined` when it passes unguarded. */
  keyOf(ctx: C): string | undefined;
}

/**
 * Where an admitted context keeps its `next` until its turn runs: a property of the context, so
 * admission needs no closure per update.
 */
const NEXT = Symbol("session-guard next");
interface Pending {
  [NEXT]: NextFunction | undefined;
}

/** What the middleware does with an update, as `read` classifies it. */
const PASS = 0;
const STOP = 1;
const ADMIT = 2;
const REVISE = 3;

/** Telegram shows "typing…" for 5 s after each `sendChatAction`. */
const TYPING_EVERY = 4_000;
const DONE: Promise<void> = Promise.resolve();

const logTurnError = errorLog("grammy", "updates", (ctx) => (ctx as Context).update?.update_id);

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
 * - A `key` or `bypass` function that throws, or an update it cannot read, goes to `onError` with
 *   the update; that update is not run, and the bot keeps serving.
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
  const { stopCommands, bypass, awaitTurn, bot, ownIds, typing } = settings;
  const userKeyOf = settings.key;
  const keyOf =
    userKeyOf === undefined ? defaultKey : (ctx: C) => userKey("sessionGuard", userKeyOf(ctx));
  /** Turns whose latest update came from another replica, replayed through the bot. */
  const replays = settings.replaying ? new Replays<Turn<C>>() : undefined;
  const replayHandler =
    replays === undefined || bot === undefined ? undefined : replayThrough(bot, replays);
  const { guard, reportError } = adapterGuard<C>(
    "sessionGuard",
    replays === undefined || bot === undefined
      ? options
      : {
          // The default keys are the bot's own (`tg:<bot id>:…`): across replicas this guard
          // takes over only those, never another bot's on the same store prefix.
          ...(userKeyOf === undefined && options.guard === undefined
            ? { namespace: () => (bot.isInited() ? `tg:${bot.botInfo.id}:` : undefined) }
            : {}),
          ...options,
          codec: updateCodec(bot),
          handler: replayHandler,
        },
    ADAPTER_OPTIONS,
    { onError: logTurnError },
  );

  // One options object per kind and one turn function serve every update (`submit` reads its
  // options before it returns): admitting a plain message makes no closure and no options object.
  const submitOptions: SubmitOptions = { id: undefined, alone: false, awaitTurn };
  const photoOptions: SubmitOptions = {
    id: undefined,
    group: undefined,
    settle: settings.mediaGroupSettle,
    awaitTurn,
  };

  const typingOf = (ctx: C): Heartbeat | undefined => {
    const chat = ctx.chatId;
    if (chat === undefined) return undefined;
    const thread = ctx.msg?.is_topic_message ? ctx.msg.message_thread_id : undefined;
    const extra = thread === undefined ? {} : { message_thread_id: thread };
    return { send: () => ctx.api.sendChatAction(chat, "typing", extra), every: TYPING_EVERY };
  };
  const runNext = (ctx: C, key: string, next: NextFunction): Promise<void> =>
    typing ? withHeartbeat(typingOf(ctx), (error) => reportError(error, key, ctx), next) : next();

  // Across replicas (or on a guard whose store is not known here) contexts may leave unseen.
  const leaves = replays !== undefined || options.guard !== undefined;
  const revisions = settings.revisions
    ? new Revisions(guard, reportError, leaves ? SHARED_WAITING_MAX : undefined)
    : undefined;
  const shown =
    settings.shown === undefined
      ? undefined
      : new ShownOutcomes<C>(guard, settings.shown, telegramShown as never, reportError);
  const isRebuilt = (input: unknown) => rebuilt.has(input as object);
  /** Contexts entered a turn: they wait no more, and their 👀 goes. */
  const entered = (turn: Turn<C>, inputs: readonly C[]): void => {
    revisions?.started(inputs);
    shown?.started(turn.key, inputs, isRebuilt);
  };
  const onTaken = revisions?.keeps !== true && shown === undefined ? undefined : entered;

  function runTurn(turn: Turn<C>, ctx: C): Promise<unknown> {
    const next = (ctx as unknown as Pending)[NEXT];
    if (next === undefined) {
      // The context of an edit whose message was pending at another replica: no `next` of its
      // own here, so it runs the way another replica's update does.
      if (replayHandler !== undefined) return replayHandler(turn);
      throw new Error(
        `sessionGuard: the turn for key "${turn.key}" holds an update that has no middleware chain on this process.`,
      );
    }
    (ctx as unknown as Pending)[NEXT] = undefined;
    const inputs = turn.inputs;
    if (shown !== undefined || revisions?.holding === true) entered(turn, inputs);
    attachTurn(ctx, turn, onTaken, replays === undefined);
    // Coalesced contexts carry the turn too (`TurnFlavor` promises `ctx.turn` on each of them).
    if (inputs.length > 1) shareTurn(inputs, ctx);
    return runNext(ctx, turn.key, next);
  }

  // What `read` found out about the update it classified (the middleware is synchronous up to
  // `submit`, so one record serves every update).
  const plan = { key: "", message: undefined as Message | undefined, command: "" };
  /** The adapter's own reading of an update: what to do with it. May throw (see the kit). */
  const read = (ctx: C): number => {
    plan.key = "";
    const key = keyOf(ctx);
    if (key === undefined) return PASS;
    plan.key = key;
    const message = incomingMessage(ctx);
    // An edit is never a turn: it revises the pending message, then reaches the handlers.
    if (message === undefined && revisions !== undefined && isRevision(ctx)) return REVISE;
    if (message === undefined || bypass?.(ctx)) {
      return ctx.update.stopped_message_generation === undefined ? PASS : STOP;
    }
    const command = commandOf(ctx, message);
    if (command !== undefined && stopCommands.has(command)) return STOP;
    plan.message = message;
    plan.command = command ?? "";
    return ADMIT;
  };
  const reportOwn = (error: unknown, ctx: C) => reportError(error, plan.key, ctx);

  const middleware = (ctx: C, next: NextFunction): Promise<void> | unknown => {
    if (replays !== undefined) {
      const turn = replays.attach(ctx.update);
      if (turn !== undefined) {
        // A turn of this replica running an update admitted elsewhere: attach it, never re-admit.
        setReplayed(turn.inputs[turn.inputs.length - 1] as object, ctx);
        if (onTaken !== undefined) entered(turn, turn.inputs);
        attachTurn(ctx, turn, onTaken, false);
        return replays.settle(ctx.update, runNext(ctx, turn.key, next));
      }
    }
    const kind = classify(read, ctx, reportOwn);
    if (kind === SKIPPED) return DONE; // reported; the update is not run
    const key = plan.key;
    if (kind !== ADMIT) {
      if (kind === REVISE) revisions?.revise(ctx, key);
      else if (kind === STOP) {
        // Control bypasses the queue: abort the turn now, then let the stop handler answer. The
        // stop carries its update's id: Telegram's redelivery of it must not stop a later turn.
        const updateId = ctx.update.update_id;
        const id = ownIds ? String(updateId) : prefixOf(ctx.me) + updateId;
        guard.stop(key, { id }).catch((error: unknown) => reportError(error, key, ctx));
      }
      Object.defineProperty(ctx, "turn", NO_TURN);
      return next();
    }
    const message = plan.message as Message;
    plan.message = undefined;
    // The message's own id (bot, chat, message): its edits and deletions name it, and a
    // redelivered update carries the same message, so it is still a duplicate.
    const id = messageIdOf(ctx.me, message);
    let options = submitOptions;
    const album = message.media_group_id;
    if (album !== undefined) {
      // A photo of an album: every photo of the group runs in one turn, wherever it arrived.
      options = photoOptions;
      options.group = `album:${album}`;
    } else {
      // A command answers on its own: never coalesced with the messages around it.
      options.alone = plan.command !== "";
    }
    options.id = id;
    (ctx as unknown as Pending)[NEXT] = next;
    // Detached, this resolves at admission; returned either way, so a refused admission (a store
    // that is down) rejects `handleUpdate` instead of going unhandled, and Telegram redelivers.
    const admitted = guard.submit(key, ctx, runTurn, options);
    // Still holding its `next`: it waits (queued, or in a settle window) and may be edited.
    if (revisions?.keeps === true && (ctx as unknown as Pending)[NEXT] !== undefined) {
      revisions.waiting(id, ctx);
    }
    return admitted;
  };

  const guarded = Object.assign(middleware, {
    keyOf: (ctx: C) => keyOf(ctx),
  });
  return withGuardControls(guarded, guard) as SessionGuardMiddleware<C>;
}

export type { Drop, ErrorInfo, Guard, GuardOptions, Turn };
