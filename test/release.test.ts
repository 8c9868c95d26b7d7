// A guard nobody references any more is garbage once its turns have settled. The deadline timer
// (`turnTimeout`, 15 minutes by default) used to stay armed after the last turn, holding the guard
// and every id it remembered until it fired: a bot rebuilt on reload, a test suite or a benchmark
// that makes a guard per round kept each old one for a quarter of an hour. The lease watchdog's
// renewal checks share such a timer too.

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createGuard, TurnTimeoutError } from "session-guard";
import { sessionGuard } from "session-guard/grammy";
import { describe, expect, it } from "vitest";
import { offlineBot, recordApi, textUpdate } from "./support/grammy-fixtures.js";
import { macrotask, sleep } from "./support/helpers.js";
import { delegatingStore } from "./support/hostile.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Whether the object behind `ref` is collected within a few full collections. */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    // A WeakRef's target lives at least to the end of the job that made or read it.
    await macrotask();
    gc();
    if (ref.deref() === undefined) return true;
  }
  return false;
}

describe("a guard left behind is released", () => {
  it("the core guard, after awaited turns on several keys", async () => {
    const ref = await (async () => {
      const guard = createGuard<string>();
      for (const key of ["a", "b", "c"]) {
        const outcome = await guard.submit(key, "hi", async () => {}, { awaitTurn: true });
        expect(outcome).toBe("started");
      }
      return new WeakRef(guard);
    })();
    expect(await collected(ref)).toBe(true);
  });

  it("a guard on a store with a lease (its watchdog's timer), after awaited turns", async () => {
    const ref = await (async () => {
      const guard = createGuard<string>({ store: delegatingStore({ lease: 60_000 }) });
      for (const key of ["a", "b", "c"]) {
        const outcome = await guard.submit(key, "hi", async () => {}, { awaitTurn: true });
        expect(outcome).toBe("started");
      }
      return new WeakRef(guard);
    })();
    expect(await collected(ref)).toBe(true);
  });

  it("a control: a guard still referenced is not collected", async () => {
    const guard = createGuard<string>();
    await guard.submit("a", "hi", async () => {}, { awaitTurn: true });
    expect(await collected(new WeakRef(guard))).toBe(false);
    expect(guard.isBusy("a")).toBe(false);
  });

  it("a guard dropped while a turn runs is kept until that turn times out, and reports it", async () => {
    const errors: unknown[] = [];
    const ref = (() => {
      const guard = createGuard<string>({ turnTimeout: 40, onError: (e) => void errors.push(e) });
      // A handler whose promise nothing can ever settle: only the deadline timer reaches the turn.
      void guard.submit("a", "hi", () => new Promise<never>(() => {}));
      return new WeakRef(guard);
    })();
    expect(await collected(ref)).toBe(false);
    await sleep(80);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TurnTimeoutError);
  });

  it("a grammY bot and its guard, after queued turns", async () => {
    const ref = await (async () => {
      const bot = offlineBot();
      recordApi(bot);
      const guard = sessionGuard({ mode: "queue", awaitTurn: true });
      bot.use(guard);
      let turns = 0;
      bot.on("message", async (ctx) => {
        turns++;
        await ctx.reply("ok");
      });
      await Promise.all([1, 2, 3].map((i) => bot.handleUpdate(textUpdate(1, `m${i}`))));
      expect(turns).toBe(3);
      return new WeakRef(guard.guard);
    })();
    expect(await collected(ref)).toBe(true);
  });
});
