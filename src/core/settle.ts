// === Settle windows: a burst, or a group, becomes one turn
//
// A turn that holds its key may wait before its handler runs:
// - a burst window (`settle` option): an idle key's first input waits `settle` ms, then the input
//   that arrived meanwhile joins it (modes that coalesce);
// - a group window (`submit(…, { group, settle })`): a turn with an entry of a group waits until no
//   entry of that group arrived for `settle` ms. Entries of the group that arrived at any replica
//   are pending in the store; when the quiet period ends, the turn takes them (`take` by group) and,
//   if any of them arrived at another replica, waits once more. Arrivals at this process restart
//   the wait at once (`arrived`), so on one replica the window is exactly "quiet for `settle` ms".

import type { AdmitPolicy, BatchPolicy, Take } from "../stores/store.js";
import type { Engine } from "./engine.js";
import type { GuardEntry } from "./entry.js";
import { cancel, schedule } from "./timers.js";
import type { TurnState } from "./turn.js";

export class SettleWindows<I> {
  readonly #engine: Engine<I>;
  readonly #burst: number;
  readonly #batch: BatchPolicy;
  #joinPolicy: AdmitPolicy | undefined;

  constructor(engine: Engine<I>, burst: number, batch: BatchPolicy) {
    this.#engine = engine;
    this.#burst = burst;
    this.#batch = batch;
  }

  /** Launch the turn now, or once its window is over. */
  begin(turn: TurnState<I>, admitted: boolean): void {
    const entries = turn.entries;
    for (let i = entries.length - 1; i >= 0; i--) {
      const { group, settle } = entries[i] as GuardEntry<I>;
      if (group === undefined) continue;
      const extra = turn.more();
      extra.settling = group;
      extra.settleMs = settle ?? this.#burst;
      this.#arm(turn);
      return;
    }
    if (admitted && this.#burst > 0 && !(entries[0] as GuardEntry<I>).alone) {
      turn.timer = schedule(() => this.#burstOver(turn), this.#burst);
      return;
    }
    this.#engine.launch(turn);
  }

  /**
   * The admission policy of an entry of `group`: in `reject` mode, a photo whose album is still
   * gathering in a turn of this guard joins it rather than being refused as busy (at another
   * replica, which cannot know the album is gathering, it is refused like any input).
   */
  policy(key: string, group: string, base: AdmitPolicy): AdmitPolicy {
    const engine = this.#engine;
    if (base.whenHeld !== "reject" || engine.keys.get(key)?.extra?.settling !== group) return base;
    if (base !== engine.admitPolicy) return { ...base, whenHeld: "enqueue" };
    this.#joinPolicy ??= { ...engine.admitPolicy, whenHeld: "enqueue" };
    return this.#joinPolicy;
  }

  /** An entry of `group` was queued here while `turn` holds the key: restart its quiet period. */
  arrived(turn: TurnState<I>, group: string): void {
    if (turn.phase === "claimed" && turn.extra?.settling === group && turn.timer !== undefined)
      this.#arm(turn);
  }

  /** The turn ends (or runs): its window, if any, is over. */
  cancel(turn: TurnState<I>): void {
    if (turn.timer === undefined) return;
    cancel(turn.timer);
    turn.timer = undefined;
  }

  #arm(turn: TurnState<I>): void {
    cancel(turn.timer);
    turn.timer = schedule(() => this.#quiet(turn), turn.extra?.settleMs ?? 0);
  }

  /** No entry of the group arrived here for a while: take those that arrived elsewhere. */
  #quiet(turn: TurnState<I>): void {
    turn.timer = undefined;
    if (turn.phase !== "claimed") return;
    if (turn.abortReason !== undefined) {
      this.#engine.launch(turn);
      return;
    }
    this.#takeInto(turn, this.#batch, turn.extra?.settling as string, (taken) => {
      // Entries admitted here restarted the window as they came (`arrived`). One that arrived at
      // another replica (revived here, with no run of its own) did not: the group may not be
      // complete yet, so wait once more.
      if (taken.some((entry) => entry.run === undefined)) {
        this.#arm(turn);
        return;
      }
      if (turn.extra !== undefined) turn.extra.settling = undefined;
      this.#engine.launch(turn);
    });
  }

  /** The burst window is over: inputs that arrived during it join the turn (modes that coalesce). */
  #burstOver(turn: TurnState<I>): void {
    turn.timer = undefined;
    if (turn.phase !== "claimed") return;
    if (this.#batch !== "all" || turn.abortReason !== undefined) {
      this.#engine.launch(turn);
      return;
    }
    this.#takeInto(turn, "all", undefined, () => this.#engine.launch(turn));
  }

  /**
   * Move pending entries (of `group`, when given) into a turn still waiting out its window, then
   * `then`. A turn stopped meanwhile hands them on (`Exits.late`); if the take fails, the window's
   * late arrivals stay pending for the next turn and this one runs as it is.
   */
  #takeInto(
    turn: TurnState<I>,
    batch: BatchPolicy,
    group: string | undefined,
    then: (taken: readonly GuardEntry<I>[]) => void,
  ): void {
    const engine = this.#engine;
    engine.exits.storeCall(
      turn,
      "take",
      () => engine.store.take(turn.key, turn.claim, batch, group),
      (taken: Take<GuardEntry<I>>) => {
        if (taken.status === "lost") return engine.lost(turn);
        engine.ends.droppedAll(turn.key, taken.dropped);
        if (turn.phase !== "claimed") return engine.exits.late(turn, taken.entries);
        turn.append(taken.entries);
        then(taken.entries);
      },
      () => engine.launch(turn),
    );
  }
}
