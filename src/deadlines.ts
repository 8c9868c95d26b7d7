// === Turn deadlines without a timer per turn
//
// Every turn of a guard has the same `turnTimeout`, so deadlines fall in the order turns start. A
// Set in insertion order is therefore a deadline queue: one timer is armed for the oldest turn,
// and when it fires every expired turn at the front is handled and the timer re-armed for the next.
// Finishing a turn is a Set deletion; the uncontended path creates no timer.

export interface Timed {
  /** Epoch ms at which the item expires. */
  deadline: number;
}

export class Deadlines<T extends Timed> {
  readonly #items = new Set<T>();
  readonly #onExpire: (item: T) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedFor = 0;

  constructor(onExpire: (item: T) => void) {
    this.#onExpire = onExpire;
  }

  /** Track an item; its deadline must not be earlier than those already tracked. */
  add(item: T): void {
    this.#items.add(item);
    if (this.#timer === undefined) this.#arm(item.deadline);
  }

  delete(item: T): void {
    this.#items.delete(item);
  }

  /** Stop the timer (the guard closed). */
  clear(): void {
    this.#items.clear();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(deadline: number): void {
    // One timer at a time: an item added while `#fire` runs (a turn started by an expiry) arms
    // one before the loop re-arms; a second, orphaned timer would later fire with `#armedFor` of
    // the newer one and expire items early.
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedFor = deadline;
    this.#timer = setTimeout(this.#fire, Math.max(0, deadline - Date.now()));
    // A deadline must not keep the process alive on its own.
    this.#timer.unref?.();
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    const now = Math.max(Date.now(), this.#armedFor);
    for (const item of this.#items) {
      if (item.deadline > now) {
        this.#arm(item.deadline);
        return;
      }
      this.#items.delete(item);
      this.#onExpire(item);
    }
  };
}
