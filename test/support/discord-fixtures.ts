// Offline discord.js fixtures: a real `Client` that never opens a socket. REST calls go through
// `rest: { makeRequest }` and are recorded and answered here; gateway packets (READY, GUILD_CREATE,
// MESSAGE_CREATE, INTERACTION_CREATE) are injected where discord.js's websocket manager hands a
// dispatch to its packet handler. That path is internal to discord.js, so it lives in this file
// alone: if a discord.js release moves it, only `connect` and `dispatch` below change.

import {
  Client,
  type ClientOptions,
  Events,
  GatewayIntentBits,
  Partials,
  SnowflakeUtil,
  Status,
  WebSocketShard,
  WebSocketShardEvents,
} from "discord.js";

// === Ids

/** A fresh snowflake; `timestamp` (epoch ms) sets `createdTimestamp` of what carries it. */
export function snowflake(timestamp = Date.now()): string {
  return SnowflakeUtil.generate({ timestamp }).toString();
}

/** The bot's own user id, and the ids of the test's world. */
export const BOT_ID = "1000000000000000001";
export const GUILD_ID = "2000000000000000001";
/** Two text channels of the guild, a thread in the first, and the DM channel with the user. */
export const CHANNEL_A = "3000000000000000001";
export const CHANNEL_B = "3000000000000000002";
export const THREAD_A = "3000000000000000003";
export const DM_CHANNEL = "3000000000000000004";

/** A human user, a second human, another bot. */
export const USER = { id: "4000000000000000001", username: "ada", discriminator: "0" };
export const USER_2 = { id: "4000000000000000002", username: "bob", discriminator: "0" };
export const OTHER_BOT = {
  id: "4000000000000000003",
  username: "other",
  discriminator: "0",
  bot: true,
};
/** The bot itself, as the author of its own messages. */
export const BOT_USER = { id: BOT_ID, username: "session-guard", discriminator: "0", bot: true };

// === REST

/** One REST request the client made, as `makeRequest` saw it. */
export interface RestCall {
  readonly method: string;
  /** The path below `/api/v10`, with the query string, e.g. `/interactions/1/t/callback?with_response=false`. */
  readonly path: string;
  /** The path without the query string, e.g. `/interactions/1/t/callback`. */
  readonly route: string;
  /** The JSON body, parsed; `undefined` without one. */
  readonly body: Record<string, unknown> | undefined;
}

/** Answers a call: a JSON value, `null` for 204 No Content, `undefined` for the default answer. */
export type Responder = (call: RestCall) => unknown;

/** An error response such as Discord's `Unknown interaction`. */
export class RestFailure {
  constructor(
    readonly status: number,
    readonly code: number,
    readonly message: string,
  ) {}
}

/** The calls a client made, oldest first, and readers for the common ones. */
export interface RestRecorder {
  readonly calls: RestCall[];
  /** Short labels of every call, in order (see `label`). */
  labels(): string[];
}

/**
 * A readable label of a call: `defer <interaction id>` (with ` ephemeral`), `reply`, `edit`,
 * `followUp`, `send <channel>: <content>`, `typing <channel>`, or `METHOD path`.
 */
export function label(call: RestCall): string {
  const { method, path, route, body } = call;
  let match = /^\/interactions\/(\d+)\/[^/]+\/callback$/.exec(route);
  if (match !== null && method === "POST") {
    const data = body?.data as { flags?: number; content?: string } | undefined;
    const ephemeral = ((data?.flags ?? 0) & 64) !== 0 ? " ephemeral" : "";
    if (body?.type === 5) return `defer ${match[1]}${ephemeral}`;
    if (body?.type === 4) return `reply ${match[1]}${ephemeral}: ${data?.content ?? ""}`;
    return `callback ${match[1]} type ${String(body?.type)}`;
  }
  match = /^\/webhooks\/\d+\/([^/]+)\/messages\/(@|%40)original$/.exec(route);
  if (match !== null && method === "PATCH") return `edit ${match[1]}: ${String(body?.content)}`;
  match = /^\/webhooks\/\d+\/([^/]+)$/.exec(route);
  if (match !== null && method === "POST") return `followUp ${match[1]}: ${String(body?.content)}`;
  match = /^\/channels\/(\d+)\/messages$/.exec(route);
  if (match !== null && method === "POST") return `send ${match[1]}: ${String(body?.content)}`;
  match = /^\/channels\/(\d+)\/typing$/.exec(route);
  if (match !== null && method === "POST") return `typing ${match[1]}`;
  return `${method} ${path}`;
}

function json(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** A realistic answer: a message object for sends and edits, 204 for callbacks and typing. */
function defaultAnswer(call: RestCall): unknown {
  const route = call.route;
  if (call.method === "POST" && /\/(callback|typing)$/.test(route)) return null;
  if (/^\/channels\/\d+\/messages$/.test(route) || /^\/webhooks\//.test(route)) {
    const channel = /^\/channels\/(\d+)\//.exec(route)?.[1] ?? CHANNEL_A;
    return messagePayload({
      channel,
      author: BOT_USER,
      content: String(call.body?.content ?? ""),
      guild: undefined,
    });
  }
  return null;
}

function recordRest(respond: Responder | undefined) {
  const calls: RestCall[] = [];
  const makeRequest = async (url: string, init: { method?: string; body?: unknown }) => {
    const { pathname, search } = new URL(url);
    const route = pathname.replace(/^\/api\/v\d+/, "");
    const body = typeof init.body === "string" ? JSON.parse(init.body) : undefined;
    const call: RestCall = { method: init.method ?? "GET", path: route + search, route, body };
    calls.push(call);
    let answer = respond === undefined ? undefined : await respond(call);
    if (answer === undefined) answer = defaultAnswer(call);
    if (answer instanceof RestFailure) {
      return json({ message: answer.message, code: answer.code }, answer.status);
    }
    return answer === null ? new Response(null, { status: 204 }) : json(answer);
  };
  const recorder: RestRecorder = { calls, labels: () => calls.map(label) };
  return { makeRequest, recorder };
}

// === Gateway packets

interface GatewayPacket {
  readonly op: 0;
  readonly t: string;
  readonly d: Record<string, unknown>;
  readonly s: number;
}

let sequence = 0;

function packet(t: string, d: Record<string, unknown>): GatewayPacket {
  return { op: 0, t, d, s: ++sequence };
}

function readyPacket(): GatewayPacket {
  return packet("READY", {
    v: 10,
    user: BOT_USER,
    guilds: [{ id: GUILD_ID, unavailable: true }],
    session_id: "session",
    resume_gateway_url: "wss://gateway.invalid",
    application: { id: BOT_ID, flags: 0 },
    shard: [0, 1],
  });
}

function guildCreatePacket(): GatewayPacket {
  const text = (id: string, name: string) => ({ id, type: 0, name, guild_id: GUILD_ID });
  return packet("GUILD_CREATE", {
    id: GUILD_ID,
    name: "Guild",
    owner_id: USER.id,
    unavailable: false,
    member_count: 3,
    features: [],
    roles: [],
    emojis: [],
    stickers: [],
    members: [],
    presences: [],
    voice_states: [],
    stage_instances: [],
    guild_scheduled_events: [],
    soundboard_sounds: [],
    channels: [text(CHANNEL_A, "general"), text(CHANNEL_B, "random")],
    threads: [
      {
        id: THREAD_A,
        type: 11,
        name: "a thread",
        guild_id: GUILD_ID,
        parent_id: CHANNEL_A,
        owner_id: USER.id,
        message_count: 0,
        member_count: 1,
        thread_metadata: {
          archived: false,
          auto_archive_duration: 60,
          archive_timestamp: new Date().toISOString(),
          locked: false,
        },
      },
    ],
  });
}

/** The fields of a message object (MESSAGE_CREATE, or a REST answer). */
function messagePayload(options: {
  id?: string;
  channel: string;
  guild: string | undefined;
  author: object;
  content: string;
  type?: number;
  webhookId?: string;
}): Record<string, unknown> {
  return {
    id: options.id ?? snowflake(),
    channel_id: options.channel,
    ...(options.guild === undefined ? {} : { guild_id: options.guild }),
    author: options.author,
    content: options.content,
    timestamp: new Date().toISOString(),
    edited_timestamp: null,
    tts: false,
    mention_everyone: false,
    mentions: [],
    mention_roles: [],
    attachments: [],
    embeds: [],
    pinned: false,
    type: options.type ?? 0,
    flags: 0,
    ...(options.webhookId === undefined ? {} : { webhook_id: options.webhookId }),
  };
}

function inGuild(channel: string): boolean {
  return channel !== DM_CHANNEL;
}

/** Options of `sendMessage`. */
export interface MessageOptions {
  readonly channel?: string;
  readonly author?: { id: string; username: string; discriminator: string; bot?: boolean };
  /** A message type (7 = member join, a system message); default 0. */
  readonly type?: number;
  readonly webhookId?: string;
  readonly id?: string;
}

/** Options of `sendCommand` and `sendButton`. */
export interface InteractionOptions {
  readonly channel?: string;
  readonly user?: { id: string; username: string; discriminator: string };
  /** Epoch ms the interaction was created at (its snowflake); default now. */
  readonly createdAt?: number;
  /** The string options of a slash command, e.g. `{ prompt: "hi" }`. */
  readonly options?: Record<string, string>;
  /** Reuse an interaction id (the same interaction delivered twice); default a fresh one. */
  readonly id?: string;
}

/** Options of `sendCommand`. */
export interface CommandOptions extends InteractionOptions {
  /** A user context-menu command (Apps → name) on this user, instead of a slash command. */
  readonly onUser?: { id: string; username: string; discriminator: string };
}

function interactionBase(type: number, options: InteractionOptions) {
  const channel = options.channel ?? CHANNEL_A;
  const user = options.user ?? USER;
  const id = options.id ?? snowflake(options.createdAt ?? Date.now());
  const guild = inGuild(channel);
  return {
    id,
    application_id: BOT_ID,
    type,
    token: `token-${id}`,
    version: 1,
    locale: "en-US",
    app_permissions: "0",
    entitlements: [],
    authorizing_integration_owners: {},
    context: guild ? 0 : 1,
    attachment_size_limit: 8_388_608,
    channel_id: channel,
    channel: guild
      ? { id: channel, type: channel === THREAD_A ? 11 : 0, guild_id: GUILD_ID }
      : { id: channel, type: 1, recipients: [user] },
    ...(guild
      ? {
          guild_id: GUILD_ID,
          guild_locale: "en-US",
          member: {
            user,
            roles: [],
            joined_at: new Date(0).toISOString(),
            deaf: false,
            mute: false,
            flags: 0,
            permissions: "0",
          },
        }
      : { user }),
  };
}

// === The offline client

/** An offline client, its REST log, and the way in for gateway packets. */
export interface OfflineClient {
  readonly client: Client<true>;
  readonly rest: RestRecorder;
  /** Labels of the REST calls so far (`label`), in order. */
  labels(): string[];
  /** A user message arrives (MESSAGE_CREATE); answers its id. Listeners run before this returns. */
  sendMessage(content: string, options?: MessageOptions): string;
  /** The user edits message `id` (MESSAGE_UPDATE with the whole message, as Discord sends it). */
  editMessage(id: string, content: string, options?: MessageOptions): void;
  /** Message `id` is deleted (MESSAGE_DELETE). */
  deleteMessage(id: string, options?: MessageOptions): void;
  /** Any other gateway dispatch (`MESSAGE_DELETE_BULK`, …). */
  dispatch(t: string, d: Record<string, unknown>): void;
  /** A slash (or user context-menu) command arrives (INTERACTION_CREATE, type 2); answers its id. */
  sendCommand(name: string, options?: CommandOptions): string;
  /** A button press on a message of the bot (INTERACTION_CREATE, type 3); answers its id. */
  sendButton(customId: string, options?: InteractionOptions): string;
  /** Destroy the client (clears its REST sweepers). */
  destroy(): Promise<void>;
}

/**
 * A real `new Client({ intents, partials, rest: { makeRequest } })` with its token set and its one
 * shard made ready through READY and GUILD_CREATE packets, as a gateway connection would.
 */
export function offlineClient(
  options: { respond?: Responder; client?: Partial<ClientOptions> } = {},
): OfflineClient {
  const { makeRequest, recorder } = recordRest(options.respond);
  const client = new Client({
    intents: [
      GatewayIntentBits.Guilds,
      GatewayIntentBits.GuildMessages,
      GatewayIntentBits.MessageContent,
      GatewayIntentBits.DirectMessages,
    ],
    partials: [Partials.Channel],
    ...options.client,
    // discord.js types makeRequest with undici's RequestInit/ResponseLike; a fetch Response is one.
    rest: { makeRequest: makeRequest as never, retries: 0 },
  });
  client.rest.setToken("offline-token");
  const shard = connect(client);
  const dispatch = (p: GatewayPacket) => dispatchPacket(client, shard, p);
  dispatch(readyPacket());
  dispatch(guildCreatePacket());
  if (!client.isReady()) throw new Error("discord-fixtures: the client did not become ready.");

  return {
    client,
    rest: recorder,
    labels: recorder.labels,
    sendMessage(content, o = {}) {
      const channel = o.channel ?? CHANNEL_A;
      const d = messagePayload({
        id: o.id,
        channel,
        guild: inGuild(channel) ? GUILD_ID : undefined,
        author: o.author ?? USER,
        content,
        type: o.type,
        webhookId: o.webhookId,
      });
      if (!inGuild(channel)) d.channel_type = 1;
      dispatch(packet("MESSAGE_CREATE", d));
      return d.id as string;
    },
    dispatch: (t, d) => dispatch(packet(t, d)),
    editMessage(id, content, o = {}) {
      const channel = o.channel ?? CHANNEL_A;
      const d = messagePayload({
        id,
        channel,
        guild: inGuild(channel) ? GUILD_ID : undefined,
        author: o.author ?? USER,
        content,
      });
      d.edited_timestamp = new Date().toISOString();
      dispatch(packet("MESSAGE_UPDATE", d));
    },
    deleteMessage(id, o = {}) {
      const channel = o.channel ?? CHANNEL_A;
      const d = { id, channel_id: channel, ...(inGuild(channel) ? { guild_id: GUILD_ID } : {}) };
      dispatch(packet("MESSAGE_DELETE", d));
    },
    sendCommand(name, o = {}) {
      const target = o.onUser;
      const data =
        target === undefined
          ? {
              id: "5000000000000000001",
              name,
              type: 1,
              options: Object.entries(o.options ?? {}).map(([n, value]) => ({
                name: n,
                type: 3,
                value,
              })),
            }
          : {
              id: "5000000000000000002",
              name,
              type: 2,
              target_id: target.id,
              resolved: { users: { [target.id]: target } },
            };
      const d = { ...interactionBase(2, o), data };
      dispatch(packet("INTERACTION_CREATE", d));
      return d.id;
    },
    sendButton(customId, o = {}) {
      const base = interactionBase(3, o);
      const d = {
        ...base,
        data: { custom_id: customId, component_type: 2 },
        message: messagePayload({
          channel: base.channel.id,
          guild: inGuild(base.channel.id) ? GUILD_ID : undefined,
          author: BOT_USER,
          content: "Approve?",
        }),
      };
      dispatch(packet("INTERACTION_CREATE", d));
      return d.id;
    },
    destroy: () => client.destroy(),
  };
}

/**
 * Set up the client's websocket manager with one shard, as `WebSocketManager#connect` does after
 * fetching the gateway information, without opening a connection.
 */
function connect(client: Client): WebSocketShard {
  const manager = client.ws as unknown as {
    shards: Map<number, WebSocketShard>;
    totalShards: number;
    checkShardsReady(): void;
  };
  // WebSocketShard's constructor is private in the typings; connect() calls it like this.
  const shard = new (WebSocketShard as unknown as new (m: unknown, id: number) => WebSocketShard)(
    client.ws,
    0,
  );
  manager.shards.set(0, shard);
  manager.totalShards = 1;
  client.options.shards = [0];
  client.options.shardCount = 1;
  shard.on(WebSocketShardEvents.AllReady, () => {
    client.emit(Events.ShardReady, 0, undefined);
    manager.checkShardsReady();
  });
  shard.status = Status.Connecting;
  return shard;
}

/**
 * Hand one dispatch to the client exactly as the websocket manager's `dispatch` listener does:
 * the raw event, the manager's own event, the packet handler, and the guild bookkeeping while the
 * shard waits for its guilds. READY also goes to the shard first, as `@discordjs/ws` emits it.
 */
function dispatchPacket(client: Client, shard: WebSocketShard, p: GatewayPacket): void {
  const internal = shard as unknown as {
    onReadyPacket(d: unknown): void;
    gotGuild(id: string): void;
  };
  const manager = client.ws as unknown as {
    handlePacket(p: GatewayPacket, s: WebSocketShard): boolean;
    emit(name: string, ...args: unknown[]): boolean;
  };
  if (p.t === "READY") internal.onReadyPacket(p.d);
  client.emit(Events.Raw, p, 0);
  manager.emit(p.t, p.d, 0);
  manager.handlePacket(p, shard);
  if (
    shard.status === Status.WaitingForGuilds &&
    (p.t === "GUILD_CREATE" || p.t === "GUILD_DELETE")
  ) {
    internal.gotGuild(p.d.id as string);
  }
}

/**
 * A responder that answers a message edit (`PATCH /channels/:channel/messages/:id`) with the edited
 * message, as Discord does; other calls get the default answer.
 */
export const answerEdits: Responder = (call) => {
  const match = /^\/channels\/(\d+)\/messages\/(\d+)$/.exec(call.route);
  if (match === null || call.method !== "PATCH") return undefined;
  return messagePayload({
    id: match[2],
    channel: match[1] as string,
    guild: inGuild(match[1] as string) ? GUILD_ID : undefined,
    author: BOT_USER,
    content: String(call.body?.content ?? ""),
  });
};
