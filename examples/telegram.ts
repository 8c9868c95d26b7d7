// A complete Telegram bot guarded by session-guard: one agent turn per chat, messages sent while
// the agent thinks are collected into the next turn, /stop aborts the running turn, and shutdown
// waits for running turns.
//
//   BOT_TOKEN=123:abc npx tsx examples/telegram.ts
//   TELEGRAM_API_ROOT=http://127.0.0.1:8081 also points it at a local Bot API server.

import { Bot, type Context } from "grammy";
import { sessionGuard, type TurnFlavor } from "session-guard/grammy";

type MyContext = TurnFlavor<Context>;

const token = process.env.BOT_TOKEN;
if (!token) {
  console.error("Set BOT_TOKEN to your bot's token (from @BotFather).");
  process.exit(1);
}
const apiRoot = process.env.TELEGRAM_API_ROOT;

const bot = new Bot<MyContext>(token, apiRoot ? { client: { apiRoot } } : {});
const guard = sessionGuard<MyContext>({
  mode: "collect",
  // 👀 on messages that wait, a short reply or 🤷 on those dropped; edits reach the next turn.
  reactions: true,
  onDrop: (drop) => console.log(`dropped ${drop.id} (${drop.reason})`),
});
bot.use(guard); // first, before any middleware that awaits

bot.command("start", (ctx) =>
  ctx.reply("Ask me anything. Send more while I think — I'll read it next. /stop stops me."),
);
bot.command("stop", (ctx) => ctx.reply("Stopped."));

/** A stand-in agent that streams its answer word by word and honours the signal. */
async function* agent(prompt: string, signal: AbortSignal): AsyncGenerator<string> {
  const words = `You said: ${prompt}. Here is a thoughtful answer, one word at a time.`.split(" ");
  for (const word of words) {
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, 300);
      signal.addEventListener("abort", onAbort, { once: true });
    });
    yield word;
  }
}

bot.on("message", async (ctx) => {
  const { turn } = ctx;
  const prompt = turn.inputs.map((c) => c.msg?.text ?? c.msg?.caption ?? "[media]").join("\n");
  const draft = await ctx.reply("…", {}, turn.signal);
  let text = "";
  try {
    for await (const word of agent(prompt, turn.signal)) {
      text += `${word} `;
      // Telegram rate-limits edits; a real bot would throttle these.
      await ctx.api.editMessageText(ctx.chat.id, draft.message_id, text, {}, turn.signal);
    }
    if (turn.pendingCount > 0) await ctx.reply("Reading your next messages…");
  } catch (error) {
    if (!turn.signal.aborted) throw error;
    await ctx.api.editMessageText(ctx.chat.id, draft.message_id, `${text}… (stopped)`);
  }
});

bot.catch((error) => console.error("bot error:", error.error));

// Shut down on Ctrl-C or SIGTERM, whatever the network does: stop polling (a long poll or a retry
// delay in flight is cut short), then let running turns finish, then exit 0.
let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping — no new updates; running turns get up to 10 s to finish`);
  await bot.stop().catch((error: unknown) => console.log(`(polling ended: ${String(error)})`));
  const report = await guard.close({ timeout: 10_000 }); // let running turns finish
  console.log(
    `closed: aborted ${report.aborted} turn(s), dropped ${report.dropped.length} input(s)`,
  );
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

console.log(`connecting to the Bot API at ${apiRoot ?? "https://api.telegram.org"}…`);
bot
  .start({ onStart: (me) => console.log(`@${me.username} is running`) })
  .catch((error: unknown) => {
    // Stopping cuts grammY's retry delay short ("Aborted delay"): that is not a failure.
    if (stopping) return;
    console.error("polling failed:", error);
    process.exit(1);
  });
