// === discord.js objects from raw gateway payloads (across replicas)
//
// On a shared store an input travels as the raw gateway payload it arrived as (`MESSAGE_CREATE`,
// `INTERACTION_CREATE`), which the adapter keeps from the client's `raw` event until the wrapped
// listener has it. The replica that runs the turn rebuilds the discord.js object from that payload
// with its own client, the way discord.js's own `MessageCreate` and `InteractionCreate` actions
// build them (internal API: checked at creation).

import type { Client } from "discord.js";
import type { DiscordMessage, GuardedCommand } from "./types.js";

/** A raw gateway payload: a `MESSAGE_CREATE` or `INTERACTION_CREATE` dispatch's `d`. */
export type RawPayload = Record<string, unknown> & { readonly id: string };

/** What an input looks like in a shared store: the raw payload of a message or interaction. */
export type Serialized = { readonly m: RawPayload } | { readonly i: RawPayload };

/** How long a raw payload waits for its listener before it is forgotten. */
const RAW_WAIT = 60_000;
/** Raw payloads kept at most while they wait for their listeners. */
const RAW_MAX = 10_000;

/**
 * The discord.js internals the adapter rebuilds objects with on a shared store: the client's
 * actions, which build messages and interactions from gateway payloads (discord.js 14).
 */
export interface ClientInternals {
  readonly actions: {
    readonly MessageCreate: { getChannel(data: Record<string, unknown>): unknown };
    readonly InteractionCreate: { handle(data: unknown): unknown };
  };
  emit(event: string, ...args: unknown[]): boolean;
}

export function internalsOf(client: Client): ClientInternals | undefined {
  const actions = (client as unknown as Partial<ClientInternals>).actions;
  if (
    typeof actions?.MessageCreate?.getChannel !== "function" ||
    typeof actions.InteractionCreate?.handle !== "function"
  ) {
    return undefined;
  }
  return client as unknown as ClientInternals;
}

/**
 * A message rebuilt from its `MESSAGE_CREATE` payload as discord.js's `MessageCreate` action builds
 * it (the channel resolved, or created as a partial DM channel, and the message cached in it),
 * without emitting it again.
 */
export function rebuildMessage(client: ClientInternals, data: RawPayload): DiscordMessage {
  const channel = client.actions.MessageCreate.getChannel({
    id: data.channel_id,
    author: data.author,
    ...("guild_id" in data && { guild_id: data.guild_id }),
    ...("channel_type" in data && { type: data.channel_type }),
  }) as { isTextBased?(): boolean; messages?: { _add(data: unknown): DiscordMessage } } | null;
  if (channel?.isTextBased?.() !== true || channel.messages === undefined) {
    throw new Error(
      `discordGuard: message ${data.id} cannot be rebuilt on this replica: its channel ${String(data.channel_id)} is unknown to this client (give every replica the same intents and partials, e.g. Partials.Channel for DMs).`,
    );
  }
  return channel.messages._add(data);
}

/**
 * An interaction rebuilt from its `INTERACTION_CREATE` payload by discord.js's own
 * `InteractionCreate` action (which picks the class and resolves the channel), its
 * `interactionCreate` event caught here, synchronously, instead of reaching the client's listeners.
 */
export function rebuildInteraction(client: ClientInternals, data: RawPayload): GuardedCommand {
  let built: unknown;
  const own = Object.hasOwn(client, "emit");
  const emit = client.emit;
  client.emit = function (this: unknown, event: string, ...args: unknown[]): boolean {
    if (event === "interactionCreate" && built === undefined) {
      built = args[0];
      return true;
    }
    return emit.call(this, event, ...args);
  };
  try {
    client.actions.InteractionCreate.handle(data);
  } finally {
    if (own) client.emit = emit;
    else delete (client as { emit?: unknown }).emit;
  }
  if (built === undefined) {
    throw new Error(
      `discordGuard: interaction ${data.id} cannot be rebuilt on this replica (discord.js created no interaction from its payload).`,
    );
  }
  return built as GuardedCommand;
}

/** An input that cannot travel: the adapter never saw the gateway payload it came in. */
export function noRawPayload(what: "message" | "interaction", id: string): TypeError {
  return new TypeError(
    `discordGuard: ${what} ${id} has no raw gateway payload to send to another replica. With a shared store, wrap listeners of the client given as "client", and create the guard before client.login().`,
  );
}

/** Raw payloads of inputs, from the client's `raw` event until their listener takes them. */
export class RawPayloads {
  readonly #byId = new Map<string, { readonly data: RawPayload; readonly at: number }>();

  put(data: RawPayload): void {
    const now = Date.now();
    // Insertion order is age order: forget payloads no listener took (bots, other channels).
    for (const [id, held] of this.#byId) {
      if (held.at > now - RAW_WAIT && this.#byId.size < RAW_MAX) break;
      this.#byId.delete(id);
    }
    this.#byId.set(data.id, { data, at: now });
  }

  take(id: string): RawPayload | undefined {
    const held = this.#byId.get(id);
    if (held !== undefined) this.#byId.delete(id);
    return held?.data;
  }
}
