// A complete Discord bot guarded by session-guard: one agent turn per channel (threads and DMs have
// their own), messages sent while the agent thinks are collected into the next turn, /ask runs as a
// turn of its own, "stop" or /stop aborts the running turn, and shutdown waits for running turns.
//
//   DISCORD_TOKEN=… npx tsx examples/discord.ts
//   DISCORD_API_ROOT=http://127.0.0.1:8082/api also points it at a local Discord stand-in.
//
// The bot needs the Message Content intent (Developer Portal → your app → Bot → Privileged Gateway
// Intents). It registers nothing with Discord unless asked to: run it once with `--register` to
// create /ask and /stop as global commands (they can take a while to appear), or with
// DISCORD_GUILD_ID=<server id> as well to create them in one server at once.

import {
  ActionRowBuilder,
  ButtonBuilder,
  type ButtonInteraction,
  ButtonStyle,
  type ChatInputCommandInteraction,
  Client,
  Events,
  GatewayIntentBits,
  type Message,
  MessageFlags,
  Partials,
  SlashCommandBuilder,
} from "discord.js";
import { discordGuard } from "session-guard/discord";

const token = process.env.DISCORD_TOKEN;
if (!token) {
  console.error("Set DISCORD_TOKEN to your bot's token (Developer Portal → your app → Bot).");
  process.exit(1);
}

const api = process.env.DISCORD_API_ROOT ?? "https://discord.com/api";

const client = new Client({
  rest: { api }, // discord.js takes the gateway URL from GET /gateway/bot there
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
  reactions: true, // 👀 on messages that wait; a reply or 🤷 on those dropped
  onDrop: (drop) => console.log(`dropped ${drop.id} (${drop.reason})`),
});
// Edits and deletions of waiting messages change what the next turn reads.
client.on(Events.MessageUpdate, guard.messageUpdate);
client.on(Events.MessageDelete, guard.messageDelete);
client.on(Events.MessageBulkDelete, guard.messageDeleteBulk);

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

/**
 * Stream the agent's answer through `edit`, at most one edit a second (Discord rate-limits them,
 * so an edit that changes nothing is never sent). The last edit has `done` set.
 */
async function stream(
  prompt: string,
  signal: AbortSignal,
  edit: (text: string, done: boolean) => Promise<unknown>,
) {
  let text = "";
  let shown = "";
  let shownAt = 0;
  const show = async (next: string, done = false) => {
    if (next === shown && !done) return;
    shown = next;
    shownAt = Date.now();
    await edit(next, done);
  };
  try {
    for await (const word of agent(prompt, signal)) {
      text += `${word} `;
      if (Date.now() - shownAt >= 1_000) await show(text);
    }
    await show(text, true);
  } catch (error) {
    if (!signal.aborted) throw error;
    await show(`${text}… (stopped)`, true);
  }
}

/** A message as the agent reads it: without the raw `<@id>` mentions of the bot. */
function promptOf(message: Message): string {
  const bot = message.client.user.id;
  return message.content.replace(new RegExp(`<@!?${bot}>`, "g"), "").trim();
}

/** A Stop button under an answer that is still being written. */
const stopRow = new ActionRowBuilder<ButtonBuilder>().addComponents(
  new ButtonBuilder().setCustomId("stop").setLabel("Stop").setStyle(ButtonStyle.Secondary),
);

client.on(
  Events.MessageCreate,
  guard.message(async (message, turn) => {
    // `message` is the latest message of the turn; turn.inputs holds every one coalesced into it.
    const prompt = turn.inputs.map(promptOf).join("\n");
    const reply = await message.reply({ content: "…", components: [stopRow] });
    // The last edit takes the Stop button away with it.
    await stream(prompt, turn.signal, (content, done) =>
      reply.edit({ content, components: done ? [] : [stopRow] }),
    );
    if (turn.pendingCount > 0) await message.channel.send("Reading your next messages…");
  }),
);

async function ask(interaction: ChatInputCommandInteraction, signal: AbortSignal) {
  const prompt = interaction.options.getString("prompt", true);
  // The guard deferred the command already ("thinking…"): answer with editReply.
  await stream(prompt, signal, (content, done) =>
    interaction.editReply({ content, components: done ? [] : [stopRow] }),
  );
}

/** Buttons run at once, beside the turn they belong to: answer them within Discord's 3 s. */
async function onButton(button: ButtonInteraction) {
  const key = guard.keyOf(button);
  if (button.customId === "stop") {
    const stopped = key !== undefined && (await guard.stop(key));
    await button.reply({
      content: stopped ? "Stopped." : "Nothing to stop.",
      flags: MessageFlags.Ephemeral,
    });
    return;
  }
  await button.reply({
    content:
      key !== undefined && guard.isBusy(key)
        ? "Still working on it; the answer above grows as I go."
        : "That answer is complete.",
    flags: MessageFlags.Ephemeral,
  });
}

client.on(
  Events.InteractionCreate,
  guard.interaction(async (interaction, turn) => {
    // Buttons, menus and modals arrive here with `turn` undefined, beside any running turn: they
    // must be answered too, or the user sees "This interaction failed".
    if (interaction.isButton()) return onButton(interaction);
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
// A dropped connection is reported here, and discord.js reconnects on its own.
client.on(Events.Error, (error) => console.error("discord.js error:", error.message));

// Shut down on Ctrl-C or SIGTERM, whatever the network does: close the guard first (running turns
// still answer through the client; commands that arrive meanwhile are told the bot is restarting),
// then the client, then exit 0.
let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping — running turns get up to 10 s to finish`);
  const report = await guard.close({ timeout: 10_000 });
  console.log(
    `closed: aborted ${report.aborted} turn(s), dropped ${report.dropped.length} input(s)`,
  );
  await client.destroy().catch((error: unknown) => console.log(`(client: ${String(error)})`));
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

// Connect, and keep trying while Discord cannot be reached (offline, DNS): say so, never crash.
for (let attempt = 1; !stopping; attempt++) {
  console.log(`connecting to Discord at ${api}…`);
  try {
    await client.login(token);
    break;
  } catch (error) {
    if (stopping) break;
    const code = (error as { code?: unknown }).code;
    if (code === "TokenInvalid") {
      console.error("Discord refused the token: check DISCORD_TOKEN.");
      process.exit(1);
    }
    const delay = Math.min(30, 2 ** attempt);
    console.log(`could not reach Discord (${String(code ?? error)}); retrying in ${delay} s`);
    await new Promise((resolve) => setTimeout(resolve, delay * 1_000));
  }
}
