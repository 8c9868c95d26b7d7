// === Slack across replicas
//
// On a shared store a payload travels as the request body Bolt received. A turn whose latest
// payload was admitted on another replica is run by replaying that body through `app.processEvent`
// with a no-op `ack` (the receiving replica already answered Slack): it runs the app's middleware
// and listeners as usual, and the guard's middleware attaches the current turn instead of
// admitting the payload again (the kit's `Replays`).

import type { AckFn, App } from "@slack/bolt";
import type { Codec } from "session-guard";
import type { Replays } from "../kit/replay.js";
import { record } from "./places.js";
import type { SlackInput, SlackTurn } from "./types.js";

/** The request body each payload (an event, a command) came in: what crosses replicas. */
export const bodies = new WeakMap<object, Record<string, unknown>>();

/** Payloads rebuilt here from another replica's body (their reaction, if any, was put on there). */
export const rebuilt = new WeakSet<object>();

/** What a payload looks like in a shared store. */
interface Serialized {
  readonly b: Record<string, unknown>;
}

/**
 * How payloads travel through a shared store: the request body Bolt received, as JSON; rebuilt on
 * the replica that runs the turn as the event (or command) it carries, with its body remembered
 * for the replay.
 */
export const BODY_CODEC: Codec<SlackInput> = {
  encode(input: SlackInput): Serialized {
    const body = bodies.get(input);
    if (body === undefined) {
      throw new TypeError(
        "slackGuard: this payload has no request body to send to another replica (only payloads that came through the middleware can travel).",
      );
    }
    return { b: body };
  },
  decode(data: unknown): SlackInput {
    const body = (data as Serialized).b;
    // Events API: the event inside the envelope; a slash command is its body.
    const input = (record(body.event) ?? body) as unknown as SlackInput;
    bodies.set(input, body);
    rebuilt.add(input);
    return input;
  },
};

/** Replayed payloads were acknowledged by the replica that received them: acknowledge nothing. */
const NO_ACK: AckFn<unknown> = async () => {};

/**
 * The guard's handler for turns whose latest payload came from another replica: replay its body
 * through the app, whose middleware (this adapter's) attaches the turn.
 */
export function replayThrough(
  app: Pick<App, "processEvent">,
  replays: Replays<SlackTurn>,
): (turn: SlackTurn) => Promise<unknown> {
  return (turn) => {
    const input = turn.inputs[turn.inputs.length - 1] as SlackInput;
    const body = bodies.get(input) as Record<string, unknown>;
    return replays.run(
      body,
      turn,
      () => app.processEvent({ body, ack: NO_ACK }),
      () =>
        new Error(
          `slackGuard: the payload replayed for key "${turn.key}" through app.processEvent never reached the guard's middleware. Install it with app.use(guard) on the app given as "app", before middleware that may end a payload.`,
        ),
    );
  };
}
