// === Shown to the user: a reaction on waiting input, a reaction or a notice on dropped input
//
// A message that has to wait behind a running turn gets a reaction (👀 by default), taken off
// when its turn starts; a message that is dropped gets a reaction or a short notice per reason
// (`busy`, `overflow`, `expired`, `stopped` by default; `superseded` and `shutdown` when asked;
// never for `duplicate`, the same message again, or `withdrawn`, which the user deleted). Off by
// default; one switch turns it on (`reactions: true`), an object customises it.
//
// Each adapter brings the platform calls (`ShownPlatform`); this file holds the rest, once: the
// option, which event shows what, and the order of the calls of one message (the reaction is
// taken off only after it was put on, and a drop's own reaction or notice comes after that).
// Reacted messages are known by their platform id, not by object: an edit may put another object
// for the same message in the turn (Slack builds one from the change event). A
// platform call that fails (rate limit, missing permission) never touches the turn: it is
// reported to `onError` with the input, and the turn runs on.

import type { DropReason, Guard } from "session-guard";
import { describe, type OptionChecks } from "./options.js";

/** The drop reasons that can be shown (never `duplicate` or `withdrawn`). */
export type ShownReason = "busy" | "overflow" | "expired" | "stopped" | "superseded" | "shutdown";

const SHOWN_REASONS: ReadonlySet<string> = new Set<ShownReason>([
  "busy",
  "overflow",
  "expired",
  "stopped",
  "superseded",
  "shutdown",
]);

/**
 * What a dropped input gets: a notice (its text, or `{ reply: text }`), a reaction
 * (`{ react: emoji }`), or `false` for nothing.
 */
export type DropNotice =
  | string
  | {
      /** The reaction to put on the dropped message. */
      readonly react: string;
    }
  | {
      /** The notice to answer the dropped message with. */
      readonly reply: string;
    }
  | false;

/** The `reactions` option of every adapter: `true` for the defaults, or what to change. */
export interface ReactionOptions {
  /** The reaction on input that waits behind a running turn, or `false` for none. */
  readonly queued?: string | false;
  /** Per drop reason, what the dropped input gets; reasons left out keep their default. */
  readonly dropped?: {
    /** Refused while a turn runs (`mode: "reject"`). Default: a short notice. */
    readonly busy?: DropNotice;
    /** Past `maxPending` or `maxPendingTotal`. Default: a short notice. */
    readonly overflow?: DropNotice;
    /** Waited past `pendingTtl` or its own expiry. Default: a short notice. */
    readonly expired?: DropNotice;
    /** Dropped by a stop. Default: a 🤷 reaction (Slack: `shrug`). */
    readonly stopped?: DropNotice;
    /** Replaced by a newer input (`mode: "latest"`). Default: nothing. */
    readonly superseded?: DropNotice;
    /** Dropped because the guard shut down. Default: nothing. */
    readonly shutdown?: DropNotice;
  };
}

/** A notice, resolved: a reaction or a reply text. */
type Notice = { readonly react: string } | { readonly reply: string };

/** The option, checked and merged with the platform's defaults. */
export interface ShownSettings {
  readonly queued: string | undefined;
  readonly dropped: ReadonlyMap<DropReason, Notice>;
}

/** The notices every platform shows by default; `stopped` reacts with the platform's emoji. */
export const DEFAULT_NOTICES = {
  busy: "I'm still working on your earlier message; send this again once I'm done.",
  overflow: "Too many messages are waiting here; this one was dropped.",
  expired: "This message waited too long and was dropped; please send it again.",
} as const;

/**
 * Check the `reactions` option: `undefined`/`false` (off), `true`, or a `ReactionOptions`. `emoji`
 * checks an emoji for the platform (and says which are allowed when it throws). Answers
 * `undefined` when off.
 *
 * @example
 * ```ts
 * const shown = shownSettings(check, options.reactions, { queued: "👀", stopped: "🤷" }, isEmoji);
 * ```
 */
export function shownSettings(
  check: OptionChecks,
  value: unknown,
  defaults: { readonly queued: string; readonly stopped: string },
  emoji: (name: string, value: string) => void,
): ShownSettings | undefined {
  if (value === undefined || value === false) return undefined;
  const dropped = new Map<DropReason, Notice>([
    ["busy", { reply: DEFAULT_NOTICES.busy }],
    ["overflow", { reply: DEFAULT_NOTICES.overflow }],
    ["expired", { reply: DEFAULT_NOTICES.expired }],
    ["stopped", { react: defaults.stopped }],
  ]);
  if (value === true) return { queued: defaults.queued, dropped };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw check.error(
      `"reactions" must be true, false or { queued?, dropped? }, got ${describe(value)}.`,
    );
  }
  const options = value as ReactionOptions;
  const known = Object.keys(options).filter((name) => name !== "queued" && name !== "dropped");
  if (known.length > 0) {
    throw check.error(`"reactions" takes { queued?, dropped? }, got "${known[0]}".`);
  }
  let queued: string | undefined = defaults.queued;
  if (options.queued === false) queued = undefined;
  else if (options.queued !== undefined) {
    if (typeof options.queued !== "string" || options.queued === "") {
      throw check.error(
        `"reactions.queued" must be an emoji or false, got ${describe(options.queued)}.`,
      );
    }
    emoji("reactions.queued", options.queued);
    queued = options.queued;
  }
  const given = options.dropped ?? {};
  if (typeof given !== "object" || given === null) {
    throw check.error(`"reactions.dropped" must be an object by reason, got ${describe(given)}.`);
  }
  for (const [reason, notice] of Object.entries(given)) {
    const name = `reactions.dropped.${reason}`;
    if (!SHOWN_REASONS.has(reason)) {
      throw check.error(
        `"${name}": only busy, overflow, expired, stopped, superseded and shutdown can be shown (a duplicate is the same message again; a withdrawn one was deleted).`,
      );
    }
    const resolved = noticeOf(check, name, notice, emoji);
    if (resolved === undefined) dropped.delete(reason as DropReason);
    else dropped.set(reason as DropReason, resolved);
  }
  return { queued, dropped };
}

function noticeOf(
  check: OptionChecks,
  name: string,
  notice: unknown,
  emoji: (name: string, value: string) => void,
): Notice | undefined {
  if (notice === false || notice === undefined) return undefined;
  if (typeof notice === "string" && notice.trim() !== "") return { reply: notice };
  const record = notice as { react?: unknown; reply?: unknown } | null;
  if (typeof record === "object" && record !== null) {
    if (typeof record.react === "string" && record.react !== "" && record.reply === undefined) {
      emoji(name, record.react);
      return { react: record.react };
    }
    if (
      typeof record.reply === "string" &&
      record.reply.trim() !== "" &&
      record.react === undefined
    )
      return { reply: record.reply };
  }
  throw check.error(
    `"${name}" must be a notice text, { reply: text }, { react: emoji } or false, got ${describe(notice)}.`,
  );
}

/** The platform calls behind the reactions and notices of one adapter. */
export interface ShownPlatform<I> {
  /** Whether `input` is this adapter's and can carry a reaction or notice (a shared guard holds others). */
  owns(input: unknown): input is I;
  /** The message's platform id (the same for its edited form), or `undefined` if it takes no reaction. */
  idOf(input: I): string | undefined;
  /** Put the bot's reaction `emoji` on the input's message. */
  react(input: I, emoji: string): Promise<unknown>;
  /** Take the bot's reaction `emoji` off again (a reaction already gone is no failure). */
  unreact(input: I, emoji: string): Promise<unknown>;
  /** Answer the input with a short notice. */
  reply(input: I, text: string): Promise<unknown>;
}

const DONE: Promise<void> = Promise.resolve();

/** Messages with the queued reaction kept at most (the oldest go: a turn at another replica ran them). */
const REACTED_MAX = 10_000;

/** A platform call as a promise: a synchronous throw rejects it. */
function call(work: () => Promise<unknown>): Promise<unknown> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Show what becomes of an adapter's input: subscribes to the guard's `queued`, `dropped` and
 * `settled` events; the adapter calls `started` when a turn of its inputs begins.
 *
 * @example
 * ```ts
 * const shown = new ShownOutcomes(guard, settings, platform, reportError);
 * // when a turn runs: shown.started(turn.key, turn.inputs);
 * ```
 */
export class ShownOutcomes<I extends object> {
  readonly #settings: ShownSettings;
  readonly #platform: ShownPlatform<I>;
  readonly #report: (error: unknown, key: string, input?: I) => void;
  /** Messages that got the queued reaction, by id: whether putting it on succeeded, once known. */
  readonly #reacted = new Map<string, Promise<boolean>>();

  constructor(
    guard: Guard<I>,
    settings: ShownSettings,
    platform: ShownPlatform<I>,
    report: (error: unknown, key: string, input?: I) => void,
  ) {
    this.#settings = settings;
    this.#platform = platform;
    this.#report = report;
    if (settings.queued !== undefined) {
      guard.on("queued", ({ key, input }) => this.#queued(key, input));
      // Input a running turn took in (`take()`) ends with that turn: its reaction goes then. A
      // dropped input's reaction is `#dropped`'s to change: it clears the queued one first, then
      // puts the drop's on (clearing here too could land after the drop's reaction and wipe it).
      guard.on("settled", ({ key, input, outcome }) => {
        if (this.#reacted.size > 0 && outcome.state !== "dropped") void this.#unreact(key, input);
      });
    }
    guard.on("dropped", ({ key, input, reason }) => this.#dropped(key, input, reason));
  }

  /**
   * A turn of `inputs` starts: take the queued reaction off those that waited. `remote` tells the
   * inputs rebuilt from another replica's payload: they waited there (that replica reacted), so
   * their reaction goes too.
   */
  started(key: string, inputs: readonly unknown[], remote?: (input: unknown) => boolean): void {
    if (this.#settings.queued === undefined) return;
    for (const input of inputs) {
      if (this.#marked(input) !== undefined) void this.#unreact(key, input);
      else if (remote?.(input) && this.#platform.owns(input)) {
        const emoji = this.#settings.queued;
        call(() => this.#platform.unreact(input, emoji)).catch((error: unknown) =>
          this.#report(error, key, input),
        );
      }
    }
  }

  /** The id under which `input` carries the queued reaction, if it does. */
  #marked(input: unknown): string | undefined {
    if (this.#reacted.size === 0 || !this.#platform.owns(input)) return undefined;
    const id = this.#platform.idOf(input);
    return id !== undefined && this.#reacted.has(id) ? id : undefined;
  }

  #queued(key: string, input: unknown): void {
    const emoji = this.#settings.queued;
    if (emoji === undefined || !this.#platform.owns(input)) return;
    const id = this.#platform.idOf(input);
    if (id === undefined || this.#reacted.has(id)) return;
    const reacted = call(() => this.#platform.react(input, emoji)).then(
      () => true,
      (error: unknown) => {
        this.#report(error, key, input);
        return false;
      },
    );
    this.#reacted.set(id, reacted);
    if (this.#reacted.size > REACTED_MAX) {
      this.#reacted.delete(this.#reacted.keys().next().value as string);
    }
  }

  /** Take the queued reaction off, once it is on; resolves when done (failures reported). */
  #unreact(key: string, input: unknown, skip = false): Promise<unknown> {
    const id = this.#marked(input);
    if (id === undefined) return DONE;
    const reacted = this.#reacted.get(id) as Promise<boolean>;
    this.#reacted.delete(id);
    const emoji = this.#settings.queued as string;
    return reacted.then((on) => {
      if (!on || skip) return;
      return call(() => this.#platform.unreact(input as I, emoji)).catch((error: unknown) =>
        this.#report(error, key, input as I),
      );
    });
  }

  #dropped(key: string, input: unknown, reason: DropReason): void {
    // A deleted message cannot carry a reaction any more: forget it, call nothing.
    const cleared = this.#unreact(key, input, reason === "withdrawn");
    const notice = this.#settings.dropped.get(reason);
    if (notice === undefined || !this.#platform.owns(input)) return;
    const platform = this.#platform;
    cleared
      .then(() =>
        "react" in notice
          ? platform.react(input, notice.react)
          : platform.reply(input, notice.reply),
      )
      .catch((error: unknown) => this.#report(error, key, input));
  }
}
