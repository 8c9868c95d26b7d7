// === Discord across replicas
//
// An input travels as its raw gateway payload (rebuild.ts). A message turn admitted on another
// replica runs the handler of `guard.message(…)` here; a command is emitted on this replica's client
// as `interactionCreate`, so the user's own routing (a command collection) reaches the wrapper that
// runs it, which attaches the turn instead of admitting it again (the kit's `Replays`). An
// interaction's token works from any process (`editReply`/`followUp` use the webhook route), but
// its first response must come within 3 s from the replica that received it: with a shared store a
// command is deferred first and admitted only once the deferral went through, so a replica that
// runs it can rely on it.

import type { Client } from "discord.js";
import type { Codec, Turn } from "session-guard";
import { Replays } from "../kit/replay.js";
import { isMessage } from "./keys.js";
import {
  type ClientInternals,
  internalsOf,
  noRawPayload,
  type RawPayload,
  RawPayloads,
  rebuildInteraction,
  rebuildMessage,
  type Serialized,
} from "./rebuild.js";
import type { DiscordInput, DiscordMessage, GuardedCommand, MessageHandler } from "./types.js";

/** Inputs rebuilt here from another replica's payload (their reaction, if any, was put on there). */
export const rebuilt = new WeakSet<object>();

/** What the replica side needs from the adapter. */
export interface RemoteHost {
  /** Run a message turn with `handler` (typing indicator included). */
  runMessageTurn(
    handler: MessageHandler,
    message: DiscordMessage,
    turn: Turn<DiscordInput>,
  ): unknown;
  /** A command rebuilt here was deferred by the replica that received it. */
  deferred(interaction: GuardedCommand): void;
}

/** The adapter's side of a shared store: raw payloads, the codec, and turns of other replicas. */
export class Remote {
  readonly replays = new Replays<Turn<DiscordInput>>();
  readonly #raws = new RawPayloads();
  /** `MESSAGE_UPDATE` payloads, until the update listener takes them. */
  readonly #updates = new RawPayloads();
  readonly #serialized = new WeakMap<object, Serialized>();
  readonly #internals: ClientInternals;
  readonly #host: RemoteHost;
  /** The handler of `guard.message(…)`, for messages of other replicas. */
  #messageHandler: MessageHandler | undefined;
  #wantsMessages = false;
  #wantsInteractions = false;

  constructor(client: Client, host: RemoteHost) {
    this.#internals = internalsOf(client) as ClientInternals;
    this.#host = host;
    client.on("raw", (packet: { t?: unknown; d?: unknown }) => {
      const data = packet?.d as RawPayload | undefined;
      if (typeof data?.id !== "string") return;
      if (packet.t === "MESSAGE_CREATE" && this.#wantsMessages) this.#raws.put(data);
      else if (packet.t === "MESSAGE_UPDATE" && this.#wantsMessages) this.#updates.put(data);
      // Application commands (type 2) are what the guard admits; components pass through.
      else if (packet.t === "INTERACTION_CREATE" && this.#wantsInteractions && data.type === 2) {
        this.#raws.put(data);
      }
    });
  }

  /** `guard.message(handler)` was called: keep message payloads, and run others' messages here. */
  wantMessages(handler: MessageHandler): void {
    if (this.#messageHandler !== undefined && this.#messageHandler !== handler) {
      throw new TypeError(
        "discordGuard: with a shared store, wrap one message handler per guard: a message admitted on another replica runs here with the handler given to guard.message(…), so there can be only one.",
      );
    }
    this.#messageHandler = handler;
    this.#wantsMessages = true;
  }

  /** An interaction wrapper exists: keep command payloads. */
  wantInteractions(): void {
    this.#wantsInteractions = true;
  }

  /** The raw payload of an input a listener received (taken: each is read once). */
  take(id: string): RawPayload | undefined {
    return this.#raws.take(id);
  }

  /**
   * Keep the raw payload of an input the adapter admits; throws when it never came (the input
   * could never run on another replica: it is refused rather than kept local).
   */
  keep(input: DiscordInput, raw: RawPayload | undefined): void {
    const message = isMessage(input);
    if (raw === undefined) throw noRawPayload(message ? "message" : "interaction", input.id);
    this.#serialized.set(input, message ? { m: raw } : { i: raw });
  }

  /**
   * A message was edited: its payload for other replicas becomes the update's fields over what it
   * had (Discord sends the whole message with an update). Throws when neither is known here.
   */
  revised(message: DiscordMessage): void {
    const update = this.#updates.take(message.id);
    const before = this.#serialized.get(message);
    const base = before !== undefined && "m" in before ? before.m : undefined;
    if (update === undefined && base === undefined) throw noRawPayload("message", message.id);
    this.#serialized.set(message, { m: { ...base, ...update } as RawPayload });
  }

  /** How inputs travel through a shared store: their raw payloads, rebuilt with this client. */
  readonly codec: Codec<DiscordInput> = {
    encode: (input: DiscordInput): Serialized => {
      const data = this.#serialized.get(input);
      if (data === undefined) {
        throw noRawPayload(isMessage(input) ? "message" : "interaction", input.id);
      }
      return data;
    },
    decode: (data: unknown): DiscordInput => this.rebuild(data as Serialized),
  };

  /** The discord.js object of a serialized input, rebuilt with this client. */
  rebuild(payload: Serialized): DiscordInput {
    const built =
      "m" in payload
        ? rebuildMessage(this.#internals, payload.m)
        : rebuildInteraction(this.#internals, payload.i);
    // The replica that received a command deferred it before admitting it: the handler answers
    // with editReply/followUp, and a drop notice can be edited in from here.
    if (!isMessage(built)) this.#host.deferred(built);
    this.#serialized.set(built, payload);
    rebuilt.add(built);
    return built;
  }

  /** The guard's handler for turns whose latest input was admitted on another replica. */
  readonly handler = (turn: Turn<DiscordInput>): unknown => {
    const latest = turn.inputs[turn.inputs.length - 1] as DiscordInput;
    if (isMessage(latest)) {
      if (this.#messageHandler === undefined) {
        throw new Error(
          `discordGuard: a message admitted on another replica for key "${turn.key}" has no handler here: wrap the messageCreate listener with guard.message(handler) on every replica.`,
        );
      }
      return this.#host.runMessageTurn(this.#messageHandler, latest, turn);
    }
    // Emitted as the client would, so the user's own routing reaches the wrapper that runs it.
    return this.replays.run(
      latest,
      turn,
      () => this.#internals.emit("interactionCreate", latest),
      () =>
        new Error(
          `discordGuard: the command /${latest.commandName} admitted on another replica for key "${turn.key}" reached no guarded wrapper here when emitted as interactionCreate: route it to guard.interaction(…) or guard.command(…) on every replica, before any await.`,
        ),
    );
  };
}
