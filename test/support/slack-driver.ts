// The adapter contract's driver for Slack: a real offline Bolt `App` (a do-nothing receiver, Web
// API calls answered by a recording `fetch`) with `slackGuard` installed; requests go in through
// `app.processEvent` with Bolt's own HTTPResponseAck (`deliver`). Chat "a" is the DM channel D1,
// chat "b" the DM channel D2 (a DM is one key unless in a thread).

import type { SlackInput, SlackMiddlewareArgs, SlackTurnContext } from "session-guard/slack";
import { slackGuard } from "session-guard/slack";
import {
  type AdapterDriver,
  type Chat,
  type ContractBot,
  type Delivery,
  guardRecords,
  throwingKey,
} from "./adapter-contract.js";
import {
  BOT_USER,
  blockAction,
  command,
  deletionOf,
  deliver,
  disposeDeliveries,
  type EventBody,
  editOf,
  message,
  nextTs,
  offlineApp,
  quietLogger,
  recordWebApi,
  type Delivery as SlackDelivery,
  TEAM,
  textOf,
} from "./slack-fixtures.js";

const CHANNELS: Record<Chat, string> = { a: "D1", b: "D2" };
const chatOf = (channel: unknown): Chat => (channel === CHANNELS.b ? "b" : "a");
const keyOf = (chat: Chat) => `slack:${TEAM}:${CHANNELS[chat]}`;

/** The channel a payload was written in: an event's, a command's, or a block action's. */
function channelOf(args: SlackMiddlewareArgs): unknown {
  const loose = args as unknown as {
    event?: { channel?: unknown };
    command?: { channel_id?: unknown };
    body: { channel?: { id?: unknown } };
  };
  return loose.event?.channel ?? loose.command?.channel_id ?? loose.body.channel?.id;
}

/** The stop forms: the stop text, the stop text after a mention of the app, the stop command. */
function stopBody(channel: string, form: string): Record<string, unknown> {
  return form === "/stop" ? command("/stop", "", { channel }) : message(form, { channel });
}

export const slackDriver: AdapterDriver = {
  name: "Slack",
  pressName: "block action",
  stopForms: ["stop", `<@${BOT_USER}> stop`, "/stop"],
  // Slack retries events (the stop text); it never retries a slash command.
  stopsPassOn: true,
  redeliveredStops: ["stop"],

  create(hooks, options = {}): ContractBot {
    const api = recordWebApi(
      options.failReactions
        ? async (call) =>
            call.method.startsWith("reactions.") ? { ok: false, error: "missing_scope" } : undefined
        : undefined,
    );
    /** The text of each message sent, by ts (reactions name messages by ts). */
    const textByTs = new Map<unknown, string>();
    const logger = quietLogger();
    const app = offlineApp<SlackTurnContext>(api, logger);
    const records = guardRecords((input) => textOf(input as SlackInput));
    const failedResponses: string[] = [];
    const guard = slackGuard({
      awaitTurn: options.awaitTurn ?? false,
      onError: records.onError,
      onDrop: records.onDrop,
      reactions: options.reactions ?? false,
      ...(options.mode === undefined ? {} : { mode: options.mode }),
      ...throwingKey(
        options.keyThrowsOn,
        (args: SlackMiddlewareArgs) => (args as { event?: { text?: unknown } }).event?.text,
        (args) => keyOf(chatOf(channelOf(args))),
      ),
    });
    guard.on("queued", records.onQueued);
    guard.on("admitted", records.onAdmitted);
    app.use(guard);
    app.message(async ({ message: m, context }) => {
      const turn = context.turn;
      const chat = chatOf((m as { channel?: string }).channel);
      if (turn === undefined) {
        // Edits and deletions reach the listeners too, without a turn: not the contract's input.
        if ((m as { subtype?: string }).subtype?.startsWith("message_")) return;
        return hooks.passed(chat, textOf(m));
      }
      turn.onRevision(({ input }) =>
        hooks.revised?.(chat, input === undefined ? undefined : textOf(input)),
      );
      await hooks.turn({
        chat,
        key: turn.key,
        texts: turn.inputs.map(textOf),
        latest: textOf(m),
        signal: turn.signal,
      });
    });
    app.command("/stop", async ({ command: c, ack, context }) => {
      if (!context.acknowledged) await ack();
      hooks.passed(chatOf(c.channel_id), "/stop");
    });
    app.action(/.*/, async ({ action, body, ack, context }) => {
      await hooks.press({
        chat: chatOf((body as { channel?: { id?: string } }).channel?.id),
        data: (action as { value?: string }).value ?? "",
        turn: context.turn !== undefined,
      });
      if (!context.acknowledged) await ack();
    });

    const post = async (body: Record<string, unknown>, retryNum?: number) => {
      const delivery = deliver(app, body, {
        ...(retryNum === undefined ? {} : { retryNum, retryReason: "http_timeout" }),
      });
      await delivery.done;
      if ((delivery.status ?? 200) >= 500) failedResponses.push(`HTTP ${delivery.status}`);
      return delivery;
    };
    /** Deliveries per body, for their acks; retries of one body count up. */
    const deliveries = new Map<unknown, SlackDelivery>();
    const retries = new Map<unknown, number>();
    const send = async (body: Record<string, unknown>, text: string): Promise<Delivery> => {
      const event = body.event as { channel?: string; ts?: string } | undefined;
      const id = event === undefined ? undefined : `slack:${event.channel}:${event.ts}`;
      if (event !== undefined) textByTs.set(event.ts, text);
      deliveries.set(body, await post(body));
      return { id: id as string, text, raw: body };
    };

    return {
      guard,
      keyOf,
      send: (chat, text) => send(message(text, { channel: CHANNELS[chat] }), text),
      sendStop: (chat, form) => send(stopBody(CHANNELS[chat], form), form),
      press: (chat, data) =>
        send(blockAction("approve", data, { channel: CHANNELS[chat], ts: nextTs() }), data),
      redeliver: async (delivery) => {
        const retry = (retries.get(delivery.raw) ?? 0) + 1;
        retries.set(delivery.raw, retry);
        await post(delivery.raw as Record<string, unknown>, retry);
      },
      edit: async (delivery, text) => {
        await post(editOf(delivery.raw as EventBody, text) as unknown as Record<string, unknown>);
      },
      remove: async (delivery) => {
        await post(deletionOf(delivery.raw as EventBody) as unknown as Record<string, unknown>);
      },
      shown: () =>
        api.calls.flatMap((c) => {
          const text = textByTs.get(c.params.timestamp);
          if (c.method === "reactions.add") return [`react ${text} ${c.params.name}`];
          if (c.method === "reactions.remove") return [`unreact ${text}`];
          // An ephemeral notice names no message: its user and thread only.
          return c.method === "chat.postEphemeral" ? [`notice ?: ${c.params.text}`] : [];
        }),
      answersTo: async (press) => deliveries.get(press.raw)?.acks.length ?? 0,
      textOf: (input) => textOf(input as SlackInput),
      queued: records.queued,
      admitted: records.admitted,
      drops: records.drops,
      errors: records.errors,
      get frameworkErrors() {
        return [...failedResponses, ...logger.lines];
      },
      dispose: async () => {
        await guard.close({ timeout: 0 });
        disposeDeliveries();
      },
    };
  },
};
