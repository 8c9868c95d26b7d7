// A complete Discord bot guarded by session-guard: one agent turn per channel (threads and DMs have
// their own), messages sent while the agent thinks are collected into the next turn, /ask runs as a
// turn of its own, "stop" or /stop aborts the running turn, and shutdown waits for running turns.
//
//   DISCORD_TOKEN=… npx tsx examples/discord.ts
//
// The bot needs the Message Content intent (Developer Portal → your app → Bot → Privileged Gateway
// Intents). It registers nothing with Discord unless asked to: run it once with `--register` to
// create /ask and /stop as global commands (they can take a while to appear), or with
// DISCORD_GUILD_ID=<server id> as well to create them in one server at once.

import {
  type ChatInputCommandInteraction,
  Client,
  Events,
  GatewayIntentBits,
  Partials,
  SlashCommandBuilder,
} from "discord.js";
import { discordGuard } from "session-guard/discord";

const token = process.env.DISCORD_TOKEN;
if (!token) {
  console.error("Set DISCORD_TOKEN to your bot's token (Developer Portal → your app → Bot).");
  process.exit(1);
}

const client = new Client({
  intents: [
    GatewayIntentBits.Guilds,
    GatewayIntentBits.GuildMessages,
    GatewayIntentBits.MessageContent,
    GatewayIntentBits.DirectMessages,
  ],
  partials: [Partials.Channel], // needed to receive DMs
});

const guard = discordGuard({
  mode: "collect",
  // In servers, only messages that mention the bot are for it (the rest is ignored, never queued);
  // DMs and commands always are. One turn per channel, threads and DMs included.
  key: (input) => {
    if ("author" in input && input.guildId !== null && !input.mentions.has(input.client.user)) {
      return undefined;
    }
    return `${input.guildId ?? "dm"}:${input.channelId}`;
  },
  onDrop: (drop) => console.log(`dropped ${drop.id} (${drop.reason})`),
});

const commands = [
  new SlashCommandBuilder()
    .setName("ask")
    .setDescription("Ask the agent")
    .addStringOption((option) =>
      option.setName("prompt").setDescription("Your question").setRequired(true),
    ),
  new SlashCommandBuilder().setName("stop").setDescription("Stop the agent in this channel"),
];

/** A stand-in agent that streams its answer word by word and honours the signal. */
async function* agent(prompt: string, signal: AbortSignal): AsyncGenerator<string> {
  const words = `You said: ${prompt}. Here is a thoughtful answer, one word at a time.`.split(" ");
  for (const word of words) {
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, 300);
      signal.addEventListener("abort", onAbort, { once: true });
    });
    yield word;
  }
}

/** Stream the agent's answer through `edit`, at most one edit a second (Discord rate-limits them). */
async function stream(
  prompt: string,
  signal: AbortSignal,
  edit: (text: string) => Promise<unknown>,
) {
  let text = "";
  let editedAt = 0;
  try {
    for await (const word of agent(prompt, signal)) {
      text += `${word} `;
      if (Date.now() - editedAt >= 1_000) {
        editedAt = Date.now();
        await edit(text);
      }
    }
    await edit(text);
  } catch (error) {
    if (!signal.aborted) throw error;
    await edit(`${text}… (stopped)`);
  }
}

client.on(
  Events.MessageCreate,
  guard.message(async (message, turn) => {
    // `message` is the latest message of the turn; turn.inputs holds every one coalesced into it.
    const prompt = turn.inputs.map((m) => m.content).join("\n");
    const reply = await message.reply("…");
    await stream(prompt, turn.signal, (text) => reply.edit(text));
    if (turn.pendingCount > 0) await message.channel.send("Reading your next messages…");
  }),
);

async function ask(interaction: ChatInputCommandInteraction, signal: AbortSignal) {
  const prompt = interaction.options.getString("prompt", true);
  // The guard deferred the command already ("thinking…"): answer with editReply.
  await stream(prompt, signal, (text) => interaction.editReply(text));
}

client.on(
  Events.InteractionCreate,
  guard.interaction(async (interaction, turn) => {
    // Buttons, menus and modals arrive here with `turn` undefined, beside any running turn.
    // /stop never arrives: the guard stops the channel's turn and answers it.
    if (!interaction.isChatInputCommand() || turn === undefined) return;
    if (interaction.commandName === "ask") await ask(interaction, turn.signal);
    else await interaction.editReply(`I do not know /${interaction.commandName}.`);
  }),
);

client.once(Events.ClientReady, async (ready) => {
  console.log(`${ready.user.tag} is running`);
  if (!process.argv.includes("--register")) return;
  const body = commands.map((command) => command.toJSON());
  const guildId = process.env.DISCORD_GUILD_ID;
  if (guildId) await ready.application.commands.set(body, guildId);
  else await ready.application.commands.set(body);
  console.log(`registered /ask and /stop ${guildId ? `in server ${guildId}` : "globally"}`);
});

async function shutdown(signal: string) {
  console.log(`${signal}: stopping`);
  // Close the guard first: running turns still need the client to answer. Commands that arrive
  // meanwhile are dropped (reason shutdown) and told so.
  const report = await guard.close({ timeout: 10_000 });
  console.log(
    `closed: aborted ${report.aborted} turn(s), dropped ${report.dropped.length} input(s)`,
  );
  await client.destroy();
  process.exit(0);
}
process.once("SIGINT", () => void shutdown("SIGINT"));
process.once("SIGTERM", () => void shutdown("SIGTERM"));

await client.login(token);
