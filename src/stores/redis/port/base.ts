// === The Redis port: one small interface over node-redis and ioredis
//
// The store needs three things from a client: send one command routed by its first key (so Redis
// Cluster clients route it to the slot's node), subscribe to hint channels, and close what it
// opened. Both clients are accepted as the user created them; nothing is imported from either.
//
// Commands go through a duplicate connection with no offline queue: a command is either written to
// a live connection or refused, never kept to run after its caller gave up (a timed-out admission
// that ran later would make the platform's redelivery a duplicate while the original is stuck).
// While the connection is down a command waits here for it to come back, up to its deadline, and
// is refused past it without being sent. (A command written to a live socket cannot be taken
// back: if Redis answers it after the deadline, the answer is ignored.)
//
// In a Cluster, readiness is per node: a command waits for the connection to the master of its
// key's slot (the other nodes may be fine), and is handed to the client only once that connection
// is ready, so that the client writes it at once. A command the client or the cluster refused
// before it was written (node-redis "The client is offline", CLUSTERDOWN, TRYAGAIN) waits and is
// sent again within its deadline; one that may have been written is never sent again. The ioredis
// Cluster's own retries would run a command after its caller was told it failed, so its duplicate
// has them turned off (see IoRedisClusterPort).

import { messageOf, type PortEvents, type RedisPort, type Subscriber } from "./types.js";

/** Error of a command that could not be sent or answered in time. */
export function timeoutError(ms: number, sent: boolean, refusal?: unknown): Error {
  if (sent) return new Error(`Redis did not answer within ${ms} ms (commandTimeout)`);
  if (refusal !== undefined) {
    return new Error(
      `Redis refused the command without running it (last: ${messageOf(refusal)}) for ${ms} ms (commandTimeout)`,
    );
  }
  return new Error(
    `Redis is not connected; the command was not sent (waited ${ms} ms, commandTimeout)`,
  );
}

export function closedError(): Error {
  return new Error("The Redis store is closed");
}

/**
 * A command in flight, until it settles or its deadline passes. Every command gets the same
 * timeout, so deadlines come in order: one timer for the oldest does for all (no timer per command
 * on the hot path).
 */
class Flight {
  readonly deadline: number;
  readonly timeout: number;
  resolve: ((value: unknown) => void) | undefined = undefined;
  reject: ((error: Error) => void) | undefined = undefined;
  /** Settled (answered, failed or timed out): the queue of flights may let go of it. */
  done = false;

  constructor(deadline: number, timeout: number) {
    this.deadline = deadline;
    this.timeout = timeout;
  }
}

/** A call waiting for the connection its command needs. */
interface Waiter {
  readonly key: string;
  /** Not sent again before this time (a refused command backs off). */
  readonly notBefore: number;
  go(): void;
}

/** A command that had to wait: since when, how often it was refused unsent, and the last refusal. */
interface Attempt {
  readonly since: number;
  readonly refusals: number;
  readonly last: unknown;
}

/** How often waiting calls look again, besides the connection events that wake them. */
const POLL = 25;

/** Wait before sending a refused command again: 25, 50, 100, 200, 200… ms. */
function backoff(refusals: number): number {
  return Math.min(25 * 2 ** (refusals - 1), 200);
}

/**
 * The part every port shares: a connection that may not be ready yet, and callers that wait for
 * it until their deadline.
 */
export abstract class BasePort implements RedisPort {
  readonly cluster: boolean = false;
  readonly #waiters = new Set<Waiter>();
  #poll: ReturnType<typeof setInterval> | undefined;
  /** Flights, oldest first, from `#head` on; those before it have settled. */
  #flights: (Flight | undefined)[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  protected readonly events: PortEvents;
  protected subscriber: Subscriber | undefined;
  #channels: string[] = [];
  #listener: (message: string) => void = () => {};
  protected closed = false;

  constructor(events: PortEvents) {
    this.events = events;
  }

  protected abstract get ready(): boolean;
  protected abstract send(firstKey: string, args: string[]): Promise<unknown>;
  /** Open a connection subscribed to `channels`; set `subscriber` before its first await. */
  protected abstract open(channels: string[], listener: (message: string) => void): Promise<void>;
  protected abstract closeCommands(): void;

  /** Whether a command for `firstKey` would be written at once (Cluster: by its slot's node). */
  protected readyFor(_firstKey: string): boolean {
    return this.ready;
  }

  /** A command for `firstKey` waits: get its connection going where the client would not. */
  protected nudge(_firstKey: string): void {}

  /** Whether `error` proves the command was never written (then it waits and is sent again). */
  protected unsent(_error: unknown): boolean {
    return false;
  }

  /** The command connection is ready: release the callers waiting for it. */
  protected onReady = (): void => {
    this.events.ready();
    this.wake();
  };

  protected onError = (error: unknown): void => {
    this.events.error(error);
  };

  /** A connection may have become ready: every waiting call looks again. */
  protected readonly wake = (): void => {
    if (this.#waiters.size > 0) {
      const now = Date.now();
      for (const waiter of [...this.#waiters]) {
        if (this.closed || (waiter.notBefore <= now && this.readyFor(waiter.key))) waiter.go();
        else this.nudge(waiter.key);
      }
    }
    if (this.#waiters.size === 0 && this.#poll !== undefined) {
      clearInterval(this.#poll);
      this.#poll = undefined;
    }
  };

  call(firstKey: string, args: string[], deadline: number): Promise<unknown> {
    if (this.closed) return Promise.reject(closedError());
    if (this.readyFor(firstKey)) return this.#send(firstKey, args, deadline, undefined);
    return this.#wait(firstKey, args, deadline, {
      since: Date.now(),
      refusals: 0,
      last: undefined,
    });
  }

  /**
   * Wait until the command's connection is ready (and, after a refusal, a backoff has passed),
   * then send it; past the deadline, refuse it without sending.
   */
  #wait(firstKey: string, args: string[], deadline: number, attempt: Attempt): Promise<unknown> {
    const now = Date.now();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        key: firstKey,
        notBefore: attempt.refusals === 0 ? 0 : now + backoff(attempt.refusals),
        go: () => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(
        () => {
          this.#waiters.delete(waiter);
          reject(timeoutError(Date.now() - attempt.since, false, attempt.last));
        },
        Math.max(0, deadline - now),
      );
      this.#waiters.add(waiter);
      if (this.#poll === undefined) {
        this.#poll = setInterval(this.wake, POLL);
        this.#poll.unref?.();
      }
      this.nudge(firstKey);
    }).then(() => {
      if (this.closed) throw closedError();
      return this.#send(firstKey, args, deadline, attempt);
    });
  }

  /** Send now; `attempt` is set once the command had to wait (undefined on the fast path). */
  #send(
    firstKey: string,
    args: string[],
    deadline: number,
    attempt: Attempt | undefined,
  ): Promise<unknown> {
    const now = Date.now();
    const remaining = deadline - now;
    if (remaining <= 0) {
      return Promise.reject(timeoutError(now - (attempt?.since ?? now), false, attempt?.last));
    }
    let sent: Promise<unknown>;
    try {
      sent = this.send(firstKey, args);
    } catch (error) {
      return Promise.reject(error);
    }
    const flight = new Flight(deadline, remaining);
    this.#flights.push(flight);
    if (this.#timer === undefined) this.#arm(deadline);
    sent.then(
      (value) => this.#settle(flight, true, value),
      (error: unknown) => {
        if (!flight.done && !this.closed && this.unsent(error) && Date.now() < deadline) {
          // Refused before it was written: nothing ran, so it may wait and go again.
          const next = {
            since: attempt?.since ?? now,
            refusals: (attempt?.refusals ?? 0) + 1,
            last: error,
          };
          this.#settle(flight, true, this.#wait(firstKey, args, deadline, next));
        } else {
          this.#settle(flight, false, error);
        }
      },
    );
    return new Promise((resolve, reject) => {
      flight.resolve = resolve;
      flight.reject = reject;
    });
  }

  /** A flight's command answered (or failed): settle it, unless its deadline passed first. */
  #settle(flight: Flight, ok: boolean, outcome: unknown): void {
    if (flight.done) return;
    flight.done = true;
    if (ok) flight.resolve?.(outcome);
    else flight.reject?.(outcome as Error);
    flight.resolve = undefined;
    flight.reject = undefined;
    // Replies come mostly in order: let go of the settled flights at the head.
    const flights = this.#flights;
    let head = this.#head;
    while (head < flights.length && (flights[head] as Flight).done) flights[head++] = undefined;
    if (head === flights.length) {
      flights.length = 0;
      head = 0;
    } else if (head > 1024 && head * 2 > flights.length) {
      this.#flights = flights.slice(head);
      head = 0;
    }
    this.#head = head;
  }

  #arm(deadline: number): void {
    this.#timer = setTimeout(this.#expire, Math.max(0, deadline - Date.now()));
    this.#timer.unref?.();
  }

  /** The oldest live flight's deadline came: fail every flight whose deadline passed. */
  readonly #expire = (): void => {
    this.#timer = undefined;
    const now = Date.now();
    const flights = this.#flights;
    let head = this.#head;
    while (head < flights.length) {
      const flight = flights[head] as Flight;
      if (!flight.done && flight.deadline > now) break;
      flights[head++] = undefined;
      if (flight.done) continue;
      flight.done = true;
      flight.reject?.(timeoutError(flight.timeout, true));
      flight.resolve = undefined;
      flight.reject = undefined;
    }
    if (head === flights.length) {
      flights.length = 0;
      head = 0;
    }
    this.#head = head;
    // The head is now the oldest live flight, whose deadline is next.
    const next = flights[head];
    if (next !== undefined) this.#arm(next.deadline);
  };

  subscribe(channels: string[], listener: (message: string) => void): Promise<void> {
    this.#channels = channels;
    this.#listener = listener;
    return this.open(channels, listener);
  }

  checkSubscription(ms: number): Promise<void> {
    const ping = this.subscriber?.ping;
    // A Cluster's subscription has no ping of its own connection: nothing to check there.
    if (this.closed || this.subscriber === undefined || ping === undefined)
      return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the hint subscription did not answer PING within ${ms} ms`)),
        ms,
      );
      timer.unref?.();
      ping.call(this.subscriber).then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  resubscribe(): Promise<void> {
    if (this.closed) return Promise.resolve();
    try {
      this.subscriber?.close();
    } catch {
      // already closed
    }
    this.subscriber = undefined;
    return this.open(this.#channels, this.#listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.wake();
    try {
      this.subscriber?.close();
    } catch {
      // already closed
    }
    try {
      this.closeCommands();
    } catch {
      // already closed
    }
  }
}
