// A turn is logged, not dumped: `JSON.stringify` and `console.log` of a turn (or of a grammY
// context carrying it as `ctx.turn`) show its key and fence, never the guard's internals it links
// to (its claim, the guard, the turns around it), which are circular.

import { inspect } from "node:util";
import type { Context } from "grammy";
import { createGuard, type Turn } from "session-guard";
import { sessionGuard, type TurnFlavor } from "session-guard/grammy";
import { describe, expect, it } from "vitest";
import { offlineBot, recordApi, textUpdate } from "./support/grammy-fixtures.js";

describe("a turn in logs", () => {
  it("core: JSON and inspect show the key and fence only", async () => {
    let seen: Turn<string> | undefined;
    const guard = createGuard<string>({
      handler: (turn) => {
        seen = turn;
      },
    });
    await guard.submit("chat-1", "hi", undefined, { awaitTurn: true });
    const turn = seen as Turn<string>;
    expect(JSON.parse(JSON.stringify(turn))).toEqual({ key: "chat-1", fence: turn.fence });
    expect(inspect(turn)).toBe(`Turn { key: "chat-1", fence: ${turn.fence}, phase: "settled" }`);
  });

  it("grammY: a context that carries ctx.turn still serializes", async () => {
    type Ctx = TurnFlavor<Context>;
    const bot = offlineBot<Ctx>();
    recordApi(bot);
    const guard = sessionGuard<Ctx>({ awaitTurn: true });
    bot.use(guard);
    let json = "";
    let shown = "";
    bot.on("message", (ctx) => {
      json = JSON.stringify({ update: ctx.update, turn: ctx.turn });
      shown = inspect(ctx.turn);
    });
    await bot.handleUpdate(textUpdate(9, "hi"));
    await guard.close();
    const parsed = JSON.parse(json) as { turn: { key: string; fence: number } };
    expect(parsed.turn).toEqual({ key: expect.stringMatching(/:9$/), fence: 1 });
    expect(shown).toMatch(/^Turn \{ key: ".*:9", fence: 1, phase: "running" \}$/);
  });
});
