// === Admission and acknowledgement
//
// Events API payloads were acknowledged by Bolt before the middleware ran. Commands (and the rest
// that carries an `ack`) must be acknowledged within 3 s by whoever handles them, and only once:
// HTTP receivers throw on a second ack, and Bolt hands listeners the receiver's own `ack`. So who
// answers is decided once the guard has admitted or dropped the payload: the listener when its
// turn started at once, the guard otherwise (queued, dropped, waiting for a slot) — then
// `context.acknowledged` is true. The memory store decides within `submit`; a shared store a round
// trip later, and a payload it failed to store is never acknowledged (the error reaches Bolt; for
// a command, Slack tells the user it failed).

import type { Guard, Turn } from "session-guard";
import { withHeartbeat } from "../kit/heartbeat.js";
import type { Args } from "./places.js";
import { bodies } from "./replay.js";
import type { SlackInput, SlackQueued } from "./types.js";

/** A response_url lasts 30 minutes; a command still waiting after this is dropped (`expired`). */
const COMMAND_LIFETIME = 29 * 60_000;
/** Slack clears an assistant status after 2 minutes without a reply. */
const STATUS_EVERY = 60_000;
const DONE: Promise<void> = Promise.resolve();
const NOOP = (): void => {};

export interface AdmitSettings {
  readonly guard: Guard<SlackInput>;
  readonly awaitTurn: boolean;
  /** Payloads travel between replicas (keep their bodies). */
  readonly shared: boolean;
  readonly onQueued: ((queued: SlackQueued) => unknown) | undefined;
  readonly status: string | undefined;
  /** A turn of these payloads starts, with the middleware arguments it runs with. */
  readonly started: ((args: Args, turn: Turn<SlackInput>) => void) | undefined;
  readonly report: (error: unknown, key: string, input?: SlackInput) => void;
}

/** Admit payloads to the guard, acknowledging them as described above. */
export function admitter(settings: AdmitSettings) {
  const { guard, awaitTurn, shared, onQueued, report } = settings;

  /** Middleware arguments of payloads waiting to be announced to `onQueued`. */
  const waiting = new WeakMap<object, Args>();
  if (onQueued !== undefined) {
    guard.on("queued", ({ key, input, pending }) => {
      const args = waiting.get(input as object);
      if (args === undefined) return; // another adapter's input on a shared guard
      waiting.delete(input as object);
      // On a later microtask: the guard acknowledges a queued command right after admission,
      // and the acknowledgement must reach Slack before anything the user's callback sends.
      queueMicrotask(() => {
        try {
          const result = onQueued({
            key,
            pending,
            input,
            body: args.body as SlackQueued["body"],
            context: args.context,
            client: args.client,
            say: args.say,
            respond: args.respond,
          });
          if (result instanceof Promise) {
            result.catch((error: unknown) => report(error, key, input));
          }
        } catch (error) {
          report(error, key, input);
        }
      });
    });
  }

  /**
   * Payloads that need an acknowledgement, until the guard has admitted or dropped them: called
   * when the `admitted` or `dropped` event names them.
   */
  const outcomes = new WeakMap<object, () => void>();
  const outcome = ({ input }: { input: unknown }) => outcomes.get(input as object)?.();
  guard.on("admitted", outcome);
  guard.on("dropped", outcome);

  /** Run the listeners of a payload as its turn (with the assistant status, when asked). */
  const runWith = (args: Args, turn: Turn<SlackInput>, input: SlackInput): Promise<void> => {
    args.context.turn = turn;
    settings.started?.(args, turn);
    const status = settings.status;
    const { thread_ts: thread, channel_type: kind } = input as {
      thread_ts?: string;
      channel_type?: string;
    };
    // An assistant thread is a thread of the app's DM (Bolt's own test, `isAssistantMessage`):
    // Slack refuses a status anywhere else.
    if (status === undefined || thread === undefined || kind !== "im") return args.next();
    const channel = (input as { channel: string }).channel;
    const client = args.client;
    const heartbeat = {
      send: () =>
        client.assistant.threads.setStatus({ channel_id: channel, thread_ts: thread, status }),
      clear: () =>
        client.assistant.threads.setStatus({ channel_id: channel, thread_ts: thread, status: "" }),
      every: STATUS_EVERY,
    };
    return withHeartbeat(
      heartbeat,
      (error) => report(error, turn.key, input),
      () => args.next(),
    );
  };

  return {
    runWith,
    admit(args: Args, key: string, input: SlackInput, id: string | undefined): Promise<void> {
      const command = "command" in input && typeof input.command === "string";
      let ran = false;
      if (onQueued !== undefined) waiting.set(input, args);
      if (shared) bodies.set(input, args.body);
      const needsAck = args.ack !== undefined;
      let known = false;
      let submitted = false;
      let answered: Promise<void> | undefined;
      let whenAnswered: ((answer: Promise<void>) => void) | undefined;
      const answer = (stored: boolean) => {
        if (answered !== undefined) return;
        outcomes.delete(input);
        if (stored && !ran && args.ack !== undefined) {
          // Queued, dropped, or waiting for a slot: nobody else answers Slack within its 3 s.
          args.context.acknowledged = true;
          answered = args.ack();
        } else {
          // The listener got the payload at once: acknowledging it is the listener's job.
          answered = DONE;
        }
        whenAnswered?.(answered);
      };
      if (needsAck) {
        outcomes.set(input, () => {
          known = true;
          // A turn that starts runs its listener right after `admitted`: answer after that.
          if (submitted) queueMicrotask(() => answer(true));
        });
      }
      const admitted = guard.submit(
        key,
        input,
        (turn) => {
          ran = true;
          return runWith(args, turn, input);
        },
        {
          id,
          // A command answers on its own (response_url, ack): never coalesced with other input.
          alone: command,
          expiresAt: command ? Date.now() + COMMAND_LIFETIME : undefined,
          awaitTurn,
        },
      );
      submitted = true;
      const settled = admitted.then(NOOP);
      if (!needsAck) return settled;
      if (known) answer(true);
      else
        admitted.then(
          () => answer(true),
          () => answer(false),
        );
      if (answered === DONE) return settled;
      const acked =
        answered ??
        new Promise<void>((resolve) => {
          whenAnswered = resolve;
        });
      return Promise.all([acked, settled]).then(NOOP);
    },
  };
}
