// Reusable Slack fixtures: an offline Bolt `App` (a do-nothing receiver, Web API calls answered by a
// recording `fetch` stub), request bodies as Slack sends them, and `deliver`, which hands a body to
// `app.processEvent` the way Bolt's HTTPReceiver does — with Bolt's own `HTTPResponseAck` (a second
// ack throws `ReceiverMultipleAckError`; with `processBeforeResponse` the response waits for
// `processEvent`) and Bolt's own response helpers. Nothing here touches the network.
//
// Listeners get pooled `WebClient`s built from `clientOptions`, not `app.client`, so the stub goes
// in as `clientOptions.fetch` (web-api 8 calls `fetch`; Bolt's `respond()` uses the same function
// for response_url POSTs).

import {
  App,
  type AppOptions,
  HTTPModuleFunctions,
  HTTPResponseAck,
  type Logger,
  LogLevel,
  type StringIndexed,
  type webApi,
} from "@slack/bolt";

export const TEAM = "T0TEAM";
export const BOT_USER = "U0BOT";
export const BOT_ID = "B0BOT";
export const APP_ID = "A0APP";
const SLACK_API = "https://slack.com/api/";

// === Web API

/** One outgoing call: a Web API method, or a POST to a response_url (method `response_url`). */
export interface ApiCall {
  readonly method: string;
  readonly params: Record<string, unknown>;
}

/** What `recordWebApi` answers a call with: extra result fields, or `undefined` for the default. */
export type Responder = (call: ApiCall) => Promise<Record<string, unknown> | undefined> | undefined;

export interface ApiRecorder {
  /** Pass as `clientOptions.fetch`. */
  readonly fetch: webApi.FetchFunction;
  readonly calls: ApiCall[];
  /** Every `chat.postMessage` as `channel/thread_ts: text` (`-` for no thread), in order. */
  posts(): string[];
  /** The `text` of every response_url POST, in order. */
  responses(): string[];
}

let postTs = 0;

function defaultResult(method: string, params: Record<string, unknown>): Record<string, unknown> {
  if (method === "chat.postMessage") {
    const ts = `1800000000.${String(++postTs).padStart(6, "0")}`;
    return { channel: params.channel, ts, message: { type: "message", text: params.text, ts } };
  }
  if (method === "chat.update") return { channel: params.channel, ts: params.ts };
  return {};
}

/** A `fetch` stub that records every Slack call and answers it locally, `ok: true`. */
export function recordWebApi(respond?: Responder): ApiRecorder {
  const calls: ApiCall[] = [];
  const fetch: webApi.FetchFunction = async (url, init) => {
    const href = String(url);
    const body = typeof init?.body === "string" ? init.body : "";
    const method = href.startsWith(SLACK_API) ? href.slice(SLACK_API.length) : "response_url";
    const params =
      method === "response_url"
        ? (JSON.parse(body) as Record<string, unknown>)
        : Object.fromEntries(new URLSearchParams(body));
    const call: ApiCall = { method, params };
    calls.push(call);
    const result = (await respond?.(call)) ?? defaultResult(method, params);
    const response = new Response(JSON.stringify({ ok: true, ...result }), {
      status: 200,
      headers: { "content-type": "application/json" },
    });
    // Node's Response is what web-api expects; only the DOM lib's Headers type lacks `entries`.
    return response as unknown as Awaited<ReturnType<webApi.FetchFunction>>;
  };
  return {
    fetch,
    calls,
    posts: () =>
      calls
        .filter((c) => c.method === "chat.postMessage")
        .map((c) => `${c.params.channel}/${c.params.thread_ts ?? "-"}: ${c.params.text}`),
    responses: () =>
      calls.filter((c) => c.method === "response_url").map((c) => String(c.params.text)),
  };
}

/** A logger that keeps Bolt's warnings and errors (as lines) instead of printing them. */
export function quietLogger(lines: string[] = []): Logger & { readonly lines: string[] } {
  const keep =
    (level: string) =>
    (...message: unknown[]) =>
      void lines.push(`${level} ${message.map(String).join(" ")}`);
  return {
    lines,
    debug: () => {},
    info: () => {},
    warn: keep("warn"),
    error: keep("error"),
    setLevel: () => {},
    getLevel: () => LogLevel.WARN,
    setName: () => {},
  };
}

/** An offline app: a receiver that does nothing, a fixed bot identity (no `auth.test` call). */
export function offlineApp<C extends StringIndexed>(
  api: ApiRecorder,
  logger: Logger,
  options: Partial<AppOptions> = {},
): App<C> {
  return new App<C>({
    token: "xoxb-test",
    botId: BOT_ID,
    botUserId: BOT_USER,
    receiver: { init: () => {}, start: async () => {}, stop: async () => {} },
    logger,
    ...options,
    clientOptions: { fetch: api.fetch, retryConfig: { retries: 0 }, ...options.clientOptions },
  });
}

// === Delivering a request as the HTTP receiver does

/** What Slack saw of one HTTP delivery. */
export interface Delivery {
  /** Every call of the receiver's `ack`, with its response body, in order. */
  readonly acks: unknown[];
  /** The HTTP status and body Slack received, once sent. */
  readonly status: number | undefined;
  readonly body: string | undefined;
  /** Resolves once `processEvent` (and, with `processBeforeResponse`, the response) is done. */
  readonly done: Promise<void>;
}

export interface DeliverOptions {
  retryNum?: number;
  retryReason?: string;
  processBeforeResponse?: boolean;
  /** Gets `response <label>: <status> <body>` when the HTTP response is sent (with a label). */
  log?: string[];
  label?: string;
}

const openAcks: HTTPResponseAck[] = [];

/** Clear the 3 s no-ack timers of deliveries whose payload nobody acknowledged. */
export function disposeDeliveries(): void {
  for (const ack of openAcks.splice(0)) {
    clearTimeout(
      (ack as unknown as { noAckTimeoutId?: ReturnType<typeof setTimeout> }).noAckTimeoutId,
    );
  }
}

/**
 * Hand `body` to `app.processEvent` like HTTPReceiver's request handler (after signature checks
 * and parsing): the real `HTTPResponseAck`, then the stored response once `processEvent` resolves,
 * and a 500 if it rejects before a response was sent.
 */
export function deliver<C extends StringIndexed>(
  app: App<C>,
  body: Record<string, unknown>,
  options: DeliverOptions = {},
): Delivery {
  const { log, label } = options;
  const logger = quietLogger();
  const state: { status: number | undefined; body: string | undefined } = {
    status: undefined,
    body: undefined,
  };
  const response = {
    headersSent: false,
    writeHead(status: number) {
      state.status = status;
      this.headersSent = true;
      return this;
    },
    end(text?: string) {
      state.body = text ?? "";
      if (label !== undefined) {
        log?.push(`response ${label}: ${state.status} ${JSON.stringify(state.body)}`);
      }
    },
  };
  const receiverAck = new HTTPResponseAck({
    logger,
    processBeforeResponse: options.processBeforeResponse ?? false,
    httpRequest: {} as never,
    httpRequestBody: body,
    httpResponse: response as never,
  });
  openAcks.push(receiverAck);
  const bound = receiverAck.bind();
  const acks: unknown[] = [];
  const done = (async () => {
    try {
      await app.processEvent({
        body,
        ack: (reply?: unknown) => {
          acks.push(reply);
          return bound(reply);
        },
        retryNum: options.retryNum,
        retryReason: options.retryReason,
      });
      if (receiverAck.storedResponse !== undefined) {
        HTTPModuleFunctions.buildContentResponse(response as never, receiverAck.storedResponse);
      }
    } catch (error) {
      await HTTPModuleFunctions.defaultProcessEventErrorHandler({
        error: error as Error,
        logger,
        request: {} as never,
        response: response as never,
        storedResponse: receiverAck.storedResponse,
      });
    }
  })();
  return {
    acks,
    done,
    get status() {
      return state.status;
    },
    get body() {
      return state.body;
    },
  };
}

// === Request bodies

let clock = 0;

/** A fresh, increasing Slack timestamp ("seconds.micros"). */
export function nextTs(): string {
  clock += 100;
  return `1700000000.${String(clock).padStart(6, "0")}`;
}

let eventIds = 0;

/** Where a message is written. */
export interface MessageOptions {
  channel?: string;
  user?: string;
  /** The thread it replies in (`thread_ts`). */
  thread?: string;
  /** Reuse a timestamp; default a fresh one. */
  ts?: string;
  /** `"im"` for a DM; default `"channel"` (or `"im"` for a `D…` channel). */
  channel_type?: string;
  /** The installation that receives it (its team id). */
  team?: string;
  /** An org-wide install of this enterprise: `authorizations` carry no team. */
  enterprise?: string;
  /** More event fields (`subtype`, `bot_id`, …). */
  extra?: Record<string, unknown>;
}

/** The fields of a message or app_mention event as the tests read them. */
export interface MessageEventFields extends Record<string, unknown> {
  type: string;
  channel: string;
  user: string;
  text: string;
  ts: string;
  thread_ts?: string;
}

/** An Events API request body (`event_callback`). */
export type Envelope<E> = Record<string, unknown> & { event: E };

/** The body of a message or app_mention delivery. */
export type EventBody = Envelope<MessageEventFields>;

function envelope<E extends Record<string, unknown>>(
  event: E,
  options: MessageOptions = {},
): Envelope<E> {
  const team = options.team ?? TEAM;
  const enterprise = options.enterprise;
  return {
    token: "verification-token",
    team_id: team,
    ...(enterprise === undefined ? {} : { enterprise_id: enterprise }),
    api_app_id: APP_ID,
    event,
    type: "event_callback",
    event_id: `Ev${++eventIds}`,
    event_time: 1700000000,
    authorizations: [
      {
        enterprise_id: enterprise ?? null,
        team_id: enterprise === undefined ? team : null,
        user_id: BOT_USER,
        is_bot: true,
        is_enterprise_install: enterprise !== undefined,
      },
    ],
    is_ext_shared_channel: false,
  };
}

/** A message written by a person (event type `message`). */
export function message(text: string, options: MessageOptions = {}): EventBody {
  const channel = options.channel ?? "C1";
  const ts = options.ts ?? nextTs();
  const event: MessageEventFields = {
    type: "message",
    channel,
    user: options.user ?? "U1",
    text,
    ts,
    event_ts: ts,
    client_msg_id: `cm-${ts}`,
    channel_type: options.channel_type ?? (channel.startsWith("D") ? "im" : "channel"),
    team: options.team ?? TEAM,
    ...(options.thread === undefined ? {} : { thread_ts: options.thread }),
    ...options.extra,
  };
  return envelope(event, options);
}

/** The same message delivered as `app_mention` (Slack sends both when the app is mentioned). */
export function mentionOf(body: EventBody, options: MessageOptions = {}): EventBody {
  const { channel_type: _type, client_msg_id: _id, ...rest } = body.event;
  return envelope({ ...rest, type: "app_mention" }, options);
}

/** A delivery of another installation (Slack Connect): same event, another team. */
export function forTeam(body: EventBody, team: string): EventBody {
  return envelope({ ...body.event }, { team });
}

/** An edit of `body`'s message (`message_changed`). */
export function editOf(body: EventBody, text: string): Envelope<Record<string, unknown>> {
  const original = body.event;
  const ts = nextTs();
  return envelope({
    type: "message",
    subtype: "message_changed",
    hidden: true,
    channel: original.channel,
    channel_type: original.channel_type,
    ts,
    event_ts: ts,
    message: { ...original, text, edited: { user: original.user, ts } },
    previous_message: original,
  });
}

/** The deletion of `body`'s message (`message_deleted`). */
export function deletionOf(body: EventBody): Envelope<Record<string, unknown>> {
  const original = body.event;
  const ts = nextTs();
  return envelope({
    type: "message",
    subtype: "message_deleted",
    hidden: true,
    channel: original.channel,
    channel_type: original.channel_type,
    ts,
    event_ts: ts,
    deleted_ts: original.ts,
    previous_message: original,
  });
}

/** A message posted by another app's bot (not this app: Bolt's `ignoreSelf` lets it through). */
export function botMessage(text: string, options: MessageOptions = {}): EventBody {
  return message(text, { ...options, user: "U0OTHER", extra: { bot_id: "B0OTHER" } });
}

/** A reaction added to `body`'s message. */
export function reactionTo(body: EventBody, name = "eyes"): Envelope<Record<string, unknown>> {
  const ts = nextTs();
  return envelope({
    type: "reaction_added",
    user: "U1",
    reaction: name,
    item: { type: "message", channel: body.event.channel, ts: body.event.ts },
    item_user: body.event.user,
    event_ts: ts,
  });
}

let triggers = 0;

/** A slash command (the form fields of Slack's request, parsed). */
export function command(
  name: string,
  text = "",
  options: { channel?: string; user?: string; team?: string } = {},
): Record<string, unknown> {
  const channel = options.channel ?? "C1";
  const n = ++triggers;
  return {
    token: "verification-token",
    team_id: options.team ?? TEAM,
    team_domain: "test",
    channel_id: channel,
    channel_name: `chan-${channel}`,
    user_id: options.user ?? "U1",
    user_name: "ada",
    command: name,
    text,
    api_app_id: APP_ID,
    is_enterprise_install: "false",
    response_url: `https://hooks.slack.com/commands/${TEAM}/${n}/secret`,
    trigger_id: `trigger-${n}`,
  };
}

/** A button press (`block_actions`) on a message in `channel`, in thread `thread` if given. */
export function blockAction(
  actionId: string,
  value: string,
  on: { channel?: string; ts: string; thread?: string },
): Record<string, unknown> {
  const channel = on.channel ?? "C1";
  const n = ++triggers;
  return {
    type: "block_actions",
    user: { id: "U1", username: "ada", team_id: TEAM },
    api_app_id: APP_ID,
    token: "verification-token",
    container: {
      type: "message",
      message_ts: on.ts,
      channel_id: channel,
      is_ephemeral: false,
      ...(on.thread === undefined ? {} : { thread_ts: on.thread }),
    },
    trigger_id: `trigger-${n}`,
    team: { id: TEAM, domain: "test" },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: channel, name: `chan-${channel}` },
    message: {
      type: "message",
      user: BOT_USER,
      ts: on.ts,
      text: "Approve?",
      ...(on.thread === undefined ? {} : { thread_ts: on.thread }),
    },
    state: { values: {} },
    response_url: `https://hooks.slack.com/actions/${TEAM}/${n}/secret`,
    actions: [
      {
        action_id: actionId,
        block_id: "b1",
        value,
        type: "button",
        text: { type: "plain_text", text: value },
        action_ts: nextTs(),
      },
    ],
  };
}

/** The text of a turn input: a message's or a command's `text`. */
export function textOf(input: object): string {
  const text = (input as { text?: unknown }).text;
  return typeof text === "string" ? text : "";
}
