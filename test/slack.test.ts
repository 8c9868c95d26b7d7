// The Slack adapter on a real, offline Bolt `App`: requests go in through `app.processEvent` the way
// Bolt's HTTPReceiver hands them over (with Bolt's own HTTPResponseAck), Web API and response_url
// calls are answered by a recording `fetch` stub given as `clientOptions.fetch`, and the core guard
// is the real one. Timing is controlled with deferred promises; nothing measures wall-clock speed.
// What every adapter promises (serialization, coalescing, stop, bypass, de-duplication, shutdown)
// is the adapter contract's (adapter-contract.test.ts); this file holds what is Slack's own.

import { type App, ReceiverMultipleAckError } from "@slack/bolt";
import { createGuard, type Drop, type Guard, type TurnAbortedError } from "session-guard";
import {
  type SlackGuardMiddleware,
  type SlackGuardOptions,
  type SlackInput,
  type SlackTurnContext,
  slackGuard,
} from "session-guard/slack";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type Deferred,
  deferred,
  dropRecorder,
  errorRecorder,
  macrotask,
  track,
} from "./support/helpers.js";
import {
  type ApiRecorder,
  BOT_USER,
  blockAction,
  botMessage,
  command,
  type DeliverOptions,
  type Delivery,
  deletionOf,
  deliver,
  disposeDeliveries,
  type EventBody,
  editOf,
  forTeam,
  mentionOf,
  message,
  offlineApp,
  quietLogger,
  reactionTo,
  recordWebApi,
  TEAM,
  textOf,
} from "./support/slack-fixtures.js";

type Ctx = SlackTurnContext;

/** The guards a test created: closed after it, so no turn outlives its test. */
const opened: SlackGuardMiddleware[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(opened.splice(0).map((guard) => guard.close({ timeout: 0 })));
  disposeDeliveries();
});

interface Harness {
  readonly app: App<Ctx>;
  readonly api: ApiRecorder;
  readonly guard: SlackGuardMiddleware;
  readonly errors: ReturnType<typeof errorRecorder<SlackInput>>["errors"];
  readonly drops: Drop<SlackInput>[];
  /** Bolt's own error and warning lines (its error handler, unacknowledged requests). */
  readonly boltLog: string[];
  /** One timeline for the test: listeners push to it, deliveries push `response …` lines. */
  readonly log: string[];
  /** Deliver a body and wait for `processEvent` (not for a detached turn). */
  send(body: Record<string, unknown>, options?: DeliverOptions): Promise<Delivery>;
}

/** An offline app with `slackGuard` installed, recording API calls, errors and drops. */
function harness(
  options: SlackGuardOptions = {},
  appOptions: { processBeforeResponse?: boolean } = {},
): Harness {
  const api = recordWebApi();
  const logger = quietLogger();
  const app = offlineApp<Ctx>(api, logger);
  const { errors, onError } = errorRecorder<SlackInput>();
  const { drops, onDrop } = dropRecorder<SlackInput>();
  const guard = slackGuard({ onError, onDrop, ...options });
  opened.push(guard);
  app.use(guard);
  const log: string[] = [];
  const send = async (body: Record<string, unknown>, deliverOptions: DeliverOptions = {}) => {
    const delivery = deliver(app, body, {
      log,
      processBeforeResponse: appOptions.processBeforeResponse,
      ...deliverOptions,
    });
    await delivery.done;
    return delivery;
  };
  return { app, api, guard, errors, drops, boltLog: logger.lines, log, send };
}

/** The default key of a channel, a thread in it, or a DM. */
function key(channel: string, thread?: string, team = TEAM): string {
  return thread === undefined ? `slack:${team}:${channel}` : `slack:${team}:${channel}:${thread}`;
}

/** The key and de-duplication id of a message body. */
function keyOf(body: EventBody): string {
  return key(body.event.channel, body.event.thread_ts ?? body.event.ts);
}
function idOf(body: EventBody): string {
  return `slack:${body.event.channel}:${body.event.ts}`;
}

/** Gates that turns wait on, by name; a name without a gate does not wait. */
function gates() {
  const all = new Map<string, Deferred<void>>();
  return {
    add(...names: string[]) {
      for (const name of names) all.set(name, deferred());
    },
    wait(name: string): Promise<void> {
      return all.get(name)?.promise ?? Promise.resolve();
    },
    open(name: string) {
      all.get(name)?.resolve();
    },
  };
}

/** Resolves when `signal` aborts, with the code of its `TurnAbortedError`. */
function aborted(signal: AbortSignal): Promise<string> {
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve((signal.reason as TurnAbortedError).code), {
      once: true,
    }),
  );
}

/** Let Bolt's listener chains and the fetch stub run (a few macrotasks). */
async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await macrotask();
}

/** The thread a reply to a message goes to. */
function threadOf(event: { thread_ts?: string; ts?: string }): string | undefined {
  return event.thread_ts ?? event.ts;
}

describe("slackGuard: serialization per thread", () => {
  it("context.turn carries key, the coalesced payloads, ids, signal, fence, pendingCount, take()", async () => {
    const h = harness({ mode: "steer" });
    const first = deferred();
    const seen: unknown[] = [];
    h.app.message(async ({ message: m, context }) => {
      const turn = context.turn;
      if (turn === undefined) return;
      if (textOf(turn.inputs[0] as SlackInput) === "one") {
        const pending: number[] = [];
        turn.onPending((count) => pending.push(count));
        await first.promise;
        seen.push({ pendingBefore: turn.pendingCount, notified: pending });
        const taken = await turn.take();
        seen.push({
          key: turn.key,
          taken: taken.map(textOf),
          inputs: turn.inputs.map(textOf),
          ids: turn.ids,
          lastIsPayload: turn.inputs[0] === m,
          fence: turn.fence,
          signal: turn.signal instanceof AbortSignal && !turn.signal.aborted,
          pendingAfter: turn.pendingCount,
          stale: turn.stale,
        });
      } else seen.push({ unexpected: turn.inputs.map(textOf) });
    });
    const one = message("one", { channel: "D1" });
    const two = message("two", { channel: "D1" });
    const three = message("three", { channel: "D1" });
    await h.send(one);
    await h.send(two);
    await h.send(three);
    first.resolve();
    await h.guard.onIdle();
    expect(seen).toEqual([
      { pendingBefore: 2, notified: [1, 2] },
      {
        key: key("D1"), // a DM is one session per DM channel
        taken: ["two", "three"],
        inputs: ["one", "two", "three"],
        ids: [idOf(one), idOf(two), idOf(three)],
        lastIsPayload: true,
        fence: 1,
        signal: true,
        pendingAfter: 0,
        stale: false,
      },
    ]);
  });
});

describe("slackGuard: keys", () => {
  it("keys by team (or enterprise for org-wide installs) + channel + thread_ts ?? ts; DMs by channel unless in a thread", async () => {
    const h = harness();
    const keys: string[] = [];
    // Global middleware after the guard sees every payload with its key.
    h.app.use(async (args) => {
      keys.push(`${args.body.type ?? "command"} ${h.guard.keyOf(args)}`);
      await args.next();
    });
    const top = message("top");
    const reply = message("reply", { thread: top.event.ts });
    const dm = message("dm", { channel: "D7" });
    const dmThread = message("dm thread", { channel: "D7", thread: dm.event.ts });
    const org = message("org", { enterprise: "E9", channel: "C3" });
    await h.send(top);
    await h.send(reply);
    await h.send(dm);
    await h.send(dmThread);
    await h.send(org);
    await h.send(command("/ask", "hi", { channel: "C1" }));
    await h.send(
      blockAction("ok", "yes", { channel: "C1", ts: "1800000000.000001", thread: top.event.ts }),
    );
    await h.send(blockAction("ok", "yes", { channel: "C1", ts: "1800000000.000002" }));
    await h.send(editOf(reply, "reply, edited"));
    await h.send(reactionTo(top));
    await h.guard.onIdle();
    expect(keys).toEqual([
      `event_callback ${key("C1", top.event.ts)}`,
      `event_callback ${key("C1", top.event.ts)}`,
      `event_callback ${key("D7")}`,
      `event_callback ${key("D7", dm.event.ts)}`,
      `event_callback ${key("C3", org.event.ts, "E9")}`,
      `command ${key("C1")}`,
      // A button on a reply in the thread gets the thread's key; one on a top-level message, its own.
      `block_actions ${key("C1", top.event.ts)}`,
      `block_actions ${key("C1", "1800000000.000002")}`,
      // An edit belongs to the thread of the message it changes.
      `event_callback ${key("C1", top.event.ts)}`,
      // Events with no conversation of their own have no key.
      "event_callback undefined",
    ]);
  });

  it("a custom key decides what is serialized; undefined and `bypass` let payloads through", async () => {
    const h = harness({
      key: (args) => ("event" in args && args.event.type === "message" ? "one-key" : undefined),
      bypass: (args) => "event" in args && textOf(args.event as { text?: string }) === "bypass",
    });
    const first = deferred();
    h.app.message(async ({ message: m, context }) => {
      h.log.push(`${textOf(m as { text?: string })} ${context.turn?.key ?? "no turn"}`);
      if (textOf(m as { text?: string }) === "a") await first.promise;
    });
    await h.send(message("a", { channel: "C1" }));
    await h.send(message("b", { channel: "C2" })); // another channel, same custom key: waits
    await h.send(message("bypass", { channel: "C1" }));
    await settle();
    expect(h.log).toEqual(["a one-key", "bypass no turn"]);
    expect(h.guard.pendingCount("one-key")).toBe(1);
    first.resolve();
    await h.guard.onIdle();
    expect(h.log).toEqual(["a one-key", "bypass no turn", "b one-key"]);
  });
});

describe("slackGuard: an adapter's own error", () => {
  it.each<[string, SlackGuardOptions, () => Record<string, unknown>]>([
    [
      "a throwing key function",
      {
        key: (args) =>
          `${(args as unknown as { event: { user_profile: { id: string } } }).event.user_profile.id}`,
      },
      () => message("hi"),
    ],
    ["a key function that returns an empty string", { key: () => "" }, () => message("hi")],
    [
      "a throwing bypass function",
      {
        bypass: () => {
          throw new Error("bypass failed");
        },
      },
      () => message("hi"),
    ],
  ])(
    "%s goes to onError with the payload; processEvent resolves, Bolt sees no error, the payload is not run",
    async (_name, options, make) => {
      const h = harness(options);
      const ran: string[] = [];
      h.app.message(async ({ message: m }) => void ran.push(textOf(m)));
      const body = make();
      await h.send(body);
      await settle();
      expect(ran).toEqual([]);
      expect(h.boltLog).toEqual([]);
      expect(h.errors).toHaveLength(1);
      expect(h.errors[0]?.error).toBeInstanceOf(Error);
      expect(h.errors[0]?.info.inputs).toEqual([(body as EventBody).event]);
      expect(h.guard.activeCount).toBe(0);
    },
  );

  it("a command whose key function throws is reported and not run, and the next command runs", async () => {
    const h = harness({
      key: (args) => {
        if ("command" in args && args.command.text === "boom") throw new Error("no key");
        return "k";
      },
    });
    const ran: string[] = [];
    h.app.command("/ask", async ({ command: c, ack, context }) => {
      if (!context.acknowledged) await ack();
      ran.push(c.text);
    });
    await h.send(command("/ask", "boom"));
    await h.send(command("/ask", "fine"));
    await h.guard.onIdle();
    await settle();
    expect(ran).toEqual(["fine"]);
    expect(h.errors.map((e) => String(e.error))).toEqual(["Error: no key"]);
    expect(h.boltLog).toEqual([]);
  });
});

describe("slackGuard: de-duplication", () => {
  it("handles a retry and the app_mention + message double delivery once, but not a new message", async () => {
    const h = harness();
    const first = deferred();
    const answer = async ({
      event,
      context,
      say,
    }: {
      event: { type: string; ts?: string; thread_ts?: string };
      context: Ctx;
      say: (m: { text: string; thread_ts?: string }) => Promise<unknown>;
    }) => {
      const turn = context.turn;
      if (turn === undefined) return;
      h.log.push(`${event.type} ${turn.inputs.map(textOf).join("+")}`);
      await first.promise;
      await say({ text: `answer ${event.ts}`, thread_ts: threadOf(event) });
    };
    // The same agent for both deliveries: whichever arrives first runs.
    h.app.message(answer);
    h.app.event("app_mention", answer);

    const hi = message(`<@${BOT_USER}> hi`);
    await h.send(mentionOf(hi));
    await h.send(hi); // the same message as `message`
    await h.send(hi, { retryNum: 1, retryReason: "http_timeout" }); // Slack's retry
    first.resolve();
    await h.guard.onIdle();
    await h.send(hi, { retryNum: 2, retryReason: "http_timeout" }); // a retry after the turn
    const again = message(`<@${BOT_USER}> hi`); // a genuinely new message, same text
    await h.send(again);
    await h.guard.onIdle();

    expect(h.log).toEqual([`app_mention <@${BOT_USER}> hi`, `message <@${BOT_USER}> hi`]);
    expect(h.api.posts()).toEqual([
      `C1/${hi.event.ts}: answer ${hi.event.ts}`,
      `C1/${again.event.ts}: answer ${again.event.ts}`,
    ]);
    expect(h.drops.map((d) => [d.reason, d.id, d.key])).toEqual([
      ["duplicate", idOf(hi), keyOf(hi)],
      ["duplicate", idOf(hi), keyOf(hi)],
      ["duplicate", idOf(hi), keyOf(hi)],
    ]);
  });

  it("de-duplicates on channel:ts across installations: a Slack Connect message runs once on a shared guard", async () => {
    const { drops, onDrop } = dropRecorder<SlackInput>();
    const core = createGuard<SlackInput>({ onDrop });
    const ran: string[] = [];
    const install = (team: string) => {
      const api = recordWebApi();
      const app = offlineApp<Ctx>(api, quietLogger());
      const guard = slackGuard({ guard: core as Guard<unknown> });
      opened.push(guard);
      app.use(guard);
      app.message(async ({ context }) => {
        if (context.turn !== undefined) ran.push(`${team} ${context.turn.key}`);
      });
      return { app, guard };
    };
    const one = install("T1");
    const two = install("T2");
    const shared = message("hello both", { channel: "C9", team: "T1" });
    await deliver(one.app, shared).done;
    await deliver(two.app, forTeam(shared, "T2")).done;
    await core.onIdle();
    expect(ran).toEqual([`T1 ${key("C9", shared.event.ts, "T1")}`]);
    expect(drops.map((d) => [d.reason, d.id, d.key])).toEqual([
      ["duplicate", idOf(shared), key("C9", shared.event.ts, "T2")],
    ]);
    expect(one.guard.guard).toBe(core);
    expect(two.guard.guard).toBe(core);
  });
});

describe("slackGuard: acknowledgement", () => {
  it("acknowledges a queued slash command exactly once, while the previous turn runs; its listener sees context.acknowledged", async () => {
    const h = harness();
    const gate = gates();
    gate.add("one");
    h.app.command("/ask", async ({ command: c, ack, respond, context }) => {
      h.log.push(`listener ${c.text} acknowledged=${context.acknowledged}`);
      if (!context.acknowledged) await ack(`on it: ${c.text}`);
      await gate.wait(c.text);
      await respond(`answer ${c.text} (${context.turn?.inputs.length} input)`);
      h.log.push(`end ${c.text}`);
    });

    const one = await h.send(command("/ask", "one"), { label: "one" });
    const two = await h.send(command("/ask", "two"), { label: "two" });
    const three = await h.send(command("/ask", "three"), { label: "three" });
    // Both queued commands were answered before their processEvent resolved, while "one" runs.
    expect(h.log).toEqual([
      "listener one acknowledged=false",
      'response one: 200 "on it: one"',
      'response two: 200 ""',
      'response three: 200 ""',
    ]);
    expect(one.acks).toEqual(["on it: one"]);
    expect(two.acks).toEqual([undefined]);
    expect(three.acks).toEqual([undefined]);
    expect(h.guard.pendingCount(key("C1"))).toBe(2);

    gate.open("one");
    await h.guard.onIdle();
    // Each command is a turn of its own (never coalesced), and nobody acknowledged twice.
    expect(h.log).toEqual([
      "listener one acknowledged=false",
      'response one: 200 "on it: one"',
      'response two: 200 ""',
      'response three: 200 ""',
      "end one",
      "listener two acknowledged=true",
      "end two",
      "listener three acknowledged=true",
      "end three",
    ]);
    expect([one.acks, two.acks, three.acks]).toEqual([["on it: one"], [undefined], [undefined]]);
    expect(h.api.responses()).toEqual([
      "answer one (1 input)",
      "answer two (1 input)",
      "answer three (1 input)",
    ]);
    expect(h.errors).toEqual([]);
    expect(h.boltLog).toEqual([]);
  });

  it("never acknowledges what it passes on: a command run at once, a stop command, a block action", async () => {
    const h = harness();
    h.app.command("/ask", async ({ ack, context }) => {
      h.log.push(`ask acknowledged=${context.acknowledged}`);
      if (!context.acknowledged) await ack("thinking…");
    });
    h.app.command("/stop", async ({ ack, context }) => {
      h.log.push(`stop acknowledged=${context.acknowledged}`);
      if (!context.acknowledged) await ack("Stopped.");
    });
    h.app.action("approve", async ({ ack, context }) => {
      h.log.push(`action acknowledged=${context.acknowledged}`);
      if (!context.acknowledged) await ack();
    });
    const ask = await h.send(command("/ask", "idle channel"), { label: "ask" });
    await h.guard.onIdle();
    const stop = await h.send(command("/stop"), { label: "stop" });
    const action = await h.send(blockAction("approve", "yes", { ts: "1800000000.000009" }), {
      label: "action",
    });
    expect(h.log).toEqual([
      "ask acknowledged=false",
      'response ask: 200 "thinking…"',
      "stop acknowledged=false",
      'response stop: 200 "Stopped."',
      "action acknowledged=false",
      'response action: 200 ""',
    ]);
    expect([ask.acks, stop.acks, action.acks]).toEqual([["thinking…"], ["Stopped."], [undefined]]);
    expect(h.boltLog).toEqual([]);
  });

  it("a listener that acks a guard-acknowledged command again hits ReceiverMultipleAckError (why the two-line pattern exists)", async () => {
    const h = harness();
    const first = deferred();
    h.app.command("/ask", async ({ command: c, ack }) => {
      await ack(); // without `if (!context.acknowledged)`
      if (c.text === "one") await first.promise;
    });
    await h.send(command("/ask", "one"));
    const queued = await h.send(command("/ask", "two"));
    first.resolve();
    await h.guard.onIdle();
    expect(queued.acks).toEqual([undefined, undefined]);
    expect(h.errors.map((e) => [e.error instanceof ReceiverMultipleAckError, e.info.key])).toEqual([
      [true, key("C1")],
    ]);
  });

  it("a command still waiting when its response_url expires (30 min) is dropped as expired, never run", async () => {
    const h = harness();
    const first = deferred();
    h.app.command("/ask", async ({ command: c, ack, context }) => {
      h.log.push(`listener ${c.text}`);
      if (!context.acknowledged) await ack();
      if (c.text === "one") await first.promise;
    });
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      await h.send(command("/ask", "one"));
      await h.send(command("/ask", "two"));
      vi.setSystemTime(Date.now() + 30 * 60_000);
      first.resolve();
      await h.guard.onIdle();
    } finally {
      vi.useRealTimers();
    }
    expect(h.log).toEqual(["listener one"]);
    expect(h.drops.map((d) => [d.reason, textOf(d.input)])).toEqual([["expired", "two"]]);
  });

  it("acknowledges a command it drops (reject mode), and its listener never runs", async () => {
    const h = harness({ mode: "reject" });
    const first = deferred();
    h.app.command("/ask", async ({ command: c, ack, context }) => {
      h.log.push(`listener ${c.text}`);
      if (!context.acknowledged) await ack();
      await first.promise;
    });
    const one = await h.send(command("/ask", "one"), { label: "one" });
    const busy = await h.send(command("/ask", "busy"), { label: "busy" });
    expect(h.log).toEqual(["listener one", 'response one: 200 ""', 'response busy: 200 ""']);
    expect([one.acks, busy.acks]).toEqual([[undefined], [undefined]]);
    expect(h.drops.map((d) => [d.reason, textOf(d.input)])).toEqual([["busy", "busy"]]);
    first.resolve();
    await h.guard.onIdle();
    expect(h.log).toEqual(["listener one", 'response one: 200 ""', 'response busy: 200 ""']);
  });

  it("onQueued tells the user after the acknowledgement, with the pending count", async () => {
    const first = deferred();
    const h = harness({
      onQueued: async ({ key: k, pending, input, client, respond }) => {
        h.log.push(`queued ${textOf(input)} on ${k}, ${pending} pending`);
        if ("command" in input) await respond?.("You're next.");
        else
          await client.reactions.add({
            channel: input.channel,
            timestamp: input.ts,
            name: "hourglass",
          });
      },
    });
    h.app.message(async ({ context }) => {
      if (context.turn?.inputs[0] && textOf(context.turn.inputs[0]) === "first")
        await first.promise;
    });
    h.app.command("/ask", async ({ ack, context }) => {
      if (!context.acknowledged) await ack();
    });
    const dm = message("first", { channel: "D1" });
    await h.send(dm);
    const queued = message("second", { channel: "D1" });
    await h.send(queued, { label: "second" });
    await h.send(command("/ask", "third", { channel: "D1" }), { label: "third" });
    await settle();
    expect(h.log).toEqual([
      'response second: 200 ""', // Bolt acknowledged the event before the middleware ran
      `queued second on ${key("D1")}, 1 pending`,
      'response third: 200 ""',
      `queued third on ${key("D1")}, 2 pending`,
    ]);
    expect(h.api.calls.map((c) => [c.method, c.params.name ?? c.params.text])).toEqual([
      ["reactions.add", "hourglass"],
      ["response_url", "You're next."],
    ]);
    first.resolve();
    await h.guard.onIdle();
    expect(h.errors).toEqual([]);
  });
});

describe("slackGuard: bypass", () => {
  it("edits, deletions, bot messages and other events pass through beside a busy turn, without a turn", async () => {
    const h = harness();
    const first = deferred();
    h.app.message(async ({ message: m, context }) => {
      const subtype = (m as { subtype?: string }).subtype ?? "user";
      h.log.push(`message ${subtype} ${context.turn === undefined ? "no turn" : "turn"}`);
      if (context.turn !== undefined) await first.promise;
    });
    h.app.event("reaction_added", async ({ context }) => {
      h.log.push(`reaction ${context.turn === undefined ? "no turn" : "turn"}`);
    });
    const m = message("hello");
    await h.send(m);
    await settle();
    await h.send(editOf(m, "hello, edited"));
    await h.send(deletionOf(m));
    await h.send(botMessage("beep", { thread: m.event.ts }));
    await h.send(message("<@U2> has joined the channel", { extra: { subtype: "channel_join" } }));
    await h.send(reactionTo(m));
    await settle();
    expect(h.log).toEqual([
      "message user turn",
      "message message_changed no turn",
      "message message_deleted no turn",
      "message user no turn", // another bot's message: passes, no turn
      "message channel_join no turn",
      "reaction no turn",
    ]);
    expect(h.guard.pendingCount(keyOf(m))).toBe(0);
    first.resolve();
    await h.guard.onIdle();
    expect(h.drops).toEqual([]);
  });
});

describe("slackGuard: stop", () => {
  it("the stop text in a thread stops that thread's turn and drops its pending input, then reaches listeners", async () => {
    const h = harness();
    const reasons: string[] = [];
    h.app.message(async ({ message: m, context }) => {
      const turn = context.turn;
      const text = textOf(m as { text?: string });
      if (turn === undefined) {
        h.log.push(`no turn: ${JSON.stringify(text)}`);
        return;
      }
      h.log.push(`start ${text}`);
      reasons.push(`${text}: ${await aborted(turn.signal)}`);
    });
    const a = message("long task a");
    const b = message("long task b");
    await h.send(a);
    await h.send(b);
    const pendingA = message("more for a", { thread: a.event.ts });
    await h.send(pendingA);
    await h.send(message("  Stop ", { thread: a.event.ts }));
    await settle();
    expect(reasons).toEqual(["long task a: stopped"]);
    expect(h.log).toEqual(["start long task a", "start long task b", 'no turn: "  Stop "']);
    expect(h.drops.map((d) => [d.reason, d.id])).toEqual([["stopped", idOf(pendingA)]]);
    expect(h.guard.isBusy(keyOf(a))).toBe(false);
    expect(h.guard.isBusy(keyOf(b))).toBe(true); // the other thread runs on

    // "@app stop" arrives as app_mention and as message: it stops once and is answered once.
    await h.send(
      mentionOf(message(`<@${BOT_USER}> stop`, { thread: b.event.ts, ts: "1750000000.000001" })),
    );
    await h.send(message(`<@${BOT_USER}> stop`, { thread: b.event.ts, ts: "1750000000.000001" }));
    await settle();
    expect(reasons).toEqual(["long task a: stopped", "long task b: stopped"]);
    expect(h.log).toEqual(["start long task a", "start long task b", 'no turn: "  Stop "']);
    expect(h.drops.map((d) => [d.reason, d.id])).toEqual([
      ["stopped", idOf(pendingA)],
      ["duplicate", "slack:C1:1750000000.000001"],
    ]);
    expect(h.guard.activeCount).toBe(0);
  });

  it("a stop slash command stops every turn of its channel, threads included, and not other channels", async () => {
    const h = harness();
    const reasons: string[] = [];
    const run = async (name: string, signal: AbortSignal) => {
      h.log.push(`start ${name}`);
      reasons.push(`${name}: ${await aborted(signal)}`);
    };
    h.app.message(async ({ message: m, context }) => {
      if (context.turn !== undefined)
        await run(textOf(m as { text?: string }), context.turn.signal);
    });
    h.app.command("/ask", async ({ command: c, ack, context }) => {
      if (!context.acknowledged) await ack();
      if (context.turn !== undefined) await run(`/ask ${c.text}`, context.turn.signal);
    });
    h.app.command("/stop", async ({ ack, context }) => {
      h.log.push(`/stop acknowledged=${context.acknowledged}`);
      if (!context.acknowledged) await ack("Stopped everything here.");
    });
    const a = message("thread a");
    const b = message("thread b");
    const other = message("other channel", { channel: "C2" });
    for (const body of [a, b, other]) await h.send(body);
    await h.send(command("/ask", "channel-wide"));
    const waiting = message("more for a", { thread: a.event.ts });
    await h.send(waiting);
    await settle();
    expect(h.guard.activeCount).toBe(4);

    const stop = await h.send(command("/stop"), { label: "stop" });
    await settle();
    expect(reasons.sort()).toEqual([
      "/ask channel-wide: stopped",
      "thread a: stopped",
      "thread b: stopped",
    ]);
    expect(h.log).toEqual([
      "start thread a",
      "start thread b",
      "start other channel",
      "start /ask channel-wide",
      "/stop acknowledged=false",
      'response stop: 200 "Stopped everything here."',
    ]);
    expect(stop.acks).toEqual(["Stopped everything here."]);
    expect(h.drops.map((d) => [d.reason, d.id])).toEqual([["stopped", idOf(waiting)]]);
    expect(h.guard.isBusy(keyOf(other))).toBe(true);
    expect(h.guard.activeCount).toBe(1);
  });
});

describe("slackGuard: errors, transport and shutdown", () => {
  it("a throwing listener reaches onError with the key and payloads, and the thread is free again", async () => {
    const h = harness();
    const boom = new Error("boom");
    const first = deferred();
    h.app.message(async ({ message: m, context }) => {
      if (context.turn === undefined) return;
      const text = textOf(m as { text?: string });
      h.log.push(text);
      if (text === "explode") {
        await first.promise;
        throw boom;
      }
    });
    const explode = message("explode");
    await h.send(explode); // detached: resolves although the turn will fail
    await h.send(message("after", { thread: explode.event.ts }));
    first.resolve();
    await h.guard.onIdle();
    expect(h.log).toEqual(["explode", "after"]);
    expect(h.errors.map((e) => [e.error, e.info.key, e.info.inputs.map(textOf)])).toEqual([
      [boom, keyOf(explode), ["explode"]],
    ]);
    expect(h.guard.isBusy(keyOf(explode))).toBe(false);
    expect(h.boltLog).toEqual([]); // detached: Bolt's error handler never saw it

    await h.send(message("later", { thread: explode.event.ts }));
    await h.guard.onIdle();
    expect(h.log).toEqual(["explode", "after", "later"]);
    expect(h.errors).toHaveLength(1);
  });

  it("by default a failed turn is one log line with the key and the message ts", async () => {
    const api = recordWebApi();
    const app = offlineApp<Ctx>(api, quietLogger());
    const guard = slackGuard();
    opened.push(guard);
    app.use(guard);
    const boom = new Error("boom");
    app.message(async () => {
      throw boom;
    });
    const lines: unknown[][] = [];
    vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => void lines.push(args));
    const m = message("x");
    await deliver(app, m).done;
    await guard.onIdle();
    await macrotask();
    expect(lines).toHaveLength(1);
    expect(lines[0]?.[0]).toBe(
      `session-guard/slack: the turn for key "${keyOf(m)}" (ts ${m.event.ts}) failed:`,
    );
    expect(lines[0]?.[1]).toBe(boom);
  });

  it("processEvent resolves and Slack gets its response before the turn finishes, even with processBeforeResponse", async () => {
    const h = harness({}, { processBeforeResponse: true });
    const turns: string[] = [];
    const gate = gates();
    gate.add("slow", "/ask slow");
    h.app.message(async ({ message: m, context }) => {
      if (context.turn === undefined) return;
      const text = textOf(m as { text?: string });
      turns.push(`start ${text}`);
      await gate.wait(text);
      turns.push(`end ${text}`);
    });
    h.app.command("/ask", async ({ command: c, ack, context }) => {
      // First, before any await: with processBeforeResponse the response leaves when
      // processEvent resolves, which a detached turn does not hold up.
      if (!context.acknowledged) await ack("working");
      turns.push(`start /ask ${c.text}`);
      await gate.wait(`/ask ${c.text}`);
      turns.push(`end /ask ${c.text}`);
    });
    await h.send(message("slow"), { label: "event" });
    h.log.push("processEvent resolved");
    const asked = await h.send(command("/ask", "slow"), { label: "command" });
    h.log.push("processEvent resolved");
    const queued = await h.send(command("/ask", "queued"), { label: "queued" });
    h.log.push("processEvent resolved");
    await settle();
    // Every response went out with its processEvent, while both turns still run.
    expect(h.log).toEqual([
      'response event: 200 ""',
      "processEvent resolved",
      'response command: 200 "working"',
      "processEvent resolved",
      'response queued: 200 ""',
      "processEvent resolved",
    ]);
    expect(turns).toEqual(["start slow", "start /ask slow"]);
    expect([asked.acks, queued.acks]).toEqual([["working"], [undefined]]);

    gate.open("slow");
    gate.open("/ask slow");
    await h.guard.onIdle();
    expect(turns).toEqual([
      "start slow",
      "start /ask slow",
      "end slow",
      "end /ask slow",
      "start /ask queued",
      "end /ask queued",
    ]);
    expect(h.boltLog).toEqual([]);
  });

  it("with awaitTurn (FaaS), processEvent waits for the turn; a failure reaches onError once, Slack gets a 500, and the retry runs", async () => {
    const h = harness({ awaitTurn: true }, { processBeforeResponse: true });
    const boom = new Error("agent down");
    let runs = 0;
    h.app.message(async ({ context, say }) => {
      if (context.turn === undefined) return;
      runs++;
      if (runs === 1) throw boom;
      await say("ok");
    });
    const m = message("flaky");
    const failed = await h.send(m, { label: "first" });
    expect(failed.status).toBe(500);
    expect(h.errors.map((e) => e.error)).toEqual([boom]);
    expect(h.boltLog.filter((line) => line.startsWith("error"))).toHaveLength(1); // app.error saw it
    // The failed turn's id was forgotten: Slack's retry runs instead of being a duplicate.
    const retry = await h.send(m, { label: "retry", retryNum: 1, retryReason: "http_error" });
    expect(retry.status).toBe(200);
    expect(runs).toBe(2);
    expect(h.api.posts()).toEqual(["C1/-: ok"]);
    // The response to the retry was sent only once its turn had settled.
    expect(h.log).toEqual(['response first: 500 ""', 'response retry: 200 ""']);
    await h.send(m, { retryNum: 2, retryReason: "http_timeout" });
    expect(runs).toBe(2);
    expect(h.drops.map((d) => d.reason)).toEqual(["duplicate"]);
  });
  it("a command that arrives after close() is acknowledged by the guard and dropped (shutdown), never run", async () => {
    const h = harness();
    h.app.command("/ask", async ({ ack, context }) => {
      h.log.push("command listener");
      if (!context.acknowledged) await ack();
    });
    await h.guard.close();
    const late = await h.send(command("/ask", "late"), { label: "late command" });
    expect(h.log).toEqual(['response late command: 200 ""']);
    expect(late.acks).toEqual([undefined]);
    expect(h.drops.map((d) => [d.reason, textOf(d.input)])).toEqual([["shutdown", "late"]]);
    expect(h.boltLog).toEqual([]);
  });
});

describe("slackGuard: options", () => {
  it("status shows an assistant status in the thread while its turn runs, cleared at the end (off by default)", async () => {
    const h = harness({ status: "is thinking…" });
    const gate = deferred();
    h.app.message(async ({ context }) => {
      if (context.turn) await gate.promise;
    });
    const first = message("hello", { channel: "D1" });
    await h.send(first);
    await h.send(message("in a thread", { channel: "D1", thread: first.event.ts }));
    // A thread of an ordinary channel is no assistant thread: Slack would refuse a status there.
    const top = message("channel top", { channel: "C1" });
    await h.send(top);
    await h.send(message("channel thread", { channel: "C1", thread: top.event.ts }));
    await settle();
    gate.resolve();
    await h.guard.onIdle();
    await settle();
    const statuses = h.api.calls.filter((c) => c.method === "assistant.threads.setStatus");
    // Only the message in a thread of the app's DM is in an assistant thread.
    expect(statuses.map((c) => [c.params.channel_id, c.params.thread_ts, c.params.status])).toEqual(
      [
        ["D1", first.event.ts, "is thinking…"],
        ["D1", first.event.ts, ""],
      ],
    );
    expect(h.errors).toEqual([]);
    expect(() => slackGuard({ status: "" })).toThrow(/"status" must be the assistant status text/);
  });

  it("with a shared guard, awaitTurn and onError are the adapter's", async () => {
    const turnErrors = errorRecorder<SlackInput>();
    const adapterErrors = errorRecorder<SlackInput>();
    const core = createGuard<SlackInput>({ onError: turnErrors.onError });
    const failingNotice = new Error("reactions down");
    const guard = slackGuard({
      guard: core as Guard<unknown>,
      awaitTurn: true,
      onError: adapterErrors.onError,
      onQueued: () => {
        throw failingNotice;
      },
    });
    opened.push(guard);
    const app = offlineApp<Ctx>(recordWebApi(), quietLogger());
    app.use(guard);
    const first = deferred();
    const order: string[] = [];
    app.message(async ({ message: m, context }) => {
      if (context.turn === undefined) return;
      order.push(`start ${textOf(m as { text?: string })}`);
      if (textOf(m as { text?: string }) === "one") await first.promise;
    });
    const one = track(deliver(app, message("one", { channel: "D1" })).done);
    await settle();
    const two = track(deliver(app, message("two", { channel: "D1" })).done);
    await settle();
    expect(order).toEqual(["start one"]);
    // awaitTurn is the adapter's: processEvent waits for the turn, although the core detaches.
    expect([one.settled, two.settled]).toEqual([false, false]);
    first.resolve();
    await Promise.all([one.promise, two.promise]);
    expect(order).toEqual(["start one", "start two"]);
    expect(adapterErrors.errors.map((e) => [e.error, e.info.key])).toEqual([
      [failingNotice, key("D1")],
    ]);
    expect(turnErrors.errors).toEqual([]);
  });

  it.each([
    ["options that are not an object", null],
    ["stopTexts as a string", { stopTexts: "stop" }],
    ["stopTexts with a number", { stopTexts: ["stop", 1] }],
    ["stopCommands with an empty name", { stopCommands: [""] }],
    ["a key that is not a function", { key: "channel" }],
    ["a bypass that is not a function", { bypass: true }],
    ["an onQueued that is not a function", { onQueued: "react" }],
    ["an awaitTurn that is not a boolean", { awaitTurn: "yes" }],
    ["a guard that is not a guard", { guard: {} }],
    ["core options next to a shared guard", { guard: createGuard(), mode: "queue" }],
    ["an unknown mode", { mode: "fifo" }],
    ["a negative maxPending", { maxPending: -1 }],
    ["an unknown option", { sequential: true }],
    ["a shared store without its app", { store: { shared: true } }],
    ["an app that is not a Bolt App", { app: {} }],
  ])("throws a TypeError for %s", (_name, options) => {
    expect(() => slackGuard(options as never)).toThrow(TypeError);
  });

  it("names the offending option in the TypeError", () => {
    expect(() => slackGuard({ stopTexts: "stop" as never })).toThrow(/stopTexts/);
    expect(() => slackGuard({ onQueued: 1 as never })).toThrow(/onQueued/);
    expect(() => slackGuard({ guard: createGuard(), mode: "queue" })).toThrow(/"mode"/);
    expect(() => slackGuard({ mode: "fifo" as never })).toThrow(/mode/);
    expect(() => slackGuard({ store: { shared: true } as never })).toThrow(/needs "app"/);
  });

  it("stopTexts and stopCommands are configurable; commands with or without the slash", async () => {
    const h = harness({ stopTexts: ["Halt"], stopCommands: ["cancel"] });
    const reasons: string[] = [];
    h.app.message(async ({ message: m, context }) => {
      const text = textOf(m as { text?: string });
      if (context.turn === undefined) return void h.log.push(`no turn: ${text}`);
      h.log.push(`turn: ${text}`);
      if (text.startsWith("work")) reasons.push(await aborted(context.turn.signal));
    });
    h.app.command("/cancel", async ({ ack }) => ack());
    const dm = message("work 1", { channel: "D1" });
    await h.send(dm);
    await h.send(message("stop", { channel: "D1" })); // not a stop text any more: pending input
    await h.send(message(" HALT", { channel: "D1" }));
    await settle();
    expect(reasons).toEqual(["stopped"]);
    await h.send(message("work 2", { channel: "C5", thread: "1700000000.000001" }));
    await settle();
    await h.send(command("/cancel", "", { channel: "C5" }));
    await settle();
    expect(reasons).toEqual(["stopped", "stopped"]);
    expect(h.log).toEqual(["turn: work 1", "no turn:  HALT", "turn: work 2"]);
    expect(h.drops.map((d) => [d.reason, textOf(d.input)])).toEqual([["stopped", "stop"]]);
  });
});
