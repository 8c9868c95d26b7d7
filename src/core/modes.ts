// === Busy modes
//
// What happens to input that arrives while a key's turn runs. Each mode is a small table row: how
// the store admits the input (`whenHeld`), how pending input is grouped into the next turn
// (`batch`), and whether new input aborts the running turn (`interrupts`). Stores apply the first
// two atomically; the guard applies the third.

import type { BatchPolicy } from "../stores/store.js";

/** What happens to input that arrives while a turn of its key runs. */
export type Mode = "collect" | "queue" | "steer" | "interrupt" | "latest" | "reject";

/** One mode's behaviour, as the guard and the store apply it. */
export interface ModeBehaviour {
  /** What the store does with input for a held key (see `AdmitPolicy.whenHeld`). */
  readonly whenHeld: "enqueue" | "latest" | "reject";
  /** How pending input forms the next turn: all of it coalesced, or one input per turn. */
  readonly batch: BatchPolicy;
  /** New input aborts the running turn (reason `superseded`). */
  readonly interrupts: boolean;
}

/** The modes table (docs/busy-modes.md). */
export const MODES: Readonly<Record<Mode, ModeBehaviour>> = {
  // pending inputs are coalesced into one next turn
  collect: { whenHeld: "enqueue", batch: "all", interrupts: false },
  // each pending input becomes its own turn, in order
  queue: { whenHeld: "enqueue", batch: "one", interrupts: false },
  // like collect, and the running turn is expected to `take()` pending input mid-run
  steer: { whenHeld: "enqueue", batch: "all", interrupts: false },
  // the running turn is aborted (superseded); the next turn starts once it has settled
  interrupt: { whenHeld: "enqueue", batch: "all", interrupts: true },
  // only the newest pending input is kept; earlier ones are dropped as superseded
  latest: { whenHeld: "latest", batch: "all", interrupts: false },
  // input that arrives during a turn is dropped as busy
  reject: { whenHeld: "reject", batch: "all", interrupts: false },
};
