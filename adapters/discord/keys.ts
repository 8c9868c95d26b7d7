// === Keys and kinds of Discord inputs
//
// The default key is the bot, the guild (or `dm`) and the channel — threads and forum posts have
// their own channel id — plus the user with `perUser`. Messages of bots (this one included),
// webhooks and system messages are never input.

import type { Interaction } from "discord.js";
import type { DiscordMessage, GuardedCommand } from "./types.js";

export function isMessage(input: DiscordMessage | Interaction): input is DiscordMessage {
  return "author" in input;
}

export function isGuardedCommand(interaction: Interaction): interaction is GuardedCommand {
  return interaction.isChatInputCommand() || interaction.isContextMenuCommand();
}

/** Messages that never reach a handler: bots (this one included), webhooks, system messages. */
export function isIgnored(message: DiscordMessage): boolean {
  return (
    message.author.bot ||
    message.webhookId !== null ||
    message.system ||
    message.author.id === message.client.user?.id
  );
}

/** A message's text as a stop word: trimmed, lower case, without a leading mention of the bot. */
export function stopWordOf(message: DiscordMessage): string {
  let text = message.content.trim();
  const bot = message.client.user?.id;
  if (bot !== undefined && text.startsWith("<@")) {
    for (const mention of [`<@${bot}>`, `<@!${bot}>`]) {
      if (text.startsWith(mention)) text = text.slice(mention.length).trim();
    }
  }
  return text.toLowerCase();
}

/** Default key: bot + guild (or `dm`) + channel (+ user). Scoped by bot so bots can share a guard. */
export function defaultKey(input: DiscordMessage | Interaction, perUser: boolean): string {
  // A deleted message may be a partial without its author: keyed by its channel alone.
  const user = isMessage(input) ? input.author?.id : input.user.id;
  const bot = input.client.user?.id ?? "-";
  // Every message and command has a channel; an interaction without one is keyed by its user.
  const channel = input.channelId ?? `@${user}`;
  const key = `dc:${bot}:${input.guildId ?? "dm"}:${channel}`;
  return perUser ? `${key}:${user}` : key;
}
