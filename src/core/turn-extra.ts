// === What only some turns need
//
// A turn lives as long as its handler runs, and the garbage collector copies every live turn at
// each young-generation pause: with a thousand turns in flight, every field of a turn costs time
// on every update. What only a settle window, carried work, a mode function, a timeout or a
// revision listener needs lives here instead, made the first time one of them writes to it.

import type { CarriedRecord } from "../stores/store.js";
import type { Carried } from "./carry.js";
import type { Revision } from "./turn.js";

export class TurnExtra<I> {
  /** The group whose window the turn waits out before it runs (see `SettleWindows`). */
  settling: string | undefined = undefined;
  /** The quiet ms that end that window. */
  settleMs = 0;
  /** The turn outlived `turnTimeout` (whatever aborted its signal first). */
  overdue = false;
  /** What turns cut short before this one handed on (see `carry.ts`). */
  carriedIn: readonly CarriedRecord[] | undefined = undefined;
  /** `carriedIn` as the handler reads it (`turn.carried`), decoded once. */
  carried: readonly Carried[] | undefined = undefined;
  /** This turn's latest carried value as JSON text, and its write to a shared store. */
  carryData: string | undefined = undefined;
  carryWriting = false;
  carryDirty = false;
  /** With a mode function: epoch ms the handler started, and since when input waits (0: none). */
  startedAt = 0;
  waitingSince = 0;
  /** `onRevision` listeners. */
  revisionListeners: Set<(revision: Revision<I>) => void> | undefined = undefined;
  /** Revisions raised by a listener while listeners are told: told after, in order. */
  revising: Revision<I>[] | undefined = undefined;
  /** The latest revision of each input of the turn, told to listeners that subscribe later. */
  revisions: Map<string, Revision<I>> | undefined = undefined;
  /** Ids whose deletion this turn's listeners were told of: a second deletion tells nothing. */
  deleted: Set<string> | undefined = undefined;
}
