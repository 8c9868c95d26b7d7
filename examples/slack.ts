// A complete Slack app guarded by session-guard: one agent turn per thread, replies sent while the
// agent thinks are collected into the next turn, "stop" in a thread stops that thread's turn, /stop
// stops every turn of a channel, and shutdown waits for running turns.
//
//   SLACK_BOT_TOKEN=xoxb-… SLACK_APP_TOKEN=xapp-… npx tsx examples/slack.ts       (Socket Mode)
//   SLACK_BOT_TOKEN=xoxb-… SLACK_SIGNING_SECRET=… npx tsx examples/slack.ts       (HTTP on $PORT, 3000)
//
// The app needs the `message.channels`, `message.im` and `app_mention` events, the `chat:write`
// and `reactions:write` scopes, and the slash commands /ask and /stop.

import { App, type webApi } from "@slack/bolt";
import {
  type SlackInput,
  type SlackTurn,
  type SlackTurnContext,
  slackGuard,
} from "session-guard/slack";

const token = process.env.SLACK_BOT_TOKEN;
const appToken = process.env.SLACK_APP_TOKEN;
const signingSecret = process.env.SLACK_SIGNING_SECRET;
const port = Number(process.env.PORT ?? 3000);
if (!token || !(appToken || signingSecret)) {
  console.error(
    "Set SLACK_BOT_TOKEN, and SLACK_APP_TOKEN for Socket Mode or SLACK_SIGNING_SECRET for HTTP.",
  );
  process.exit(1);
}

const app = new App<SlackTurnContext>(
  appToken ? { token, appToken, socketMode: true } : { token, signingSecret },
);

const guard = slackGuard({
  mode: "collect",
  // :eyes: on messages that wait, an ephemeral notice (or `respond` for /ask) when one is dropped.
  reactions: true,
  onDrop: (drop) => console.log(`dropped ${drop.id ?? drop.key} (${drop.reason})`),
});
app.use(guard); // first, before app.assistant(…) and middleware that awaits

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

/** Every input of the turn as one prompt, without the leading @mention of the app. */
function promptOf(turn: SlackTurn): string {
  return turn.inputs
    .map((input) => (input.text ?? "").replace(/^(\s*<@[^>]+>)+\s*/, ""))
    .join("\n");
}

/** Where to answer a message: its thread; a DM outside a thread is answered in the DM. */
function threadOf(input: SlackInput): string | undefined {
  if ("command" in input) return undefined;
  const dm = "channel_type" in input && input.channel_type === "im";
  return input.thread_ts ?? (dm ? undefined : input.ts);
}

/** Stream the agent's answer into one message, edited about once a second. */
async function streamAnswer(turn: SlackTurn, client: webApi.WebClient): Promise<void> {
  const latest = turn.inputs[turn.inputs.length - 1] as SlackInput;
  const channel = "command" in latest ? latest.channel_id : latest.channel;
  const thread_ts = threadOf(latest);
  const draft = await client.chat.postMessage({ channel, thread_ts, text: "…" });
  const ts = draft.ts as string;
  let text = "";
  let shown = "";
  let shownAt = Date.now();
  const show = async (next: string) => {
    if (next === shown) return;
    shown = next;
    shownAt = Date.now();
    await client.chat.update({ channel, ts, text: next });
  };
  try {
    for await (const word of agent(promptOf(turn), turn.signal)) {
      text += `${word} `;
      if (Date.now() - shownAt >= 1000) await show(text); // Slack rate-limits edits: throttle
    }
    await show(text);
  } catch (error) {
    if (!turn.signal.aborted) throw error;
    await show(`${text}… (stopped)`);
  }
}

// The same message can arrive as `message` and as `app_mention`: whichever comes first runs (the
// other is a duplicate), so both run the same agent.
app.message(async ({ context, client }) => {
  if (context.turn) await streamAnswer(context.turn, client); // no turn: an edit, a bot, "stop"
});
app.event("app_mention", async ({ context, client }) => {
  if (context.turn) await streamAnswer(context.turn, client);
});

app.command("/ask", async ({ ack, context, client }) => {
  if (!context.acknowledged) await ack(); // the guard acknowledged it if it had to wait
  if (context.turn) await streamAnswer(context.turn, client);
});
app.command("/stop", async ({ ack, context }) => {
  // The guard has stopped every turn of this channel; the answer goes to whoever typed /stop.
  if (!context.acknowledged) await ack("Stopped.");
});

app.error(async (error) => {
  console.error("bolt error:", error);
});

// Shut down on Ctrl-C or SIGTERM, whatever the network does: stop receiving events, let running
// turns finish (up to 10 s), exit 0.
let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping — no new events; running turns get up to 10 s to finish`);
  await app.stop().catch((error: unknown) => console.log(`(receiver: ${String(error)})`));
  const report = await guard.close({ timeout: 10_000 }); // let running turns finish
  console.log(
    `closed: aborted ${report.aborted} turn(s), dropped ${report.dropped.length} input(s)`,
  );
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

try {
  if (appToken) {
    console.log("connecting to Slack (Socket Mode)…");
    await app.start();
    console.log("Slack app is running (Socket Mode)");
  } else {
    await app.start(port);
    console.log(`Slack app is listening on http://localhost:${port}/slack/events`);
  }
} catch (error) {
  // A signal during start ends it quietly; anything else is a real failure to start.
  if (!stopping) {
    console.error("could not start:", error);
    process.exit(1);
  }
}
