// === Pending input expires when due
//
// Input with an `expiresAt` (a `pendingTtl`, a dying interaction token) is dropped as `expired`
// when due, not when its turn would have formed. One timer serves the whole guard: it is armed for
// the earliest expiry of any key this guard queued input for, or holds (a shared store's renewal
// tells the holder the earliest expiry of input other replicas queued). Stores without `expire`
// drop expired input when the next batch forms.

import type { Expiry } from "../stores/store.js";
import type { Engine } from "./engine.js";
import type { GuardEntry } from "./entry.js";
import { settleWith } from "./settle-with.js";
import { cancel, type LongTimer, schedule } from "./timers.js";

export class ExpiryTimer<I> {
  readonly #engine: Engine<I>;
  /** Keys with pending input that expires, and the earliest such `expiresAt`. */
  readonly #expiring = new Map<string, number>();
  #timer: LongTimer | undefined;
  #at = Number.POSITIVE_INFINITY;

  constructor(engine: Engine<I>) {
    this.#engine = engine;
  }

  /** Input that expires at `at` waits for `key`: have it dropped when due. */
  watch(key: string, at: number): void {
    if (this.#engine.store.expire === undefined) return;
    const known = this.#expiring.get(key);
    if (known === undefined || at < known) this.#expiring.set(key, at);
    if (at < this.#at) this.#arm(at);
  }

  /** This guard no longer holds `key`: whoever holds it next watches its input. */
  forget(key: string): void {
    if (this.#expiring.size === 0 || !this.#expiring.delete(key) || this.#expiring.size > 0) return;
    cancel(this.#timer);
    this.#timer = undefined;
    this.#at = Number.POSITIVE_INFINITY;
  }

  #arm(at: number): void {
    cancel(this.#timer);
    this.#at = at;
    // Pending input always waits behind a turn, which keeps the process alive on its own.
    this.#timer = schedule(() => this.#due(), at - Date.now(), true);
  }

  /** Drop the expired input of every key that has some due, and re-arm for the next. */
  #due(): void {
    this.#timer = undefined;
    this.#at = Number.POSITIVE_INFINITY;
    const engine = this.#engine;
    const expire = engine.store.expire as (
      key: string,
    ) => Expiry<GuardEntry<I>> | Promise<Expiry<GuardEntry<I>>>;
    const now = Date.now();
    let earliest = Number.POSITIVE_INFINITY;
    for (const [key, at] of [...this.#expiring]) {
      if (at > now) {
        if (at < earliest) earliest = at;
        continue;
      }
      this.#expiring.delete(key);
      const failed = (error: unknown) => engine.report.incident("expire", error, key);
      let answer: Expiry<GuardEntry<I>> | Promise<Expiry<GuardEntry<I>>>;
      try {
        answer = expire.call(engine.store, key);
      } catch (error) {
        failed(error);
        continue;
      }
      settleWith(
        answer,
        (expiry) => {
          engine.report.recovered("expire");
          engine.ends.droppedAll(key, expiry.dropped);
          if (expiry.next !== Number.POSITIVE_INFINITY) this.watch(key, expiry.next);
        },
        failed,
      );
    }
    if (earliest < this.#at) this.#arm(earliest);
  }
}
