// === Typed errors
//
// Every runtime failure the guard reports is one of these classes, carrying the key (and the
// fence where a turn is involved) so a log line or an `onError` handler has the context it needs.
// Misuse (wrong options, wrong arguments) is a plain `TypeError` with a sentence saying how to
// fix it; those are thrown from `options.ts`.

/** Why a turn's `signal` was aborted. */
export type AbortCode = "stopped" | "superseded" | "timeout" | "shutdown" | "lease-lost";

/**
 * The reason a turn's `AbortSignal` carries (`turn.signal.reason`).
 *
 * Its `name` is `"AbortError"`, like the `DOMException` that `fetch` and most SDKs throw on
 * abort, so code that checks `error.name === "AbortError"` keeps working; `code` says why the
 * turn was aborted.
 *
 * @example
 * ```ts
 * turn.signal.addEventListener("abort", () => {
 *   const reason = turn.signal.reason as TurnAbortedError;
 *   if (reason.code === "stopped") console.log("the user pressed stop");
 * });
 * ```
 */
export class TurnAbortedError extends Error {
  /** Always `"AbortError"`, the name SDKs check for an abort; `code` says why. */
  override name = "AbortError";
  /** Why the turn was aborted. */
  readonly code: AbortCode;
  /** The key whose turn was aborted. */
  readonly key: string;
  /** The fence of the aborted turn. */
  readonly fence: number;

  constructor(code: AbortCode, key: string, fence: number, message?: string) {
    super(message ?? `The turn for key "${key}" (fence ${fence}) was aborted: ${code}.`);
    this.code = code;
    this.key = key;
    this.fence = fence;
  }
}

/**
 * A turn ran longer than `turnTimeout`. It is the abort reason of the turn's signal and is also
 * reported once to `onError`. `abandoned` tells whether the guard released the key without
 * waiting for the turn (`onStuck: "abandon"`); its fence is stale from then on.
 */
export class TurnTimeoutError extends TurnAbortedError {
  /** The `turnTimeout` that elapsed, in milliseconds. */
  readonly timeout: number;
  /** True when the key was released without waiting (`onStuck: "abandon"`). */
  readonly abandoned: boolean;

  constructor(key: string, fence: number, timeout: number, abandoned: boolean) {
    super(
      "timeout",
      key,
      fence,
      `The turn for key "${key}" (fence ${fence}) ran longer than turnTimeout (${timeout} ms)` +
        (abandoned
          ? "; it was abandoned: the key is free and this turn's fence is stale."
          : "; its signal was aborted and the key stays held until the turn settles."),
    );
    this.timeout = timeout;
    this.abandoned = abandoned;
  }
}

/**
 * The turn no longer holds its key in the store (its lease expired or was taken over). The turn
 * must stop: another turn of the same key may be running already, with a higher fence.
 */
export class LeaseLostError extends TurnAbortedError {
  constructor(key: string, fence: number) {
    super(
      "lease-lost",
      key,
      fence,
      `The turn for key "${key}" (fence ${fence}) lost its lease; another turn may hold the key now.`,
    );
  }
}

/**
 * A lane (`guard.run`) could not get the key: it was busy and `onBusy` was `"throw"`, or it stayed
 * busy for longer than `waitTimeout`.
 */
export class ContendedError extends Error {
  /** `"ContendedError"`. */
  override name = "ContendedError";
  /** The contended key. */
  readonly key: string;
  /** How long the lane waited, in milliseconds (0 for `onBusy: "throw"`). */
  readonly waited: number;

  constructor(key: string, waited: number) {
    super(
      waited > 0
        ? `The key "${key}" stayed busy for ${waited} ms (waitTimeout); the lane did not run.`
        : `The key "${key}" is busy; the lane did not run (onBusy: "throw").`,
    );
    this.key = key;
    this.waited = waited;
  }
}

/**
 * `turn.carry(value)` would keep more than `maxCarry` bytes of carried work for the key (this value
 * and what earlier turns cut short handed on, as JSON text): nothing was carried. Carry less (a
 * summary, the tail of a partial answer) or raise `maxCarry`.
 */
export class CarryTooLargeError extends Error {
  /** Always `"CarryTooLargeError"`. */
  override name = "CarryTooLargeError";
  /** The key of the turn that carried. */
  readonly key: string;
  /** The fence of the turn that carried. */
  readonly fence: number;
  /** Bytes the key's carried work would take. */
  readonly bytes: number;
  /** The limit (`maxCarry`). */
  readonly limit: number;

  constructor(key: string, fence: number, bytes: number, limit: number) {
    super(
      `turn.carry(): the carried work of key "${key}" would take ${bytes} bytes, more than maxCarry (${limit}); nothing was carried. Carry less (a summary, the tail of the answer) or raise maxCarry.`,
    );
    this.key = key;
    this.fence = fence;
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** Why an admitted input ended without being handled. */
export type DropReason =
  | "overflow"
  | "stopped"
  | "duplicate"
  | "busy"
  | "superseded"
  | "shutdown"
  | "expired"
  | "withdrawn";

/**
 * A lane (`guard.run`) that waited for its key was dropped before it ran: the key was stopped,
 * the guard closed, or the lane was evicted by `maxPending`.
 */
export class DroppedError extends Error {
  /** `"DroppedError"`. */
  override name = "DroppedError";
  /** The key the lane waited for. */
  readonly key: string;
  /** Why the lane was dropped. */
  readonly reason: DropReason;

  constructor(key: string, reason: DropReason) {
    super(`The lane for key "${key}" was dropped before it ran: ${reason}.`);
    this.key = key;
    this.reason = reason;
  }
}

/**
 * The store could not be reached or answered with an error (for example Redis is down).
 * Admission rejects with it so that the adapter can make the platform redeliver.
 */
export class StoreError extends Error {
  /** `"StoreError"`. */
  override name = "StoreError";
  /** The key of the failed operation (`stopWhere`: the prefix); `undefined` for one of no key (a sweep). */
  readonly key: string | undefined;
  /** The store operation that failed, e.g. `"acquireOrEnqueue"`. */
  readonly operation: string;

  constructor(operation: string, key: string | undefined, cause: unknown) {
    super(
      `The store failed during ${operation}${key === undefined ? "" : ` for key "${key}"`}: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
    this.operation = operation;
    this.key = key;
  }
}

/**
 * The store works again after an outage that was reported as a `StoreError` (an incident is
 * reported once when it starts and once when it ends, never at every retry). Reaches `onError`
 * like the error that opened the incident, so a log or an alert can close it.
 */
export class StoreRecoveredError extends Error {
  /** `"StoreRecoveredError"`. */
  override name = "StoreRecoveredError";
  /** The store operation that works again, e.g. `"renew"` or `"sweep"`. */
  readonly operation: string;
  /** Ms since the first failure of the incident. */
  readonly downFor: number;

  constructor(operation: string, downFor: number) {
    super(`The store's ${operation} works again after failing for ${downFor} ms.`);
    this.operation = operation;
    this.downFor = downFor;
  }
}

/**
 * A call waited for a key whose turn timed out while it waited — what happens when a turn awaits
 * work on its own key (`guard.run(key, …)` or an awaited `submit` from inside that key's turn): the
 * call waits for the turn, the turn for the call. The call settles with this error at the turn's
 * timeout (at once when the guard can tell), so the turn can end and the key moves on. An awaited
 * `submit`'s input is not lost: it stays queued and runs detached.
 */
export class CycleError extends Error {
  /** `"CycleError"`. */
  override name = "CycleError";
  /** The key both the turn and the waiting call are on. */
  readonly key: string;
  /** The fence of the turn the call waited for. */
  readonly fence: number;

  constructor(key: string, fence: number, known: boolean) {
    super(
      known
        ? `A call from inside the turn for key "${key}" (fence ${fence}) waits for that same key: a turn that awaits work on its own key waits for itself (a cycle). Do the work inside the turn, or start it without awaiting it.`
        : `The turn for key "${key}" (fence ${fence}) timed out while this call waited for the key. If the call came from inside that turn, the turn awaited work on its own key, which waits for itself (a cycle): do the work inside the turn, or start it without awaiting it.`,
    );
    this.key = key;
    this.fence = fence;
  }
}

/**
 * `value instanceof type`, for values a handler threw: a revoked proxy or a proxy whose
 * `getPrototypeOf` throws makes `instanceof` throw, and the guard must not.
 */
export function isA<T>(value: unknown, type: abstract new (...args: never[]) => T): value is T {
  try {
    return value instanceof type;
  } catch {
    return false;
  }
}
