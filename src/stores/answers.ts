// === The store's answers: what each operation of the seam (`store.ts`) hands back
//
// Every operation may answer synchronously or with a promise (`MaybePromise`). An operation that
// takes a claim answers `lost` rather than throwing when the claim is gone.

import type { DropReason } from "../core/errors.js";
import type { OutcomeState } from "../core/outcomes.js";
import type { Claim } from "./store.js";

/** Why a turn cut short hands its carried work on (`turn.carry`): its abort reason. */
export type CarryReason = "superseded" | "timeout" | "lease-lost" | "shutdown";

/** Work a turn cut short handed on to the key's next turn (`turn.carried`), as a store keeps it. */
export interface CarriedRecord {
  /** The value as JSON text. */
  readonly data: string;
  /** The fence of the turn that carried it. */
  readonly fence: number;
  /** Why that turn was cut short. */
  readonly reason: CarryReason;
}

/**
 * What `finish` and `abandon` hand on: the turn ended aborted for `reason`, and its last carried
 * value is `data` (`undefined`: it carried nothing). Without it, carried work is discarded.
 */
export interface CarryOn {
  /** Why the turn was cut short. */
  readonly reason: CarryReason;
  /** The turn's last carried value as JSON text, or `undefined`. */
  readonly data: string | undefined;
}

/** An entry the store removed without running it, and why. */
export interface StoreDrop<E> {
  /** The entry removed. */
  readonly entry: E;
  /** Why it was removed. */
  readonly reason: DropReason;
}

/** Common part of answers that may have dropped entries on the way (expired, evicted, superseded). */
export interface WithDrops<E> {
  /** Entries the operation removed without running them; the guard reports each one. */
  readonly dropped: readonly StoreDrop<E>[];
}

/** Answer of `acquireOrEnqueue`. */
export type Admission<E> =
  | (WithDrops<E> & {
      /** The key was free: the caller holds it now and runs `batch`. */
      readonly status: "acquired";
      /** The new claim. */
      readonly claim: Claim;
      /**
       * The entries of the first turn, oldest first. Usually the admitted entry alone; a shared
       * store also hands over input left behind by a holder that died.
       */
      readonly batch: E[];
      /** A store that keeps carried work (`carry`): what turns cut short handed on, oldest first. */
      readonly carried?: readonly CarriedRecord[];
    })
  | (WithDrops<E> & {
      /** The key is held: the entry waits as pending input. */
      readonly status: "queued";
      /** Pending entries of the key, this one included. */
      readonly pending: number;
    })
  | {
      /** The entry was refused; it is not stored. */
      readonly status: "rejected";
      /** `busy` (`whenHeld: "reject"`) or `overflow` (a pending cap). */
      readonly reason: "busy" | "overflow";
    }
  | {
      /** The entry's id was seen within the de-duplication window; it is not stored. */
      readonly status: "duplicate";
    };

/** Answer of `finish`. */
export type Finish<E> =
  | (WithDrops<E> & {
      /** Nothing was pending: the key is free. */
      readonly status: "released";
    })
  | (WithDrops<E> & {
      /** Input was pending: the caller keeps the key and runs `batch` as its next turn. */
      readonly status: "next";
      /** The claim of the next turn (a new fence). */
      readonly claim: Claim;
      /** The entries of the next turn, oldest first. */
      readonly batch: E[];
      /** A store that keeps carried work (`carry`): what turns cut short handed on, oldest first. */
      readonly carried?: readonly CarriedRecord[];
    })
  | {
      /** The claim was no longer held (its lease ran out): nothing was released. */
      readonly status: "lost";
    };

/** Answer of `take`. */
export type Take<E> =
  | (WithDrops<E> & {
      /** The claim is held; `entries` moved into the running turn. */
      readonly status: "taken";
      /** The pending entries moved, oldest first (possibly none). */
      readonly entries: E[];
    })
  | {
      /** The claim was no longer held: nothing moved. */
      readonly status: "lost";
    };

/** Answer of `expire`. */
export interface Expiry<E> extends WithDrops<E> {
  /** The earliest `expiresAt` of the entries still pending (`Infinity` when none expires). */
  readonly next: number;
}

/** Answer of `renew`. */
export type Renewal =
  | {
      /** The claim is still held and its lease extended. */
      readonly status: "held";
      /** Pending entries of the key. */
      readonly pending: number;
      /**
       * Another process stopped the key since the claim was made (`Store.stop`): the holder aborts
       * its turn. A shared store carries it here so that a stop never depends on a hint arriving.
       */
      readonly stopped?: boolean;
      /**
       * The earliest `expiresAt` among the key's pending entries, when the store knows it: the
       * holder then drops them on time (`expire`) even if the process that queued them is gone.
       */
      readonly expires?: number;
    }
  | {
      /** The claim was no longer held: the turn has lost its key. */
      readonly status: "lost";
    };

/** What the guard asks a shared store to remember of one input (`Store.record`). */
export interface OutcomeRecord {
  /** The input's id. */
  readonly id: string;
  /** Its state, as `guard.outcome(id)` answers. */
  readonly state: OutcomeState;
  /** With `dropped`: why. */
  readonly reason?: DropReason | undefined;
  /** The fence of the turn that ran it. */
  readonly fence?: number | undefined;
  /** Epoch ms at which the input entered the state. */
  readonly at: number;
}

/** Answer of `stop`. */
export type Stopped<E> =
  | {
      /** The stop was carried out. */
      readonly status: "stopped";
      /** The pending entries removed, oldest first. */
      readonly entries: readonly E[];
      /** A claim held the key (in this process or another): its turn is told to stop. */
      readonly held: boolean;
    }
  | {
      /** A stop with this id was seen before (a redelivery): nothing was done. */
      readonly status: "duplicate";
    };
