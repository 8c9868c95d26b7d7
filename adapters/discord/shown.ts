// === Reactions and notices on Discord (the kit's `ShownOutcomes`, see ../kit/shown.ts)
//
// A reaction is `message.react(emoji)`; it comes off through the REST route of the bot's own
// reaction (`DELETE /channels/{channel}/messages/{message}/reactions/{emoji}/@me`, what
// discord.js's `ReactionUserManager#remove` calls), which works on a message rebuilt from another
// replica's payload, whose reactions this client never cached. A notice is a reply to the dropped
// message that pings no one. Commands get no reaction (they have no message): a dropped command's
// deferred reply is edited to the notice instead (`dropReply`, see commands.ts).

import type { ShownPlatform } from "../kit/shown.js";
import { isMessage } from "./keys.js";
import type { DiscordMessage } from "./types.js";

/** The defaults on Discord: 👀 while waiting, 🤷 when stopped before its turn. */
export const DISCORD_SHOWN = { queued: "👀", stopped: "🤷" } as const;

/** Throws unless `value` looks like an emoji Discord takes: a Unicode emoji or `name:id`. */
export function discordEmoji(error: (message: string) => TypeError) {
  return (name: string, value: string): void => {
    if (/\s/.test(value) || /^[\w-]+$/.test(value)) {
      throw error(
        `"${name}" must be a Unicode emoji such as "👀" or a custom emoji as "name:id", got ${JSON.stringify(value)}.`,
      );
    }
  };
}

/** A custom emoji `<:name:id>` as the REST route names it (`name:id`); a Unicode one as it is. */
function identifier(emoji: string): string {
  const custom = /^<a?:([\w-]+:\d+)>$/.exec(emoji);
  return encodeURIComponent(custom === null ? emoji : (custom[1] as string));
}

export const discordShown: ShownPlatform<DiscordMessage> = {
  owns: (input): input is DiscordMessage =>
    typeof input === "object" && input !== null && isMessage(input as DiscordMessage),
  idOf: (message) => message.id,
  react: (message, emoji) => message.react(emoji),
  unreact: (message, emoji) =>
    message.client.rest.delete(
      `/channels/${message.channelId}/messages/${message.id}/reactions/${identifier(emoji)}/@me`,
    ),
  reply: (message, text) =>
    message.reply({
      content: text,
      failIfNotExists: false,
      allowedMentions: { repliedUser: false },
    }),
};
