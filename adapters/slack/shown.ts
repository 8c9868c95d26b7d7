// === Reactions and notices on Slack (the kit's `ShownOutcomes`, see ../kit/shown.ts)
//
// A reaction is `reactions.add` / `reactions.remove` on the message (Slack names emoji: "eyes",
// not "👀"); a notice is an ephemeral message to its author, in its thread, or the `respond` of a
// slash command (which has no message to react to: it gets notices only). The calls go through the
// Web API client Bolt handed the payload's middleware (with the installation's token); a payload
// rebuilt from another replica uses the client of the turn it runs in.

import type { RespondFn } from "@slack/bolt";
import type { ShownPlatform } from "../kit/shown.js";
import { isCommand } from "./places.js";
import type { SlackInput, SlackMiddlewareArgs } from "./types.js";

/** The defaults on Slack: :eyes: while waiting, :shrug: when stopped before its turn. */
export const SLACK_SHOWN = { queued: "eyes", stopped: "shrug" } as const;

const EMOJI_NAME = /^[a-z0-9_+\-']+(::skin-tone-[2-6])?$/;

/** Throws unless `value` is a Slack emoji name. */
export function slackEmoji(error: (message: string) => TypeError) {
  return (name: string, value: string): void => {
    if (!EMOJI_NAME.test(value)) {
      throw error(
        `"${name}" must be a Slack emoji name without colons, such as "eyes" or "hourglass_flowing_sand", got ${JSON.stringify(value)}.`,
      );
    }
  };
}

type Client = SlackMiddlewareArgs["client"];

/** Where a payload's calls go: its client, and a command's `respond`. */
interface Reach {
  readonly client: Client;
  readonly respond: RespondFn | undefined;
}

const DONE: Promise<void> = Promise.resolve();

/** The Slack side of the reactions switch; `reach` is filled as payloads pass the middleware. */
export function slackShown(): ShownPlatform<SlackInput> & {
  reach(input: SlackInput, client: Client, respond: RespondFn | undefined): void;
} {
  const reaches = new WeakMap<object, Reach>();
  const message = (input: SlackInput) => input as { channel: string; ts: string; user?: string };
  return {
    reach(input, client, respond) {
      if (!reaches.has(input)) reaches.set(input, { client, respond });
    },
    owns: (input): input is SlackInput => reaches.has(input as object),
    idOf: (input) =>
      isCommand(input) ? undefined : `${message(input).channel}:${message(input).ts}`,
    react(input, name) {
      if (isCommand(input)) return DONE;
      const { channel, ts } = message(input);
      return (reaches.get(input) as Reach).client.reactions.add({ channel, timestamp: ts, name });
    },
    unreact(input, name) {
      if (isCommand(input)) return DONE;
      const { channel, ts } = message(input);
      return (reaches.get(input) as Reach).client.reactions
        .remove({ channel, timestamp: ts, name })
        .catch((error: unknown) => {
          // Gone already (the user took it off, or another replica did): nothing to do.
          if ((error as { data?: { error?: unknown } }).data?.error !== "no_reaction") throw error;
        });
    },
    reply(input, text) {
      const reach = reaches.get(input) as Reach;
      if (isCommand(input)) {
        return reach.respond === undefined
          ? DONE
          : reach.respond({ text, response_type: "ephemeral" });
      }
      const { channel, user } = message(input);
      const thread = (input as { thread_ts?: string }).thread_ts;
      if (user === undefined) return DONE;
      return reach.client.chat.postEphemeral({
        channel,
        user,
        text,
        ...(thread === undefined ? {} : { thread_ts: thread }),
      });
    },
  };
}
