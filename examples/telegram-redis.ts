// The Telegram bot of examples/telegram.ts, for several replicas behind a load balancer: webhooks
// (Telegram allows one poller per bot, but any number of webhook replicas), and a Redis store, so
// one chat still runs one turn at a time across every replica. Run two and send them traffic:
//
//   BOT_TOKEN=123:abc PORT=8081 npx tsx examples/telegram-redis.ts
//   BOT_TOKEN=123:abc PORT=8082 npx tsx examples/telegram-redis.ts
//
// REDIS_URL (default redis://127.0.0.1:6379) picks the Redis; REDIS_CLIENT=ioredis uses ioredis
// instead of node-redis. WEBHOOK_URL, when set, is registered with Telegram at start.
// TELEGRAM_API_ROOT=http://127.0.0.1:8081 points it at a local Bot API server.

import { createServer } from "node:http";
import { Bot, type Context, webhookCallback } from "grammy";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { sessionGuard, type TurnFlavor } from "session-guard/grammy";
import { redisStore } from "session-guard/redis";

type MyContext = TurnFlavor<Context>;

const token = process.env.BOT_TOKEN;
if (!token) {
  console.error("Set BOT_TOKEN to your bot's token (from @BotFather).");
  process.exit(1);
}
const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const port = Number(process.env.PORT ?? 8080);
const apiRoot = process.env.TELEGRAM_API_ROOT;

const bot = new Bot<MyContext>(token, apiRoot ? { client: { apiRoot } } : {});
// The client as created: the store opens its own connections from it.
const client = process.env.REDIS_CLIENT === "ioredis" ? new Redis(url) : createClient({ url });
const store = redisStore({ client, prefix: "sg:example:", lease: 30_000 });
const guard = sessionGuard<MyContext>({
  store,
  bot, // updates admitted on another replica run here through bot.handleUpdate
  mode: "collect",
  reactions: true, // 👀 on waiting messages, taken off by whichever replica runs their turn
  onDrop: (drop) => console.log(`dropped ${drop.id} (${drop.reason})`),
});
bot.use(guard);

bot.command("stop", (ctx) => ctx.reply("Stopped.")); // stops the chat's turn on whichever replica
bot.on("message", async (ctx) => {
  const { turn } = ctx;
  const prompt = turn.inputs.map((c) => c.msg?.text ?? c.msg?.caption ?? "[media]").join("\n");
  // A stand-in agent: think for a while, unless stopped, interrupted or the lease is lost.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 5_000);
    turn.signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  if (turn.signal.aborted) return;
  // turn.fence grows with every claim of the chat, on every replica: store it with what the turn
  // writes and refuse writes with a lower one (see the README).
  await ctx.reply(`(replica :${port}, fence ${turn.fence}) You said: ${prompt}`, {}, turn.signal);
});

bot.catch((error) => console.error("bot error:", error.error));

// Shut down on Ctrl-C or SIGTERM, whatever the network does: stop taking updates, hand this
// replica's chats over (running turns get up to 10 s), close the store, exit 0.
let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping — no new updates; running turns get up to 10 s to finish`);
  server?.close(); // stop taking updates
  const report = await guard.close({ timeout: 10_000 }); // hands this replica's chats over
  console.log(`closed: aborted ${report.aborted} turn(s); closing the Redis connections…`);
  await store.close().catch((error: unknown) => console.log(`(store: ${String(error)})`));
  if (client instanceof Redis) client.disconnect();
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

let server: ReturnType<typeof createServer> | undefined;
console.log(`connecting to the Bot API at ${apiRoot ?? "https://api.telegram.org"} (getMe)…`);
await bot.init(); // handleUpdate needs the bot's info
if (process.env.WEBHOOK_URL) await bot.api.setWebhook(process.env.WEBHOOK_URL);
// A StoreError (Redis down) makes the callback answer 500, so Telegram redelivers the update.
server = createServer(webhookCallback(bot, "http")).listen(port, () =>
  console.log(`@${bot.botInfo.username} serving webhooks on :${port} (Redis at ${url})`),
);
