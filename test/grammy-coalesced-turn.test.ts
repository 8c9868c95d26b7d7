// Every context of a coalesced turn carries `ctx.turn` (`TurnFlavor` types it on each of them),
// not only the one the turn runs with. Found by a tarball adversary: `ctx.turn.inputs[0].turn`
// was undefined.

import type { Context } from "grammy";
import { sessionGuard, type TurnFlavor } from "session-guard/grammy";
import { describe, expect, it } from "vitest";
import { offlineBot, recordApi, textUpdate } from "./support/grammy-fixtures.js";
import { deferred } from "./support/helpers.js";

describe("grammY: a coalesced turn's contexts", () => {
  it("each carries the turn the handler runs in", async () => {
    type Ctx = TurnFlavor<Context>;
    const bot = offlineBot<Ctx>();
    recordApi(bot);
    const guard = sessionGuard<Ctx>();
    bot.use(guard);
    const gate = deferred();
    const seen: { texts: string[]; fences: number[]; same: boolean[] }[] = [];
    bot.on("message", async (ctx) => {
      const inputs = ctx.turn.inputs;
      seen.push({
        texts: inputs.map((c) => c.msg?.text ?? ""),
        fences: inputs.map((c) => c.turn.fence),
        same: inputs.map((c) => c.turn === ctx.turn),
      });
      if (seen.length === 1) await gate.promise;
    });
    await bot.handleUpdate(textUpdate(3, "a"));
    await bot.handleUpdate(textUpdate(3, "b"));
    await bot.handleUpdate(textUpdate(3, "c"));
    gate.resolve();
    await guard.onIdle();
    await guard.close();
    expect(seen).toEqual([
      { texts: ["a"], fences: [1], same: [true] },
      { texts: ["b", "c"], fences: [2, 2], same: [true, true] },
    ]);
  });
});
