// The adapter contract: what every adapter promises its bot, run once per adapter (grammY, Slack
// Bolt, discord.js) the way the store contract runs once per store. A small per-platform driver
// (test/support/<platform>-driver.ts) sends real platform input through the real, offline framework
// object (`bot.handleUpdate`, `app.processEvent`, gateway packets into a `Client`) and tells the
// contract, in platform-neutral terms, what the handlers saw. The contract decides what the turns
// do: it holds them open with deferred promises, so every concurrency claim is an invariant
// (never two turns of one chat at once, a turn still held while the other chat finishes), never a
// race won by luck.
//
// The properties, one describe each: serialization (with coalescing), stop, bypass,
// de-duplication, shutdown, and an adapter's own error. What only one platform has (acks, albums,
// forum topics, threads, token expiry, replays) stays in that adapter's own test file.

import { afterEach, describe, expect, it, vi } from "vitest";
import { deferred, macrotask, track } from "./helpers.js";

/** The two conversations of a contract test (a chat, a DM channel, a guild channel). */
export type Chat = "a" | "b";

/** One turn, as the handler saw it. */
export interface SeenTurn {
  readonly chat: Chat;
  /** The key the adapter gave the turn. */
  readonly key: string;
  /** The text of each input of the turn, in order. */
  readonly texts: readonly string[];
  /** The text of the input the handler was called with (the platform's own argument). */
  readonly latest: string;
  readonly signal: AbortSignal;
}

/** A button press (callback query, block action, component) as its handler saw it. */
export interface SeenPress {
  readonly chat: Chat;
  readonly data: string;
  /** Whether the handler got a turn with it (it must not: it bypasses the guard). */
  readonly turn: boolean;
}

/** What the contract does when a handler runs; a returned promise holds the handler open. */
export interface Hooks {
  /** A turn's handler ran. */
  turn(turn: SeenTurn): Promise<void> | void;
  /** A bypassed press reached its handler. Called before the handler answers the platform. */
  press(press: SeenPress): Promise<void> | void;
  /** Input reached a handler without a turn (a stop passed on to the stop handler). */
  passed(chat: Chat, text: string): void;
  /** A running turn heard of an edit (`text`) or a deletion (`undefined`) of one of its inputs. */
  revised?(chat: Chat, text: string | undefined): void;
}

/** One piece of input the driver delivered; `redeliver` sends it again with the same id. */
export interface Delivery {
  /** The de-duplication id the adapter gives it (its drops carry it). */
  readonly id: string;
  readonly text: string;
  /** Platform specifics the driver needs to deliver it again. */
  readonly raw: unknown;
}

/** What `create` is asked for beyond the defaults. */
export interface DriverOptions {
  /** The adapter's `awaitTurn`. */
  readonly awaitTurn?: boolean;
  /** Install a `key` function that throws for a message with this text (else the default key). */
  readonly keyThrowsOn?: string;
  /** The adapter's `reactions: true`. */
  readonly reactions?: boolean;
  /** Make every reaction call of the platform fail (a missing permission). */
  readonly failReactions?: boolean;
  /** The guard's busy mode (default collect). */
  readonly mode?: "collect" | "queue" | "reject";
}

/** The guard's methods, as every adapter's returned object carries them. */
export interface GuardView {
  isBusy(key: string): boolean;
  pendingCount(key: string): number;
  readonly activeCount: number;
  onIdle(): Promise<void>;
  close(options?: { timeout?: number }): Promise<{ aborted: number; dropped: readonly unknown[] }>;
}

/** A bot of one platform with the adapter installed, and what it recorded. */
export interface ContractBot {
  readonly guard: GuardView;
  /** The default key of a chat. */
  keyOf(chat: Chat): string;
  /**
   * A user message, through the framework. Resolves once the framework call returned (at
   * admission for a detached turn; with `awaitTurn`, once the turn is over).
   */
  send(chat: Chat, text: string): Promise<Delivery>;
  /** The platform's stop in `chat`, in one of `driver.stopForms`. */
  sendStop(chat: Chat, form: string): Promise<Delivery>;
  /** A button press in `chat` (the bypassed interaction), through the framework. */
  press(chat: Chat, data: string): Promise<Delivery>;
  /** Deliver again what was delivered (a platform retry, the same id). */
  redeliver(delivery: Delivery): Promise<void>;
  /** The user edits a delivered message to `text` (the platform's edit event). */
  edit(delivery: Delivery, text: string): Promise<void>;
  /** The user deletes a delivered message, where the platform tells bots so (else absent). */
  readonly remove?: (delivery: Delivery) => Promise<void>;
  /**
   * The platform calls of the reactions switch, in order: `react <text> <emoji>`,
   * `unreact <text>`, `notice <text>: <notice>` (a reply about the input; `?` for the text where
   * the notice names no message, as Slack's ephemeral ones).
   */
  shown(): string[];
  /** How many answers the platform got for a press (its handler answers once; the guard never). */
  answersTo(press: Delivery): Promise<number>;
  /** The text of one of this bot's inputs (as drops and reports carry them). */
  textOf(input: unknown): string;
  /** Every `queued` event, as `text:pending`. */
  readonly queued: readonly string[];
  /** Every input the guard admitted, by text. */
  readonly admitted: readonly string[];
  /** Every drop, as `[reason, text, id]`. */
  readonly drops: readonly (readonly [string, string, string | undefined])[];
  /** Every `onError` call, with the key and the text of its inputs. */
  readonly errors: readonly { readonly error: unknown; key: string; texts: string[] }[];
  /** Errors the framework saw (a rejected handleUpdate, Bolt's error log, a client 'error'). */
  readonly frameworkErrors: readonly unknown[];
  /** Let the bot go (close the guard, destroy the client). */
  dispose(): Promise<void>;
}

/** One platform: how to build a bot with the adapter installed. */
export interface AdapterDriver {
  readonly name: string;
  /** What the platform calls a button press ("callback query", "block action", "button"). */
  readonly pressName: string;
  /** Every way the platform says stop (a text, a command, a platform update). */
  readonly stopForms: readonly string[];
  /** Whether a stop goes on to the platform's handlers (without a turn) after it stopped. */
  readonly stopsPassOn: boolean;
  /** The stop forms the platform may deliver twice (with the same id). */
  readonly redeliveredStops: readonly string[];
  /**
   * Contract tests this adapter is known to fail today, by name: run as `it.fails`, so they say
   * so and turn red once the adapter is fixed (then remove the entry).
   */
  readonly knownDefects?: ReadonlySet<string>;
  create(hooks: Hooks, options?: DriverOptions): ContractBot;
}

/**
 * What a driver records of its guard, in the contract's terms: give `onError` and `onDrop` to the
 * adapter and `onQueued`/`onAdmitted` to its `queued`/`admitted` events. `textOf` reads an input.
 */
export function guardRecords(textOf: (input: unknown) => string) {
  const queued: string[] = [];
  const admitted: string[] = [];
  const drops: [string, string, string | undefined][] = [];
  const errors: { error: unknown; key: string; texts: string[] }[] = [];
  return {
    queued,
    admitted,
    drops,
    errors,
    onError: (error: unknown, info: { key: string; inputs: readonly unknown[] }) =>
      void errors.push({ error, key: info.key, texts: info.inputs.map(textOf) }),
    onDrop: (drop: { reason: string; input: unknown; id: string | undefined }) =>
      void drops.push([drop.reason, textOf(drop.input), drop.id]),
    onQueued: ({ input, pending }: { input: unknown; pending: number }) =>
      void queued.push(`${textOf(input)}:${pending}`),
    onAdmitted: ({ input }: { input: unknown }) => void admitted.push(textOf(input)),
  };
}

/**
 * The `key` option for `DriverOptions.keyThrowsOn`: a key function that throws for the input whose
 * text is `text` and gives any other input `keyFor(input)`; no option at all without `text`.
 */
export function throwingKey<A>(
  text: string | undefined,
  textOf: (input: A) => unknown,
  keyFor: (input: A) => string,
): { key?: (input: A) => string } {
  if (text === undefined) return {};
  return {
    key: (input) => {
      if (textOf(input) === text) throw new TypeError(`no key for ${text}`);
      return keyFor(input);
    },
  };
}

/** Wait until `check` holds (for framework work a few macrotasks away), at most 2 s. */
function until(check: () => boolean, what: string): Promise<void> {
  return vi.waitFor(
    () => {
      if (!check()) throw new Error(`still waiting for ${what}`);
    },
    { timeout: 2_000, interval: 2 },
  );
}

/** Turns the contract saw, and the handles it holds them open with. */
class Recorder implements Hooks {
  readonly turns: SeenTurn[] = [];
  readonly presses: SeenPress[] = [];
  readonly passes: { chat: Chat; text: string; runningAborted: boolean | undefined }[] = [];
  /** Turns running right now, per chat; the most that ever ran at once, per chat and overall. */
  readonly running = new Map<Chat, SeenTurn>();
  readonly most = { a: 0, b: 0, all: 0 };
  /** Turns whose latest text is listed here wait until the gate of that text opens. */
  readonly #gates = new Map<string, ReturnType<typeof deferred>>();
  /** Called with a press; may hold it. */
  onPress: ((press: SeenPress) => Promise<void> | void) | undefined;
  /** Run inside each turn, after its gate. */
  during: ((turn: SeenTurn) => Promise<void> | void) | undefined;
  /** Turns that ended. */
  ended = 0;

  hold(...texts: string[]): void {
    for (const text of texts) this.#gates.set(text, deferred());
  }

  open(text: string): void {
    this.#gates.get(text)?.resolve(undefined);
  }

  async turn(turn: SeenTurn): Promise<void> {
    this.turns.push(turn);
    const perChat = [...this.running.values()].filter((t) => t.chat === turn.chat).length + 1;
    this.running.set(turn.chat, turn);
    this.most[turn.chat] = Math.max(this.most[turn.chat], perChat);
    this.most.all = Math.max(this.most.all, this.running.size);
    try {
      await this.#gates.get(turn.latest)?.promise;
      await this.during?.(turn);
    } finally {
      if (this.running.get(turn.chat) === turn) this.running.delete(turn.chat);
      this.ended++;
    }
  }

  press(press: SeenPress): Promise<void> | void {
    this.presses.push(press);
    return this.onPress?.(press);
  }

  passed(chat: Chat, text: string): void {
    this.passes.push({ chat, text, runningAborted: this.running.get(chat)?.signal.aborted });
  }

  /** The inputs of every turn of `chat`, turn by turn. */
  of(chat: Chat): string[][] {
    return this.turns.filter((t) => t.chat === chat).map((t) => [...t.texts]);
  }
}

/** Resolves with a turn's abort reason once its signal aborts. */
function abortReason(signal: AbortSignal): Promise<{ name?: string; code?: string; key?: string }> {
  return new Promise((resolve) => {
    const done = () => resolve(signal.reason as { name?: string; code?: string; key?: string });
    if (signal.aborted) done();
    else signal.addEventListener("abort", done, { once: true });
  });
}

/** Resolves with the code of a turn's abort reason once its signal aborts. */
async function abortCode(signal: AbortSignal): Promise<string> {
  return String((await abortReason(signal)).code);
}

/**
 * Run the adapter contract against one adapter. Each test builds a fresh bot through
 * `driver.create` and lets it go afterwards.
 */
export function adapterContract(driver: AdapterDriver): void {
  describe(`adapter contract: ${driver.name}`, () => {
    const bots: ContractBot[] = [];
    afterEach(async () => {
      for (const bot of bots.splice(0)) await bot.dispose();
    });

    /** A fresh bot whose handlers report to a fresh recorder. */
    const setup = (options?: DriverOptions) => {
      const seen = new Recorder();
      const bot = driver.create(seen, options);
      bots.push(bot);
      return { bot, seen };
    };

    /** `it`, or `it.fails` for a contract test the driver names as a known defect. */
    const test = (name: string, body: () => Promise<void>) =>
      (driver.knownDefects?.has(name) ? it.fails : it)(name, body);

    /** What holds after every test: the framework saw no error, nothing is left running. */
    const clean = async (bot: ContractBot) => {
      await bot.guard.onIdle();
      expect(bot.frameworkErrors).toEqual([]);
      expect(bot.guard.activeCount).toBe(0);
    };

    describe("serialization: one turn per chat at a time, chats independent", () => {
      it("N messages at once to two chats: never two turns of one chat at once, every message handled once, in order", async () => {
        const { bot, seen } = setup();
        seen.during = async () => {
          for (let i = 0; i < 3; i++) await macrotask();
        };
        const texts = (chat: Chat) => Array.from({ length: 8 }, (_, i) => `${chat}${i}`);
        await Promise.all([
          ...texts("a").map((text) => bot.send("a", text)),
          ...texts("b").map((text) => bot.send("b", text)),
        ]);
        await bot.guard.onIdle();
        expect(seen.most.a).toBe(1);
        expect(seen.most.b).toBe(1);
        expect(seen.of("a").flat()).toEqual(texts("a"));
        expect(seen.of("b").flat()).toEqual(texts("b"));
        expect(seen.turns.every((t) => t.key === bot.keyOf(t.chat))).toBe(true);
        expect(bot.drops).toEqual([]);
        expect(bot.errors).toEqual([]);
        await clean(bot);
      });

      it("a chat whose turn is held does not hold another chat: its turn starts and ends meanwhile", async () => {
        const { bot, seen } = setup();
        seen.hold("a1");
        await bot.send("a", "a1");
        await until(() => seen.running.has("a"), "a1's turn");
        await bot.send("a", "a2");
        await bot.send("b", "b1");
        await until(
          () => seen.ended === 1 && !bot.guard.isBusy(bot.keyOf("b")),
          "b1's turn to end",
        );
        expect(seen.of("b")).toEqual([["b1"]]);
        expect(seen.running.get("a")?.texts).toEqual(["a1"]);
        expect(bot.guard.isBusy(bot.keyOf("a"))).toBe(true);
        expect(bot.guard.pendingCount(bot.keyOf("a"))).toBe(1);
        expect(seen.most.all).toBe(2);

        seen.open("a1");
        await bot.guard.onIdle();
        expect(seen.of("a")).toEqual([["a1"], ["a2"]]);
        await clean(bot);
      });

      it("messages sent during a turn are coalesced into one next turn, in arrival order, run with the latest", async () => {
        const { bot, seen } = setup();
        seen.hold("m1");
        await bot.send("a", "m1");
        await until(() => seen.running.has("a"), "m1's turn");
        for (const text of ["m2", "m3", "m4"]) await bot.send("a", text);
        await until(() => bot.queued.length === 3, "three queued events");
        expect(bot.queued).toEqual(["m2:1", "m3:2", "m4:3"]);
        expect(bot.guard.pendingCount(bot.keyOf("a"))).toBe(3);
        expect(seen.turns).toHaveLength(1);

        seen.open("m1");
        await bot.guard.onIdle();
        expect(seen.turns.map((t) => [t.texts, t.latest])).toEqual([
          [["m1"], "m1"],
          [["m2", "m3", "m4"], "m4"],
        ]);
        expect(bot.drops).toEqual([]);
        await clean(bot);
      });
    });

    describe("stop: aborts the running turn, drops its pending input, is never a turn", () => {
      it.each(driver.stopForms)(
        "%s aborts the chat's turn (reason stopped) and drops its pending input; the other chat runs on",
        async (form) => {
          const { bot, seen } = setup();
          const reasons: unknown[] = [];
          seen.hold("other");
          seen.during = async (turn) => {
            if (turn.latest === "work") reasons.push(await abortReason(turn.signal));
          };
          await bot.send("a", "work");
          await bot.send("b", "other");
          await until(() => seen.running.size === 2, "both turns");
          expect(bot.guard.activeCount).toBe(2);
          const more = await bot.send("a", "more");
          const again = await bot.send("a", "again");
          expect(bot.guard.pendingCount(bot.keyOf("a"))).toBe(2);

          const stop = await bot.sendStop("a", form);
          await until(() => reasons.length === 1 && !bot.guard.isBusy(bot.keyOf("a")), "the stop");
          expect(reasons).toEqual([
            expect.objectContaining({ name: "AbortError", code: "stopped", key: bot.keyOf("a") }),
          ]);
          expect(bot.drops).toEqual([
            ["stopped", "more", more.id],
            ["stopped", "again", again.id],
          ]);
          expect(bot.guard.pendingCount(bot.keyOf("a"))).toBe(0);
          // The stop itself was never admitted. Where it goes on to the stop's own handler, it
          // gets there without a turn, once the running turn was aborted (or is over).
          expect(bot.admitted).not.toContain(stop.text);
          expect(seen.turns.flatMap((t) => t.texts)).not.toContain(stop.text);
          expect(seen.passes.map((p) => [p.chat, p.text])).toEqual(
            driver.stopsPassOn ? [["a", stop.text]] : [],
          );
          expect(seen.passes.map((p) => p.runningAborted)).not.toContain(false);

          // The other chat's turn was not touched; the stopped chat serves again.
          expect(seen.running.get("b")?.signal.aborted).toBe(false);
          seen.open("other");
          await bot.send("a", "after");
          await bot.guard.onIdle();
          expect(seen.of("a")).toEqual([["work"], ["after"]]);
          expect(seen.of("b")).toEqual([["other"]]);
          expect(bot.errors).toEqual([]);
          await clean(bot);
        },
      );

      it("a stop with nothing running stops nothing and leaves the next message alone", async () => {
        const { bot, seen } = setup();
        const form = driver.stopForms[0] as string;
        await bot.sendStop("a", form);
        await bot.send("a", "hello");
        await bot.guard.onIdle();
        expect(seen.turns.map((t) => [t.texts, t.signal.aborted])).toEqual([[["hello"], false]]);
        expect(bot.drops).toEqual([]);
        await clean(bot);
      });
    });

    describe(`bypass: a ${driver.pressName} runs beside the turn, never behind it`, () => {
      it.each([false, true])(
        `a ${driver.pressName} reaches its handler while the chat's turn waits for it (awaitTurn: %s)`,
        async (awaitTurn) => {
          const { bot, seen } = setup({ awaitTurn });
          const approval = deferred<string>();
          const answers: string[] = [];
          seen.during = async (turn) => {
            if (turn.latest === "deploy?") answers.push(await approval.promise);
          };
          seen.onPress = (press) => {
            expect(bot.guard.isBusy(bot.keyOf(press.chat))).toBe(true);
            approval.resolve(press.data);
          };
          const asked = track(bot.send("a", "deploy?"));
          await until(() => seen.running.has("a"), "the turn");
          const queued = track(bot.send("a", "also this"));
          await until(() => bot.admitted.length === 2, "the second message");

          const press = await bot.press("a", "yes");
          await asked.promise;
          await queued.promise;
          await bot.guard.onIdle();
          expect(seen.presses).toEqual([{ chat: "a", data: "yes", turn: false }]);
          expect(answers).toEqual(["yes"]);
          // The press was no input: the message that waited runs next, alone.
          expect(seen.of("a")).toEqual([["deploy?"], ["also this"]]);
          expect(bot.admitted).toEqual(["deploy?", "also this"]);
          expect(await bot.answersTo(press)).toBe(1);
          expect(bot.drops).toEqual([]);
          await clean(bot);
        },
      );
    });

    describe("de-duplication: the same platform id runs once", () => {
      it("a message delivered again, while its turn runs and after it, is dropped as a duplicate", async () => {
        const { bot, seen } = setup();
        seen.hold("once");
        const once = await bot.send("a", "once");
        await until(() => seen.running.has("a"), "the turn");
        await bot.redeliver(once);
        seen.open("once");
        await bot.guard.onIdle();
        await bot.redeliver(once);
        await bot.guard.onIdle();
        expect(seen.of("a")).toEqual([["once"]]);
        expect(bot.drops).toEqual([
          ["duplicate", "once", once.id],
          ["duplicate", "once", once.id],
        ]);
        // A new message with the same text is no duplicate.
        await bot.send("a", "once");
        await bot.guard.onIdle();
        expect(seen.of("a")).toEqual([["once"], ["once"]]);
        await clean(bot);
      });

      for (const form of driver.redeliveredStops) {
        test(`a ${form} delivered again leaves the turn that started after it alone`, async () => {
          const { bot, seen } = setup();
          const codes: string[] = [];
          seen.hold("second");
          seen.during = async (turn) => {
            if (turn.latest === "first") codes.push(await abortCode(turn.signal));
          };
          await bot.send("a", "first");
          await until(() => seen.running.has("a"), "the first turn");
          const stop = await bot.sendStop("a", form);
          await until(() => codes.length === 1, "the stop");
          await bot.send("a", "second");
          await until(() => seen.running.get("a")?.latest === "second", "the second turn");
          await bot.redeliver(stop);
          for (let i = 0; i < 5; i++) await macrotask();
          expect(seen.running.get("a")?.signal.aborted).toBe(false);
          seen.open("second");
          await bot.guard.onIdle();
          expect(seen.of("a")).toEqual([["first"], ["second"]]);
          await clean(bot);
        });
      }
    });

    describe("shutdown: close() lets the running turn finish, then refuses input", () => {
      it("close() waits for the running turn, refuses input meanwhile (in its report) and after, and lets the turn finish", async () => {
        const { bot, seen } = setup();
        seen.hold("working");
        await bot.send("a", "working");
        await until(() => seen.running.has("a"), "the turn");
        const closing = track(bot.guard.close());
        for (let i = 0; i < 5; i++) await macrotask();
        expect(closing.settled).toBe(false);
        const during = await bot.send("a", "while closing");

        seen.open("working");
        const report = await closing.promise;
        expect(seen.turns.map((t) => [t.texts, t.signal.aborted])).toEqual([[["working"], false]]);
        expect(report.aborted).toBe(0);
        expect(report.dropped.map((d) => bot.textOf((d as { input: unknown }).input))).toEqual([
          "while closing",
        ]);
        const late = await bot.send("b", "late");
        await macrotask();
        expect(seen.turns).toHaveLength(1);
        expect(bot.drops).toEqual([
          ["shutdown", "while closing", during.id],
          ["shutdown", "late", late.id],
        ]);
        await clean(bot);
      });

      it("close({ timeout }) aborts a turn that outlives it (reason shutdown) and counts it", async () => {
        const { bot, seen } = setup();
        const codes: string[] = [];
        seen.during = async (turn) => void codes.push(await abortCode(turn.signal));
        await bot.send("a", "endless");
        await until(() => seen.running.has("a"), "the turn");
        const report = await bot.guard.close({ timeout: 10 });
        await until(() => codes.length === 1, "the abort");
        expect(report).toEqual({ aborted: 1, dropped: [] });
        expect(codes).toEqual(["shutdown"]);
        await clean(bot);
      });
    });

    describe("an adapter's own error: onError, the input is not run, the bot keeps serving", () => {
      it("a throwing key function reports the input to onError; the framework sees no error; the chat serves on", async () => {
        const { bot, seen } = setup({ keyThrowsOn: "boom" });
        await bot.send("a", "boom");
        await bot.send("a", "fine");
        await bot.guard.onIdle();
        expect(seen.turns.map((t) => t.texts)).toEqual([["fine"]]);
        expect(bot.errors).toEqual([{ error: expect.any(Error), key: "", texts: ["boom"] }]);
        expect(bot.admitted).toEqual(["fine"]);
        expect(bot.drops).toEqual([]);
        await clean(bot);
      });
    });
  });
}
