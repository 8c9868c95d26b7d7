// The AI SDK recipe (examples/ai-sdk-agent.ts) under a real guard: a real offline grammY bot with
// `sessionGuard`, the recipe as its handler, and the SDK's own mock language model (no network, no
// key). What the model received is read from the mock's recorded calls.

import { tool } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import type { Mode, TurnAbortedError } from "session-guard";
import { sessionGuard } from "session-guard/grammy";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { type Agent, type AgentContext, answer } from "../examples/ai-sdk-agent.js";
import {
  commandUpdate,
  offlineBot,
  privateChat,
  recordApi,
  textUpdate,
} from "./support/grammy-fixtures.js";
import { deferred } from "./support/helpers.js";

// The model interface's types, from the mock (so the test depends on `ai` only, not its deps).
type LanguageModelV4CallOptions = Parameters<MockLanguageModelV4["doStream"]>[0];
type LanguageModelV4StreamPart =
  Awaited<ReturnType<MockLanguageModelV4["doStream"]>>["stream"] extends ReadableStream<infer P>
    ? P
    : never;

const usage = {
  inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 5, text: 5, reasoning: undefined },
};
const finish = (unified: "stop" | "tool-calls"): LanguageModelV4StreamPart => ({
  type: "finish",
  usage,
  finishReason: { unified, raw: unified },
});
const text = (id: string, words: string): LanguageModelV4StreamPart[] => [
  { type: "text-start", id },
  { type: "text-delta", id, delta: words },
  { type: "text-end", id },
];

/**
 * A model stream: `parts` at once, then either the end or, with `hang`, nothing more until the
 * call's abort signal fires, when it fails with the signal's reason (as a provider's fetch does).
 */
function modelStream(
  options: LanguageModelV4CallOptions,
  parts: LanguageModelV4StreamPart[],
  hang = false,
): { stream: ReadableStream<LanguageModelV4StreamPart> } {
  return {
    stream: new ReadableStream({
      start(controller) {
        controller.enqueue({ type: "stream-start", warnings: [] });
        for (const part of parts) controller.enqueue(part);
        if (!hang) {
          controller.close();
          return;
        }
        const signal = options.abortSignal;
        signal?.addEventListener("abort", () => controller.error(signal.reason), { once: true });
      },
    }),
  };
}

/** The texts of the user messages in a prompt the model received, in order. */
function userTexts(options: LanguageModelV4CallOptions | undefined): string[] {
  return (options?.prompt ?? [])
    .filter((message) => message.role === "user")
    .flatMap((message) => message.content.map((part) => (part.type === "text" ? part.text : "")));
}

/** A real offline bot running the recipe behind `sessionGuard` in `mode`. */
function agentBot(mode: Mode, agent: Agent) {
  const bot = offlineBot<AgentContext>();
  let messageIds = 0;
  const waiting: { text: string; shown: () => void }[] = [];
  // Sent messages are numbered 1, 2, … in the order the bot sends them.
  const api = recordApi(bot, (call) => {
    for (const wait of waiting) if (call.payload.text === wait.text) wait.shown();
    return call.method === "sendMessage"
      ? { message_id: ++messageIds, date: 0, chat: privateChat(1), text: call.payload.text }
      : undefined;
  });
  /** Resolves once the bot sent or edited a message to show exactly `text`. */
  const showing = (text: string): Promise<void> =>
    new Promise((resolve) => void waiting.push({ text, shown: resolve }));
  const errors: unknown[] = [];
  const guard = sessionGuard<AgentContext>({ mode, onError: (error) => void errors.push(error) });
  bot.use(guard);
  bot.command("stop", (ctx) => ctx.reply("Stopped."));
  bot.on("message", (ctx) => answer(ctx, agent));
  /** What the `n`-th message the bot sent showed, oldest first: its text, then every edit. */
  const shown = (n: number): string[] => {
    const sent = api.calls.filter((c) => c.method === "sendMessage")[n - 1];
    const edits = api.calls.filter(
      (c) => c.method === "editMessageText" && c.payload.message_id === n,
    );
    return [sent, ...edits].map((c) => c?.payload.text as string);
  };
  const sent = () => api.calls.filter((c) => c.method === "sendMessage").length;
  return { bot, guard, errors, shown, sent, showing };
}

let dispose: (() => Promise<unknown>) | undefined;
afterEach(async () => {
  await dispose?.();
  dispose = undefined;
});

describe("AI SDK recipe: streamText with turn.signal, steering through prepareStep", () => {
  it("steer: a message sent while step 1 runs its tool is in the prompt of step 2", async () => {
    const toolStarted = deferred();
    const toolGate = deferred();
    const model: MockLanguageModelV4 = new MockLanguageModelV4({
      doStream: async (options) =>
        model.doStreamCalls.length === 1
          ? modelStream(options, [
              ...text("t1", "Let me look that up."),
              {
                type: "tool-call",
                toolCallId: "call-1",
                toolName: "weather",
                input: JSON.stringify({ city: "Paris" }),
              },
              finish("tool-calls"),
            ])
          : modelStream(options, [...text("t2", "Sunny in Paris, Texas."), finish("stop")]),
    });
    const weather = tool({
      description: "The weather in a city",
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => {
        toolStarted.resolve();
        await toolGate.promise;
        return `sunny in ${city}`;
      },
    });
    const { bot, guard, errors, shown, sent } = agentBot("steer", { model, tools: { weather } });
    dispose = () => guard.close({ timeout: 0 });

    await bot.handleUpdate(textUpdate(1, "Weather in Paris?"));
    await toolStarted.promise; // step 1 is running its tool call
    await bot.handleUpdate(textUpdate(1, "I mean Paris, Texas"));
    expect(guard.pendingCount("tg:42:1")).toBe(1);
    toolGate.resolve();
    await guard.onIdle();

    expect(errors).toEqual([]);
    expect(model.doStreamCalls).toHaveLength(2); // one turn, two steps: no second turn
    expect(userTexts(model.doStreamCalls[0])).toEqual(["Weather in Paris?"]);
    expect(userTexts(model.doStreamCalls[1])).toEqual(["Weather in Paris?", "I mean Paris, Texas"]);
    // Step 2 saw the tool's result before the new message.
    const roles = model.doStreamCalls[1]?.prompt.map((m) => m.role);
    expect(roles).toEqual(["user", "assistant", "tool", "user"]);
    expect(sent()).toBe(1); // one message for the whole turn, edited as the answer grew
    expect(shown(1)[0]).toBe("…");
    expect(shown(1).at(-1)).toBe("Let me look that up.[weather…] \n\nSunny in Paris, Texas.");
  });

  it("interrupt: a new message aborts the running stream; the next turn answers it", async () => {
    const model: MockLanguageModelV4 = new MockLanguageModelV4({
      doStream: async (options) =>
        model.doStreamCalls.length > 1
          ? modelStream(options, [...text("t2", "Answering the new one."), finish("stop")])
          : modelStream(options, text("t1", "Working on the first").slice(0, 2), true),
    });
    const { bot, guard, errors, shown, sent, showing } = agentBot("interrupt", { model });
    dispose = () => guard.close({ timeout: 0 });

    await bot.handleUpdate(textUpdate(1, "first"));
    await showing("Working on the first"); // the chat shows the answer so far
    await bot.handleUpdate(textUpdate(1, "second"));
    await guard.onIdle();

    expect(errors).toEqual([]);
    expect(model.doStreamCalls).toHaveLength(2);
    const signal = model.doStreamCalls[0]?.abortSignal;
    expect(signal?.aborted).toBe(true);
    expect((signal?.reason as TurnAbortedError | undefined)?.code).toBe("superseded");
    expect(userTexts(model.doStreamCalls[1])).toEqual(["second"]);
    // One message per turn; turn 1's ends with what it wrote, marked, and is never edited again.
    expect(sent()).toBe(2);
    expect(shown(1).at(-1)).toBe("Working on the first … (interrupted: reading your new message)");
    expect(shown(2).at(-1)).toBe("Answering the new one.");
  });

  it("steer: a message sent during the last step is not lost: it becomes the next turn", async () => {
    const gate = deferred();
    const model: MockLanguageModelV4 = new MockLanguageModelV4({
      doStream: async (options) => {
        if (model.doStreamCalls.length > 1) {
          return modelStream(options, [...text("t2", "Now the follow-up."), finish("stop")]);
        }
        // The one and only step of turn 1: it finishes once the test opens the gate.
        const { stream } = modelStream(options, text("t1", "The answer."), true);
        const reader = stream.getReader();
        return {
          stream: new ReadableStream<LanguageModelV4StreamPart>({
            async pull(controller) {
              const { done, value } = await reader.read();
              if (value !== undefined) controller.enqueue(value);
              if (done || value?.type === "text-end") {
                await gate.promise;
                controller.enqueue(finish("stop"));
                controller.close();
              }
            },
          }),
        };
      },
    });
    const { bot, guard, errors, shown, sent, showing } = agentBot("steer", { model });
    dispose = () => guard.close({ timeout: 0 });

    await bot.handleUpdate(textUpdate(1, "question"));
    await showing("The answer.");
    await bot.handleUpdate(textUpdate(1, "follow-up"));
    gate.resolve();
    await guard.onIdle();

    expect(errors).toEqual([]);
    expect(model.doStreamCalls.map(userTexts)).toEqual([["question"], ["follow-up"]]);
    expect(sent()).toBe(2);
    expect(shown(1).at(-1)).toBe("The answer.");
    expect(shown(2).at(-1)).toBe("Now the follow-up.");
  });

  it("stop: /stop aborts the stream and ends the turn; its answer keeps what was written", async () => {
    const model = new MockLanguageModelV4({
      doStream: async (options) =>
        modelStream(options, text("t1", "Half an answer").slice(0, 2), true),
    });
    const { bot, guard, errors, shown, sent, showing } = agentBot("steer", { model });
    dispose = () => guard.close({ timeout: 0 });

    await bot.handleUpdate(textUpdate(1, "Write an essay"));
    await showing("Half an answer");
    await bot.handleUpdate(commandUpdate(1, "/stop"));
    await guard.onIdle();

    expect(errors).toEqual([]);
    expect(model.doStreamCalls).toHaveLength(1); // the tool loop did not go on
    const signal = model.doStreamCalls[0]?.abortSignal;
    expect((signal?.reason as TurnAbortedError | undefined)?.code).toBe("stopped");
    expect(shown(1).at(-1)).toBe("Half an answer … (stopped)");
    expect(guard.isBusy("tg:42:1")).toBe(false);
    expect(sent()).toBe(2); // the answer and the stop command's "Stopped."
    expect(shown(2)).toEqual(["Stopped."]);
  });
});
