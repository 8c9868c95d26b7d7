// Slack across replicas: two Bolt Apps (replicas of one app) with their own guards and stores on one
// Redis prefix. A payload admitted on one replica runs, when the other holds its key, in that
// replica's next turn: its request body is replayed through that replica's `app.processEvent`, so
// the listener sees the rebuilt payload, `context.turn` and `context.acknowledged` as usual.
// Requests go in the way Bolt's HTTPReceiver hands them over (slack-fixtures' `deliver`, with
// Bolt's own HTTPResponseAck), so acknowledgements are the real ones.

import type { App } from "@slack/bolt";
import type { TurnAbortedError } from "session-guard";
import { type RedisStore, redisStore } from "session-guard/redis";
import {
  type SlackGuardMiddleware,
  type SlackInput,
  type SlackTurnContext,
  slackGuard,
} from "session-guard/slack";
import { afterEach, describe, expect, it } from "vitest";
import { type Deferred, deferred, dropRecorder, errorRecorder, sleep } from "./support/helpers.js";
import {
  CLIENTS,
  cleanUp,
  eventually,
  type RedisTarget,
  redisAvailable,
  serverAvailable,
  startLocalRedis,
  testPrefix,
  useRedis,
} from "./support/redis-harness.js";
import {
  type ApiRecorder,
  command,
  type DeliverOptions,
  type Delivery,
  deliver,
  disposeDeliveries,
  type EventBody,
  mentionOf,
  message,
  offlineApp,
  quietLogger,
  recordWebApi,
  TEAM,
  textOf,
} from "./support/slack-fixtures.js";

type Ctx = SlackTurnContext & { seenBy?: string };

/** The suite's Redis (`db.target`, `db.admin`), connected before and disposed after it. */
const db = useRedis();

/** The default key of a thread (or of a channel, for slash commands). */
function key(channel: string, thread?: string): string {
  return thread === undefined ? `slack:${TEAM}:${channel}` : `slack:${TEAM}:${channel}:${thread}`;
}

describe("slackGuard with a shared store", () => {
  it("throws a TypeError naming `app` when no app is given", () => {
    const store = { shared: true } as unknown as RedisStore;
    expect(() => slackGuard({ store })).toThrow(TypeError);
    expect(() => slackGuard({ store })).toThrow(/needs "app".*slackGuard\(\{ store, app \}\)/);
  });

  it("throws a TypeError when `app` is not a Bolt App", () => {
    expect(() => slackGuard({ app: {} as never })).toThrow(/"app" must be the Bolt App/);
  });
});

describe.skipIf(!redisAvailable).each(CLIENTS)("Slack replicas with $name", (kind) => {
  let prefix: string;
  const open: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const close of open.splice(0).reverse()) await close();
    disposeDeliveries();
    await cleanUp(db.admin, prefix);
  });

  interface Turn {
    readonly by: string;
    /** The payload the listener ran with (`message` or `command`). */
    readonly text: string;
    readonly user: string;
    readonly channel: string;
    readonly inputs: string[];
    readonly fence: number;
    /** `context.acknowledged` as the listener found it. */
    readonly acknowledged: boolean | undefined;
    /** The listener's payload is the turn's latest input (the same object). */
    readonly latest: boolean;
  }

  interface Replica {
    readonly name: string;
    readonly app: App<Ctx>;
    readonly api: ApiRecorder;
    readonly guard: SlackGuardMiddleware;
    readonly turns: Turn[];
    readonly signals: AbortSignal[];
    /** Listener calls without a turn (the stop text, the stop command). */
    readonly passed: string[];
    readonly errors: ReturnType<typeof errorRecorder<SlackInput>>["errors"];
    readonly drops: ReturnType<typeof dropRecorder<SlackInput>>["drops"];
    /** Bolt's own error lines: `app.error` must never see a turn's error. */
    readonly boltLog: string[];
    /** Turns whose first input has this text wait for the deferred. */
    readonly gates: Map<string, Deferred<void>>;
    /** Listeners throw for payloads with this text. */
    readonly failing: Set<string>;
    send(body: Record<string, unknown>, options?: DeliverOptions): Promise<Delivery>;
  }

  function replica(
    name: string,
    at: RedisTarget = db.target,
    commandTimeout?: number,
    awaitTurn = false,
  ): Replica {
    const client = kind.create(at);
    const store = redisStore({
      client,
      prefix,
      lease: 500,
      ...(commandTimeout ? { commandTimeout } : {}),
    });
    const api = recordWebApi();
    const logger = quietLogger();
    const app = offlineApp<Ctx>(api, logger);
    const { errors, onError } = errorRecorder<SlackInput>();
    const { drops, onDrop } = dropRecorder<SlackInput>();
    const guard = slackGuard({ store, app, onError, onDrop, awaitTurn });
    const turns: Turn[] = [];
    const signals: AbortSignal[] = [];
    const passed: string[] = [];
    const gates = new Map<string, Deferred<void>>();
    const failing = new Set<string>();
    app.use(guard);
    // Middleware after the guard sees replayed payloads like any other.
    app.use(async ({ context, next }) => {
      context.seenBy = name;
      await next();
    });
    const record = async (
      payload: { text?: string; user?: string; user_id?: string },
      channel: string,
      context: Ctx,
    ) => {
      const turn = context.turn;
      if (turn === undefined) {
        passed.push(textOf(payload));
        return undefined;
      }
      turns.push({
        by: context.seenBy as string,
        text: textOf(payload),
        user: payload.user ?? payload.user_id ?? "",
        channel,
        inputs: turn.inputs.map(textOf),
        fence: turn.fence,
        acknowledged: context.acknowledged,
        latest: turn.inputs[turn.inputs.length - 1] === payload,
      });
      signals.push(turn.signal);
      if (failing.has(textOf(payload))) throw new Error(`failing ${textOf(payload)}`);
      await gates.get(textOf(turn.inputs[0] as SlackInput))?.promise;
      return turn;
    };
    app.message(async ({ message: m, context, say }) => {
      const event = m as { text?: string; user?: string; channel: string; ts: string };
      const turn = await record(event, event.channel, context);
      if (turn === undefined) return;
      const thread = (turn.inputs[0] as { thread_ts?: string; ts: string }).thread_ts;
      await say({ text: `done: ${turn.inputs.map(textOf).join(" + ")}`, thread_ts: thread });
    });
    app.command("/ask", async ({ ack, command: c, context, respond }) => {
      if (!context.acknowledged) await ack(`on it (${name})`);
      const turn = await record(c, c.channel_id, context);
      if (turn !== undefined) await respond(`answer: ${c.text}`);
    });
    app.command("/stop", async ({ ack, command: c, context }) => {
      if (!context.acknowledged) await ack("Stopped.");
      passed.push(c.command);
    });
    open.push(async () => {
      for (const gate of gates.values()) gate.resolve();
      await guard.close({ timeout: 1_000 });
      await store.close();
      await kind.dispose(client);
    });
    const send = async (body: Record<string, unknown>, options: DeliverOptions = {}) => {
      const delivery = deliver(app, body, options);
      await delivery.done;
      return delivery;
    };
    return {
      name,
      app,
      api,
      guard,
      turns,
      signals,
      passed,
      errors,
      drops,
      boltLog: logger.lines,
      gates,
      failing,
      send,
    };
  }

  /** A thread started by `first`, and replies in it. */
  function thread(first: EventBody) {
    return (text: string, user = "U2") =>
      message(text, { channel: first.event.channel, thread: first.event.ts, user });
  }

  it("a message admitted on B while A holds the thread runs in A's next turn, through A's app", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("one", gate);
    const one = message("one", { channel: "C1" });
    const reply = thread(one);
    const threadKey = key("C1", one.event.ts);
    await a.send(one);
    await eventually(() => a.turns.length === 1);
    const two = await b.send(reply("two"));
    const three = await b.send(reply("three"));
    expect(b.guard.pendingCount(threadKey)).toBe(2);
    // Events API payloads are acknowledged once, by Bolt at the replica that received them.
    expect([two.acks, three.acks]).toEqual([[undefined], [undefined]]);
    gate.resolve();
    await eventually(() => a.turns.length === 2, 3_000, "A's next turn");
    expect(a.turns[1]).toMatchObject({
      by: "A",
      text: "three",
      user: "U2",
      channel: "C1",
      inputs: ["two", "three"],
      acknowledged: true,
      latest: true,
    });
    expect(a.turns[1]?.fence).toBeGreaterThan(a.turns[0]?.fence as number);
    expect(b.turns).toEqual([]);
    await eventually(() => a.api.posts().length === 2);
    expect(a.api.posts()).toEqual([`C1/-: done: one`, `C1/${one.event.ts}: done: two + three`]);
    expect(b.api.posts()).toEqual([]);
    expect([a.errors, b.errors, a.boltLog, b.boltLog]).toEqual([[], [], [], []]);
  });

  it("a retried stop text delivered to the other replica does not stop a later turn (the stop is de-duplicated in Redis)", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const first = deferred();
    a.gates.set("one", first);
    const one = message("one", { channel: "C7" });
    const reply = thread(one);
    await a.send(one);
    await eventually(() => a.turns.length === 1);
    const stop = reply("stop");
    await a.send(structuredClone(stop));
    await eventually(() => (a.signals[0] as AbortSignal).aborted, 2_000, "the stop");
    first.resolve();
    await eventually(() => !a.guard.isBusy(key("C7", one.event.ts)), 2_000, "the stopped turn");
    const second = deferred();
    a.gates.set("two", second);
    await a.send(reply("two"));
    await eventually(() => a.turns.length === 2, 2_000, "the later turn");
    // Slack retries the stop (its first delivery was slow), and the load balancer sends it to B.
    await b.send(structuredClone(stop), { retryNum: 1, retryReason: "http_timeout" });
    // A stop reaches the holder by a hint or, at the latest, its next renewal (lease / 3).
    await sleep(400);
    expect((a.signals[1] as AbortSignal).aborted).toBe(false);
    second.resolve();
    await eventually(() => a.api.posts().length === 2, 2_000, "the later turn's answer");
    expect(a.api.posts()[1]).toBe(`C7/${one.event.ts}: done: two`);
  });

  it("a stop command at B stops every thread of its channel, those running at A included", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("in a thread", gate);
    a.gates.set("another thread", gate);
    const one = message("in a thread", { channel: "C8" });
    const two = message("another thread", { channel: "C8" });
    const elsewhere = message("another channel", { channel: "C9" });
    a.gates.set("another channel", gate);
    await a.send(one);
    await a.send(two);
    await a.send(elsewhere);
    await eventually(() => a.turns.length === 3);
    await b.send(command("/stop", "", { channel: "C8" }));
    await eventually(
      () => (a.signals[0] as AbortSignal).aborted && (a.signals[1] as AbortSignal).aborted,
      2_000,
      "both threads stopped",
    );
    expect(((a.signals[0] as AbortSignal).reason as TurnAbortedError).code).toBe("stopped");
    expect((a.signals[2] as AbortSignal).aborted).toBe(false);
    expect(b.passed).toEqual(["/stop"]);
    gate.resolve();
  });

  it("a command queued on B is acknowledged by B once stored, then answered from A's turn", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("first", gate);
    const first = await a.send(command("/ask", "first", { channel: "C2" }));
    await eventually(() => a.turns.length === 1);
    // It started at once on A: its listener acknowledged it, not the guard.
    expect(first.acks).toEqual(["on it (A)"]);
    const second = await b.send(command("/ask", "second", { channel: "C2", user: "U7" }));
    // Queued behind A's turn: the guard at B acknowledged it, without a body, exactly once.
    expect(second.acks).toEqual([undefined]);
    expect(second.status).toBe(200);
    expect(b.guard.pendingCount(key("C2"))).toBe(1);
    gate.resolve();
    await eventually(() => a.turns.length === 2, 3_000, "A's next turn");
    expect(a.turns[1]).toMatchObject({
      by: "A",
      text: "second",
      user: "U7",
      channel: "C2",
      inputs: ["second"],
      // The listener must not acknowledge again: B did.
      acknowledged: true,
      latest: true,
    });
    await eventually(() => a.api.responses().length === 2);
    expect(a.api.responses()).toEqual(["answer: first", "answer: second"]);
    expect(b.api.calls).toEqual([]);
    expect(second.acks).toEqual([undefined]);
    expect([a.errors, b.errors, a.boltLog, b.boltLog]).toEqual([[], [], [], []]);
  });

  it("with awaitTurn, a command queued on B is acknowledged at admission, not when its turn ends", async () => {
    prefix = testPrefix();
    const a = replica("A", db.target, undefined, true);
    const b = replica("B", db.target, undefined, true);
    const gate = deferred();
    a.gates.set("first", gate);
    const first = deliver(a.app, command("/ask", "first", { channel: "C9" }));
    await eventually(() => a.turns.length === 1);
    expect(first.acks).toEqual(["on it (A)"]);
    const second = deliver(b.app, command("/ask", "second", { channel: "C9" }));
    // B's processEvent waits (awaitTurn), but Slack has had its answer since Redis stored it.
    await eventually(() => second.acks.length === 1, 2_000, "B's acknowledgement");
    expect(second.acks).toEqual([undefined]);
    gate.resolve();
    await Promise.all([first.done, second.done]);
    await eventually(() => a.turns.length === 2, 3_000, "A's next turn");
    expect(a.turns[1]).toMatchObject({ by: "A", text: "second", acknowledged: true });
    expect(second.acks).toEqual([undefined]);
  });

  it("a command on a free key starts at once and its listener acknowledges it", async () => {
    prefix = testPrefix();
    replica("A");
    const b = replica("B");
    const delivery = await b.send(command("/ask", "hello", { channel: "C3" }));
    await eventually(() => b.turns.length === 1);
    expect(delivery.acks).toEqual(["on it (B)"]);
    expect(b.turns[0]).toMatchObject({ by: "B", text: "hello", acknowledged: false });
  });

  it("the same message delivered to both replicas runs once", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const body = message("hello", { channel: "C4" });
    await a.send(body);
    // The same message as app_mention at B (Slack sends both), and a retry of it at B.
    await b.send(mentionOf(body));
    await b.send(structuredClone(body), { retryNum: 1, retryReason: "http_timeout" });
    await eventually(() => a.turns.length === 1);
    await a.guard.onIdle();
    expect(a.turns.map((t) => t.text)).toEqual(["hello"]);
    expect(b.turns).toEqual([]);
    expect(b.drops.map((d) => [d.reason, d.id, d.key, textOf(d.input)])).toEqual([
      ["duplicate", `slack:C4:${body.event.ts}`, key("C4", body.event.ts), "hello"],
      ["duplicate", `slack:C4:${body.event.ts}`, key("C4", body.event.ts), "hello"],
    ]);
  });

  it("the stop text at B stops A's thread turn and drops its pending input", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("work", gate);
    const work = message("work", { channel: "C5" });
    const reply = thread(work);
    await a.send(work);
    await eventually(() => a.turns.length === 1);
    await b.send(reply("more"));
    const signal = a.signals[0] as AbortSignal;
    // A's turn learns of the stop at B through a hint: give A's subscription time to be up.
    await sleep(100);
    await b.send(reply("stop"));
    await eventually(() => signal.aborted, 2_000, "the stop");
    expect((signal.reason as TurnAbortedError).code).toBe("stopped");
    // The stop text reached B's listener without a turn.
    expect(b.passed).toEqual(["stop"]);
    gate.resolve();
    await a.guard.onIdle();
    expect(a.turns.map((t) => t.text)).toEqual(["work"]);
    expect(b.drops.map((d) => [d.reason, textOf(d.input)])).toEqual([["stopped", "more"]]);
  });

  it("/stop at B stops the channel's command turn running on A", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("long", gate);
    await a.send(command("/ask", "long", { channel: "C6" }));
    await eventually(() => a.turns.length === 1);
    const signal = a.signals[0] as AbortSignal;
    await sleep(100); // as above: the stop reaches A's turn through a hint
    const stop = await b.send(command("/stop", "", { channel: "C6" }));
    await eventually(() => signal.aborted, 2_000, "the stop");
    expect((signal.reason as TurnAbortedError).code).toBe("stopped");
    // The stop command is the listener's to acknowledge, as on one replica.
    expect(stop.acks).toEqual(["Stopped."]);
    expect(b.passed).toEqual(["/stop"]);
    gate.resolve();
  });

  it("a replayed turn's error goes to A's onError, never to Bolt's app.error", async () => {
    prefix = testPrefix();
    const a = replica("A");
    const b = replica("B");
    const gate = deferred();
    a.gates.set("one", gate);
    a.failing.add("boom");
    const one = message("one", { channel: "C7" });
    await a.send(one);
    await eventually(() => a.turns.length === 1);
    await b.send(thread(one)("boom"));
    gate.resolve();
    await eventually(() => a.errors.length === 1, 3_000, "the turn's error");
    expect(a.errors.map((e) => [String(e.error), e.info.key, e.info.inputs.map(textOf)])).toEqual([
      ["Error: failing boom", key("C7", one.event.ts), ["boom"]],
    ]);
    expect(a.boltLog).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it.skipIf(!serverAvailable)(
    "Redis down: a command is not acknowledged, and the error reaches Bolt",
    async () => {
      prefix = testPrefix();
      const local = await startLocalRedis();
      open.push(() => local.dispose());
      const a = replica("A", local, 300);
      await a.send(command("/ask", "before", { channel: "C8" }));
      await eventually(() => a.turns.length === 1);
      await local.stop();
      const delivery = await a.send(command("/ask", "during", { channel: "C8" }));
      // Not stored, so not acknowledged: Bolt's HTTP receiver answers 500 and Slack shows the
      // user that the command failed.
      expect(delivery.acks).toEqual([]);
      expect(delivery.status).toBe(500);
      expect(a.boltLog.some((line) => /store failed during acquireOrEnqueue/.test(line))).toBe(
        true,
      );
      expect(a.turns.map((t) => t.text)).toEqual(["before"]);
    },
    20_000,
  );
});
