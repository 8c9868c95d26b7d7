// === grammY across replicas
//
// On a shared store an update travels as its JSON `Update` and is rebuilt as a context of the bot
// on the replica that runs its turn. grammY's `next` only runs the update it was called with, so a
// turn whose latest update was admitted on another replica is run by replaying that update through
// `bot.handleUpdate`: it runs the bot's middleware as usual, and the guard's middleware attaches
// the current turn instead of admitting it again (the kit's `Replays`).

import type { Bot, Context } from "grammy";
import type { Update } from "grammy/types";
import type { Codec, Turn } from "session-guard";
import type { Replays } from "../kit/replay.js";
import { albumOf, setAlbum } from "./turn.js";

/**
 * What an update looks like in a shared store. `a` (an album stored whole) is what versions before
 * grouped inputs wrote; it is still read, for a rolling deploy.
 */
type Serialized = { u: Update } | { a: Update[] };

/** Contexts rebuilt here from another replica's update (their 👀, if any, was put on there). */
export const rebuilt = new WeakSet<object>();

/** How updates travel: the `Update` as JSON, rebuilt as a context of `bot` where its turn runs. */
export function updateCodec<C extends Context>(bot: Bot<C>): Codec<C> {
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
      rebuilt.add(last);
      if ("a" in serialized) setAlbum(last, contexts);
      return last;
    },
  };
}

/**
 * The guard's handler for turns whose latest update came from another replica: replay it through
 * the bot, whose middleware (this adapter's) attaches the turn.
 */
export function replayThrough<C extends Context>(
  bot: Bot<C>,
  replays: Replays<Turn<C>>,
): (turn: Turn<C>) => Promise<unknown> {
  return (turn) => {
    const update = (turn.inputs[turn.inputs.length - 1] as C).update;
    return replays.run(
      update,
      turn,
      () => bot.handleUpdate(update),
      () =>
        new Error(
          `sessionGuard: update ${update.update_id} replayed for key "${turn.key}" through bot.handleUpdate never reached the guard's middleware. Install it first, with bot.use(guard), on the bot given as "bot".`,
        ),
    );
  };
}
