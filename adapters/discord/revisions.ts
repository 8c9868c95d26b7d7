// === Discord edits and deletions of pending messages
//
// `messageUpdate` replaces the pending message, `messageDelete` and `messageDeleteBulk` withdraw
// it; the guard hands out the three listeners (`client.on(Events.MessageUpdate,
// guard.messageUpdate)`). Facts from discord.js 14 (`actions/MessageUpdate.js`,
// `MessageDelete.js`, `MessageDeleteBulk.js`) that shaped them:
// - an update patches the cached message in place: `newMessage` is the very object the guard holds
//   as pending input, so a turn sees the edit even before `replace`; the guard still calls it, so
//   a shared store keeps the edited payload and a running turn hears of it (`onRevision`);
// - an uncached message is emitted only with `Partials.Message`, as a partial patched from the
//   update's payload. Discord sends the whole message with an update, so only a partial without
//   content stays (no MessageContent intent): there is nothing to replace with, so it is skipped,
//   not fetched. A message the guard holds was received by this client and is cached anyway,
//   unless a cache sweeper removed it;
// - Discord also sends an update when it adds an embed (a link preview): the content is the same,
//   so nothing is replaced when the old message is known and its content unchanged;
// - a deleted message may be a partial (id and channel only): its key is read from the channel.

import type { Collection, Snowflake } from "discord.js";
import type { Guard } from "session-guard";
import { revise } from "../kit/revise.js";
import { isIgnored } from "./keys.js";
import type { DiscordInput, DiscordMessage } from "./types.js";

/** A message as the update and delete events hand it over: possibly partial. */
type EventMessage = DiscordMessage | (Partial<DiscordMessage> & { readonly partial: true });

export interface RevisionHost {
  readonly guard: Guard<DiscordInput>;
  readonly enabled: boolean;
  /** The key of a message; `undefined` when it has none (or cannot have one: a partial). */
  keyOf(message: EventMessage): string | undefined;
  /** A message's edited payload, for other replicas (a shared store only). */
  revised(message: DiscordMessage): void;
  report(error: unknown, key: string, input?: DiscordInput): void;
}

const DONE: Promise<void> = Promise.resolve();
const NOOP = (): void => {};

/** The listeners for message updates and deletions. */
export function revisionListeners(host: RevisionHost) {
  const { guard, report } = host;
  const idOf = (message: EventMessage) => `dc:${message.client?.user?.id ?? "-"}:${message.id}`;

  /** Withdraw one deleted message; never rejects. */
  const withdraw = (message: EventMessage): Promise<void> => {
    let key: string | undefined;
    try {
      key = host.keyOf(message);
    } catch (error) {
      report(error, "", message as DiscordInput);
      return DONE;
    }
    if (key === undefined) return DONE;
    return revise(guard, key, idOf(message), undefined, report).then(NOOP);
  };

  return {
    messageUpdate: (old: EventMessage, updated: DiscordMessage): Promise<void> => {
      if (!host.enabled || updated.partial || isIgnored(updated)) return DONE;
      // An embed added to the message (a link preview): the person changed nothing.
      if (!old.partial && old.content === updated.content) return DONE;
      let key: string | undefined;
      try {
        key = host.keyOf(updated);
        if (key !== undefined) host.revised(updated);
      } catch (error) {
        report(error, key ?? "", updated);
        return DONE;
      }
      if (key === undefined) return DONE;
      return revise(guard, key, idOf(updated), updated as DiscordInput, report).then(NOOP);
    },
    messageDelete: (message: EventMessage): Promise<void> =>
      host.enabled ? withdraw(message) : DONE,
    messageDeleteBulk: (
      messages: Collection<Snowflake, EventMessage> | ReadonlyMap<Snowflake, EventMessage>,
    ): Promise<void> => {
      if (!host.enabled) return DONE;
      const withdrawals: Promise<void>[] = [];
      for (const message of messages.values()) withdrawals.push(withdraw(message));
      return Promise.all(withdrawals).then(NOOP);
    },
  };
}
