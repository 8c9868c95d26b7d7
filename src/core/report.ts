// === Reporting: every error and incident reaches `onError` once, and nothing recurses
//
// Errors of a turn go to `onError` and the `error` event. A listener that throws is reported to
// `onError` only — never re-emitted as `error`, which would call the same listener again. A store
// that fails in the background (renewals, sweeps, expiry) is an incident: reported when it starts
// and once more when the same operation works again, not at every retry.

import { StoreError, StoreRecoveredError } from "./errors.js";
import type { Emitter, GuardEvents } from "./events.js";
import type { ErrorInfo } from "./options.js";

const NO_INPUTS: readonly never[] = Object.freeze([]);

export class Reporter<I> {
  readonly #onError: (error: unknown, info: ErrorInfo<I>) => void;
  readonly #events: Emitter<GuardEvents<I>>;
  /** Background operations failing right now, and since when. */
  readonly #outages = new Map<string, number>();

  constructor(
    onError: (error: unknown, info: ErrorInfo<I>) => void,
    events: Emitter<GuardEvents<I>>,
  ) {
    this.#onError = onError;
    this.#events = events;
  }

  /** An error of a turn (`fence`) or of an input outside a turn: `onError`, then `error`. */
  error(error: unknown, key: string, fence: number | undefined, inputs?: readonly I[]): void {
    const info = { key, inputs: inputs ?? NO_INPUTS, fence };
    this.#call(error, info);
    if (this.#events.has("error")) this.#events.emit("error", { error, ...info });
  }

  /** A listener of `event` threw: to `onError` only. */
  listenerFailed(error: unknown, key: string | undefined): void {
    this.#call(error, { key: key ?? "", inputs: NO_INPUTS, fence: undefined });
  }

  /**
   * A background store operation failed. Reported when `operation` starts failing; later failures
   * of the same operation are the same incident until `recovered(operation)`.
   */
  incident(operation: string, error: unknown, key?: string): void {
    if (this.#outages.has(operation)) return;
    this.#outages.set(operation, Date.now());
    const failure = error instanceof StoreError ? error : new StoreError(operation, key, error);
    this.error(failure, key ?? "", undefined);
  }

  /** A background store operation succeeded: closes its incident, if one is open. */
  recovered(operation: string): void {
    if (this.#outages.size === 0) return;
    const since = this.#outages.get(operation);
    if (since === undefined) return;
    this.#outages.delete(operation);
    this.error(new StoreRecoveredError(operation, Date.now() - since), "", undefined);
  }

  #call(error: unknown, info: ErrorInfo<I>): void {
    try {
      this.#onError(error, info);
    } catch (thrown) {
      console.error("session-guard: onError threw while reporting an error:", thrown, error);
    }
  }
}
