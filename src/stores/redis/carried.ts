// === Carried work in Redis: what turns cut short hand on, kept with the key (issue 15)
//
// A turn's latest carried value is written next to its lease (`carry`, fenced by the claim), so a
// replica that takes the key over after a crash or a lease loss hands it on as `lease-lost`; the
// scripts that hand a key on move it into the key's records (lua/carried.ts, format.ts). This file
// is the process side: the CARRY call, the records in a script's answer, and which claims of this
// process have carried work, so that the release of a claim that never had any stays the hot path
// (three keys, no carry list).

import type { CarriedRecord, CarryOn, CarryReason, Claim, StoreEntry } from "session-guard";
import { list, text } from "./entries.js";
import { SCRIPTS } from "./lua/index.js";
import type { StoreParts } from "./parts.js";

const REASONS: ReadonlySet<string> = new Set(["superseded", "timeout", "lease-lost", "shutdown"]);

/** The records of a script's answer ("<reason>|<fence>|<json>", oldest first), or `undefined`. */
export function readCarried(reply: unknown): CarriedRecord[] | undefined {
  const items = list(reply);
  if (items.length === 0) return undefined;
  const records: CarriedRecord[] = [];
  for (const item of items) {
    const record = text(item);
    const a = record.indexOf("|");
    const b = record.indexOf("|", a + 1);
    const reason = record.slice(0, a);
    // Written by this version's scripts only; anything else is not ours to hand to a turn.
    if (a < 0 || b < 0 || !REASONS.has(reason)) continue;
    records.push({
      reason: reason as CarryReason,
      fence: Number(record.slice(a + 1, b)),
      data: record.slice(b + 1),
    });
  }
  return records.length === 0 ? undefined : records;
}

/** The carry arguments of FINISH and ABANDON: the reason ("" discards) and the value ("" none). */
export function carryArgs(carry: CarryOn | undefined): [string, string] {
  if (carry === undefined) return ["", ""];
  if (!REASONS.has(carry.reason)) {
    throw new TypeError(
      `redisStore: carry.reason must be one of ${[...REASONS].join(", ")}, not ${JSON.stringify(carry.reason)}.`,
    );
  }
  return [carry.reason, carry.data ?? ""];
}

/**
 * Claims (tokens) of this process that have carried work in Redis: handed records, or a value
 * written. Their finish declares the carry list; every other finish leaves it out.
 */
export class Carrying {
  readonly #tokens = new Set<string>();

  has(token: string): boolean {
    return this.#tokens.has(token);
  }

  /** The claim was handed `records` (a script's answer). */
  handed(token: string, records: readonly CarriedRecord[] | undefined): void {
    if (records !== undefined) this.#tokens.add(token);
  }

  /** The claim's turn writes a value (before the write: it may land even if the call fails). */
  wrote(token: string): void {
    this.#tokens.add(token);
  }

  /** The claim ended here (finish, abandon, lost). */
  ended(token: string): void {
    this.#tokens.delete(token);
  }
}

/** What CARRY needs from the store. */
export interface CarryStore<E extends StoreEntry> extends StoreParts<E> {
  readonly carrying: Carrying;
}

/** Keep the running turn's latest carried value with the key (`undefined` removes it). */
export function carry<E extends StoreEntry>(
  store: CarryStore<E>,
  key: string,
  claim: Claim,
  data: string | undefined,
): Promise<boolean> {
  const names = store.names(key);
  store.carrying.wrote(claim.token);
  return store.scripts.call(
    SCRIPTS.carry,
    [names.lease, names.carry],
    [claim.token, data ?? ""],
    (reply) => Number(reply) === 1,
  );
}
