// Shared test helpers. Append new exports at the end; do not rewrite existing ones.

import type { Drop, ErrorInfo } from "session-guard";

/** A promise with its resolve and reject functions exposed. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** Create a promise that the test settles by hand. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Wait `ms` real (or fake, under `vi.useFakeTimers()`) milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Let queued microtasks run (promise callbacks, `queueMicrotask`). Works under fake timers, which
 * leave microtasks alone.
 */
export async function flush(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

/** Track whether a promise has settled yet, without awaiting it. */
export function track<T>(promise: Promise<T>): {
  readonly settled: boolean;
  readonly promise: Promise<T>;
} {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  return {
    promise,
    get settled() {
      return settled;
    },
  };
}

/** An `onDrop` that records every drop, in order. */
export function dropRecorder<I>(): { readonly drops: Drop<I>[]; onDrop(drop: Drop<I>): void } {
  const drops: Drop<I>[] = [];
  return { drops, onDrop: (drop) => void drops.push(drop) };
}

/** An `onError` that records every error with its info, in order. */
export function errorRecorder<I>(): {
  readonly errors: { error: unknown; info: ErrorInfo<I> }[];
  onError(error: unknown, info: ErrorInfo<I>): void;
} {
  const errors: { error: unknown; info: ErrorInfo<I> }[] = [];
  return { errors, onError: (error, info) => void errors.push({ error, info }) };
}

/** Let a macrotask pass (real `setImmediate`, which the fake timers used here leave alone). */
export function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
