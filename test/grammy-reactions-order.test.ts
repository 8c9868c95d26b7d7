// With `reactions: true`, a waiting message that a /stop drops ends with the stopped reaction:
// the queued 👀 comes off first, and the 🤷 goes on only once that call has finished. Found by a
// tarball adversary: the clear started by the input's `settled` event could land after the 🤷
// (with `awaitTurn`, or with a clear slower on the wire) and leave the message with no reaction.

import type { Context } from "grammy";
import { sessionGuard, type TurnFlavor } from "session-guard/grammy";
import { describe, expect, it } from "vitest";
import { commandUpdate, offlineBot, recordApi, textUpdate } from "./support/grammy-fixtures.js";
import { deferred } from "./support/helpers.js";

type Ctx = TurnFlavor<Context>;

describe("grammY reactions: a message dropped by /stop", () => {
  for (const awaitTurn of [false, true]) {
    it(`ends with 🤷, the clear finished before it (awaitTurn: ${awaitTurn})`, async () => {
      const bot = offlineBot<Ctx>();
      /** Reaction calls as they finish: a clear (`[]`) takes longer on the wire. */
      const finished: string[] = [];
      recordApi(bot, async ({ method, payload }) => {
        if (method !== "setMessageReaction") return undefined;
        const reaction = payload.reaction as { emoji: string }[];
        if (reaction.length === 0) await new Promise((resolve) => setTimeout(resolve, 30));
        finished.push(reaction.length === 0 ? "clear" : (reaction[0]?.emoji as string));
        return true;
      });
      const errors: unknown[] = [];
      const guard = sessionGuard<Ctx>({
        reactions: true,
        awaitTurn,
        onError: (error) => void errors.push(error),
      });
      bot.use(guard);
      bot.command("stop", () => {});
      const gate = deferred();
      bot.on("message", async () => {
        await gate.promise;
      });
      const first = bot.handleUpdate(textUpdate(4, "busy"));
      const waiting = bot.handleUpdate(textUpdate(4, "waiting"));
      await new Promise((resolve) => setTimeout(resolve, 5));
      await bot.handleUpdate(commandUpdate(4, "stop"));
      gate.resolve();
      await Promise.all([first, waiting]);
      await guard.onIdle();
      await new Promise((resolve) => setTimeout(resolve, 80));
      await guard.close();
      expect(finished).toEqual(["👀", "clear", "🤷"]);
      expect(errors).toEqual([]);
    });
  }
});
