// === Albums: the photos of one media group in one turn
//
// Telegram sends an album as one update per photo, sharing `media_group_id`, with no end marker.
// The adapter gathers them until `mediaGroupSettle` passes quietly, then submits the album as one
// input: its last photo, carrying the others.

import type { Context, NextFunction } from "grammy";
import type { Guard, SubmitOptions } from "session-guard";
import { albumOf } from "./turn.js";

/** The contexts of one media group, gathered until the window passes quietly. */
interface Album<C> {
  readonly key: string;
  readonly contexts: C[];
  /**
   * De-duplication id: the media group, so a photo redelivered after its album ran is a duplicate.
   * (A photo straggling in later than `mediaGroupSettle` after its album ran is one too: reported
   * through `onDrop`, never silently lost.)
   */
  readonly id: string;
  next: NextFunction;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Callers under `awaitTurn` wait for the album's turn. */
  waiters: { resolve(): void; reject(error: unknown): void }[];
}

/** How an album's last context enters the guard with its `next`. */
export type SubmitAlbum<C> = (
  key: string,
  ctx: C,
  next: NextFunction,
  options: SubmitOptions,
) => Promise<unknown>;

export class Albums<C extends Context> {
  readonly #albums = new Map<string, Album<C>>();
  readonly #guard: Guard<C>;
  readonly #settle: number;
  readonly #awaitTurn: boolean;
  readonly #submit: SubmitAlbum<C>;
  readonly #report: (error: unknown, key: string, ctx?: C) => void;

  constructor(
    guard: Guard<C>,
    settle: number,
    awaitTurn: boolean,
    submit: SubmitAlbum<C>,
    report: (error: unknown, key: string, ctx?: C) => void,
  ) {
    this.#guard = guard;
    this.#settle = settle;
    this.#awaitTurn = awaitTurn;
    this.#submit = submit;
    this.#report = report;
  }

  /** Add a photo to its album; resolves at once, or under `awaitTurn` with the album's turn. */
  gather(ctx: C, next: NextFunction, key: string, group: string): Promise<void> {
    const albumKey = `${key}:album:${group}`;
    let album = this.#albums.get(albumKey);
    if (album === undefined) {
      album = { key, id: albumKey, contexts: [], next, timer: undefined, waiters: [] };
      this.#albums.set(albumKey, album);
    }
    const updateId = ctx.update.update_id;
    if (album.contexts.some((c) => c.update.update_id === updateId)) {
      // A redelivered photo: the album already holds it. Report it like any duplicate.
      this.#guard.reportDrop({ key, input: ctx, id: album.id, reason: "duplicate" });
      return Promise.resolve();
    }
    album.contexts.push(ctx);
    album.next = next;
    clearTimeout(album.timer);
    const current = album;
    album.timer = setTimeout(() => {
      this.#flush(albumKey, current).catch((error: unknown) => this.#report(error, key, ctx));
    }, this.#settle);
    if (!this.#awaitTurn) return Promise.resolve();
    return new Promise((resolve, reject) => current.waiters.push({ resolve, reject }));
  }

  /** Drop the albums of `key` still gathering (a stop); true if there was one. */
  stop(key: string): boolean {
    let dropped = false;
    for (const [albumKey, album] of this.#albums) {
      if (album.key !== key) continue;
      // An album still gathering is one input that never reached the guard: drop it here.
      this.#albums.delete(albumKey);
      clearTimeout(album.timer);
      const input = album.contexts[album.contexts.length - 1] as C;
      this.#guard.reportDrop({ key, input, id: album.id, reason: "stopped" });
      for (const waiter of album.waiters) waiter.resolve();
      dropped = true;
    }
    return dropped;
  }

  /** Submit every album still gathering (shutdown). */
  flushAll(): void {
    for (const [albumKey, album] of this.#albums) {
      this.#flush(albumKey, album).catch((error: unknown) => this.#report(error, album.key));
    }
  }

  #flush(albumKey: string, album: Album<C>): Promise<unknown> {
    this.#albums.delete(albumKey);
    clearTimeout(album.timer);
    const last = album.contexts[album.contexts.length - 1] as C;
    albumOf.set(last, album.contexts);
    const admitted = this.#submit(album.key, last, album.next, {
      id: album.id,
      awaitTurn: album.waiters.length > 0,
    });
    const waiters = album.waiters;
    admitted.then(
      () => {
        for (const waiter of waiters) waiter.resolve();
      },
      (error: unknown) => {
        for (const waiter of waiters) waiter.reject(error);
      },
    );
    return admitted;
  }
}
