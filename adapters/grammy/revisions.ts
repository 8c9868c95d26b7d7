// === Telegram edits and deletions of pending messages
//
// `edited_message`, `edited_channel_post` and `edited_business_message` replace a pending message;
// `deleted_business_messages` withdraws the deleted ones. Telegram tells bots of no other
// deletion (a user deleting a message in a private chat or a group sends the bot nothing), so
// only business chats can withdraw.
//
// A message is submitted with an id of its own (keys.ts, `messageIdOf`), which its edit names too.
// The edit arrives as a new update, so its context is not the pending one, and grammY's `next` of
// the pending update (the rest of the middleware chain, bound to that context) is what its turn
// must run. So the edit swaps the message inside the pending context: the context in
// `ctx.turn.inputs` (and the one the handlers run with) then carries the edited message,
// `edit_date` included. With a store of this process the guard hands the pending context over
// (`replace`'s `from`), so nothing is kept per waiting update: a map holding every waiting
// context cost the contended path a third of its time (young contexts in a long-lived table are
// what every young-generation pause must visit). Across replicas the pending context may be any
// replica's, so up to 1,000 waiting contexts are kept here by id. An edit of a message this
// process does not hold (pending at another replica, or in a running turn) goes to the guard as
// a context of its own, built like the pending one (its message in the field the message first
// came in); a running turn hears of it through `ctx.turn.onRevision`.

import type { Context } from "grammy";
import type { Message } from "grammy/types";
import type { Guard } from "session-guard";
import { revise } from "../kit/revise.js";
import { type Edit, editOf, messageIdOf, prefixOf } from "./keys.js";

/** Where a waiting context keeps its id, so that leaving the map needs no id built again. */
const WAITING = Symbol("session-guard waiting id");
interface Waiting {
  [WAITING]?: string | undefined;
}

/**
 * Contexts kept at most while they wait, with a store other replicas share: a turn at another
 * replica may run them, and nothing tells this one, so the oldest go first. An edit of one that
 * went is still applied, as a context of its own (run by replay, as other replicas' updates are).
 */
export const SHARED_WAITING_MAX = 1_000;

/** The update kinds this file acts on: an edit, or a business chat's deletions. */
export function isRevision(ctx: Context): boolean {
  const update = ctx.update;
  return (
    update.edited_message !== undefined ||
    update.edited_channel_post !== undefined ||
    update.edited_business_message !== undefined ||
    update.deleted_business_messages !== undefined
  );
}

export class Revisions<C extends Context> {
  readonly #guard: Guard<C>;
  readonly #report: (error: unknown, key: string, input?: C) => void;
  /**
   * Pending contexts by submitted id, oldest first: only with contexts that may leave unseen (a
   * store or guard shared with other replicas); otherwise the guard hands them over itself.
   */
  readonly #waiting: Map<string, C> | undefined;
  readonly #max: number;

  /** `max`: keep up to this many waiting contexts here (contexts may leave unseen); none if `undefined`. */
  constructor(
    guard: Guard<C>,
    report: (error: unknown, key: string, input?: C) => void,
    max?: number,
  ) {
    this.#guard = guard;
    this.#report = report;
    this.#max = max ?? 0;
    this.#waiting = max === undefined ? undefined : new Map();
    if (this.#waiting === undefined) return;
    guard.on("dropped", ({ id, input }) => {
      if (id !== undefined && this.#waiting?.get(id) === input) this.#leave(id, input);
      else if (typeof input === "object" && input !== null) (input as Waiting)[WAITING] = "";
    });
  }

  /** Waiting contexts are kept here (contexts may leave unseen), to be told when they start. */
  get keeps(): boolean {
    return this.#waiting !== undefined;
  }

  /** True while contexts wait here (else a starting turn has nothing to tell). */
  get holding(): boolean {
    return this.#waiting !== undefined && this.#waiting.size > 0;
  }

  /**
   * A context was submitted and did not start at once: keep it until its turn starts (only
   * where contexts may leave unseen; see `#waiting`).
   */
  waiting(id: string, ctx: C): void {
    const map = this.#waiting;
    const waiting = ctx as Waiting;
    // Dropped already (a duplicate, a refused input), or an earlier delivery waits under this id.
    if (map === undefined || waiting[WAITING] !== undefined || map.has(id)) return;
    waiting[WAITING] = id;
    map.set(id, ctx);
    if (map.size > this.#max) {
      const [oldest, old] = map.entries().next().value as [string, C];
      this.#leave(oldest, old);
    }
  }

  /** These contexts entered a turn (it started, or `take()` moved them in): they wait no more. */
  started(inputs: readonly C[]): void {
    const map = this.#waiting;
    if (map === undefined || map.size === 0) return;
    for (const input of inputs) {
      const id = (input as Waiting)[WAITING];
      if (id !== undefined && id !== "" && map.get(id) === input) this.#leave(id, input);
    }
  }

  #leave(id: string, input: C): void {
    this.#waiting?.delete(id);
    (input as Waiting)[WAITING] = "";
  }

  /** Hand an edit or a business deletion to the guard; detached, failures go to `onError`. */
  revise(ctx: C, key: string): void {
    const edit = editOf(ctx);
    if (edit !== undefined) {
      const id = messageIdOf(ctx.me, edit.message);
      if (this.#waiting !== undefined) {
        void revise(this.#guard, key, id, this.#edited(ctx, id, edit), this.#report);
        return;
      }
      // The guard holds the pending context, if it is pending: the message is swapped in it.
      const swap = (pending: C): C => applyEdit(pending, edit);
      void revise(this.#guard, key, id, ownContext(ctx, edit), this.#report, swap);
      return;
    }
    const deleted = ctx.update.deleted_business_messages;
    if (deleted === undefined) return;
    const chat = `${prefixOf(ctx.me)}${deleted.business_connection_id}:${deleted.chat.id}:`;
    for (const messageId of deleted.message_ids) {
      void revise(this.#guard, key, chat + messageId, undefined, this.#report);
    }
  }

  /** The pending context kept here with its message swapped, or a context of its own for the edit. */
  #edited(ctx: C, id: string, edit: Edit): C {
    const pending = this.#waiting?.get(id);
    return pending === undefined ? ownContext(ctx, edit) : applyEdit(pending, edit);
  }
}

/**
 * The pending context with the edited message swapped in — unless it already shows a later edit
 * (Telegram redelivered an older edit, or edits arrived out of order): edits apply newest last.
 */
function applyEdit<C extends Context>(pending: C, edit: Edit): C {
  const update = pending.update as unknown as Record<string, Message | undefined>;
  if ((update[edit.field]?.edit_date ?? 0) > (edit.message.edit_date ?? 0)) return pending;
  update[edit.field] = edit.message;
  return pending;
}

/** A context of the edit's own, its message in the field the message first came in. */
function ownContext<C extends Context>(ctx: C, edit: Edit): C {
  const Ctx = ctx.constructor as new (...args: ConstructorParameters<typeof Context>) => C;
  const update = { update_id: ctx.update.update_id, [edit.field]: edit.message };
  return new Ctx(update as unknown as C["update"], ctx.api, ctx.me);
}
