// The recipe: one guarded turn answered by the Vercel AI SDK (`ai`), wired to the turn.
//
// - `abortSignal: turn.signal`: /stop, an interrupt, a timeout or shutdown cancel the model call
//   and the tool loop (the SDK ends the stream with an `abort` part; it does not throw).
// - steer mode: before every step, `prepareStep` moves the messages that arrived meanwhile into
//   the conversation with `turn.take()`, so step 2 sees what the user added during step 1. Input
//   that arrives after the last step stays pending and becomes the next turn: nothing is lost.
// - the answer is streamed into one Telegram message with `streamReply` (edits paced and
//   coalesced); a stopped answer keeps what was written, marked as stopped.
//
// `examples/ai-sdk-telegram.ts` runs it as a bot; `test/agent-sdk.test.ts` tests it offline.

import { type Instructions, isStepCount, type LanguageModel, streamText, type ToolSet } from "ai";
import type { Context } from "grammy";
import type { TurnAbortedError } from "session-guard";
import { streamReply, type TurnFlavor } from "session-guard/grammy";

/** The bot's context: grammY's, with `ctx.turn`. */
export type AgentContext = TurnFlavor<Context>;

/** What answers a turn. */
export interface Agent {
  /** Any AI SDK language model: a provider's, a gateway id (`"openai/gpt-5-mini"`), or a mock. */
  readonly model: LanguageModel;
  /** The tools the model may call. */
  readonly tools?: ToolSet;
  /** The system instructions. */
  readonly instructions?: Instructions;
  /** The most model calls (steps) per turn. */
  readonly maxSteps?: number;
}

/** What the user wrote in one update. */
export const textOf = (ctx: Context): string => ctx.msg?.text ?? ctx.msg?.caption ?? "[media]";

/** How a stopped answer ends, by `turn.signal.reason.code`. */
const ENDINGS: Record<string, string> = {
  stopped: "(stopped)",
  superseded: "(interrupted: reading your new message)",
  timeout: "(timed out)",
  shutdown: "(the bot is restarting)",
};

/** Answer the turn of `ctx`: every message of the turn in, one streamed message out. */
export async function answer(ctx: AgentContext, agent: Agent): Promise<void> {
  const { turn } = ctx;
  const reply = streamReply(ctx, { signal: turn.signal, placeholder: "…" });
  const result = streamText({
    model: agent.model,
    ...(agent.tools === undefined ? {} : { tools: agent.tools }),
    ...(agent.instructions === undefined ? {} : { instructions: agent.instructions }),
    messages: [{ role: "user", content: turn.inputs.map(textOf).join("\n") }],
    stopWhen: isStepCount(agent.maxSteps ?? 5),
    abortSignal: turn.signal,
    // Steer: what the user sent during the previous step joins the conversation now. (In other
    // modes `take()` answers [] and this changes nothing.)
    prepareStep: async ({ messages }) => {
      const added = await turn.take();
      if (added.length === 0) return undefined;
      return { messages: [...messages, { role: "user", content: added.map(textOf).join("\n") }] };
    },
  });
  let newStep = false; // a step's text starts on a new paragraph
  for await (const part of result.fullStream) {
    if (part.type === "start-step") newStep = reply.text !== "";
    else if (part.type === "text-delta" || part.type === "tool-call") {
      if (newStep) reply.write("\n\n");
      newStep = false;
      reply.write(part.type === "text-delta" ? part.text : `[${part.toolName}…] `);
    } else if (part.type === "error") throw part.error;
  }
  if (!turn.signal.aborted) {
    await reply.end();
    return;
  }
  const code = (turn.signal.reason as TurnAbortedError | undefined)?.code ?? "";
  await reply.end(`${reply.text.trimEnd()} … ${ENDINGS[code] ?? "(stopped)"}`);
}
