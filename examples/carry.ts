// Interrupt that keeps the work: the agent streams an answer, the user sends a correction, and
// the next turn's prompt holds the partial answer and the correction.
//
//   npx tsx examples/carry.ts
//
// Offline: the "model" is a stand-in that streams a canned answer word by word. With a real SDK,
// pass `turn.signal` as its abort signal and carry what it streamed so far.

import { createGuard, type Turn } from "session-guard";

interface Message {
  readonly text: string;
  readonly replyToBot?: boolean;
}

/** A stand-in model: streams its answer one word every 60 ms, stops when `signal` aborts. */
async function* streamAnswer(prompt: string, signal: AbortSignal): AsyncGenerator<string> {
  const answer = prompt.includes("in French")
    ? "Paris est la capitale de la France, sur la Seine."
    : "Paris is the capital of France, on the Seine, with about two million people.";
  for (const word of answer.split(" ")) {
    await new Promise((resolve) => setTimeout(resolve, 60));
    if (signal.aborted) return;
    yield `${word} `;
  }
}

const started = performance.now();
const log = (line: string) =>
  console.log(`${String(Math.round(performance.now() - started)).padStart(5)} ms  ${line}`);

const guard = createGuard<Message>({
  // Chatter is collected; a reply to the bot interrupts what it is saying.
  mode: (message) => (message.replyToBot ? "interrupt" : "collect"),
  handler: async (turn: Turn<Message>) => {
    const earlier = turn.carried.map((c) => (c.value as { partial: string }).partial);
    const prompt = [
      ...earlier.map((partial) => `[you were interrupted while saying: "${partial.trim()}"]`),
      ...turn.inputs.map((m) => m.text),
    ].join("\n");
    log(`agent turn ${turn.fence} starts, prompt:\n${prompt.replace(/^/gm, "           | ")}`);
    let partial = "";
    for await (const chunk of streamAnswer(prompt, turn.signal)) {
      partial += chunk;
      turn.carry({ partial }); // the last value wins; kept only if this turn is cut short
    }
    if (turn.signal.aborted) {
      log(
        `agent turn ${turn.fence} cut short (${turn.signal.reason.code}) after "${partial.trim()}"`,
      );
      return;
    }
    log(`bot> ${partial.trim()}`);
  },
});

log('user> "Tell me about Paris"');
await guard.submit("chat-1", { text: "Tell me about Paris" });
await new Promise((resolve) => setTimeout(resolve, 400));
log('user (replying to the bot)> "actually, answer in French"');
await guard.submit("chat-1", { text: "actually, answer in French", replyToBot: true });
await guard.onIdle();
await guard.close();
