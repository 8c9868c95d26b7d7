// === `ctx.turn`: the turn a guarded update runs in
//
// The core's turn holds the admitted contexts. Two kinds of them are not what the handler should
// see in `ctx.turn.inputs`: a context rebuilt from another replica's update (the handler sees the
// context its replay through `bot.handleUpdate` ran with), and the one input that stands for a
// whole album in stores written by earlier versions (expanded into its photos).

import type { Context } from "grammy";
import type { Carried, Revision, Turn } from "session-guard";

/**
 * The turn's `AbortSignal`, typed so that grammY accepts it without a cast.
 *
 * On Node, grammY types the signal parameter of its API calls with the `abort-controller` shim,
 * which a standard `AbortSignal` does not satisfy under strict TypeScript. This intersection is
 * both: pass it to `ctx.reply(text, {}, signal)` and every other API call, and to `fetch` or an AI
 * SDK. At run time it is a standard `AbortSignal`.
 */
export type TurnSignal = AbortSignal & NonNullable<Parameters<Context["reply"]>[2]>;

/** The turn a guarded update runs in, as `ctx.turn`. */
export interface GrammyTurn<C> {
  /** The key this turn holds (bot, chat and forum topic by default). */
  readonly key: string;
  /**
   * Every context of the turn, oldest first: coalesced messages, each photo of an album, then the
   * contexts `take()` moved in. The context the handler runs with is the last one admitted.
   */
  readonly inputs: readonly C[];
  /** Aborted on stop, interrupt, timeout or shutdown; `signal.reason` says which. */
  readonly signal: TurnSignal;
  /** Grows with every claim of the key: store it with what the turn writes. */
  readonly fence: number;
  /** Updates of this key waiting right now. */
  readonly pendingCount: number;
  /** True once the turn no longer holds its key. */
  readonly stale: boolean;
  /** Move pending updates into this turn (steer mode); resolves with the contexts moved. */
  take(): Promise<C[]>;
  /** Learn that updates arrived during the turn; returns the function that unsubscribes. */
  onPending(listener: (pending: number) => void): () => void;
  /**
   * Record work for the key's next turn, kept if this turn is cut short (interrupted, timed out,
   * handed over): see the core `Turn.carry`. Plain JSON data; the last value wins.
   */
  carry(value: unknown): void;
  /** What turns of this key cut short before this one carried, oldest first. */
  readonly carried: readonly Carried[];
  /**
   * Learn that a message of this turn was edited (`input`: a context carrying the edited message)
   * or deleted (`input` undefined; business chats only) while the turn runs; `inputs` stay as they
   * were, so the agent can restart or adjust. Edits that came before the listener subscribed are
   * told to it on subscribing (the latest of each message). Returns the function that unsubscribes.
   */
  onRevision(listener: (revision: Revision<C>) => void): () => void;
}

/** The context flavor that adds `ctx.turn` (grammY's flavor pattern). */
export interface TurnContextFlavor {
  /**
   * The running turn. Present on updates the guard ran as a turn; reading it on a bypassed update
   * (a callback query, a stop command, an update with no chat) throws an error that says so.
   */
  readonly turn: GrammyTurn<this>;
}

/** `Context` with `ctx.turn`: `type MyContext = TurnFlavor<Context>`. */
export type TurnFlavor<C extends Context = Context> = C & TurnContextFlavor;

/** `ctx.turn` on an update the guard did not run as a turn: reading it says why. */
export const NO_TURN: PropertyDescriptor = {
  configurable: true,
  get() {
    throw new Error(
      "ctx.turn is not available: this update was not run as a turn (a callback query, a stop command, an edit or deletion of a message, an update without a chat, or one your `bypass` let through).",
    );
  },
};

/** The photos an input stands for (an album stored whole by an earlier version). */
export const albumOf = new WeakMap<object, readonly unknown[]>();

/** A context rebuilt from another replica's update → the context its replay runs with. */
export const replayedAs = new WeakMap<object, unknown>();

/**
 * Whether any input was ever given an album or a replayed context (only across replicas): until
 * then `inputs` are the core turn's own, with no lookup and no copy per turn.
 */
let mapped = false;

/** Record the photos `input` stands for. */
export function setAlbum(input: object, photos: readonly unknown[]): void {
  mapped = true;
  albumOf.set(input, photos);
}

/** Record the context a rebuilt `input` is replayed as. */
export function setReplayed(input: object, ctx: unknown): void {
  mapped = true;
  replayedAs.set(input, ctx);
}

function replayed<C>(input: C): C {
  if (!mapped) return input;
  return (replayedAs.get(input as object) as C | undefined) ?? input;
}

function expand<C>(inputs: readonly C[]): readonly C[] {
  if (!mapped) return inputs;
  const out: C[] = [];
  for (const input of inputs) {
    const album = albumOf.get(input as object) as readonly C[] | undefined;
    if (album === undefined) out.push(replayed(input));
    else for (const photo of album) out.push(replayed(photo));
  }
  return out;
}

/**
 * Attach `turn` to `ctx` as `ctx.turn`; `taken` learns of the contexts `take()` moves in. `own`:
 * no input of this guard is ever rebuilt from another replica, so with nothing to learn of taken
 * contexts the core's turn is `ctx.turn` itself (what `createGuard` handlers get), with no view
 * object per turn.
 */
export function attachTurn<C>(
  ctx: C,
  turn: Turn<C>,
  taken: ((turn: Turn<C>, inputs: readonly C[]) => void) | undefined,
  own: boolean,
): void {
  (ctx as { turn?: GrammyTurn<C> }).turn =
    own && taken === undefined ? (turn as GrammyTurn<C>) : new TurnView(turn, taken);
}

/** Give every context of a turn that has none the `ctx.turn` of the one the turn runs with. */
export function shareTurn<C>(inputs: readonly C[], ctx: C): void {
  const turn = (ctx as { turn?: GrammyTurn<C> }).turn;
  for (const input of inputs) {
    const other = input as { turn?: GrammyTurn<C> };
    if (input !== ctx && typeof input === "object" && input !== null && other.turn === undefined) {
      other.turn = turn;
    }
  }
}

class TurnView<C> implements GrammyTurn<C> {
  readonly #turn: Turn<C>;
  readonly #taken: ((turn: Turn<C>, inputs: readonly C[]) => void) | undefined;
  #inputs: readonly C[] | undefined;
  #seen = 0;

  constructor(turn: Turn<C>, taken: ((turn: Turn<C>, inputs: readonly C[]) => void) | undefined) {
    this.#turn = turn;
    this.#taken = taken;
  }
  get key() {
    return this.#turn.key;
  }
  /** Logged like the core's turn: its key and fence. */
  toJSON(): unknown {
    return (this.#turn as { toJSON?: () => unknown }).toJSON?.() ?? { key: this.key };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): unknown {
    return this.#turn;
  }
  get inputs(): readonly C[] {
    const inputs = this.#turn.inputs;
    if (this.#inputs === undefined || this.#seen !== inputs.length) {
      this.#inputs = expand(inputs);
      this.#seen = inputs.length;
    }
    return this.#inputs;
  }
  get signal() {
    return this.#turn.signal as TurnSignal;
  }
  get fence() {
    return this.#turn.fence;
  }
  get pendingCount() {
    return this.#turn.pendingCount;
  }
  get stale() {
    return this.#turn.stale;
  }
  async take(): Promise<C[]> {
    const taken = await this.#turn.take();
    this.#taken?.(this.#turn, taken);
    return mapped ? (expand(taken) as C[]) : taken;
  }
  onPending(listener: (pending: number) => void) {
    return this.#turn.onPending(listener);
  }
  carry(value: unknown): void {
    this.#turn.carry(value);
  }
  get carried(): readonly Carried[] {
    return this.#turn.carried;
  }
  onRevision(listener: (revision: Revision<C>) => void): () => void {
    return this.#turn.onRevision((revision) =>
      listener(
        revision.input === undefined
          ? revision
          : { id: revision.id, input: replayed(revision.input) },
      ),
    );
  }
}
