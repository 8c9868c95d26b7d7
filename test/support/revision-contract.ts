// The adapter contract for issue 14, run once per adapter like adapter-contract.ts (same drivers):
// an edit of a pending message reaches the next turn, a deletion withdraws it, an edit of a
// running turn's message reaches `onRevision`, and the reactions switch makes the platform calls
// it should — a failing one goes to onError while the turn runs on. Turns are held open with
// deferred promises, never raced.

import { afterEach, describe, expect, it, vi } from "vitest";
import type {
  AdapterDriver,
  Chat,
  ContractBot,
  DriverOptions,
  Hooks,
  SeenTurn,
} from "./adapter-contract.js";
import { deferred } from "./helpers.js";

function until(check: () => boolean, what: string): Promise<void> {
  return vi.waitFor(
    () => {
      if (!check()) throw new Error(`still waiting for ${what}`);
    },
    { timeout: 2_000, interval: 2 },
  );
}

/** Turns by their texts; the first turn is held until `release`. */
class Seen implements Hooks {
  readonly turns: SeenTurn[] = [];
  readonly revisions: (string | undefined)[] = [];
  readonly gate = deferred<undefined>();
  async turn(turn: SeenTurn): Promise<void> {
    this.turns.push(turn);
    if (this.turns.length === 1) await this.gate.promise;
  }
  press(): void {}
  passed(): void {}
  revised(_chat: Chat, text: string | undefined): void {
    this.revisions.push(text);
  }
  texts(): string[][] {
    return this.turns.map((t) => [...t.texts]);
  }
}

export function revisionContract(driver: AdapterDriver): void {
  describe(`revisions and reactions contract: ${driver.name}`, () => {
    const bots: ContractBot[] = [];
    afterEach(async () => {
      for (const bot of bots.splice(0)) await bot.dispose();
    });
    const setup = (options?: DriverOptions) => {
      const seen = new Seen();
      const bot = driver.create(seen, options);
      bots.push(bot);
      return { bot, seen };
    };
    /** A held first turn, and `more` pending behind it. */
    const busy = async (bot: ContractBot, seen: Seen, ...more: string[]) => {
      const first = await bot.send("a", "first");
      await until(() => seen.turns.length === 1, "the first turn");
      const pending = [];
      for (const text of more) pending.push(await bot.send("a", text));
      await until(() => bot.queued.length === more.length, "the pending messages");
      return { first, pending };
    };

    it("an edit of a pending message reaches the next turn in its place; the edit is no turn", async () => {
      const { bot, seen } = setup();
      const { pending } = await busy(bot, seen, "one", "tow", "three");
      await bot.edit(pending[1] as never, "two");
      seen.gate.resolve(undefined);
      await bot.guard.onIdle();
      expect(seen.texts()).toEqual([["first"], ["one", "two", "three"]]);
      expect(bot.admitted).toEqual(["first", "one", "tow", "three"]);
      expect(bot.drops).toEqual([]);
      expect(bot.errors).toEqual([]);
    });

    it("an edit of a running turn's message reaches onRevision; the turn's inputs stay", async () => {
      const { bot, seen } = setup();
      const { first } = await busy(bot, seen);
      await bot.edit(first, "first, fixed");
      await until(() => seen.revisions.length === 1, "the revision");
      expect(seen.revisions).toEqual(["first, fixed"]);
      expect(seen.turns[0]?.texts).toEqual(["first"]);
      seen.gate.resolve(undefined);
      await bot.guard.onIdle();
      expect(seen.turns).toHaveLength(1);
      expect(bot.errors).toEqual([]);
    });

    // Telegram reports deletions only in business chats, which the grammY driver's plain chats are
    // not: its withdrawal is tested in revisions-platforms.test.ts (deleted_business_messages).
    if (driver.name !== "grammY") {
      it("a deletion of a pending message withdraws it: dropped as withdrawn, never run", async () => {
        const { bot, seen } = setup();
        const { pending } = await busy(bot, seen, "keep", "oops");
        await bot.remove?.(pending[1] as never);
        await until(() => bot.drops.length === 1, "the withdrawal");
        expect(bot.drops).toEqual([["withdrawn", "oops", pending[1]?.id]]);
        seen.gate.resolve(undefined);
        await bot.guard.onIdle();
        expect(seen.texts()).toEqual([["first"], ["keep"]]);
      });
    }

    it("reactions: true — a waiting message gets 👀, taken off when its turn starts", async () => {
      const { bot, seen } = setup({ reactions: true });
      await busy(bot, seen, "wait");
      await until(() => bot.shown().length === 1, "the reaction");
      expect(bot.shown()).toEqual([`react wait ${driver.name === "Slack" ? "eyes" : "👀"}`]);
      seen.gate.resolve(undefined);
      await bot.guard.onIdle();
      await until(() => bot.shown().length === 2, "the reaction to go");
      expect(bot.shown()).toEqual([
        `react wait ${driver.name === "Slack" ? "eyes" : "👀"}`,
        "unreact wait",
      ]);
      // The first message never waited: no call for it.
      expect(bot.shown().some((call) => call.includes("first"))).toBe(false);
      expect(bot.errors).toEqual([]);
    });

    it("reactions follow an edit: the edited message's reaction comes off when its turn starts", async () => {
      const { bot, seen } = setup({ reactions: true });
      const { pending } = await busy(bot, seen, "wiat");
      await until(() => bot.shown().length === 1, "the reaction");
      await bot.edit(pending[0] as never, "wait");
      seen.gate.resolve(undefined);
      await bot.guard.onIdle();
      expect(seen.texts()).toEqual([["first"], ["wait"]]);
      await until(() => bot.shown().length === 2, "the reaction to go");
      expect(bot.shown()[1]).toBe("unreact wiat");
      expect(bot.errors).toEqual([]);
    });

    it("reactions: a message dropped as busy gets a notice; messages dropped by a stop get the stopped reaction", async () => {
      const rejecting = setup({ reactions: true, mode: "reject" });
      await busy(rejecting.bot, rejecting.seen);
      await rejecting.bot.send("a", "too soon");
      await until(() => rejecting.bot.shown().length === 1, "the notice");
      const about = driver.name === "Slack" ? "?" : "too soon";
      expect(rejecting.bot.shown()).toEqual([
        `notice ${about}: I'm still working on your earlier message; send this again once I'm done.`,
      ]);
      expect(rejecting.bot.drops.map(([reason, text]) => [reason, text])).toEqual([
        ["busy", "too soon"],
      ]);
      rejecting.seen.gate.resolve(undefined);
      await rejecting.bot.guard.onIdle();

      const { bot, seen } = setup({ reactions: true });
      await busy(bot, seen, "later");
      await bot.sendStop("a", driver.stopForms[0] as string);
      await until(() => bot.shown().length === 3, "the stopped reaction");
      const eyes = driver.name === "Slack" ? "eyes" : "👀";
      const shrug = driver.name === "Slack" ? "shrug" : "🤷";
      expect(bot.shown()).toEqual([`react later ${eyes}`, "unreact later", `react later ${shrug}`]);
      seen.gate.resolve(undefined);
      await bot.guard.onIdle();
      expect(bot.errors).toEqual([]);
    });

    it("reactions: a failing reaction call goes to onError, and the turn still runs", async () => {
      const { bot, seen } = setup({ reactions: true, failReactions: true });
      await busy(bot, seen, "wait");
      await until(() => bot.errors.length === 1, "the failed reaction");
      expect(bot.errors[0]?.texts).toEqual(["wait"]);
      seen.gate.resolve(undefined);
      await bot.guard.onIdle();
      expect(seen.texts()).toEqual([["first"], ["wait"]]);
      // Putting it on failed, so nothing is taken off.
      expect(bot.errors).toHaveLength(1);
    });
  });
}
