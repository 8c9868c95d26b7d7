// === The busy mode, chosen per input
//
// `mode` may be a function of the arriving input and its key's state, so that "a reply to the bot
// interrupts, ambient chatter is collected" or "collect; past 10 pending, latest; past 50, reject"
// are a few lines. It is called when the key is busy here (with a shared store, whenever it may be
// busy at another replica: the choice only matters if it is). What a choice means on one key:
//
// - `collect`, `steer`, `interrupt`, `latest`: the input waits to be coalesced into the next turn
//   with the pending inputs before and after it, up to the next input that runs alone;
// - `queue`: the input runs as a turn of its own, in order (it is `alone`): collected inputs before
//   it run before it, those after it run after it; steer's `take()` stops at it;
// - `interrupt`: the running turn is aborted (superseded); what is pending runs next, as above;
// - `latest`: the pending inputs it could have joined are dropped (superseded); inputs that run
//   alone (`queue`, interactions) and the rest of its own album stay;
// - `reject`: the input is dropped (busy).
//
// A function that throws or answers no mode is an adapter-style error: reported to `onError`, and
// the input is admitted as the default mode (`collect`) would, never lost.

import type { AdmitPolicy } from "../stores/store.js";
import type { Engine } from "./engine.js";
import type { GuardEntry } from "./entry.js";
import { MODES, type Mode } from "./modes.js";
import { describe } from "./options.js";

/** What a mode function knows of the arriving input's key. */
export interface ModeState {
  /** The key. */
  readonly key: string;
  /** Inputs of the key waiting now, as far as this process knows. */
  readonly pending: number;
  /**
   * Ms the key has had input waiting without a break (0 when none waits): how long the oldest
   * pending input has waited, unless older ones left early (expired, withdrawn, evicted).
   */
  readonly oldestPendingMs: number;
  /** The turn of the key that runs in this process (`undefined` elsewhere, or not yet started). */
  readonly running:
    | {
        /** The running turn's fence. */
        readonly fence: number;
        /** Ms since its handler started. */
        readonly ms: number;
      }
    | undefined;
}

/** Chooses the busy mode of each input that arrives while its key is busy. */
export type ModeFunction<I> = (input: I, state: ModeState) => Mode;

/** The mode a function's error falls back to. */
export const FALLBACK_MODE: Mode = "collect";

export class ModeChoice<I> {
  readonly #engine: Engine<I>;
  readonly #choose: ModeFunction<I>;
  readonly #policies: Readonly<Record<Mode, AdmitPolicy>>;

  constructor(engine: Engine<I>, choose: ModeFunction<I>, base: AdmitPolicy) {
    this.#engine = engine;
    this.#choose = choose;
    const policies = {} as Record<Mode, AdmitPolicy>;
    // One policy object per mode, built once: a shared store caches its encoding by identity.
    for (const mode of Object.keys(MODES) as Mode[]) {
      policies[mode] = { ...base, whenHeld: MODES[mode].whenHeld, batch: "all" };
    }
    this.#policies = policies;
  }

  /**
   * The policy to admit `entry` with. On a busy key the function decides, and the entry keeps its
   * mode (`queue` makes it run alone; `interrupt` aborts the running turn once it is pending).
   */
  choose(key: string, entry: GuardEntry<I>): AdmitPolicy {
    const engine = this.#engine;
    const turn = engine.keys.get(key);
    if (turn === undefined && !engine.shared) return this.#policies[FALLBACK_MODE];
    const now = Date.now();
    const pending = engine.store.pendingCount(key);
    const since = turn === undefined || pending === 0 ? 0 : (turn.extra?.waitingSince ?? 0);
    const state: ModeState = {
      key,
      pending,
      oldestPendingMs: since === 0 ? 0 : now - since,
      running:
        turn !== undefined && turn.phase === "running"
          ? { fence: turn.fence, ms: now - (turn.extra?.startedAt ?? 0) }
          : undefined,
    };
    let mode: unknown;
    try {
      mode = this.#choose(entry.input, state);
      if (typeof mode !== "string" || !Object.hasOwn(MODES, mode)) {
        throw new TypeError(
          `The mode function answered ${describe(mode)} for key "${key}": answer one of ${Object.keys(MODES).join(", ")}.`,
        );
      }
    } catch (error) {
      engine.report.error(error, key, undefined, [entry.input]);
      mode = FALLBACK_MODE;
    }
    const chosen = mode as Mode;
    entry.mode = chosen;
    if (chosen === "queue") (entry as { alone: boolean }).alone = true;
    return this.#policies[chosen];
  }
}
