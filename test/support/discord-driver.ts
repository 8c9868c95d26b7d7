// The adapter contract's driver for discord.js: a real offline `Client` (REST answered by
// `makeRequest`, gateway packets injected where the websocket manager hands them over) with the
// wrappers of one `discordGuard` as its listeners. Chat "a" is guild channel A, chat "b" guild
// channel B. The typing indicator is off, so the REST log holds only answers.
//
// discord.js drops a MESSAGE_CREATE for a message it has cached already, so a gateway replay never
// reaches a listener twice; what does is the same `Message` emitted again (a wrapper registered
// twice, or two listeners of one guard): that is what `redeliver` does, through the client.

import { Events, type Interaction } from "discord.js";
import { type DiscordMessage, discordGuard } from "session-guard/discord";
import {
  type AdapterDriver,
  type Chat,
  type ContractBot,
  type Delivery,
  guardRecords,
  throwingKey,
} from "./adapter-contract.js";
import {
  BOT_ID,
  CHANNEL_A,
  CHANNEL_B,
  GUILD_ID,
  label,
  offlineClient,
  RestFailure,
} from "./discord-fixtures.js";
import { macrotask } from "./helpers.js";

const CHANNELS: Record<Chat, string> = { a: CHANNEL_A, b: CHANNEL_B };
const chatOf = (channel: string | null): Chat => (channel === CHANNEL_B ? "b" : "a");
const keyOf = (chat: Chat) => `dc:${BOT_ID}:${GUILD_ID}:${CHANNELS[chat]}`;

/** A message's content, or a command's `/name`. */
function textOf(input: unknown): string {
  if (typeof input !== "object" || input === null) return "";
  if ("content" in input) return String(input.content);
  if ("commandName" in input) return `/${String(input.commandName)}`;
  return "";
}

/** Let the client's listeners and its REST answers run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await macrotask();
}

export const discordDriver: AdapterDriver = {
  name: "Discord",
  pressName: "button",
  stopForms: ["stop", "  STOP ", `<@${BOT_ID}> Stop`, "/stop"],
  // A stop message handed to the guard twice (interactions are never delivered twice).
  stopsPassOn: false,
  redeliveredStops: ["stop"],

  create(hooks, options = {}): ContractBot {
    const bot = offlineClient(
      options.failReactions
        ? {
            respond: (call) =>
              call.route.includes("/reactions/")
                ? new RestFailure(403, 50013, "Missing Permissions")
                : undefined,
          }
        : {},
    );
    /** The text of each message sent, by id (reactions name messages by id). */
    const textById = new Map<string, string>();
    const records = guardRecords(textOf);
    const clientErrors: unknown[] = [];
    bot.client.on(Events.Error, (error) => void clientErrors.push(error));
    const guard = discordGuard({
      typing: false,
      awaitTurn: options.awaitTurn ?? false,
      onError: records.onError,
      onDrop: records.onDrop,
      reactions: options.reactions ?? false,
      ...(options.mode === undefined ? {} : { mode: options.mode }),
      ...throwingKey(options.keyThrowsOn, textOf, (input: DiscordMessage | Interaction) =>
        keyOf(chatOf(input.channelId)),
      ),
    });
    guard.on("queued", records.onQueued);
    guard.on("admitted", records.onAdmitted);
    bot.client.on(
      Events.MessageCreate,
      guard.message(async (message, turn) => {
        turn.onRevision(({ input }) =>
          hooks.revised?.(
            chatOf(message.channelId),
            input === undefined ? undefined : textOf(input),
          ),
        );
        await hooks.turn({
          chat: chatOf(message.channelId),
          key: turn.key,
          texts: turn.inputs.map(textOf),
          latest: message.content,
          signal: turn.signal,
        });
      }),
    );
    bot.client.on(
      Events.InteractionCreate,
      guard.interaction(async (interaction, turn) => {
        if (!interaction.isButton()) return;
        await hooks.press({
          chat: chatOf(interaction.channelId),
          data: interaction.customId,
          turn: turn !== undefined,
        });
        await interaction.deferUpdate();
      }),
    );

    const delivered = async (id: string, text: string, channel: string): Promise<Delivery> => {
      await settle();
      return { id: `dc:${BOT_ID}:${id}`, text, raw: { id, channel } };
    };
    bot.client.on(Events.MessageUpdate, guard.messageUpdate);
    bot.client.on(Events.MessageDelete, guard.messageDelete);
    bot.client.on(Events.MessageBulkDelete, guard.messageDeleteBulk);
    const send = (chat: Chat, text: string) => {
      const id = bot.sendMessage(text, { channel: CHANNELS[chat] });
      textById.set(id, text);
      return delivered(id, text, CHANNELS[chat]);
    };

    return {
      guard,
      keyOf,
      send,
      sendStop: (chat, form) =>
        form === "/stop"
          ? delivered(bot.sendCommand("stop", { channel: CHANNELS[chat] }), form, CHANNELS[chat])
          : send(chat, form),
      press: (chat, data) =>
        delivered(bot.sendButton(data, { channel: CHANNELS[chat] }), data, CHANNELS[chat]),
      redeliver: async (delivery) => {
        const { id, channel } = delivery.raw as { id: string; channel: string };
        const cached = bot.client.channels.cache.get(channel);
        const message = (
          cached as { messages?: { cache: Map<string, DiscordMessage> } } | undefined
        )?.messages?.cache.get(id);
        if (message === undefined) throw new Error(`discord-driver: message ${id} is not cached`);
        bot.client.emit(Events.MessageCreate, message);
        await settle();
      },
      edit: async (delivery, text) => {
        const { id, channel } = delivery.raw as { id: string; channel: string };
        bot.editMessage(id, text, { channel });
        await settle();
      },
      remove: async (delivery) => {
        const { id, channel } = delivery.raw as { id: string; channel: string };
        bot.deleteMessage(id, { channel });
        await settle();
      },
      shown: () =>
        bot.rest.calls.flatMap((c) => {
          const match = /^\/channels\/\d+\/messages\/(\d+)\/reactions\/([^/]+)\/@me$/.exec(c.route);
          if (match !== null) {
            const text = textById.get(match[1] as string);
            return [
              c.method === "PUT"
                ? `react ${text} ${decodeURIComponent(match[2] as string)}`
                : `unreact ${text}`,
            ];
          }
          const reference = (c.body?.message_reference as { message_id?: string } | undefined)
            ?.message_id;
          return reference === undefined
            ? []
            : [`notice ${textById.get(reference)}: ${String(c.body?.content)}`];
        }),
      answersTo: async (press) => {
        const { id } = press.raw as { id: string };
        await settle();
        return bot.rest.calls.filter((c) => label(c).startsWith(`callback ${id} `)).length;
      },
      textOf,
      queued: records.queued,
      admitted: records.admitted,
      drops: records.drops,
      errors: records.errors,
      frameworkErrors: clientErrors,
      dispose: async () => {
        await guard.close({ timeout: 0 });
        await bot.destroy();
      },
    };
  },
};
