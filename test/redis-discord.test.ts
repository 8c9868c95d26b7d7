// Discord across replicas: two discord.js Clients (replicas of one bot, same id and guild) with
// their own guards and stores on one Redis prefix. Gateway packets go into each client where its
// websocket manager hands them over (discord-fixtures), so the adapter reads the raw payloads the
// way it does in production. An input admitted on one replica runs, when the other holds its
// channel, in that replica's next turn: rebuilt from its raw payload with that replica's client.

import {
  type ChatInputCommandInteraction,
  Events,
  type Interaction,
  type Message,
} from "discord.js";
import { StoreError, type TurnAbortedError } from "session-guard";
import {
  type DiscordGuard,
  type DiscordInput,
  type DiscordTurn,
  discordGuard,
  type GuardedCommand,
} from "session-guard/discord";
import { type RedisStore, redisStore } from "session-guard/redis";
import { afterEach, describe, expect, it } from "vitest";
import {
  BOT_ID,
  CHANNEL_A,
  CHANNEL_B,
  DM_CHANNEL,
  GUILD_ID,
  type OfflineClient,
  offlineClient,
  type Responder,
  RestFailure,
  USER,
  USER_2,
} from "./support/discord-fixtures.js";
import { type Deferred, deferred, dropRecorder, errorRecorder, sleep } from "./support/helpers.js";
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

/** The suite's Redis (`db.target`, `db.admin`), connected before and disposed after it. */
const db = useRedis();

/** The default key of a guild channel for the test bot. */
function keyOf(channel: string): string {
  return `dc:${BOT_ID}:${GUILD_ID}:${channel}`;
}

describe("discordGuard with a shared store", () => {
  const store = { shared: true } as unknown as RedisStore;

  it("throws a TypeError naming `client` when no client is given", () => {
    expect(() => discordGuard({ store })).toThrow(TypeError);
    expect(() => discordGuard({ store })).toThrow(
      /needs "client".*discordGuard\(\{ store, client \}\)/,
    );
  });

  it("throws a TypeError when `client` is not a discord.js Client", () => {
    expect(() => discordGuard({ client: {} as never })).toThrow(/"client" must be the discord.js/);
  });
});

describe.skipIf(!redisAvailable).each(CLIENTS)("Discord replicas with $name", (kind) => {
  let prefix: string;
  const open: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const close of open.splice(0).reverse()) await close();
    await cleanUp(db.admin, prefix);
  });

  interface Turn {
    readonly by: string;
    /** The message content or the command's `prompt` the handler ran with. */
    readonly text: string;
    readonly user: string;
    readonly channel: string;
    readonly inputs: string[];
    readonly fence: number;
    /** The handler's message or interaction is the turn's latest input (the same object). */
    readonly latest: boolean;
    /** The handler's object was built by this replica's client. */
    readonly ownClient: boolean;
    /** For a command: `interaction.deferred` as the handler found it. */
    readonly deferred?: boolean;
  }

  interface ReplicaOptions {
    /** How commands reach the guard: a command collection (default) or `guard.interaction`. */
    readonly routing?: "collection" | "interaction" | "none";
    readonly respond?: Responder;
    readonly at?: RedisTarget;
    readonly commandTimeout?: number;
  }

  interface Replica extends OfflineClient {
    readonly name: string;
    readonly guard: DiscordGuard;
    readonly turns: Turn[];
    readonly signals: AbortSignal[];
    readonly errors: ReturnType<typeof errorRecorder<DiscordInput>>["errors"];
    readonly drops: ReturnType<typeof dropRecorder<DiscordInput>>["drops"];
    /** `'error'` events of the client: a rejected listener would land here. */
    readonly clientErrors: unknown[];
    /** Turns whose first input has this text wait for the deferred. */
    readonly gates: Map<string, Deferred<void>>;
    /** The replica dies: its Redis connections and its Discord client go, its guard never closes. */
    die(): Promise<void>;
  }

  const textOf = (input: DiscordInput): string =>
    "author" in input
      ? input.content
      : ((input as ChatInputCommandInteraction).options.getString("prompt") ?? "");

  function replica(name: string, options: ReplicaOptions = {}): Replica {
    const redis = kind.create(options.at ?? db.target);
    const store = redisStore({
      client: redis,
      prefix,
      lease: 500,
      ...(options.commandTimeout ? { commandTimeout: options.commandTimeout } : {}),
    });
    const bot = offlineClient({ respond: options.respond });
    const { errors, onError } = errorRecorder<DiscordInput>();
    const { drops, onDrop } = dropRecorder<DiscordInput>();
    const guard = discordGuard({ store, client: bot.client, onError, onDrop, typing: false });
    const turns: Turn[] = [];
    const signals: AbortSignal[] = [];
    const gates = new Map<string, Deferred<void>>();
    const clientErrors: unknown[] = [];
    bot.client.on(Events.Error, (error) => clientErrors.push(error));

    const record = async (input: DiscordInput, turn: DiscordTurn<DiscordInput>) => {
      const message = "author" in input;
      turns.push({
        by: name,
        text: textOf(input),
        user: message ? input.author.id : input.user.id,
        channel: input.channelId as string,
        inputs: turn.inputs.map(textOf),
        fence: turn.fence,
        latest: turn.inputs[turn.inputs.length - 1] === input,
        ownClient: input.client === bot.client,
        ...(message ? {} : { deferred: (input as GuardedCommand).deferred }),
      });
      signals.push(turn.signal);
      await gates.get(textOf(turn.inputs[0] as DiscordInput))?.promise;
    };

    bot.client.on(
      Events.MessageCreate,
      guard.message(async (message, turn) => {
        await record(message, turn as DiscordTurn<DiscordInput>);
        await message.reply(`done: ${turn.inputs.map((m: Message) => m.content).join(" + ")}`);
      }),
    );
    const ask = async (interaction: ChatInputCommandInteraction, turn: DiscordTurn<unknown>) => {
      await record(interaction, turn as DiscordTurn<DiscordInput>);
      await interaction.editReply(`answer: ${textOf(interaction)}`);
    };
    if (options.routing === "interaction") {
      bot.client.on(
        Events.InteractionCreate,
        guard.interaction(async (interaction: Interaction, turn) => {
          if (!interaction.isChatInputCommand()) return;
          if (interaction.commandName === "stop") return; // stopped by the guard, answered by it
          if (turn !== undefined) await ask(interaction, turn);
        }),
      );
    } else if (options.routing !== "none") {
      // The discord.js guide's command collection: the routing is the user's own.
      const commands = new Map<string, (i: ChatInputCommandInteraction) => Promise<void>>([
        ["ask", guard.command(ask)],
        ["stop", guard.stopCommand],
      ]);
      bot.client.on(Events.InteractionCreate, (interaction) => {
        if (!interaction.isChatInputCommand()) return;
        return commands.get(interaction.commandName)?.(interaction);
      });
    }
    open.push(async () => {
      for (const gate of gates.values()) gate.resolve();
      await guard.close({ timeout: 1_000 });
      await store.close();
      await kind.dispose(redis);
      await bot.destroy();
    });
    return {
      ...bot,
      name,
      guard,
      turns,
      signals,
      errors,
      drops,
      clientErrors,
      gates,
      async die() {
        await store.close();
        await bot.destroy();
      },
    };
  }

  it("throws a TypeError for a second message handler, which another replica could not choose", () => {
    prefix = testPrefix();
    const a = replica("A");
    expect(() => a.guard.message(() => {})).toThrow(/one message handler per guard/);
  });

  it("a message admitted on B while A holds the channel runs in A's next turn, rebuilt by A's client", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("one", gate);
    a.sendMessage("one");
    await eventually(() => a.turns.length === 1);
    b.sendMessage("two");
    b.sendMessage("three", { author: USER_2 });
    await eventually(() => b.guard.pendingCount(keyOf(CHANNEL_A)) === 2, 2_000, "queued at B");
    gate.resolve();
    await eventually(() => a.turns.length === 2, 3_000, "A's next turn");
    expect(a.turns[1]).toMatchObject({
      by: "A",
      text: "three",
      user: USER_2.id,
      channel: CHANNEL_A,
      inputs: ["two", "three"],
      latest: true,
      ownClient: true,
    });
    expect(a.turns[1]?.fence).toBeGreaterThan(a.turns[0]?.fence as number);
    expect(b.turns).toEqual([]);
    await eventually(() => a.labels().length === 2);
    expect(a.labels()).toEqual([
      `send ${CHANNEL_A}: done: one`,
      `send ${CHANNEL_A}: done: two + three`,
    ]);
    expect(b.labels()).toEqual([]);
    expect([a.errors, b.errors, a.clientErrors, b.clientErrors]).toEqual([[], [], [], []]);
  });

  it.each(["collection", "interaction"] as const)(
    "a command deferred and queued on B is answered from A's turn (%s routing)",
    async (routing) => {
      prefix = testPrefix();
      const a = replica("A", { routing });
      const b = replica("B", { routing });
      const gate = deferred();
      a.gates.set("first", gate);
      const first = a.sendCommand("ask", { options: { prompt: "first" } });
      await eventually(() => a.turns.length === 1);
      const second = b.sendCommand("ask", { user: USER_2, options: { prompt: "second" } });
      await eventually(() => b.guard.pendingCount(keyOf(CHANNEL_A)) === 1, 2_000, "queued at B");
      // B answered Discord within its 3 s (deferred) before it stored the command.
      expect(b.labels()).toEqual([`defer ${second}`]);
      gate.resolve();
      await eventually(() => a.turns.length === 2, 3_000, "A's next turn");
      expect(a.turns[1]).toMatchObject({
        by: "A",
        text: "second",
        user: USER_2.id,
        channel: CHANNEL_A,
        inputs: ["second"],
        latest: true,
        ownClient: true,
        deferred: true,
      });
      await eventually(() => a.labels().length === 3);
      // A never defers B's command again: it edits the reply B deferred, through its token.
      expect(a.labels()).toEqual([
        `defer ${first}`,
        `edit token-${first}: answer: first`,
        `edit token-${second}: answer: second`,
      ]);
      expect(b.labels()).toEqual([`defer ${second}`]);
      expect(b.turns).toEqual([]);
      expect([a.errors, b.errors, a.clientErrors, b.clientErrors]).toEqual([[], [], [], []]);
    },
  );

  it("the same message delivered to both replicas runs once", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    // Both admissions race to Redis: whichever lands first runs, the other is the duplicate.
    const id = a.sendMessage("hello", { channel: CHANNEL_B });
    b.sendMessage("hello", { channel: CHANNEL_B, id });
    const drops = () => [...a.drops, ...b.drops];
    const turns = () => [...a.turns, ...b.turns];
    await eventually(() => drops().length === 1 && turns().length === 1, 2_000, "one of each");
    await Promise.all([a.guard.onIdle(), b.guard.onIdle()]);
    await sleep(50);
    expect(turns().map((t) => t.text)).toEqual(["hello"]);
    expect(drops().map((d) => [d.reason, d.id, d.key])).toEqual([
      ["duplicate", `dc:${BOT_ID}:${id}`, keyOf(CHANNEL_B)],
    ]);
  });

  it("the same interaction delivered to both replicas runs once: Discord refuses the second deferral", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B", {
      respond: (call) =>
        call.route.endsWith("/callback")
          ? new RestFailure(400, 40060, "Interaction has already been acknowledged.")
          : undefined,
    });
    const id = a.sendCommand("ask", { channel: CHANNEL_B, options: { prompt: "once" } });
    b.sendCommand("ask", { channel: CHANNEL_B, options: { prompt: "once" }, id });
    await eventually(() => b.drops.length === 1, 2_000, "the duplicate");
    await eventually(() => a.turns.length === 1);
    await a.guard.onIdle();
    expect(a.turns.map((t) => t.text)).toEqual(["once"]);
    expect(b.drops.map((d) => [d.reason, d.key])).toEqual([["duplicate", keyOf(CHANNEL_B)]]);
    expect([b.errors, b.turns]).toEqual([[], []]);
  });

  it("the stop text at B stops A's turn and drops the channel's pending input", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("work", gate);
    a.sendMessage("work");
    await eventually(() => a.turns.length === 1);
    b.sendMessage("more");
    await eventually(() => b.guard.pendingCount(keyOf(CHANNEL_A)) === 1, 2_000, "queued at B");
    const signal = a.signals[0] as AbortSignal;
    // A's turn learns of the stop at B through a hint: give A's subscription time to be up.
    await sleep(100);
    b.sendMessage("stop");
    await eventually(() => signal.aborted, 2_000, "the stop");
    expect((signal.reason as TurnAbortedError).code).toBe("stopped");
    gate.resolve();
    await a.guard.onIdle();
    await sleep(50);
    expect(a.turns.map((t) => t.text)).toEqual(["work"]);
    expect(b.drops.map((d) => [d.reason, textOf(d.input)])).toEqual([["stopped", "more"]]);
  });

  it("a command B deferred and queued expires while A holds the channel and B is dead: A tells the user", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("one", gate);
    a.sendMessage("one");
    await eventually(() => a.turns.length === 1);
    // Its token dies in 15 min; with the default 60 s margin it expires 800 ms from now.
    const createdAt = Date.now() - (15 * 60_000 - 60_000) + 800;
    const waiting = b.sendCommand("ask", { createdAt, options: { prompt: "later" } });
    await eventually(() => b.guard.pendingCount(keyOf(CHANNEL_A)) === 1, 2_000, "queued at B");
    // The replica that queued it dies: only the holder can still tell the user, while the token
    // lives.
    await b.die();
    await eventually(() => a.drops.length === 1, 3_000, "the expiry at A");
    expect(a.drops.map((d) => [d.reason, d.id, textOf(d.input)])).toEqual([
      ["expired", `dc:${BOT_ID}:${waiting}`, "later"],
    ]);
    const notice = `edit token-${waiting}: This request waited too long and expired; please send it again.`;
    await eventually(() => a.labels().includes(notice), 2_000, "the notice");
    await sleep(200);
    expect(a.labels()).toEqual([notice]);
    expect(b.labels()).toEqual([`defer ${waiting}`]);
    gate.resolve();
    await eventually(() => !a.guard.isBusy(keyOf(CHANNEL_A)));
    expect(a.turns.map((t) => t.text)).toEqual(["one"]);
  });

  it("/stop at A drops a command B deferred and queued; A edits B's reply to say so", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("work", gate);
    a.sendMessage("work");
    await eventually(() => a.turns.length === 1);
    const waiting = b.sendCommand("ask", { options: { prompt: "later" } });
    await eventually(() => b.guard.pendingCount(keyOf(CHANNEL_A)) === 1, 2_000, "queued at B");
    const signal = a.signals[0] as AbortSignal;
    const stop = a.sendCommand("stop");
    await eventually(() => signal.aborted, 2_000, "the stop");
    // The stop at A dropped B's command in Redis: A reports it, rebuilt, and tells the user.
    await eventually(() => a.drops.length === 1, 2_000, "the drop");
    expect(a.drops.map((d) => [d.reason, d.id, textOf(d.input)])).toEqual([
      ["stopped", `dc:${BOT_ID}:${waiting}`, "later"],
    ]);
    await eventually(() => a.labels().length === 2);
    // Both answers go out at once; their order is not part of the contract.
    expect([...a.labels()].sort()).toEqual([
      `edit token-${waiting}: Stopped before it started.`,
      `reply ${stop}: Stopped.`,
    ]);
    expect(b.labels()).toEqual([`defer ${waiting}`]);
    gate.resolve();
  });

  it("a replayed command that reaches no guarded wrapper is reported at the replica running it", async () => {
    prefix = testPrefix();
    const a = replica("A", { routing: "none" });
    const b = replica("B");
    const gate = deferred();
    a.gates.set("work", gate);
    a.sendMessage("work");
    await eventually(() => a.turns.length === 1);
    b.sendCommand("ask", { options: { prompt: "lost" } });
    await eventually(() => b.guard.pendingCount(keyOf(CHANNEL_A)) === 1, 2_000, "queued at B");
    gate.resolve();
    await eventually(() => a.errors.length === 1, 3_000, "the error");
    expect(String(a.errors[0]?.error)).toMatch(/reached no guarded wrapper here/);
    expect(a.errors[0]?.info.key).toBe(keyOf(CHANNEL_A));
    expect(a.clientErrors).toEqual([]);
  });

  it.skipIf(!serverAvailable)(
    "Redis down: a command deferred but not stored is told to send it again",
    async () => {
      prefix = testPrefix();
      const local = await startLocalRedis();
      open.push(() => local.dispose());
      const a = replica("A", { at: local, commandTimeout: 300 });
      a.sendMessage("before");
      await eventually(() => a.turns.length === 1);
      await local.stop();
      const id = a.sendCommand("ask", { channel: CHANNEL_B, options: { prompt: "during" } });
      // (The outage itself is reported too, once, by the store, as a background incident.)
      const refused = () =>
        a.errors.filter((e) => e.error instanceof StoreError && e.error.operation !== "background");
      await eventually(() => refused().length === 1, 5_000, "the refused admission");
      expect(refused().map((e) => [(e.error as StoreError).operation, e.info.key])).toEqual([
        ["acquireOrEnqueue", keyOf(CHANNEL_B)],
      ]);
      await eventually(() => a.labels().length === 3);
      expect(a.labels().slice(1)).toEqual([
        `defer ${id}`,
        `edit token-${id}: This request could not be taken right now; please send it again.`,
      ]);
      expect(a.clientErrors).toEqual([]);
      expect(a.turns.map((t) => t.text)).toEqual(["before"]);
    },
    20_000,
  );

  it("a message of a user in a DM is rebuilt with its DM channel on the other replica", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("dm one", gate);
    a.sendMessage("dm one", { channel: DM_CHANNEL });
    await eventually(() => a.turns.length === 1);
    b.sendMessage("dm two", { channel: DM_CHANNEL, author: USER });
    await eventually(
      () => b.guard.pendingCount(`dc:${BOT_ID}:dm:${DM_CHANNEL}`) === 1,
      2_000,
      "queued at B",
    );
    gate.resolve();
    await eventually(() => a.turns.length === 2, 3_000, "A's next turn");
    expect(a.turns[1]).toMatchObject({ text: "dm two", ownClient: true, latest: true });
    await eventually(() => a.labels().length === 2);
    expect(a.labels()[1]).toBe(`send ${DM_CHANNEL}: done: dm two`);
  });
});
