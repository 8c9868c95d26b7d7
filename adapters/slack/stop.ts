// === Stop in Slack: the stop text stops its thread, a stop command its whole channel
//
// A stop is never admitted: it acts at once, beside the turn, then reaches the listeners. The
// stop text is de-duplicated like a message (`channel:ts`), so the double delivery and retries
// of one stop act once. A stop command stops every turn of its channel, threads included.

import type { Guard } from "session-guard";
import type { SlackInput } from "./types.js";

/** The keys this adapter holds, by channel, so that a stop command can stop a whole channel. */
class ChannelKeys {
  readonly #keysOf = new Map<string, Set<string>>();
  readonly #channelsOf = new Map<string, Set<string>>();
  readonly #held: (key: string) => boolean;
  /** Sweep idle keys when the index grows past this (amortized: it doubles with live keys). */
  #limit = 64;

  constructor(held: (key: string) => boolean) {
    this.#held = held;
  }

  add(channel: string, key: string): void {
    let channels = this.#channelsOf.get(key);
    if (channels === undefined) {
      channels = new Set();
      this.#channelsOf.set(key, channels);
      if (this.#channelsOf.size > this.#limit) {
        for (const known of [...this.#channelsOf.keys()]) if (known !== key) this.release(known);
        this.#limit = Math.max(64, 2 * this.#channelsOf.size);
      }
    }
    channels.add(channel);
    let keys = this.#keysOf.get(channel);
    if (keys === undefined) this.#keysOf.set(channel, (keys = new Set()));
    keys.add(key);
  }

  has(key: string): boolean {
    return this.#channelsOf.has(key);
  }

  /** The held keys of a channel; idle ones are forgotten on the way. */
  of(channel: string): string[] {
    const keys = this.#keysOf.get(channel);
    if (keys === undefined) return [];
    for (const key of [...keys]) this.release(key);
    return [...(this.#keysOf.get(channel) ?? [])];
  }

  /** Forget a key once it is idle (no turn, nothing pending). */
  release(key: string): void {
    const channels = this.#channelsOf.get(key);
    if (channels === undefined || this.#held(key)) return;
    this.#channelsOf.delete(key);
    for (const channel of channels) {
      const keys = this.#keysOf.get(channel);
      keys?.delete(key);
      if (keys?.size === 0) this.#keysOf.delete(channel);
    }
  }
}

/** Ids of stop messages seen recently: the double delivery and retries of a stop act once. */
class RecentIds {
  readonly #expiry = new Map<string, number>();
  readonly #window: number;

  constructor(window: number) {
    this.#window = window;
  }

  /** True if `id` was seen within the window; remembers it otherwise. */
  seen(id: string): boolean {
    if (this.#window <= 0) return false;
    const now = Date.now();
    // Insertion order is expiry order: drop the expired head, and cap the size.
    for (const [old, expiry] of this.#expiry) {
      if (expiry > now && this.#expiry.size < 10_000) break;
      this.#expiry.delete(old);
    }
    if ((this.#expiry.get(id) ?? 0) > now) return true;
    this.#expiry.set(id, now + this.#window);
    return false;
  }
}

/** How the middleware stops turns. */
export class Stops {
  readonly #guard: Guard<SlackInput>;
  readonly #report: (error: unknown, key: string, input: SlackInput) => void;
  readonly #running: ChannelKeys;
  readonly #ids: RecentIds;

  constructor(
    guard: Guard<SlackInput>,
    window: number,
    report: (error: unknown, key: string, input: SlackInput) => void,
  ) {
    this.#guard = guard;
    this.#report = report;
    this.#running = new ChannelKeys((key) => guard.isBusy(key) || guard.pendingCount(key) > 0);
    // With the memory store a finished turn has released its key, or started the next batch, by
    // the next microtask; keys that go idle another way are swept as the index grows.
    guard.on("finished", ({ key }) => {
      if (this.#running.has(key)) queueMicrotask(() => this.#running.release(key));
    });
    this.#ids = new RecentIds(window);
  }

  /** `key` of `channel` is held (or may be, on a shared store): a channel-wide stop reaches it. */
  held(channel: string, key: string): void {
    this.#running.add(channel, key);
  }

  /** The stop text of message `id` in `key`; false if it is a redelivery of a stop seen already. */
  text(key: string, id: string, input: SlackInput): boolean {
    if (this.#ids.seen(id)) return false;
    this.#guard.stop(key).catch((error: unknown) => this.#report(error, key, input));
    return true;
  }

  /** Stop every turn of a channel: its own key (DM, commands) and every thread in it. */
  channel(channel: string, input: SlackInput): void {
    const keys = new Set([channel, ...this.#running.of(channel)]);
    for (const key of keys) {
      this.#guard.stop(key).catch((error: unknown) => this.#report(error, key, input));
    }
  }
}
