// === Stop in Slack: the stop text stops its thread, a stop command its whole channel
//
// A stop is never admitted: it acts at once, beside the turn, then reaches the listeners.
// - The stop text stops its thread's key with the message's `channel:ts` as the stop's id, so the
//   core de-duplicates the stop in the store: a retry or the second delivery of one stop (as
//   `message` and as `app_mention`), on whichever replica, never stops a later turn.
// - A stop command stops every turn of its channel, threads included, on every replica: the
//   channel's own key and every key under it (`stopWhere`).

import type { Guard } from "session-guard";
import type { SlackInput } from "./types.js";

/** Stop ids this replica acted on lately, so that it answers one stop once. */
const ANSWERED_MAX = 1_000;

/** How the middleware stops turns. */
export class Stops {
  readonly #guard: Guard<SlackInput>;
  readonly #report: (error: unknown, key: string, input: SlackInput) => void;
  /**
   * Stops this replica answered (their listeners ran), oldest first. The store decides whether a
   * stop acts; this only keeps the listeners from answering the second delivery here twice.
   */
  readonly #answered = new Set<string>();

  constructor(
    guard: Guard<SlackInput>,
    report: (error: unknown, key: string, input: SlackInput) => void,
  ) {
    this.#guard = guard;
    this.#report = report;
  }

  /**
   * The stop text of message `id` in `key`: stops the key (once, across replicas) and answers
   * whether the listeners should see it (false for a delivery of a stop answered here already).
   */
  text(key: string, id: string, input: SlackInput): boolean {
    this.#guard.stop(key, { id }).catch((error: unknown) => this.#report(error, key, input));
    if (this.#answered.has(id)) return false;
    this.#answered.add(id);
    if (this.#answered.size > ANSWERED_MAX) {
      this.#answered.delete(this.#answered.values().next().value as string);
    }
    return true;
  }

  /** Stop every turn of a channel: its own key (DM, commands) and every thread in it. */
  channel(channel: string, input: SlackInput): void {
    const fail = (error: unknown) => this.#report(error, channel, input);
    this.#guard.stop(channel).catch(fail);
    this.#guard.stopWhere(`${channel}:`).catch(fail);
  }
}
