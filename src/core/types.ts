// === The guard's public types
//
// What users see of a guard: `Guard<I>` and the options and answers of its methods. The class that
// implements it (`guard.ts`) and its collaborators stay internal.

import type { GuardEvents, Listener } from "./events.js";
import type { Drop, Handler } from "./options.js";
import type { Outcome } from "./outcomes.js";
import type { Turn } from "./turn.js";

/** How `submit` admitted an input. */
export type SubmitOutcome = "started" | "queued" | "duplicate" | "dropped";

/**
 * What `guard.replace` and `guard.withdraw` did: `"replaced"` / `"withdrawn"` (the input was
 * pending: its content was swapped in place, or it was removed and dropped as `withdrawn`),
 * `"in-turn"` (it belongs to the running turn, which is told through `turn.onRevision`),
 * `"ended"` (its turn is over, or it was dropped) or `"unknown"` (no input with that id is known:
 * never admitted, or older than the de-duplication window).
 */
export type RevisionResult = "replaced" | "withdrawn" | "in-turn" | "ended" | "unknown";

/** Options of `guard.replace`. */
export interface ReplaceOptions<I> {
  /**
   * Derive the new content from the pending input instead of taking `input` as it is: called with
   * the pending input when this process holds it (an own store, or a turn of this process that
   * has not started yet), and its answer becomes the pending input. Useful when the pending input
   * must keep its identity (an object other code holds, such as a framework's context with the
   * rest of its middleware chain) or merges with the edit. Elsewhere (input pending at another
   * replica, a running turn's `onRevision`) `input` is what is used, so both should carry the
   * same content. A `from` that throws leaves `input` in its place and is reported to `onError`.
   *
   * @example
   * ```ts
   * await guard.replace(chatId, messageId, edited, {
   *   from: (pending) => Object.assign(pending, { text: edited.text }),
   * });
   * ```
   */
  from?(pending: I): I;
}

/** Per-input options of `submit`. */
export interface SubmitOptions<I = unknown> {
  /**
   * De-duplication id: a platform update id, or a message id together with its chat. Ids are one
   * namespace for the whole guard (and its store), whatever the key: a message id that is unique
   * only within its chat (Telegram's `message_id`) must carry the chat, or another chat's message
   * with the same number is dropped as a duplicate. Without one the input is never a duplicate.
   */
  id?: string;
  /**
   * Never coalesce this input with others: it becomes a turn of its own, in FIFO order. For inputs
   * that carry their own reply channel (a slash command, an interaction).
   */
  alone?: boolean;
  /** Epoch ms after which this input, if still pending, is dropped as `expired` (e.g. a dying token). */
  expiresAt?: number;
  /** Overrides the guard's `awaitTurn` for this input. */
  awaitTurn?: boolean;
  /**
   * Inputs of one key that share a group always run in the same turn, whatever the mode (the photos
   * of an album, which arrive as separate updates, perhaps at different replicas). The turn waits
   * until `settle` ms pass with no new input of the group, then runs them all.
   */
  group?: string;
  /** With `group`: the quiet ms that end the group's window. Default: the guard's `settle`. */
  settle?: number;
  /**
   * Called once if this input is dropped (whatever the reason, whenever it happens), besides the
   * guard's `onDrop`: the place for a per-input notice. An error it throws goes to `onError`.
   * With a shared store, an input dropped by another replica is reported to that replica's guard
   * `onDrop`; here only this callback is called (when the other replica's hint arrives).
   */
  onDrop?: (drop: Drop<I>) => void;
}

/** Options of `stop` and `stopWhere`. */
export interface StopOptions {
  /**
   * De-duplication id of the stop command itself: a platform's redelivery of the same stop
   * (perhaps to another replica) is ignored instead of stopping a later turn.
   */
  id?: string;
}

/** Options of a lane (`guard.run`). */
export interface RunOptions {
  /**
   * When the key is busy: `"wait"` for it (default), `"skip"` (resolve `undefined`) or `"throw"` a
   * `ContendedError`.
   */
  onBusy?: "wait" | "skip" | "throw";
  /** With `"wait"`: give up after this many ms with a `ContendedError`. Default `Infinity`. */
  waitTimeout?: number;
}

/** Options of `close`. */
export interface CloseOptions {
  /**
   * Ms to wait for running turns (and, with the memory store, their pending input) before their
   * signals are aborted and their keys released. Default 10,000.
   */
  timeout?: number;
}

/** What `close` had to cut short. */
export interface CloseReport<I> {
  /** Turns that were still running at the deadline: aborted (reason `shutdown`) and released. */
  readonly aborted: number;
  /** Inputs dropped because the guard shut down, oldest first. */
  readonly dropped: readonly Drop<I>[];
}

/**
 * A per-key serializer for agent turns. Create one with `createGuard()`.
 *
 * @typeParam I - the input type (a message, an update, a framework context).
 */
export interface Guard<I> {
  /**
   * Admit one input for `key`. The key is claimed, or the input queued, before this call returns
   * (nothing is awaited in between); the turn then runs detached and the promise resolves with how
   * the input was admitted. With `awaitTurn`, it resolves once the input's turn has settled and
   * rejects with that turn's error. Never throws synchronously; after `close()` it resolves
   * `"dropped"` (reason `shutdown`).
   *
   * In `collect` mode a turn runs the `run` of its latest input, with every coalesced input in
   * `turn.inputs`, oldest first.
   *
   * @example
   * ```ts
   * const outcome = await guard.submit(chatId, message, (turn) => agent(turn), { id: messageId });
   * if (outcome === "queued") await notify(chatId, "Got it, I'll read that next.");
   * ```
   */
  submit(
    key: string,
    input: I,
    run?: Handler<I>,
    options?: SubmitOptions<I>,
  ): Promise<SubmitOutcome>;

  /**
   * Run `fn` as a turn of `key` that never overlaps a chat turn (a lane: cron, heartbeat,
   * recovery). Resolves with what `fn` returns. When the key is busy it waits (`onBusy: "wait"`,
   * bounded by `waitTimeout`), resolves `undefined` (`"skip"`) or rejects with `ContendedError`
   * (`"throw"`, or a wait that timed out). A lane always runs alone and is never coalesced.
   *
   * Awaiting a lane on the key of the turn you are in waits for yourself: from the handler's
   * synchronous part it rejects at once with a `CycleError`; after an `await`, at the turn's
   * timeout (`turnTimeout`), so the turn can end and the key moves on. Do such work inside the
   * turn instead, or start it without awaiting it.
   *
   * @example
   * ```ts
   * await guard.run(chatId, (turn) => summarize(chatId, turn.signal), { onBusy: "wait", waitTimeout: 30_000 });
   * ```
   */
  run<T>(
    key: string,
    fn: (turn: Turn<I>) => T | Promise<T>,
    options?: RunOptions & { onBusy?: "wait" | "throw" },
  ): Promise<T>;
  /** With `onBusy: "skip"`: resolves `undefined`, without running `fn`, when the key is busy. */
  run<T>(
    key: string,
    fn: (turn: Turn<I>) => T | Promise<T>,
    options: RunOptions,
  ): Promise<T | undefined>;

  /**
   * Stop the key: abort its running turn (`signal.reason.code === "stopped"`) and drop its pending
   * input (reason `stopped`). The local effects happen before this returns; the promise resolves
   * `true` if there was anything to stop, here or — with a shared store — at another replica,
   * whose turn learns of the stop from a hint or, at the latest, its next lease renewal. Input
   * admitted afterwards runs as usual, after the stopped turn has settled.
   *
   * With `{ id }` (the stop command's own message id) a redelivery of the same stop, perhaps to
   * another replica, is a duplicate and stops nothing: it resolves `false`.
   *
   * @example
   * ```ts
   * bot.command("stop", (ctx) => guard.stop(String(ctx.chatId), { id: String(ctx.update.update_id) }));
   * ```
   */
  stop(key: string, options?: StopOptions): Promise<boolean>;

  /**
   * Stop every key that starts with `prefix` (every thread of a channel), on this process and,
   * with a store that can list keys (memory, Redis), on every replica. Resolves `true` if there
   * was anything to stop.
   *
   * @example
   * ```ts
   * await guard.stopWhere(`slack:T1:C42:`); // the channel and all of its threads
   * ```
   */
  stopWhere(prefix: string, options?: StopOptions): Promise<boolean>;

  /**
   * The input `id` of `key` was edited. If it is still pending, its content is swapped in place:
   * same position, same id (in `collect` the next turn sees the new content; in `latest` it is the
   * newest pending input, as it was). If it already belongs to the running turn, nothing changes
   * and the turn's `onRevision` listeners get the new input. With a shared store this works from
   * any replica. Resolves `"replaced"`, `"in-turn"`, `"ended"` or `"unknown"`.
   *
   * @example
   * ```ts
   * // Submitted with { id: `${ctx.chat.id}:${ctx.msg.message_id}` }: ids carry the chat.
   * bot.on("edited_message", (ctx) =>
   *   guard.replace(
   *     String(ctx.chat.id),
   *     `${ctx.chat.id}:${ctx.editedMessage.message_id}`,
   *     ctx.editedMessage,
   *   ),
   * );
   * ```
   */
  replace(key: string, id: string, input: I, options?: ReplaceOptions<I>): Promise<RevisionResult>;

  /**
   * The input `id` of `key` was deleted. If it is still pending it is removed and ends as a drop
   * with reason `withdrawn` (through `onDrop` and the `dropped` event, like every drop). If it
   * already belongs to the running turn, the turn's `onRevision` listeners are told (`input`
   * `undefined`). With a shared store this works from any replica. Resolves `"withdrawn"`,
   * `"in-turn"`, `"ended"` or `"unknown"`.
   *
   * @example
   * ```ts
   * const result = await guard.withdraw(chatId, messageId);
   * ```
   */
  withdraw(key: string, id: string): Promise<RevisionResult>;

  /**
   * What became of the input submitted with `id`: `{ key, state, reason?, fence?, at }`, `state`
   * being `"pending"`, `"running"`, `"handled"`, `"failed"` or `"dropped"` (with `reason`), `fence`
   * the turn that ran it. Resolves `undefined` for an id never admitted, or ended longer ago than
   * the de-duplication window. With a shared store that keeps outcomes (Redis) any replica answers.
   *
   * @example
   * ```ts
   * const outcome = await guard.outcome(messageId);
   * if (outcome?.state === "dropped") console.log(`dropped: ${outcome.reason}`);
   * ```
   */
  outcome(id: string): Promise<Outcome | undefined>;

  /**
   * Report an input that an adapter dropped before admitting it (an album stopped while its
   * photos were still arriving), so that `onDrop` and the `dropped` event see every input.
   */
  reportDrop(drop: Drop<I>): void;

  /**
   * Report an error an adapter met outside a turn (a throwing `key` function, a failed stop) to
   * `onError` and the `error` event, with the key and the inputs involved.
   */
  reportError(error: unknown, info: { key: string; inputs?: readonly I[] }): void;

  /** True while this guard holds `key` (a turn is claimed or running). */
  isBusy(key: string): boolean;

  /** Inputs of `key` waiting behind its turn. */
  pendingCount(key: string): number;

  /** Keys this guard holds right now (turns claimed or running). */
  readonly activeCount: number;

  /** True once `close()` was called. */
  readonly closed: boolean;

  /** Resolves when this guard holds no key (no turn running, nothing pending). */
  onIdle(): Promise<void>;

  /**
   * Stop admitting (later `submit`s resolve `"dropped"`, reason `shutdown`), let running turns
   * finish — with the memory store their pending input still runs — and at `timeout` abort what
   * remains and release every key. Idempotent.
   *
   * From inside a handler: called before the handler's first `await`, it does not wait for that
   * handler's own turn. After an `await` the guard cannot tell who calls it, so there call it
   * without awaiting it (`void guard.close()`): awaited, it would wait for its own turn until
   * `timeout`. (Likewise a lane or an awaited submit on the turn's own key: see `run`.)
   *
   * With a shared store (Redis) a key whose handler is still running at `timeout` is never given
   * to another replica: its signal is aborted and the report counts it, but its lease is kept and
   * renewed until the handler settles, then handed over. `close` resolves at `timeout` all the
   * same; a process that exits before the handler settles leaves the lease to lapse, as a crash
   * would.
   *
   * @example
   * ```ts
   * process.once("SIGTERM", async () => {
   *   const report = await guard.close({ timeout: 10_000 });
   *   console.log(`aborted ${report.aborted} turn(s), dropped ${report.dropped.length} input(s)`);
   * });
   * ```
   */
  close(options?: CloseOptions): Promise<CloseReport<I>>;

  /**
   * Listen to a lifecycle event: `admitted`, `queued`, `started`, `finished`, `dropped`, `error`,
   * `stuck`, `settled`. Returns the function that unsubscribes. An unknown event name throws a `TypeError`. A
   * listener that throws is reported to `onError` (once per throw) and never re-emitted as
   * `error`; the other listeners still run.
   */
  on<K extends keyof GuardEvents<I>>(event: K, listener: Listener<GuardEvents<I>[K]>): () => void;
}
