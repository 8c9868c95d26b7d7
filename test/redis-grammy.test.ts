// grammY across replicas: two Bots (replicas of one bot, same id) with their own guards and stores
// on one Redis prefix. An update admitted on one replica runs, when the other holds its chat, in
// that replica's next turn through that replica's bot.

import { BotError, type Context } from "grammy";
import { StoreError, type TurnAbortedError } from "session-guard";
import { type SessionGuardMiddleware, sessionGuard, type TurnFlavor } from "session-guard/grammy";
import { type RedisStore, redisStore } from "session-guard/redis";
import { afterEach, describe, expect, it } from "vitest";
import {
  type ApiRecorder,
  commandUpdate,
  offlineBot,
  photoUpdate,
  recordApi,
  textOf,
  textUpdate,
} from "./support/grammy-fixtures.js";
import { type Deferred, deferred, sleep } from "./support/helpers.js";
import {
  CLIENTS,
  cleanUp,
  eventually,
  type RedisTarget,
  redisAvailable,
  serverAvailable,
  startLocalRedis,
  testPrefix,
  useRedis,
} from "./support/redis-harness.js";

type Ctx = TurnFlavor<Context> & { seenBy?: string };

/** The suite's Redis (`db.target`, `db.admin`), connected before and disposed after it. */
const db = useRedis();

describe("sessionGuard with a shared store", () => {
  it("throws a TypeError naming `bot` when no bot is given", () => {
    const store = { shared: true } as unknown as RedisStore;
    expect(() => sessionGuard<Ctx>({ store })).toThrow(TypeError);
    expect(() => sessionGuard<Ctx>({ store })).toThrow(
      /needs "bot".*sessionGuard\(\{ store, bot \}\)/,
    );
  });
});

describe.skipIf(!redisAvailable).each(CLIENTS)("grammY replicas with $name", (kind) => {
  let prefix: string;
  const open: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const close of open.splice(0).reverse()) await close();
    await cleanUp(db.admin, prefix);
  });

  interface Replica {
    readonly name: string;
    readonly bot: ReturnType<typeof offlineBot<Ctx>>;
    readonly api: ApiRecorder;
    readonly guard: SessionGuardMiddleware<Ctx>;
    readonly turns: { by: string; text: string; inputs: string[]; fence: number; last: boolean }[];
    readonly signals: AbortSignal[];
    /** Turns whose first input has this text wait for the deferred. */
    readonly gates: Map<string, Deferred<void>>;
  }

  function replica(
    name: string,
    at: RedisTarget = db.target,
    commandTimeout?: number,
    botId = 42,
  ): Replica {
    const client = kind.create(at);
    const store = redisStore({
      client,
      prefix,
      lease: 500,
      ...(commandTimeout ? { commandTimeout } : {}),
    });
    const bot = offlineBot<Ctx>({ id: botId });
    const api = recordApi(bot);
    const guard = sessionGuard<Ctx>({ store, bot, onError: () => {} });
    const turns: Replica["turns"] = [];
    const gates = new Map<string, Deferred<void>>();
    const signals: AbortSignal[] = [];
    bot.use(guard);
    // Middleware after the guard sees replayed updates like any other.
    bot.use((ctx, next) => {
      ctx.seenBy = name;
      return next();
    });
    bot.command("stop", () => {});
    bot.on("message", async (ctx) => {
      const inputs = ctx.turn.inputs;
      turns.push({
        by: ctx.seenBy as string,
        text: textOf(ctx),
        inputs: inputs.map(textOf),
        fence: ctx.turn.fence,
        last: inputs[inputs.length - 1] === ctx,
      });
      signals.push(ctx.turn.signal);
      await gates.get(textOf(inputs[0] as Ctx))?.promise;
      await ctx.reply(`done: ${inputs.map(textOf).join(" + ")}`, {}, ctx.turn.signal);
    });
    open.push(async () => {
      for (const gate of gates.values()) gate.resolve();
      await guard.close({ timeout: 1_000 });
      await store.close();
      await kind.dispose(client);
    });
    return { name, bot, api, guard, turns, gates, signals };
  }

  it("an update admitted on B while A holds the chat runs in A's next turn, through A's bot", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("one", gate);
    await a.bot.handleUpdate(textUpdate(1, "one"));
    await eventually(() => a.turns.length === 1);
    await b.bot.handleUpdate(textUpdate(1, "two"));
    await b.bot.handleUpdate(textUpdate(1, "three"));
    expect(b.guard.pendingCount("tg:42:1")).toBe(2);
    gate.resolve();
    await eventually(() => a.turns.length === 2, 3_000, "A's next turn");
    expect(a.turns[1]).toMatchObject({
      by: "A",
      text: "three",
      inputs: ["two", "three"],
      last: true,
    });
    expect(a.turns[1]?.fence).toBeGreaterThan(a.turns[0]?.fence as number);
    expect(b.turns).toEqual([]);
    await eventually(() => a.api.textsTo(1).length === 2);
    expect(a.api.textsTo(1)).toEqual(["done: one", "done: two + three"]);
    expect(b.api.texts()).toEqual([]);
  });

  it("two bots on one prefix: a chat handed over by bot 42's replica runs only at bot 42's other replica, never at bot 43 (issue 18 item 9)", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const other = replica("other bot", db.target, undefined, 43);
    const gate = deferred();
    a.gates.set("one", gate);
    await a.bot.handleUpdate(textUpdate(1, "one"));
    await eventually(() => a.turns.length === 1);
    await a.bot.handleUpdate(textUpdate(1, "two"));
    // A closes while its turn runs: once the turn ends, the chat is handed over to any replica.
    const closing = a.guard.close({ timeout: 5_000 });
    gate.resolve();
    await closing;
    await sleep(1_500); // hand-over hints, then sweeps, at lease 500 ms
    expect(other.turns).toEqual([]);
    expect(other.api.texts()).toEqual([]);
    // A replica of bot 42 takes the chat over and runs "two" with bot 42's token.
    const c = replica("C");
    await eventually(() => c.turns.length === 1, 3_000, "bot 42's other replica");
    expect(c.turns[0]).toMatchObject({ by: "C", inputs: ["two"] });
    expect(other.turns).toEqual([]);
  });

  it("an album gathered on B reaches A's next turn with all its photos", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("one", gate);
    await a.bot.handleUpdate(textUpdate(1, "one"));
    await eventually(() => a.turns.length === 1);
    await b.bot.handleUpdate(photoUpdate(1, "g1", "first photo"));
    await b.bot.handleUpdate(photoUpdate(1, "g1"));
    // Each photo is pending on its own, in the album's group.
    await eventually(() => b.guard.pendingCount("tg:42:1") === 2, 3_000, "the album queued");
    gate.resolve();
    await eventually(() => a.turns.length === 2, 3_000, "A's next turn");
    expect(a.turns[1]).toMatchObject({ by: "A", inputs: ["first photo", ""], last: true });
  });

  it("an album split across replicas (photos at A, B, A, B) runs as one turn with every photo, oldest first", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const photos = [1, 2, 3, 4].map((n) => photoUpdate(1, "split", `photo ${n}`));
    for (const [i, photo] of photos.entries()) {
      await (i % 2 === 0 ? a : b).bot.handleUpdate(photo);
      await sleep(20);
    }
    await eventually(() => a.turns.length + b.turns.length === 1, 3_000, "the album's turn");
    await sleep(900); // longer than the album window: no photo runs later on its own
    const turns = [...a.turns, ...b.turns];
    expect(turns).toHaveLength(1);
    expect(turns[0]?.inputs).toEqual(["photo 1", "photo 2", "photo 3", "photo 4"]);
    expect(turns[0]?.last).toBe(true);
  });

  it("a /stop at B while the album gathers at A drops every photo of it", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const dropped: string[] = [];
    a.guard.on("dropped", (drop) => dropped.push(`${drop.reason} ${textOf(drop.input)}`));
    b.guard.on("dropped", (drop) => dropped.push(`${drop.reason} ${textOf(drop.input)}`));
    await a.bot.handleUpdate(photoUpdate(1, "stopped", "photo 1"));
    await b.bot.handleUpdate(photoUpdate(1, "stopped", "photo 2"));
    await b.bot.handleUpdate(commandUpdate(1, "/stop"));
    await sleep(1_200); // past the album window
    expect([...a.turns, ...b.turns]).toEqual([]);
    expect(dropped.sort()).toEqual(["stopped photo 1", "stopped photo 2"]);
  });

  it("a redelivered update at the other replica is a duplicate; /stop at B stops A's turn", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("one", gate);
    const update = textUpdate(1, "one");
    await a.bot.handleUpdate(update);
    await eventually(() => a.turns.length === 1);
    const dropped: string[] = [];
    b.guard.on("dropped", (drop) => dropped.push(drop.reason));
    await b.bot.handleUpdate(structuredClone(update));
    expect(dropped).toEqual(["duplicate"]);
    const signal = a.signals[0] as AbortSignal;
    // A's turn learns of the stop at B through a hint.
    await sleep(100);
    await b.bot.handleUpdate(commandUpdate(1, "/stop"));
    await eventually(() => signal.aborted, 2_000, "the stop hint");
    expect((signal.reason as TurnAbortedError).code).toBe("stopped");
    gate.resolve();
  });

  it.skipIf(!serverAvailable)(
    "Redis down: handleUpdate rejects with the StoreError, so Telegram redelivers",
    async () => {
      prefix = testPrefix();
      const local = await startLocalRedis();
      open.push(() => local.dispose());
      const a = replica("A", local, 300);
      await a.bot.handleUpdate(textUpdate(1, "before"));
      await eventually(() => a.turns.length === 1);
      await local.stop();
      const error = await a.bot.handleUpdate(textUpdate(1, "during")).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BotError);
      expect((error as BotError).error).toBeInstanceOf(StoreError);
    },
    20_000,
  );
});
