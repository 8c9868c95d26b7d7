// The offline demo: one realistic scene played twice through a real grammY Bot — once without a
// guard, once with `bot.use(sessionGuard({ mediaGroupSettle: 120, mode }))`, where `mode` lets a
// reply to the bot interrupt it and collects everything else — and a timeline per chat that shows
// the difference. (The album window is 120 ms instead of the default 800 ms so that the scene
// plays in a few seconds; the demo's photos arrive within it.)
//
//   npm run demo
//
// No token, no network: the bot's API calls are answered locally by a grammY transformer, and
// updates are delivered concurrently, as grammY runner or a webhook host delivers them.

import { Bot, type Context, InlineKeyboard } from "grammy";
import type { Update, UserFromGetMe } from "grammy/types";
import { sessionGuard, type TurnFlavor } from "session-guard/grammy";

/** The guard's options in this demo (a short album window), and how the banner shows them. */
const GUARD_OPTIONS = {
  mediaGroupSettle: 120,
  // A reply to the bot interrupts what it is saying; everything else is collected.
  mode: (ctx: Context) =>
    ctx.msg?.reply_to_message?.from?.id === ctx.me.id ? "interrupt" : "collect",
} as const;
const GUARDED = "sessionGuard({ mediaGroupSettle: 120, mode: replyToBot ? interrupt : collect })";

type MyContext = TurnFlavor<Context>;

const botInfo: UserFromGetMe = {
  id: 1000,
  is_bot: true,
  first_name: "Agent",
  username: "agent_bot",
  can_join_groups: true,
  can_read_all_group_messages: false,
  supports_inline_queries: false,
  can_connect_to_business: false,
  has_main_web_app: false,
  has_topics_enabled: false,
  allows_users_to_create_topics: false,
  can_manage_bots: false,
  supports_join_request_queries: false,
};

const CHATS = { 1: "Alice", 2: "Bob", 3: "Carol", 4: "Dave", 5: "Erin", 6: "Frank" } as const;
type ChatId = keyof typeof CHATS;

// === The scene: who sends what, and when (ms after the start)

type Step = {
  at: number;
  chat: ChatId;
  text?: string;
  album?: string;
  photo?: string;
  press?: true;
  /** A message to a business account the bot manages (Telegram reports deletions only there). */
  business?: true;
  /** This step edits (to `text`) or deletes the message of step number `edits`/`deletes`. */
  edits?: number;
  deletes?: number;
  /** A reply to the bot's message (Telegram's `reply_to_message`). */
  replyToBot?: true;
};
const SCENE: Step[] = [
  // Alice asks, then adds three more thoughts while the agent is still thinking.
  { at: 0, chat: 1, text: "Summarize my inbox" },
  { at: 150, chat: 1, text: "also check my calendar" },
  { at: 250, chat: 1, text: "and tomorrow's wether" },
  { at: 320, chat: 1, edits: 2, text: "and tomorrow's weather" }, // fixes the typo while waiting
  { at: 350, chat: 1, text: "thanks!" },
  // Bob sends an album: Telegram delivers it as three updates with one media_group_id.
  { at: 50, chat: 2, album: "g-1", photo: "receipt-1.jpg", text: "Add these to my expenses" },
  { at: 70, chat: 2, album: "g-1", photo: "receipt-2.jpg" },
  { at: 90, chat: 2, album: "g-1", photo: "receipt-3.jpg" },
  // Carol changes her mind.
  { at: 20, chat: 3, text: "Write a 5,000-word essay on Rome" },
  { at: 300, chat: 3, text: "/stop" },
  // Dave's agent asks for approval; he nudges it, then presses the button.
  { at: 30, chat: 4, text: "Delete my old files" },
  { at: 200, chat: 4, text: "hurry up please" },
  { at: 450, chat: 4, press: true },
  // Erin writes to a shop's business account; she deletes a message before the agent reads it.
  { at: 10, chat: 5, business: true, text: "Book a table for 7pm" },
  { at: 120, chat: 5, business: true, text: "for 2 people" },
  { at: 200, chat: 5, business: true, text: "and order the cake we talked about" },
  { at: 330, chat: 5, business: true, deletes: 15 }, // the cake was meant to be a surprise
  // Frank corrects the agent by replying to it while it writes: it is interrupted, and the next
  // turn gets what it had written so far (turn.carry) with the correction.
  { at: 40, chat: 6, text: "Draft a toast for my sister's wedding" },
  { at: 290, chat: 6, replyToBot: true, text: "make it funny, she's a comedian" },
];

// === A stand-in agent: thinks for a while, honours its AbortSignal

const THINK_MS = 500;

function think(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/**
 * Writes its answer in five steps over THINK_MS, telling `partial` what it has so far (a real
 * agent streams tokens); stops when `signal` aborts.
 */
async function agent(
  prompt: string,
  signal?: AbortSignal,
  partial?: (text: string) => void,
): Promise<string> {
  const answer = `Done: ${prompt.replaceAll("\n", " + ")}`;
  for (let step = 1; step <= 5; step++) {
    await think(THINK_MS / 5, signal);
    partial?.(answer.slice(0, Math.round((answer.length * step) / 5)));
  }
  return answer;
}

// === The run: the same bot code, with or without the guard

interface Line {
  at: number;
  chat: number;
  text: string;
}

interface RunResult {
  lines: Line[];
  turns: number;
  replies: number;
  overlaps: number;
}

async function play(guarded: boolean): Promise<RunResult> {
  const start = performance.now();
  const lines: Line[] = [];
  const log = (chat: number, text: string) =>
    lines.push({ at: Math.round(performance.now() - start), chat, text });
  let turns = 0;
  let replies = 0;
  let overlaps = 0;
  const running = new Map<number, number>();
  const approvals = new Map<number, () => void>();

  const bot = new Bot<MyContext>("demo-token", { botInfo });
  let messageId = 1;
  bot.api.config.use(async (_prev, method, payload) => {
    const p = payload as { chat_id?: number; text?: string; callback_query_id?: string };
    if (method === "sendMessage" && typeof p.chat_id === "number") {
      replies++;
      log(p.chat_id, `  bot> ${p.text}`);
    }
    const result =
      method === "sendMessage"
        ? {
            message_id: ++messageId,
            date: 0,
            chat: { id: p.chat_id, type: "private" },
            text: p.text,
          }
        : true;
    // biome-ignore lint/suspicious/noExplicitAny: the local answer stands in for every method.
    return { ok: true, result } as any;
  });

  const guard = guarded ? sessionGuard<MyContext>(GUARD_OPTIONS) : undefined;
  if (guard !== undefined) bot.use(guard);

  bot.command("stop", (ctx) => ctx.reply("Stopped."));
  bot.callbackQuery("approve", async (ctx) => {
    log(ctx.chat?.id ?? 0, "  (approval button pressed)");
    approvals.get(ctx.chat?.id ?? 0)?.();
    await ctx.answerCallbackQuery("Approved");
  });
  bot.on(["message", "business_message"], async (ctx) => {
    const chat = ctx.chat.id;
    const inputs = guard !== undefined ? ctx.turn.inputs : [ctx];
    const signal = guard !== undefined ? ctx.turn.signal : undefined;
    // Work an interrupted turn of this chat handed on (turn.carry) leads the prompt.
    const carried = guard !== undefined ? ctx.turn.carried.map((c) => `[so far: ${c.value}]`) : [];
    const prompt = [
      ...carried,
      ...inputs.map((c) => c.msg?.text ?? c.msg?.caption ?? "[photo]"),
    ].join("\n");
    const turn = ++turns;
    const already = running.get(chat) ?? 0;
    running.set(chat, already + 1);
    if (already > 0) overlaps++;
    log(
      chat,
      `  agent turn ${turn} starts with ${inputs.length} message(s)${carried.length > 0 ? " and the interrupted turn's draft" : ""}${already > 0 ? `  !! ${already} other turn(s) of this chat still running` : ""}`,
    );
    try {
      if (prompt.startsWith("Delete")) {
        await ctx.reply("Delete 120 files?", {
          reply_markup: new InlineKeyboard().text("Approve", "approve"),
        });
        await new Promise<void>((resolve) => approvals.set(chat, resolve));
      }
      const answer = await agent(prompt, signal, (text) => {
        if (guard !== undefined) ctx.turn.carry(text); // kept only if this turn is cut short
      });
      await ctx.reply(answer, {}, signal);
    } catch (error) {
      if (signal?.aborted) log(chat, `  agent turn ${turn} aborted (${signal.reason.code})`);
      else throw error;
    } finally {
      running.set(chat, (running.get(chat) ?? 1) - 1);
    }
  });

  // Deliver the scene concurrently, as grammY runner or a webhook host would.
  let updateId = 0;
  const deliveries: Promise<void>[] = [];
  await Promise.all(
    SCENE.map(
      (step) =>
        new Promise<void>((resolve) =>
          setTimeout(() => {
            const update = toUpdate(step, ++updateId, SCENE.indexOf(step) + 1);
            const who = CHATS[step.chat];
            log(
              step.chat,
              step.press
                ? `${who} presses "Approve"`
                : step.deletes !== undefined
                  ? `${who} deletes "${SCENE[step.deletes]?.text}"`
                  : step.edits !== undefined
                    ? `${who} edits her message to "${step.text}"`
                    : step.replyToBot
                      ? `${who} (replying to the bot)> ${step.text}`
                      : `${who}> ${step.photo ? `[${step.photo}] ` : ""}${step.text ?? ""}`,
            );
            deliveries.push(bot.handleUpdate(update));
            resolve();
          }, step.at),
        ),
    ),
  );
  await Promise.all(deliveries);
  if (guard !== undefined) {
    await guard.onIdle();
    await guard.close();
  } else {
    // Without a guard, the handlers still running are only visible through their replies.
    await think(THINK_MS * 3);
  }
  return { lines, turns, replies, overlaps };
}

function toUpdate(step: Step, update_id: number, message_id: number): Update {
  const chat = { id: step.chat, type: "private" as const, first_name: CHATS[step.chat] };
  const from = { id: step.chat, is_bot: false, first_name: CHATS[step.chat] };
  const base = { message_id, date: Math.floor(Date.now() / 1000), chat, from };
  if (step.deletes !== undefined) {
    const message_ids = [step.deletes + 1];
    return {
      update_id,
      deleted_business_messages: { business_connection_id: "demo-shop", chat, message_ids },
    };
  }
  if (step.edits !== undefined) {
    const edited = { ...base, message_id: step.edits + 1, text: step.text ?? "", edit_date: 1 };
    return { update_id, edited_message: edited };
  }
  if (step.business) {
    const message = { ...base, text: step.text ?? "", business_connection_id: "demo-shop" };
    return { update_id, business_message: message };
  }
  if (step.press) {
    return {
      update_id,
      callback_query: {
        id: `cb-${update_id}`,
        from,
        chat_instance: "demo",
        data: "approve",
        message: { ...base, text: "Delete 120 files?" },
      },
    };
  }
  if (step.photo !== undefined) {
    const photo = [{ file_id: step.photo, file_unique_id: step.photo, width: 1, height: 1 }];
    return {
      update_id,
      message: { ...base, photo, media_group_id: step.album, caption: step.text },
    } as Update;
  }
  const text = step.text ?? "";
  if (step.replyToBot) {
    const reply_to_message = { ...base, message_id: 1, from: botInfo, text: "Done: Draft…" };
    return { update_id, message: { ...base, text, reply_to_message } } as unknown as Update;
  }
  const entities = text.startsWith("/")
    ? [{ type: "bot_command" as const, offset: 0, length: text.split(" ")[0]?.length ?? 0 }]
    : undefined;
  return { update_id, message: { ...base, text, entities } };
}

function print(title: string, result: RunResult): void {
  console.log(`\n=== ${title} ===`);
  for (const [id, name] of Object.entries(CHATS)) {
    console.log(`\n  chat with ${name}`);
    for (const line of result.lines.filter((l) => l.chat === Number(id))) {
      console.log(`  ${String(line.at).padStart(5)} ms  ${line.text}`);
    }
  }
  console.log(
    `\n  ${result.turns} agent turns, ${result.replies} replies, ${result.overlaps} turn(s) started while another turn of the same chat was running`,
  );
}

const without = await play(false);
print("Without a guard: every update runs the agent at once", without);
const withGuard = await play(true);
print(`With bot.use(${GUARDED}): one turn per chat, pending input coalesced`, withGuard);

console.log(`
Summary
  without guard: ${without.turns} agent turns, ${without.overlaps} overlapping, ${without.replies} replies
  with guard:    ${withGuard.turns} agent turns, ${withGuard.overlaps} overlapping, ${withGuard.replies} replies
  Alice's follow-ups were coalesced into one turn (her typo fix landed before the agent read it),
  Bob's album became one turn, Carol's /stop aborted the running turn, Dave's approval button
  reached the bot while his turn waited, Erin's deleted message never reached the agent, and
  Frank's reply interrupted his agent, whose next turn started from the draft it had written.
`);
if (withGuard.overlaps !== 0) {
  console.error("The guarded run overlapped turns of one chat: this is a bug.");
  process.exit(1);
}
