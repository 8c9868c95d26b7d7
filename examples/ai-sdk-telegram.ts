// A Telegram agent on the Vercel AI SDK, guarded by session-guard in steer mode: what you send
// while the agent works joins its next step, /stop cancels the model call, and the answer is
// streamed into one message. The recipe itself is examples/ai-sdk-agent.ts.
//
//   BOT_TOKEN=123:abc npx tsx examples/ai-sdk-telegram.ts
//   TELEGRAM_API_ROOT=http://127.0.0.1:8081 also points it at a local Bot API server.
//
// Without AI_GATEWAY_API_KEY it answers with a scripted offline model (the SDK's mock: one tool
// call, then a slow streamed answer). With it, the model is AI_MODEL (default
// "openai/gpt-5-mini") through the AI Gateway the `ai` package has built in; any other provider
// package works the same way (`model: openai("…")`).

import { type LanguageModel, simulateReadableStream, tool } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { Bot } from "grammy";
import { sessionGuard } from "session-guard/grammy";
import { z } from "zod";
import { type AgentContext, answer } from "./ai-sdk-agent.js";

const token = process.env.BOT_TOKEN;
if (!token) {
  console.error("Set BOT_TOKEN to your bot's token (from @BotFather).");
  process.exit(1);
}
const apiRoot = process.env.TELEGRAM_API_ROOT;

const tools = {
  clock: tool({
    description: "The current date and time (UTC)",
    inputSchema: z.object({}),
    execute: async () => new Date().toISOString(),
  }),
};

/** A scripted model for trying the bot offline: it reads the clock, then answers word by word. */
function offlineModel(): LanguageModel {
  const usage = {
    inputTokens: { total: 0, noCache: 0, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: 0, text: 0, reasoning: undefined },
  };
  return new MockLanguageModelV4({
    doStream: async ({ prompt }) => {
      const last = prompt.at(-1);
      if (last?.role !== "tool") {
        const input = "{}";
        return {
          stream: simulateReadableStream({
            initialDelayInMs: 1_500, // time to add a message during step 1
            chunks: [
              { type: "tool-call", toolCallId: `clock-${Date.now()}`, toolName: "clock", input },
              { type: "finish", usage, finishReason: { unified: "tool-calls", raw: undefined } },
            ],
          }),
        };
      }
      const heard = prompt
        .filter((message) => message.role === "user")
        .flatMap((message) =>
          message.content.map((part) => (part.type === "text" ? part.text : "")),
        )
        .join(" / ");
      const output = last.content[0]?.type === "tool-result" ? last.content[0].output : undefined;
      const time = output?.type === "text" ? output.value : "an unknown time";
      const words = `It is ${time}. I read: ${heard}. This is a scripted answer, streamed one word at a time so that you can send more, or /stop, while it runs.`;
      return {
        stream: simulateReadableStream({
          chunkDelayInMs: 250,
          chunks: [
            { type: "text-start", id: "answer" },
            ...words.split(" ").map((word) => ({
              type: "text-delta" as const,
              id: "answer",
              delta: `${word} `,
            })),
            { type: "text-end", id: "answer" },
            { type: "finish", usage, finishReason: { unified: "stop", raw: undefined } },
          ],
        }),
      };
    },
  });
}

const model: LanguageModel = process.env.AI_GATEWAY_API_KEY
  ? (process.env.AI_MODEL ?? "openai/gpt-5-mini")
  : offlineModel();

const bot = new Bot<AgentContext>(token, apiRoot ? { client: { apiRoot } } : {});
const guard = sessionGuard<AgentContext>({
  mode: "steer", // input sent during a turn waits for the turn's next step (or the next turn)
  onDrop: (drop) => console.log(`dropped ${drop.id} (${drop.reason})`),
});
bot.use(guard); // first, before any middleware that awaits

bot.command("start", (ctx) =>
  ctx.reply("Ask me anything. Add to it while I work; /stop stops me."),
);
bot.command("stop", (ctx) => ctx.reply("Stopped."));
bot.on("message", (ctx) =>
  answer(ctx, {
    model,
    tools,
    instructions: "You are a concise assistant in a Telegram chat. Use the clock for the time.",
  }),
);
bot.catch((error) => console.error("bot error:", error.error));

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping; running turns get up to 10 s to finish`);
  await bot.stop().catch(() => {});
  const report = await guard.close({ timeout: 10_000 });
  console.log(`closed: aborted ${report.aborted} turn(s), dropped ${report.dropped.length}`);
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

console.log(
  `model: ${typeof model === "string" ? model : "offline mock"}; Bot API: ${apiRoot ?? "https://api.telegram.org"}`,
);
bot
  .start({ onStart: (me) => console.log(`@${me.username} is running`) })
  .catch((error: unknown) => {
    if (stopping) return;
    console.error("polling failed:", error);
    process.exit(1);
  });
