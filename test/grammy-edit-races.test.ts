// Edits that race a pending message's turn, through a real grammY Bot (offline). Found by a
// tarball adversary: an edit arriving after the turn started but before the handler subscribed
// to `ctx.turn.onRevision` (async middleware between the guard and the handler makes that gap
// long) was answered "in-turn" and heard by nobody; an older edit delivered last (a redelivery,
// or edits out of order) put stale text back into the pending message.

import type { Context } from "grammy";
import type { Message, Update } from "grammy/types";
import { sessionGuard, type TurnFlavor } from "session-guard/grammy";
import { afterEach, describe, expect, it, vi } from "vitest";
import { nextUpdateId, offlineBot, recordApi, textUpdate } from "./support/grammy-fixtures.js";
import { deferred } from "./support/helpers.js";

type Ctx = TurnFlavor<Context>;

const closers: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((guard) => guard.close()));
});

function edit(of: Update, text: string, editDate: number): Update {
  return {
    update_id: nextUpdateId(),
    edited_message: { ...(of.message as Message), text, edit_date: editDate },
  } as Update;
}

function until(check: () => boolean, what: string): Promise<void> {
  return vi.waitFor(
    () => {
      if (!check()) throw new Error(`still waiting for ${what}`);
    },
    { timeout: 2_000, interval: 2 },
  );
}

/**
 * A bot whose first turn waits for `first`, with middleware between the guard and the handler
 * that waits for `between` on every later turn (a session read, say).
 */
function bot() {
  const bot = offlineBot<Ctx>();
  recordApi(bot);
  const errors: unknown[] = [];
  const guard = sessionGuard<Ctx>({ onError: (error) => void errors.push(error) });
  closers.push(guard);
  bot.use(guard);
  const first = deferred();
  const between = deferred();
  let reached = 0;
  bot.on("message", async (_ctx, next) => {
    reached++;
    if (reached > 1) await between.promise;
    await next();
  });
  const heard: string[] = [];
  const ran: string[] = [];
  bot.on("message", async (ctx) => {
    if (ran.length === 0) {
      ran.push(ctx.msg.text ?? "");
      await first.promise;
      return;
    }
    ctx.turn.onRevision((revision) => void heard.push(revision.input?.msg?.text ?? "(deleted)"));
    ran.push(ctx.msg.text ?? "");
  });
  bot.on("edited_message", () => {});
  return { bot, guard, first, between, heard, ran, errors, reached: () => reached };
}

describe("grammY edits racing a turn", () => {
  it("an edit between the turn's start and the handler's onRevision reaches the handler", async () => {
    const t = bot();
    await t.bot.handleUpdate(textUpdate(5, "one"));
    const pending = textUpdate(5, "tpyo");
    await t.bot.handleUpdate(pending);
    t.first.resolve();
    // The second turn started and waits in the middleware before the handler.
    await until(() => t.reached() === 2, "the second turn in the middleware");
    await t.bot.handleUpdate(edit(pending, "typo fixed", 10));
    t.between.resolve();
    await until(() => t.heard.length === 1, "the revision");
    await t.guard.onIdle();
    expect(t.ran).toEqual(["one", "tpyo"]);
    expect(t.heard).toEqual(["typo fixed"]);
    expect(t.errors).toEqual([]);
  });

  it("an older edit delivered last leaves the newer one in the pending message", async () => {
    const t = bot();
    t.between.resolve();
    await t.bot.handleUpdate(textUpdate(6, "one"));
    const pending = textUpdate(6, "v0");
    await t.bot.handleUpdate(pending);
    await t.bot.handleUpdate(edit(pending, "v2", 200));
    await t.bot.handleUpdate(edit(pending, "v1", 100)); // late, or redelivered
    t.first.resolve();
    await t.guard.onIdle();
    expect(t.ran).toEqual(["one", "v2"]);
    expect(t.heard).toEqual([]);
    expect(t.errors).toEqual([]);
  });
});
