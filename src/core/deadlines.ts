// === Deadlines without a timer per item
//
// A deadline list keeps its items in deadline order, and one timer is armed for the oldest: when
// it fires every expired item at the front is handled and the timer re-armed for the next. Its
// users mostly add items with one fixed timeout (every turn of a guard has the same `turnTimeout`;
// every lease renewal comes `lease/3` after the last), so a new item belongs at the newest end and
// adding it is O(1); an item with a shorter timeout (a renewal retried sooner after a failure)
// walks back from the newest end to its place. The list is intrusive (the items carry their own
// links), so adding and removing are a few pointer writes: no hashing, no allocation, no timer on
// the uncontended path.
//
// The armed timer stays armed when the last item leaves (clearing and re-arming it for every turn
// of a quiet key costs a tenth of the guard's CPU per update), but it must not keep the guard
// alive: through `onExpire` it reaches the guard and every id the guard remembers, and an owner
// that dropped the guard (a bot rebuilt on reload, a guard per test or benchmark round) would keep
// it for `turnTimeout`, a quarter of an hour by default. So the timer reaches the list through an
// `Alarm` that holds it strongly only while items are queued, and weakly once the list is empty.

import { MAX_DELAY } from "./timers.js";

export interface Timed {
  /** When the item expires, in ms since the list was created; owned by `Deadlines` (see `add`). */
  deadline: number;
  /** Links of the deadline list; owned by `Deadlines`. */
  newer: Timed | undefined;
  older: Timed | undefined;
  queued: boolean;
}

/** What the timer holds: the list, strongly while it has items (see the header). */
interface Alarm {
  held: { fire(): void } | undefined;
  readonly weak: WeakRef<{ fire(): void }>;
}

function ring(alarm: Alarm): void {
  (alarm.held ?? alarm.weak.deref())?.fire();
}

export class Deadlines<T extends Timed> {
  /**
   * Deadlines count from here, not from the epoch: a small integer fits in the item itself, where
   * an epoch time would be a heap number allocated per turn.
   */
  readonly #origin = Date.now();
  #oldest: T | undefined;
  #newest: T | undefined;
  readonly #onExpire: (item: T) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedFor = 0;
  readonly #alarm: Alarm;

  constructor(onExpire: (item: T) => void) {
    this.#onExpire = onExpire;
    this.#alarm = { held: undefined, weak: new WeakRef(this) };
  }

  /**
   * Track an item that expires `timeout` ms from now. O(1) when no item in the list expires later
   * (one fixed timeout); otherwise the item walks back to its place.
   */
  add(item: T, timeout: number): void {
    const deadline = Date.now() - this.#origin + timeout;
    item.deadline = deadline;
    item.queued = true;
    // The newest item expiring no later than this one: the new item goes right after it.
    let before = this.#newest;
    while (before !== undefined && before.deadline > deadline)
      before = before.older as T | undefined;
    item.older = before;
    if (before === undefined) {
      item.newer = this.#oldest;
      if (this.#oldest === undefined) this.#alarm.held = this;
      else this.#oldest.older = item;
      this.#oldest = item;
    } else {
      item.newer = before.newer;
      before.newer = item;
    }
    if (item.newer === undefined) this.#newest = item;
    else item.newer.older = item;
    // The timer is armed for the oldest item (or for one that has left since, which is no later):
    // a new oldest item that expires sooner needs it sooner.
    if (this.#timer === undefined || (before === undefined && deadline < this.#armedFor)) {
      this.#arm(deadline);
    }
  }

  delete(item: T): void {
    if (!item.queued) return;
    item.queued = false;
    const { older, newer } = item;
    if (older === undefined) {
      this.#oldest = newer as T | undefined;
      if (newer === undefined) this.#alarm.held = undefined;
    } else older.newer = newer;
    if (newer === undefined) this.#newest = older as T | undefined;
    else newer.older = older;
    item.older = undefined;
    item.newer = undefined;
  }

  /** Stop the timer (the guard closed). */
  clear(): void {
    while (this.#oldest !== undefined) this.delete(this.#oldest);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(deadline: number): void {
    // One timer at a time: an item added while `fire` runs (a turn started by an expiry) arms
    // one before the loop re-arms; a second, orphaned timer would later fire with `#armedFor` of
    // the newer one and expire items early.
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const now = Date.now() - this.#origin;
    // A deadline past Node's longest timer is reached in steps: the timer fires at the step's end,
    // finds nothing due yet, and re-arms (see `MAX_DELAY`).
    const step = Math.min(Math.max(0, deadline - now), MAX_DELAY);
    this.#armedFor = Math.min(deadline, now + step);
    this.#timer = setTimeout(ring, step, this.#alarm);
    // A deadline must not keep the process alive on its own.
    this.#timer.unref?.();
  }

  /** The timer rang: expire every item that is due, and re-arm for the next. Internal. */
  fire(): void {
    this.#timer = undefined;
    const now = Math.max(Date.now() - this.#origin, this.#armedFor);
    for (let item = this.#oldest; item !== undefined; item = this.#oldest) {
      if (item.deadline > now) {
        this.#arm(item.deadline);
        return;
      }
      this.delete(item);
      this.#onExpire(item);
    }
  }
}
