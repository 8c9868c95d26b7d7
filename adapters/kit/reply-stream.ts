// === Streaming an answer into one message
//
// An agent produces its answer a few characters at a time; a chat shows it by editing one message
// with the text so far. Platforms rate-limit those edits (Telegram about one a second per chat,
// Slack's `chat.update` is tier 3, Discord five per five seconds per channel), and an edit per
// token would queue up far behind the answer. So writes only change the text in memory, and one
// pump sends it: at most one API call in flight, each starting no sooner than `interval` after the
// previous one started, each carrying the latest text. A slow platform, or one that answers
// "retry after", gets fewer and larger edits instead of a backlog.
//
// The turn's signal stops the previews: no call starts after it aborted. `end()` sends the final
// text whatever the signal says (a stopped answer is shown as far as it got, marked by the caller),
// still spaced by the interval. Text past the platform's length limit continues in a new message.
// Adapters bind this to their platform's calls (`streamReply` in each adapter); no SDK is imported.

import { describe, OptionChecks } from "./options.js";

/** How one platform posts and edits a message: what an adapter binds. */
export interface ReplyPlatform<M> {
  /** The function the user called, for misuse messages (`"streamReply"`). */
  readonly where: string;
  /** The longest text one message may hold; longer text continues in a new message. */
  readonly maxLength: number;
  /** Default ms between the starts of two calls. */
  readonly interval: number;
  /** Post a new message with `text`. */
  post(text: string): Promise<M>;
  /** Replace the text of a message `post` answered. */
  edit(message: M, text: string): Promise<unknown>;
  /** The ms to wait before trying again when `error` is a rate limit; `undefined` otherwise. */
  retryAfter(error: unknown): number | undefined;
}

/** Options of `streamReply`. */
export interface StreamReplyOptions {
  /**
   * The turn's signal (`turn.signal`). Once it aborts no preview edit starts; `end()` still sends
   * the final text.
   */
  readonly signal?: AbortSignal;
  /** Ms between the starts of two API calls; each adapter has a default that fits its limits. */
  readonly interval?: number;
  /** Text posted at once, before the answer has any (`"…"`); none by default. */
  readonly placeholder?: string;
}

/**
 * One answer streamed into a chat by editing its message. Writes are cheap (they change the text in
 * memory); edits follow at the platform's pace, coalesced, never more than one in flight.
 */
export interface ReplyStream<M> {
  /** The whole text so far. */
  readonly text: string;
  /** The messages posted so far, oldest first (several when the text outgrew one). */
  readonly messages: readonly M[];
  /** Append `delta` to the text. */
  write(delta: string): void;
  /** Replace the whole text (say, to show a tool's progress). */
  set(text: string): void;
  /**
   * Send the final text (`text` if given, else the text so far) even after the signal aborted, once
   * the call in flight settled and the interval passed; resolves with the messages. Rejects with
   * the platform's error when the final text cannot be sent (after retrying rate limits). Blank
   * text is never sent: a stream that had none resolves with no message.
   */
  end(text?: string): Promise<readonly M[]>;
}

/** Rate limits in a row after which `end()` gives up with the platform's error. */
const FINAL_RETRIES = 5;

/**
 * Cut `text` into pieces of at most `max` UTF-16 units, at a line break or a space in the second
 * half of a piece when there is one. A cut depends only on the `max + 1` units after the previous
 * cut, so pieces already posted keep their text as the answer grows.
 */
export function pieces(text: string, max: number): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > max) {
    let cut = rest.lastIndexOf("\n", max);
    if (cut < max / 2) cut = rest.lastIndexOf(" ", max);
    if (cut < max / 2) {
      cut = max;
      const unit = rest.charCodeAt(cut - 1);
      if (unit >= 0xd800 && unit <= 0xdbff) cut--; // never split an emoji's surrogate pair
    }
    out.push(rest.slice(0, cut));
    rest = rest.slice(rest[cut] === "\n" || rest[cut] === " " ? cut + 1 : cut);
  }
  out.push(rest);
  return out;
}

const blank = (text: string) => text.trim() === "";

class Stream<M> implements ReplyStream<M> {
  text = "";
  readonly messages: M[] = [];
  /** The text each message shows, by index. */
  readonly #shown: string[] = [];
  readonly #platform: ReplyPlatform<M>;
  readonly #signal: AbortSignal | undefined;
  readonly #interval: number;
  readonly #placeholder: string | undefined;
  /** When the next call may start (`performance.now()` ms). */
  #nextAt = 0;
  #pumping: Promise<void> | undefined;
  /** `end()` was called: previews stop, the final pump sends the rest. */
  #ending = false;
  /** A preview failed for a reason other than a rate limit: previews stop, `end()` still tries. */
  #failed = false;
  /** Wakes a preview that waits for its interval (the signal aborted, or `end()` was called). */
  #wake: (() => void) | undefined;
  readonly #onAbort = () => this.#wake?.();

  constructor(platform: ReplyPlatform<M>, options: StreamReplyOptions) {
    this.#platform = platform;
    this.#signal = options.signal;
    this.#interval = options.interval ?? platform.interval;
    this.#placeholder = blank(options.placeholder ?? "") ? undefined : options.placeholder;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    if (this.#placeholder !== undefined) this.#kick();
  }

  write(delta: string): void {
    this.#writable("write", delta);
    if (delta === "") return;
    this.text += delta;
    this.#kick();
  }

  set(text: string): void {
    this.#writable("set", text);
    this.text = text;
    this.#kick();
  }

  async end(text?: string): Promise<readonly M[]> {
    if (this.#ending) throw new Error(`${this.#platform.where}: end() was already called.`);
    if (text !== undefined && typeof text !== "string") {
      throw new TypeError(
        `${this.#platform.where}: end(text) takes a string, got ${describe(text)}.`,
      );
    }
    if (text !== undefined) this.text = text;
    this.#ending = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#wake?.();
    await this.#pumping;
    await this.#pump(true);
    return this.messages;
  }

  #writable(method: string, text: unknown): void {
    if (this.#ending) {
      throw new Error(`${this.#platform.where}: ${method}() after end(); the answer is complete.`);
    }
    if (typeof text !== "string") {
      throw new TypeError(
        `${this.#platform.where}: ${method}() takes a string, got ${describe(text)}.`,
      );
    }
  }

  /** Start the pump unless it runs; previews never reject (their failures end them quietly). */
  #kick(): void {
    if (this.#pumping !== undefined || this.#ending) return;
    this.#pumping = this.#pump(false).finally(() => {
      this.#pumping = undefined;
    });
  }

  /** Previews stop: `end()` took over, a call failed, or the signal aborted. */
  #stopped(): boolean {
    return this.#ending || this.#failed || this.#signal?.aborted === true;
  }

  /** The next call that brings the chat closer to `text`, or `undefined` when it shows it. */
  #next(): { index: number; text: string } | undefined {
    if (this.#placeholder !== undefined && this.messages.length === 0 && blank(this.text)) {
      return { index: 0, text: this.#placeholder };
    }
    const all = pieces(this.text, this.#platform.maxLength);
    for (let index = 0; index < all.length; index++) {
      const piece = all[index] as string;
      if (blank(piece)) return undefined; // nothing to show yet (or a cut just happened)
      if (this.#shown[index] !== piece) return { index, text: piece };
    }
    return undefined;
  }

  /**
   * Send calls until the chat shows `text`. A preview pump (`final` false) stops once the signal
   * aborted, a call failed, or `end()` took over, and never rejects; the final pump ignores the
   * signal and rejects with the platform's error.
   */
  async #pump(final: boolean): Promise<void> {
    let limited = 0;
    for (;;) {
      if (!final && this.#stopped()) return;
      if (this.#next() === undefined) return;
      await this.#pause(final);
      if (!final && this.#stopped()) return;
      // Read again: the text may have grown while we waited; send the latest.
      const call = this.#next();
      if (call === undefined) return;
      this.#nextAt = performance.now() + this.#interval;
      try {
        const message = this.messages[call.index];
        if (message === undefined) this.messages.push(await this.#platform.post(call.text));
        else await this.#platform.edit(message, call.text);
        this.#shown[call.index] = call.text;
        limited = 0;
      } catch (error) {
        const wait = this.#platform.retryAfter(error);
        if (wait !== undefined && (!final || ++limited < FINAL_RETRIES)) {
          this.#nextAt = performance.now() + Math.max(wait, this.#interval);
          continue;
        }
        if (final) throw error;
        this.#failed = true; // a refusing platform refuses again: leave it to the final text
        return;
      }
    }
  }

  /** Wait until the next call may start; a preview's wait ends early on abort or `end()`. */
  #pause(final: boolean): Promise<void> {
    const ms = this.#nextAt - performance.now();
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (!final) this.#wake = done;
    });
  }
}

/**
 * Stream an answer into one chat message through `platform`; checks the options first.
 *
 * @example
 * ```ts
 * const reply = replyStream(platform, { signal: turn.signal });
 * for await (const delta of textStream) reply.write(delta);
 * await reply.end();
 * ```
 */
export function replyStream<M>(
  platform: ReplyPlatform<M>,
  options: StreamReplyOptions = {},
): ReplyStream<M> {
  const check = new OptionChecks(platform.where);
  check.object(options);
  const { signal, interval, placeholder } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw check.error(`"signal" must be an AbortSignal (turn.signal), got ${describe(signal)}.`);
  }
  if (interval !== undefined) check.ms("interval", interval);
  if (placeholder !== undefined && typeof placeholder !== "string") {
    throw check.error(`"placeholder" must be a string, got ${describe(placeholder)}.`);
  }
  const known = new Set(["signal", "interval", "placeholder"]);
  for (const name of Object.keys(options)) {
    if (!known.has(name)) {
      throw check.error(`unknown option "${name}"; the options are signal, interval, placeholder.`);
    }
  }
  return new Stream(platform, options);
}
