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

/** What the store needs from a Redis client. */
export interface RedisPort {
  /** Send one command, routed by `firstKey`; rejects without sending once `deadline` has passed. */
  call(firstKey: string, args: string[], deadline: number): Promise<unknown>;
  /** Subscribe to `channels` on a connection of their own; `listener` gets each message. */
  subscribe(channels: string[], listener: (message: string) => void): Promise<void>;
  /** Close the connections this port opened (never the client it was given). */
  close(): Promise<void>;
}

/** Callbacks for connection trouble; an outage is reported, never thrown. */
export interface PortEvents {
  error(error: unknown): void;
  ready(): void;
}

/** The parts of an EventEmitter both clients have. */
interface Emitter {
  on(event: string, listener: (...args: never[]) => void): unknown;
  off?(event: string, listener: (...args: never[]) => void): unknown;
  removeListener?(event: string, listener: (...args: never[]) => void): unknown;
  listenerCount?(event: string): number;
}

interface NodeRedisClient extends Emitter {
  readonly isReady: boolean;
  readonly isOpen: boolean;
  duplicate(overrides?: Record<string, unknown>): NodeRedisClient;
  connect(): Promise<unknown>;
  sendCommand(args: string[]): Promise<unknown>;
  subscribe(
    channels: string[],
    listener: (message: string, channel: string) => void,
  ): Promise<void>;
  destroy(): void;
}

interface NodeRedisCluster extends Emitter {
  readonly isOpen: boolean;
  readonly _options?: { defaults?: Record<string, unknown> };
  duplicate(overrides?: Record<string, unknown>): NodeRedisCluster;
  connect(): Promise<unknown>;
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: string[],
  ): Promise<unknown>;
  subscribe(
    channels: string[],
    listener: (message: string, channel: string) => void,
  ): Promise<void>;
  destroy(): void;
}

interface IoRedisClient extends Emitter {
  readonly status: string;
  readonly isCluster?: boolean;
  readonly options?: { readonly redisOptions?: Record<string, unknown> };
  duplicate(...args: unknown[]): IoRedisClient;
  connect(): Promise<unknown>;
  call(command: string, args: string[]): Promise<unknown>;
  subscribe(...channels: string[]): Promise<unknown>;
  disconnect(): void;
}

function has(value: unknown, name: string): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Record<string, unknown>)[name] === "function"
  );
}

/** Error of a command that could not be sent or answered in time. */
function timeoutError(ms: number, sent: boolean): Error {
  return new Error(
    sent
      ? `Redis did not answer within ${ms} ms (commandTimeout)`
      : `Redis is not connected; the command was not sent (waited ${ms} ms, commandTimeout)`,
  );
}

/** Remove a listener, with whichever method the emitter has. */
function off(emitter: Emitter, event: string, listener: (...args: never[]) => void): void {
  if (typeof emitter.off === "function") emitter.off(event, listener);
  else emitter.removeListener?.(event, listener);
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

/**
 * The part every port shares: a connection that may not be ready yet, and callers that wait for
 * it until their deadline.
 */
abstract class BasePort implements RedisPort {
  readonly #waiters = new Set<() => void>();
  /** Flights, oldest first, from `#head` on; those before it have settled. */
  #flights: (Flight | undefined)[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  protected readonly events: PortEvents;
  protected subscriber: { close(): void } | undefined;
  protected closed = false;

  constructor(events: PortEvents) {
    this.events = events;
  }

  protected abstract get ready(): boolean;
  protected abstract send(firstKey: string, args: string[]): Promise<unknown>;
  abstract subscribe(channels: string[], listener: (message: string) => void): Promise<void>;
  protected abstract closeCommands(): void;

  /** The command connection is ready: release the callers waiting for it. */
  protected onReady = (): void => {
    this.events.ready();
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  };

  protected onError = (error: unknown): void => {
    this.events.error(error);
  };

  call(firstKey: string, args: string[], deadline: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error("The Redis store is closed"));
    if (this.ready) return this.#send(firstKey, args, deadline);
    const wait = Math.max(0, deadline - Date.now());
    return new Promise<void>((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        reject(timeoutError(wait, false));
      }, wait);
      this.#waiters.add(wake);
    }).then(() => {
      if (this.closed) throw new Error("The Redis store is closed");
      return this.#send(firstKey, args, deadline);
    });
  }

  #send(firstKey: string, args: string[], deadline: number): Promise<unknown> {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return Promise.reject(timeoutError(0, false));
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
      (error: unknown) => this.#settle(flight, false, error),
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
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

class NodeRedisPort extends BasePort {
  readonly #client: NodeRedisClient;
  readonly #commands: NodeRedisClient;

  constructor(client: NodeRedisClient, events: PortEvents) {
    super(events);
    this.#client = client;
    this.#commands = client.duplicate({ disableOfflineQueue: true });
    this.#commands.on("error", this.onError);
    this.#commands.on("ready", this.onReady);
    // Resolves once connected; until then (and during outages) the client reconnects on its own.
    this.#commands.connect().catch(this.onError);
  }

  protected get ready(): boolean {
    return this.#commands.isReady;
  }

  protected send(_firstKey: string, args: string[]): Promise<unknown> {
    // Without an offline queue, node-redis writes the command at once or refuses it.
    return this.#commands.sendCommand(args);
  }

  async subscribe(channels: string[], listener: (message: string) => void): Promise<void> {
    const subscriber = this.#client.duplicate();
    subscriber.on("error", this.onError);
    this.subscriber = { close: () => subscriber.destroy() };
    if (this.closed) return this.subscriber.close();
    await subscriber.connect();
    await subscriber.subscribe(channels, (message) => listener(String(message)));
  }

  protected closeCommands(): void {
    off(this.#commands, "ready", this.onReady);
    this.#commands.destroy();
  }
}

class NodeRedisClusterPort extends BasePort {
  readonly #cluster: NodeRedisCluster;
  readonly #commands: NodeRedisCluster;
  #connected = false;

  constructor(cluster: NodeRedisCluster, events: PortEvents) {
    super(events);
    this.#cluster = cluster;
    // Every node client of the duplicate refuses commands while offline.
    const defaults = { ...(cluster._options?.defaults ?? {}), disableOfflineQueue: true };
    this.#commands = cluster.duplicate({ defaults });
    this.#commands.on("error", this.onError);
    this.#commands.connect().then(() => {
      this.#connected = true;
      this.onReady();
    }, this.onError);
  }

  protected get ready(): boolean {
    return this.#connected;
  }

  protected send(firstKey: string, args: string[]): Promise<unknown> {
    return this.#commands.sendCommand(firstKey, false, args);
  }

  async subscribe(channels: string[], listener: (message: string) => void): Promise<void> {
    const subscriber = this.#cluster.duplicate();
    subscriber.on("error", this.onError);
    this.subscriber = { close: () => subscriber.destroy() };
    if (this.closed) return this.subscriber.close();
    await subscriber.connect();
    await subscriber.subscribe(channels, (message) => listener(String(message)));
  }

  protected closeCommands(): void {
    this.#commands.destroy();
  }
}

class IoRedisPort extends BasePort {
  readonly #client: IoRedisClient;
  readonly #commands: IoRedisClient;

  constructor(client: IoRedisClient, events: PortEvents) {
    super(events);
    this.#client = client;
    // Neither queued while offline nor sent again after a reconnect: ioredis re-sends the commands
    // a dropped connection left unanswered (autoResendUnfulfilledCommands), which would run a
    // command whose caller was already told it failed.
    this.#commands = this.#duplicate(
      { enableOfflineQueue: false, lazyConnect: false },
      { autoResendUnfulfilledCommands: false },
    );
    this.#commands.on("error", this.onError);
    this.#commands.on("ready", this.onReady);
    if (this.#commands.status === "wait") this.#commands.connect().catch(this.onError);
  }

  /** A connection of its own; `node`: options of each node's connection (a Cluster's too). */
  #duplicate(options: Record<string, unknown>, node: Record<string, unknown> = {}): IoRedisClient {
    if (this.#client.isCluster !== true) return this.#client.duplicate({ ...options, ...node });
    const redisOptions = { ...this.#client.options?.redisOptions, ...node };
    return this.#client.duplicate([], { ...options, redisOptions });
  }

  protected get ready(): boolean {
    return this.#commands.status === "ready";
  }

  protected send(_firstKey: string, args: string[]): Promise<unknown> {
    // ioredis (and its Cluster) route by the keys of the command itself.
    return this.#commands.call(args[0] as string, args.slice(1));
  }

  async subscribe(channels: string[], listener: (message: string) => void): Promise<void> {
    const subscriber = this.#duplicate({
      lazyConnect: false,
      enableOfflineQueue: true,
      autoResubscribe: true,
    });
    subscriber.on("error", this.onError);
    subscriber.on("message", (_channel: never, message: never) => listener(String(message)));
    this.subscriber = { close: () => subscriber.disconnect() };
    if (this.closed) return this.subscriber.close();
    await subscriber.subscribe(...channels);
  }

  protected closeCommands(): void {
    off(this.#commands, "ready", this.onReady);
    this.#commands.disconnect();
  }
}

/**
 * A port over the client the user gave: node-redis (client or cluster, v5) or ioredis (Redis or
 * Cluster). Throws a TypeError for anything else.
 */
export function portFor(client: unknown, events: PortEvents): RedisPort {
  if (has(client, "call") && has(client, "duplicate") && "status" in (client as object)) {
    guardErrors(client as Emitter, events);
    return new IoRedisPort(client as IoRedisClient, events);
  }
  if (has(client, "sendCommand") && has(client, "duplicate") && has(client, "connect")) {
    guardErrors(client as Emitter, events);
    if ("masters" in (client as object) || has(client, "getSlotRandomNode")) {
      return new NodeRedisClusterPort(client as NodeRedisCluster, events);
    }
    return new NodeRedisPort(client as NodeRedisClient, events);
  }
  throw new TypeError(
    'redisStore: "client" must be a node-redis client or cluster (createClient() / createCluster() from "redis", v5 or later, connected or not) or an ioredis client (new Redis() / new Cluster() from "ioredis").',
  );
}

/**
 * The store does not use the client it was given (it duplicates it), but an `error` event with no
 * listener would crash the process (node-redis) or be logged as unhandled (ioredis) if the user
 * connects it: give it a listener that reports through the guard, unless the user has one.
 */
function guardErrors(client: Emitter, events: PortEvents): void {
  if (typeof client.listenerCount === "function" && client.listenerCount("error") > 0) return;
  client.on("error", events.error as (...args: never[]) => void);
}
