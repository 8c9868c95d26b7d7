// The Discord adapter on a real, offline discord.js `Client`: gateway packets go in where the
// websocket manager hands them to its packet handler, REST calls are recorded and answered by
// `makeRequest` (see discord-fixtures.ts), and the core guard is the real one. Timing is
// controlled with gates (deferred promises); where the adapter itself watches the clock (token
// expiry, the typing indicator) only `Date` or `setInterval` are faked. What every adapter
// promises (serialization, coalescing, stop, components beside the turn, de-duplication,
// shutdown) is the adapter contract's (adapter-contract.test.ts); this file holds what is
// Discord's own.

import {
  DiscordAPIError,
  Events,
  type Interaction,
  type UserContextMenuCommandInteraction,
} from "discord.js";
import {
  createGuard,
  type Drop,
  type Store,
  StoreError,
  type TurnAbortedError,
} from "session-guard";
import {
  type DiscordGuard,
  type DiscordGuardOptions,
  type DiscordInput,
  type DiscordMessage,
  discordGuard,
} from "session-guard/discord";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  BOT_ID,
  BOT_USER,
  CHANNEL_A,
  CHANNEL_B,
  DM_CHANNEL,
  GUILD_ID,
  type OfflineClient,
  OTHER_BOT,
  offlineClient,
  type Responder,
  RestFailure,
  THREAD_A,
  USER,
  USER_2,
} from "./support/discord-fixtures.js";
import {
  type Deferred,
  deferred,
  dropRecorder,
  errorRecorder,
  flush,
  macrotask,
} from "./support/helpers.js";

// === Harness

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The default key of a channel (and user) for the test bot. */
function keyOf(channel: string, user?: string): string {
  const guild = channel === DM_CHANNEL ? "dm" : GUILD_ID;
  return `dc:${BOT_ID}:${guild}:${channel}${user === undefined ? "" : `:${user}`}`;
}

interface Harness extends OfflineClient {
  readonly guard: DiscordGuard;
  readonly errors: ReturnType<typeof errorRecorder<DiscordInput>>["errors"];
  readonly drops: Drop<DiscordInput>[];
  /** `'error'` events of the client: a rejected listener would land here. */
  readonly clientErrors: unknown[];
  /** Wait until the REST log is exactly `labels` (REST answers take a few macrotasks). */
  restIs(labels: string[]): Promise<void>;
}

/**
 * An offline client and a `discordGuard` recording errors and drops. The typing indicator is off
 * unless a test turns it on, so the REST log holds only what a test is about.
 */
function harness(options: DiscordGuardOptions = {}, respond?: Responder): Harness {
  const bot = offlineClient({ respond });
  const { errors, onError } = errorRecorder<DiscordInput>();
  const { drops, onDrop } = dropRecorder<DiscordInput>();
  const shared = options.guard !== undefined;
  const guard = discordGuard(shared ? options : { onError, onDrop, typing: false, ...options });
  const clientErrors: unknown[] = [];
  bot.client.on(Events.Error, (error) => clientErrors.push(error));
  cleanups.push(bot.destroy);
  cleanups.push(() => guard.close({ timeout: 0 }));
  return {
    ...bot,
    guard,
    errors,
    drops,
    clientErrors,
    restIs: (labels) =>
      vi.waitFor(() => expect(bot.labels()).toEqual(labels), { timeout: 5_000, interval: 5 }),
  };
}

/** Gates that handlers wait on, by name; a name without a gate does not wait. */
function gates() {
  const all = new Map<string, Deferred<void>>();
  return {
    add(...names: string[]) {
      for (const name of names) all.set(name, deferred());
    },
    wait(name: string): Promise<void> {
      return all.get(name)?.promise ?? Promise.resolve();
    },
    open(name: string) {
      all.get(name)?.resolve();
    },
  };
}

/** The contents of a message turn's inputs, joined with "+". */
function contents(inputs: readonly DiscordMessage[]): string {
  return inputs.map((m) => m.content).join("+");
}

/** Wait until a promise-returning check stops throwing (REST answers are macrotasks away). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await macrotask();
}

/** A message handler that logs its turns and waits on the gate named after the latest message. */
function loggingMessages(h: Harness, log: string[], gate: ReturnType<typeof gates>) {
  return h.guard.message(async (message, turn) => {
    log.push(`start ${contents(turn.inputs)}`);
    await gate.wait(message.content);
    log.push(`end ${contents(turn.inputs)}`);
  });
}

// === Keys and serialization

describe("discordGuard: one turn per channel", () => {
  it("gives a thread its own key, and a DM the key dm", async () => {
    const h = harness();
    const log: string[] = [];
    const gate = gates();
    gate.add("parent");
    const keys: string[] = [];
    h.client.on(
      Events.MessageCreate,
      h.guard.message(async (message, turn) => {
        keys.push(turn.key);
        log.push(`start ${message.content}`);
        await gate.wait(message.content);
        log.push(`end ${message.content}`);
      }),
    );

    h.sendMessage("parent", { channel: CHANNEL_A });
    h.sendMessage("thread", { channel: THREAD_A });
    h.sendMessage("dm", { channel: DM_CHANNEL });
    await flush();
    // The thread and the DM did not wait for the parent channel's turn.
    expect(log).toEqual(["start parent", "start thread", "start dm", "end thread", "end dm"]);
    expect(keys).toEqual([keyOf(CHANNEL_A), keyOf(THREAD_A), keyOf(DM_CHANNEL)]);
    expect(keyOf(DM_CHANNEL)).toBe(`dc:${BOT_ID}:dm:${DM_CHANNEL}`);
    gate.open("parent");
    await h.guard.onIdle();
    expect(log).toEqual([
      "start parent",
      "start thread",
      "start dm",
      "end thread",
      "end dm",
      "end parent",
    ]);
  });

  it("with perUser, gives each user of a channel a turn of their own", async () => {
    const h = harness({ perUser: true });
    const log: string[] = [];
    const gate = gates();
    gate.add("ada1");
    h.client.on(Events.MessageCreate, loggingMessages(h, log, gate));

    h.sendMessage("ada1", { author: USER });
    h.sendMessage("bob1", { author: USER_2 });
    h.sendMessage("ada2", { author: USER });
    await flush();
    expect(log).toEqual(["start ada1", "start bob1", "end bob1"]);
    expect(h.guard.pendingCount(keyOf(CHANNEL_A, USER.id))).toBe(1);
    gate.open("ada1");
    await h.guard.onIdle();
    expect(log).toEqual([
      "start ada1",
      "start bob1",
      "end bob1",
      "end ada1",
      "start ada2",
      "end ada2",
    ]);
  });

  it("uses a key function instead, and ignores what it gives no key", async () => {
    // One turn per guild, and only messages that start with "!" are for the bot.
    const h = harness({
      key: (input) =>
        "content" in input && !input.content.startsWith("!")
          ? undefined
          : `guild:${input.guildId ?? "dm"}`,
    });
    const log: string[] = [];
    const gate = gates();
    gate.add("!a");
    h.client.on(Events.MessageCreate, loggingMessages(h, log, gate));
    const admitted: string[] = [];
    h.guard.on("admitted", ({ key }) => admitted.push(key));

    h.sendMessage("!a", { channel: CHANNEL_A });
    h.sendMessage("chatter", { channel: CHANNEL_A });
    h.sendMessage("!b", { channel: CHANNEL_B });
    await flush();
    expect(log).toEqual(["start !a"]);
    expect(admitted).toEqual([`guild:${GUILD_ID}`, `guild:${GUILD_ID}`]);
    gate.open("!a");
    await h.guard.onIdle();
    expect(log).toEqual(["start !a", "end !a", "start !b", "end !b"]);
  });

  it("never hands bots (itself included), webhooks or system messages to the handler", async () => {
    const h = harness();
    const seen: string[] = [];
    h.client.on(
      Events.MessageCreate,
      h.guard.message((message) => void seen.push(message.content)),
    );
    const admitted: string[] = [];
    h.guard.on("admitted", ({ input }) => admitted.push((input as DiscordMessage).content));

    h.sendMessage("from another bot", { author: OTHER_BOT });
    h.sendMessage("the bot's own reply", { author: BOT_USER });
    h.sendMessage("through a webhook", { webhookId: "6000000000000000001" });
    h.sendMessage("", { type: 7 }); // "Ada joined the server"
    h.sendMessage("from a person");
    await h.guard.onIdle();
    expect(seen).toEqual(["from a person"]);
    expect(admitted).toEqual(["from a person"]);
  });

  it("keyOf gives messages, commands and buttons of a channel the same key", async () => {
    const h = harness();
    const inputs: (DiscordMessage | Interaction)[] = [];
    h.client.on(Events.MessageCreate, (message) => void inputs.push(message));
    h.client.on(Events.InteractionCreate, (interaction) => void inputs.push(interaction));
    h.sendMessage("hi", { channel: THREAD_A });
    h.sendCommand("ask", { channel: THREAD_A });
    h.sendButton("yes", { channel: THREAD_A });
    expect(inputs.map((input) => h.guard.keyOf(input))).toEqual([
      keyOf(THREAD_A),
      keyOf(THREAD_A),
      keyOf(THREAD_A),
    ]);
  });
});

// === Commands

describe("discordGuard: slash commands", () => {
  it("defers a command that arrives during a message turn at once and answers it in its turn", async () => {
    const h = harness();
    const log: string[] = [];
    const gate = gates();
    gate.add("m1");
    h.client.on(
      Events.MessageCreate,
      h.guard.message(async (message, turn) => {
        log.push(`message ${contents(turn.inputs)}`);
        await gate.wait(message.content);
        await message.reply(`answer ${message.content}`);
      }),
    );
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction(async (interaction, turn) => {
        if (turn === undefined || !interaction.isChatInputCommand()) return;
        log.push(`command ${interaction.commandName}, deferred ${interaction.deferred}`);
        await interaction.editReply(`answer ${interaction.options.getString("prompt")}`);
      }),
    );

    h.sendMessage("m1");
    const ask = h.sendCommand("ask", { options: { prompt: "q" } });
    // Deferred within Discord's 3 s, while the message turn still runs.
    await h.restIs([`defer ${ask}`]);
    expect(log).toEqual(["message m1"]);
    expect(h.guard.pendingCount(keyOf(CHANNEL_A))).toBe(1);

    gate.open("m1");
    await h.guard.onIdle();
    await h.restIs([`defer ${ask}`, `send ${CHANNEL_A}: answer m1`, `edit token-${ask}: answer q`]);
    expect(log).toEqual(["message m1", "command ask, deferred true"]);
    expect(h.errors).toEqual([]);
  });

  it("holds the channel from admission, but starts the handler only once the deferral went through", async () => {
    const answer = deferred<unknown>();
    const h = harness({}, (call) =>
      call.route.endsWith("/callback") ? answer.promise : undefined,
    );
    const log: string[] = [];
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction(async (interaction, turn) => {
        if (!interaction.isChatInputCommand() || turn === undefined) return;
        log.push(`run, deferred ${interaction.deferred}`);
        await interaction.editReply("done");
      }),
    );

    const ask = h.sendCommand("ask");
    await settle();
    expect(h.labels()).toEqual([`defer ${ask}`]);
    expect(h.guard.isBusy(keyOf(CHANNEL_A))).toBe(true);
    expect(log).toEqual([]);

    answer.resolve(null);
    await h.guard.onIdle();
    await h.restIs([`defer ${ask}`, `edit token-${ask}: done`]);
    expect(log).toEqual(["run, deferred true"]);
  });

  it("never coalesces a command: each one is a turn of its own, in arrival order", async () => {
    const h = harness();
    const log: string[] = [];
    const gate = gates();
    gate.add("m1");
    h.client.on(
      Events.MessageCreate,
      h.guard.message(async (message, turn) => {
        log.push(contents(turn.inputs));
        await gate.wait(message.content);
      }),
    );
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction((interaction, turn) => {
        if (turn === undefined || !interaction.isChatInputCommand()) return;
        expect(turn.inputs).toEqual([interaction]);
        log.push(`/${interaction.options.getString("prompt")}`);
      }),
    );

    h.sendMessage("m1");
    h.sendCommand("ask", { options: { prompt: "q1" } });
    h.sendMessage("m2");
    h.sendMessage("m3");
    h.sendCommand("ask", { options: { prompt: "q2" } });
    h.sendMessage("m4");
    gate.open("m1");
    await h.guard.onIdle();
    expect(log).toEqual(["m1", "/q1", "m2+m3", "/q2", "m4"]);
  });

  it("defers ephemerally with ephemeral: true", async () => {
    const h = harness({ ephemeral: true });
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction(async (interaction, turn) => {
        if (interaction.isChatInputCommand() && turn !== undefined)
          await interaction.editReply("only you see this");
      }),
    );
    const ask = h.sendCommand("ask");
    await h.guard.onIdle();
    await h.restIs([`defer ${ask} ephemeral`, `edit token-${ask}: only you see this`]);
  });

  it("guards a command's execute in the command-collection pattern, and context-menu commands too", async () => {
    const h = harness();
    const log: string[] = [];
    const gate = gates();
    gate.add("m1");
    h.client.on(Events.MessageCreate, loggingMessages(h, log, gate));
    // As in the discord.js guide: one module per command, each with its `execute`.
    const askCommand = {
      execute: h.guard.command(async (interaction, turn) => {
        log.push(`ask ${interaction.options.getString("prompt")} in ${turn.key}`);
        await interaction.editReply("ok");
      }),
    };
    const profileCommand = {
      execute: h.guard.command<UserContextMenuCommandInteraction>(async (interaction) => {
        log.push(`profile of ${interaction.targetUser.username}`);
      }),
    };
    const stopCommand = { execute: h.guard.stopCommand };
    const chatCommands = new Map([
      ["ask", askCommand],
      ["stop", stopCommand],
    ]);
    h.client.on(Events.InteractionCreate, async (interaction) => {
      if (interaction.isChatInputCommand()) {
        await chatCommands.get(interaction.commandName)?.execute(interaction);
      } else if (interaction.isUserContextMenuCommand() && interaction.commandName === "Profile") {
        await profileCommand.execute(interaction);
      }
    });

    h.sendMessage("m1");
    const ask = h.sendCommand("ask", { options: { prompt: "q" } });
    const profile = h.sendCommand("Profile", { onUser: USER_2 });
    await h.restIs([`defer ${ask}`, `defer ${profile}`]);
    expect(log).toEqual(["start m1"]);
    gate.open("m1");
    await h.guard.onIdle();
    expect(log).toEqual(["start m1", "end m1", `ask q in ${keyOf(CHANNEL_A)}`, "profile of bob"]);
    await h.restIs([`defer ${ask}`, `defer ${profile}`, `edit token-${ask}: ok`]);
  });

  it("reports a deferral that failed and does not run the handler", async () => {
    const h = harness({}, (call) =>
      call.route.endsWith("/callback")
        ? new RestFailure(404, 10062, "Unknown interaction")
        : undefined,
    );
    const log: string[] = [];
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction(() => void log.push("ran")),
    );
    const ask = h.sendCommand("ask");
    await h.guard.onIdle();
    expect(log).toEqual([]);
    expect(h.errors).toHaveLength(1);
    const [{ error, info }] = h.errors as [(typeof h.errors)[number]];
    expect(error).toBeInstanceOf(DiscordAPIError);
    expect((error as DiscordAPIError).code).toBe(10062);
    expect(info.key).toBe(keyOf(CHANNEL_A));
    expect((info.inputs as Interaction[]).map((i) => i.id)).toEqual([ask]);
    expect(h.guard.isBusy(keyOf(CHANNEL_A))).toBe(false);
    expect(h.clientErrors).toEqual([]);
  });

  it("tells a command dropped as busy (reject mode) so, or stays silent with dropReply: false", async () => {
    for (const dropReply of [undefined, false] as const) {
      const h = harness({ mode: "reject", ...(dropReply === false ? { dropReply } : {}) });
      const gate = gates();
      gate.add("m1");
      h.client.on(Events.MessageCreate, loggingMessages(h, [], gate));
      h.client.on(
        Events.InteractionCreate,
        h.guard.interaction(() => {
          throw new Error("a dropped command must not run");
        }),
      );
      h.sendMessage("m1");
      const ask = h.sendCommand("ask");
      await settle();
      expect(h.drops.map((d) => [d.reason, (d.input as Interaction).id])).toEqual([["busy", ask]]);
      await h.restIs(
        dropReply === false
          ? [`defer ${ask}`]
          : [
              `defer ${ask}`,
              `edit token-${ask}: Still busy with an earlier request here; try again when it is done.`,
            ],
      );
      gate.open("m1");
      await h.guard.onIdle();
      expect(h.errors).toEqual([]);
    }
  });

  it("answers a dropped command with the text of a dropReply function", async () => {
    const h = harness({
      mode: "reject",
      dropReply: (reason, interaction) => `${interaction.commandName}: ${reason}`,
    });
    const gate = gates();
    gate.add("m1");
    h.client.on(Events.MessageCreate, loggingMessages(h, [], gate));
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction(() => {}),
    );
    h.sendMessage("m1");
    const ask = h.sendCommand("ask");
    await h.restIs([`defer ${ask}`, `edit token-${ask}: ask: busy`]);
    gate.open("m1");
  });

  it("drops and answers commands that arrive after close (shutdown)", async () => {
    const h = harness();
    const log: string[] = [];
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction(() => void log.push("ran")),
    );
    await h.guard.close();
    const ask = h.sendCommand("ask");
    await h.restIs([
      `defer ${ask}`,
      `edit token-${ask}: The bot is restarting; please send this again in a moment.`,
    ]);
    expect(h.drops.map((d) => d.reason)).toEqual(["shutdown"]);
    expect(log).toEqual([]);
  });
});

// === Token expiry

describe("discordGuard: interaction tokens", () => {
  it("drops and reports a waiting command whose token would expire, and never runs it", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const h = harness({ expiryMargin: 60_000 });
    const log: string[] = [];
    const gate = gates();
    gate.add("m1");
    h.client.on(Events.MessageCreate, loggingMessages(h, log, gate));
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction(() => void log.push("command ran")),
    );

    h.sendMessage("m1");
    const ask = h.sendCommand("ask");
    await h.restIs([`defer ${ask}`]);
    // 14 minutes pass: the token (15 minutes) lives on, but is inside the 60 s margin.
    vi.setSystemTime(Date.now() + 14 * 60_000 + 1);
    gate.open("m1");
    await h.guard.onIdle();

    expect(log).toEqual(["start m1", "end m1"]);
    expect(h.drops.map((d) => [d.reason, d.key, (d.input as Interaction).id, d.id])).toEqual([
      ["expired", keyOf(CHANNEL_A), ask, `dc:${BOT_ID}:${ask}`],
    ]);
    // The token still lives, so the user is told.
    await h.restIs([
      `defer ${ask}`,
      `edit token-${ask}: This request waited too long and expired; please send it again.`,
    ]);
  });

  it("does not answer an expired command whose token has died", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const h = harness();
    const gate = gates();
    gate.add("m1");
    h.client.on(Events.MessageCreate, loggingMessages(h, [], gate));
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction(() => {}),
    );
    h.sendMessage("m1");
    const ask = h.sendCommand("ask");
    await h.restIs([`defer ${ask}`]);
    vi.setSystemTime(Date.now() + 16 * 60_000);
    gate.open("m1");
    await h.guard.onIdle();
    await settle();
    expect(h.drops.map((d) => d.reason)).toEqual(["expired"]);
    expect(h.labels()).toEqual([`defer ${ask}`]);
  });

  it("drops a command whose token is already inside the margin on arrival, without deferring it", async () => {
    const h = harness({ expiryMargin: 60_000 });
    const log: string[] = [];
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction(() => void log.push("ran")),
    );
    const ask = h.sendCommand("ask", { createdAt: Date.now() - 14 * 60_000 - 1_000 });
    await settle();
    expect(log).toEqual([]);
    expect(h.labels()).toEqual([]);
    expect(h.drops.map((d) => [d.reason, (d.input as Interaction).id])).toEqual([["expired", ask]]);
    expect(h.guard.isBusy(keyOf(CHANNEL_A))).toBe(false);
  });
});

// === Stop

describe("discordGuard: stop", () => {
  it('stops the channel\'s turn on the text "stop" (trimmed, any case, "@bot stop" too) and drops its pending input', async () => {
    const stops: [string, boolean][] = [];
    const h = harness({ onStop: (source, stopped) => void stops.push([source.id, stopped]) });
    const log: string[] = [];
    h.client.on(
      Events.MessageCreate,
      h.guard.message(async (message, turn) => {
        log.push(`start ${contents(turn.inputs)}`);
        if (message.content !== "work") return;
        await new Promise((resolve) => turn.signal.addEventListener("abort", resolve));
        const reason = turn.signal.reason as TurnAbortedError;
        log.push(`aborted: ${reason.code}`);
      }),
    );

    h.sendMessage("work");
    const more = h.sendMessage("more");
    const stop = h.sendMessage("  STOP ");
    await h.guard.onIdle();
    expect(log).toEqual(["start work", "aborted: stopped"]);
    expect(h.drops.map((d) => [d.reason, (d.input as DiscordMessage).id])).toEqual([
      ["stopped", more],
    ]);
    expect(stops).toEqual([[stop, true]]);

    h.sendMessage("work");
    const mention = h.sendMessage(`<@${BOT_ID}> Stop`);
    await h.guard.onIdle();
    expect(log).toEqual(["start work", "aborted: stopped", "start work", "aborted: stopped"]);

    const idle = h.sendMessage("stop");
    h.sendMessage("after");
    await h.guard.onIdle();
    expect(stops).toEqual([
      [stop, true],
      [mention, true],
      [idle, false],
    ]);
    expect(log).toEqual([
      "start work",
      "aborted: stopped",
      "start work",
      "aborted: stopped",
      "start after",
    ]);
  });

  it("takes its stop words from stopText, and [] turns them off", async () => {
    const h = harness({ stopText: ["Halt"], onStop: () => {} });
    const seen: string[] = [];
    h.client.on(
      Events.MessageCreate,
      h.guard.message((message) => void seen.push(message.content)),
    );
    h.sendMessage("stop");
    h.sendMessage(" halt");
    await h.guard.onIdle();
    expect(seen).toEqual(["stop"]);

    const stops: boolean[] = [];
    const off = harness({ stopText: [] });
    off.client.on(
      Events.MessageCreate,
      off.guard.message((message) => void stops.push(message.content === "stop")),
    );
    off.sendMessage("stop");
    await off.guard.onIdle();
    expect(stops).toEqual([true]);
  });

  it("stops on the slash command /stop, answers it, and tells the commands it dropped", async () => {
    const h = harness();
    const log: string[] = [];
    h.client.on(
      Events.MessageCreate,
      h.guard.message(async (_message, turn) => {
        log.push("turn starts");
        await new Promise((resolve) => turn.signal.addEventListener("abort", resolve));
        log.push(`turn ${(turn.signal.reason as TurnAbortedError).code}`);
      }),
    );
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction((interaction) => void log.push(`ran ${interaction.id}`)),
    );

    h.sendMessage("work");
    const ask = h.sendCommand("ask");
    await h.restIs([`defer ${ask}`]);
    const stop = h.sendCommand("stop");
    await h.guard.onIdle();
    expect(log).toEqual(["turn starts", "turn stopped"]);
    expect(h.drops.map((d) => [d.reason, (d.input as Interaction).id])).toEqual([["stopped", ask]]);
    await settle();
    // Two answers in flight at once (the stop reply and the dropped command's edit): compare sorted.
    expect(h.labels().sort()).toEqual(
      [
        `defer ${ask}`,
        `reply ${stop}: Stopped.`,
        `edit token-${ask}: Stopped before it started.`,
      ].sort(),
    );

    const idle = h.sendCommand("stop");
    await h.restIs([...h.labels().slice(0, 3), `reply ${idle}: Nothing to stop.`]);
  });

  it("lets onStop answer a stop command, and takes stop command names from stopCommands", async () => {
    const h = harness({
      stopCommands: ["cancel"],
      ephemeral: true,
      onStop: async (source, stopped) => {
        if (!("author" in source)) await source.reply(`cancelled: ${stopped}`);
      },
    });
    const log: string[] = [];
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction(async (interaction, turn) => {
        if (!interaction.isChatInputCommand() || turn === undefined) return;
        log.push(interaction.commandName);
        await interaction.editReply("ok");
      }),
    );
    const cancel = h.sendCommand("cancel");
    await h.restIs([`reply ${cancel}: cancelled: false`]);
    const stop = h.sendCommand("stop");
    await h.guard.onIdle();
    await h.restIs([
      `reply ${cancel}: cancelled: false`,
      `defer ${stop} ephemeral`,
      `edit token-${stop}: ok`,
    ]);
    expect(log).toEqual(["stop"]);
  });

  it("answers the default stop reply ephemerally with ephemeral: true", async () => {
    const h = harness({ ephemeral: true });
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction(() => {}),
    );
    const stop = h.sendCommand("stop");
    await h.restIs([`reply ${stop} ephemeral: Nothing to stop.`]);
  });
});

// === Errors

describe("discordGuard: errors never reach the client", () => {
  it("shows why: a bare async listener that throws becomes a client 'error' event", async () => {
    const bot = offlineClient();
    cleanups.push(bot.destroy);
    const errors: unknown[] = [];
    bot.client.on(Events.Error, (error) => errors.push(error));
    bot.client.on(Events.MessageCreate, async () => {
      throw new Error("boom");
    });
    bot.sendMessage("hi");
    await settle();
    expect(errors).toEqual([new Error("boom")]);
  });

  it.each([
    ["an empty string", ""],
    ["a lone surrogate", "k:\uD800"],
    ["a number", 42],
  ])(
    "an adapter's own error: a key function that returns %s goes to onError with the input, which is not run",
    async (_name, bad) => {
      let badKey = true;
      const h = harness({ key: (input) => (badKey ? (bad as string) : `k:${input.channelId}`) });
      const seen: string[] = [];
      h.client.on(
        Events.MessageCreate,
        h.guard.message((message) => void seen.push(message.content)),
      );
      h.client.on(
        Events.InteractionCreate,
        h.guard.interaction(async (interaction, turn) => {
          if (turn !== undefined) seen.push(`command ${interaction.id}`);
        }),
      );
      h.sendMessage("bad message");
      const command = h.sendCommand("ask");
      await settle();
      expect(seen).toEqual([]);
      expect(h.errors.map(({ error, info }) => [(error as Error).name, info.key])).toEqual([
        ["TypeError", ""],
        ["TypeError", ""],
      ]);
      expect(String(h.errors[0]?.error)).toMatch(
        /"key" must return a non-empty, well-formed string/,
      );
      expect(h.errors[1]?.info.inputs).toEqual([expect.objectContaining({ id: command })]);
      expect(h.clientErrors).toEqual([]);
      expect(h.labels()).toEqual([]); // the command was not deferred: it is not run
      badKey = false;
      h.sendMessage("good message");
      await h.guard.onIdle();
      await settle();
      expect(seen).toEqual(["good message"]);
    },
  );

  it("sends a throwing message handler to onError, keeps the channel usable, emits no 'error'", async () => {
    const h = harness();
    const seen: string[] = [];
    const listener = h.guard.message(async (message) => {
      seen.push(message.content);
      if (message.content === "bad") throw new Error("boom");
    });
    h.client.on(Events.MessageCreate, listener);
    const bad = h.sendMessage("bad");
    await h.guard.onIdle();
    h.sendMessage("good");
    await h.guard.onIdle();
    await settle();
    expect(seen).toEqual(["bad", "good"]);
    expect(h.errors.map(({ error, info }) => [error, info.key, info.fence])).toEqual([
      [new Error("boom"), keyOf(CHANNEL_A), 1],
    ]);
    expect(h.errors.map(({ info }) => (info.inputs as DiscordMessage[]).map((m) => m.id))).toEqual([
      [bad],
    ]);
    expect(h.clientErrors).toEqual([]);
  });

  it("sends throwing command and button handlers and a throwing key function to onError", async () => {
    let throwKey = false;
    const h = harness({
      key: (input) => {
        if (throwKey) throw new Error("key failed");
        return `k:${input.channelId}`;
      },
    });
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction(async (interaction, turn) => {
        throw new Error(
          turn === undefined ? `button ${interaction.id}` : `command ${interaction.id}`,
        );
      }),
    );
    const ask = h.sendCommand("ask");
    await h.guard.onIdle();
    const button = h.sendButton("yes");
    await settle();
    throwKey = true;
    const message = h.guard.message(() => {});
    const returned = message({} as DiscordMessage);
    h.sendCommand("ask");
    await settle();

    expect(h.errors.map(({ error, info }) => [(error as Error).message, info.key])).toEqual([
      [`command ${ask}`, `k:${CHANNEL_A}`],
      [`button ${button}`, `k:${CHANNEL_A}`],
      [expect.stringMatching(/reading 'bot'/), ""],
      ["key failed", ""],
    ]);
    await expect(returned).resolves.toBeUndefined();
    expect(h.clientErrors).toEqual([]);
  });

  it("never rejects under awaitTurn either: the listener waits for the turn, the error goes to onError once", async () => {
    const h = harness({ awaitTurn: true });
    const log: string[] = [];
    const listener = h.guard.message(async (message) => {
      await macrotask();
      log.push(`handled ${message.content}`);
      throw new Error("boom");
    });
    h.client.on(Events.MessageCreate, (message) => {
      void listener(message).then(() => log.push("listener resolved"));
    });
    h.sendMessage("hi");
    await h.guard.onIdle();
    await flush();
    expect(log).toEqual(["handled hi", "listener resolved"]);
    expect(h.errors.map(({ error }) => error)).toEqual([new Error("boom")]);
  });

  it("reports an admission the store refused", async () => {
    const failing = {
      shared: false,
      acquireOrEnqueue() {
        throw new Error("store down");
      },
    } as unknown as Store;
    const store: Store = new Proxy(failing, {
      get: (target, name) => (name in target ? target[name as keyof Store] : () => []),
    });
    const h = harness({ store, awaitTurn: true });
    h.client.on(
      Events.MessageCreate,
      h.guard.message(() => {}),
    );
    h.sendMessage("hi");
    await settle();
    expect(h.errors.map(({ error, info }) => [error instanceof StoreError, info.key])).toEqual([
      [true, keyOf(CHANNEL_A)],
    ]);
    expect(h.clientErrors).toEqual([]);
  });
});

// === Typing indicator

describe("discordGuard: typing indicator", () => {
  it("keeps typing alive while a message turn runs, and only then", async () => {
    const h = harness({ typing: true });
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const gate = gates();
    gate.add("m1");
    h.client.on(Events.MessageCreate, loggingMessages(h, [], gate));
    h.client.on(
      Events.InteractionCreate,
      h.guard.interaction(async (interaction, turn) => {
        if (interaction.isChatInputCommand() && turn !== undefined)
          await interaction.editReply("ok");
      }),
    );

    h.sendMessage("m1");
    await h.restIs([`typing ${CHANNEL_A}`]);
    vi.advanceTimersByTime(8_000);
    await h.restIs([`typing ${CHANNEL_A}`, `typing ${CHANNEL_A}`]);
    gate.open("m1");
    await h.guard.onIdle();
    vi.advanceTimersByTime(24_000);
    // A command's turn shows "thinking…" from its deferral instead.
    const ask = h.sendCommand("ask");
    await h.guard.onIdle();
    vi.advanceTimersByTime(24_000);
    await settle();
    expect(h.labels()).toEqual([
      `typing ${CHANNEL_A}`,
      `typing ${CHANNEL_A}`,
      `defer ${ask}`,
      `edit token-${ask}: ok`,
    ]);
  });

  it("reports a refused typing indicator once and still runs the turn", async () => {
    const h = harness({ typing: true }, (call) =>
      call.route.endsWith("/typing")
        ? new RestFailure(403, 50013, "Missing Permissions")
        : undefined,
    );
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const gate = gates();
    gate.add("m1");
    const log: string[] = [];
    h.client.on(Events.MessageCreate, loggingMessages(h, log, gate));
    h.sendMessage("m1");
    await vi.waitFor(() => expect(h.errors).toHaveLength(1));
    vi.advanceTimersByTime(24_000);
    gate.open("m1");
    await h.guard.onIdle();
    await settle();
    expect(h.labels()).toEqual([`typing ${CHANNEL_A}`]);
    expect(log).toEqual(["start m1", "end m1"]);
    expect(h.errors.map(({ error }) => (error as DiscordAPIError).code)).toEqual([50013]);
  });
});

// === Options and sharing

describe("discordGuard: options", () => {
  it.each([
    [{ perUser: "yes" }, /"perUser" must be true or false/],
    [{ ephemeral: 1 }, /"ephemeral" must be true or false/],
    [{ typing: null }, /"typing" must be true or false/],
    [{ awaitTurn: "no" }, /"awaitTurn" must be true or false/],
    [{ key: "channel" }, /"key" must be a function/],
    [{ onStop: true }, /"onStop" must be a function/],
    [{ dropReply: "sorry" }, /"dropReply" must be a function .*, or false/],
    [{ stopText: "stop" }, /"stopText" must be an array of non-empty strings/],
    [{ stopText: [""] }, /"stopText" must be an array of non-empty strings/],
    [{ stopCommands: [1] }, /"stopCommands" must be an array of non-empty strings/],
    [{ expiryMargin: -1 }, /"expiryMargin" must be an integer number of ms from 0/],
    [{ expiryMargin: 15 * 60_000 }, /"expiryMargin" must be an integer/],
    [{ key: () => "k", perUser: true }, /"perUser" shapes the default key/],
    [{ guard: {} }, /"guard" must be a guard from createGuard\(\)/],
    [{ guard: createGuard(), mode: "queue" }, /"mode" configure the shared guard/],
    [{ mode: "eventually" }, /createGuard: "mode" must be one of/],
    [{ nonsense: 1 }, /unknown option "nonsense"/],
    [
      { store: { shared: true } },
      /a shared store .* needs "client": discordGuard\(\{ store, client \}\)/,
    ],
    [{ client: {} }, /"client" must be the discord.js Client/],
  ])("rejects %o with a TypeError", (options, message) => {
    expect(() => discordGuard(options as DiscordGuardOptions)).toThrow(TypeError);
    expect(() => discordGuard(options as DiscordGuardOptions)).toThrow(message);
  });

  it("rejects a wrapper without a handler", () => {
    const guard = discordGuard();
    expect(() => guard.message(undefined as never)).toThrow(
      /message\(handler\) needs the handler function/,
    );
    expect(() => guard.interaction("x" as never)).toThrow(TypeError);
    expect(() => guard.command(null as never)).toThrow(TypeError);
  });

  it("reports a command() given a button instead of guarding it", async () => {
    const h = harness();
    const execute = h.guard.command(() => {});
    let button: Interaction | undefined;
    h.client.on(Events.InteractionCreate, (interaction) => {
      button = interaction;
    });
    h.sendButton("yes");
    await execute(button as never);
    expect(h.errors.map(({ error }) => (error as Error).message)).toEqual([
      expect.stringMatching(/command\(\) runs slash and context-menu commands/),
    ]);
    expect(h.labels()).toEqual([]);
  });
});

describe("discordGuard: a shared guard", () => {
  it("serializes the wrappers of two adapters and a lane on one core guard", async () => {
    const core = createGuard<unknown>();
    const messages = harness({ guard: core });
    const commands = discordGuard({ guard: core });
    const log: string[] = [];
    const gate = gates();
    gate.add("m1");
    messages.client.on(
      Events.MessageCreate,
      messages.guard.message(async (message) => {
        log.push(`message ${message.content}`);
        await gate.wait(message.content);
        log.push(`message ${message.content} done`);
      }),
    );
    messages.client.on(
      Events.InteractionCreate,
      commands.interaction(async (interaction, turn) => {
        if (!interaction.isChatInputCommand() || turn === undefined) return;
        log.push(`command ${interaction.commandName}`);
        await interaction.editReply("ok");
      }),
    );

    messages.sendMessage("m1");
    const lane = core.run(keyOf(CHANNEL_A), () => void log.push("lane"));
    messages.sendCommand("ask");
    await flush();
    expect(log).toEqual(["message m1"]);
    expect(commands.guard).toBe(core);
    expect(messages.guard.pendingCount(keyOf(CHANNEL_A))).toBe(2);
    gate.open("m1");
    await lane;
    await core.onIdle();
    expect(log).toEqual(["message m1", "message m1 done", "lane", "command ask"]);
  });

  it("sends turn errors to the shared guard's onError and adapter errors to the adapter's", async () => {
    const coreErrors = errorRecorder<unknown>();
    const adapterErrors = errorRecorder<DiscordInput>();
    const core = createGuard<unknown>({ onError: coreErrors.onError });
    let throwKey = false;
    const h = harness({
      guard: core,
      onError: adapterErrors.onError,
      key: (input) => {
        if (throwKey) throw new Error("key failed");
        return `shared:${input.channelId}`;
      },
    });
    h.client.on(
      Events.MessageCreate,
      h.guard.message(() => {
        throw new Error("turn failed");
      }),
    );
    h.sendMessage("one");
    await core.onIdle();
    throwKey = true;
    h.sendMessage("two");
    await settle();
    expect(
      coreErrors.errors.map(({ error, info }) => [(error as Error).message, info.key]),
    ).toEqual([["turn failed", `shared:${CHANNEL_A}`]]);
    expect(adapterErrors.errors.map(({ error }) => (error as Error).message)).toEqual([
      "key failed",
    ]);
  });

  it("without its own onError, reports adapter errors to the shared guard", async () => {
    const coreErrors = errorRecorder<unknown>();
    const core = createGuard<unknown>({ onError: coreErrors.onError });
    const h = harness({
      guard: core,
      key: () => {
        throw new Error("key failed");
      },
    });
    h.client.on(
      Events.MessageCreate,
      h.guard.message(() => {}),
    );
    h.sendMessage("one");
    await settle();
    expect(
      coreErrors.errors.map(({ error, info }) => [(error as Error).message, info.key]),
    ).toEqual([["key failed", ""]]);
  });
});
