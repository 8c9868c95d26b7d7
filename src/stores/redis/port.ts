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

/** A node of a node-redis cluster's slot table (`cluster.slots[slot].master`). */
interface NodeRedisNode {
  /** Its client, once created (with `minimizeConnections`, on first use). */
  readonly client?: NodeRedisClient;
  /** Set while its client makes its first connection. */
  readonly connectPromise?: Promise<unknown>;
}

interface NodeRedisCluster extends Emitter {
  readonly isOpen: boolean;
  readonly _options?: { defaults?: Record<string, unknown> };
  /** The slot table: 16384 shards, empty until the cluster was discovered. */
  readonly slots?: readonly ({ readonly master?: NodeRedisNode } | undefined)[];
  duplicate(overrides?: Record<string, unknown>): NodeRedisCluster;
  connect(): Promise<unknown>;
  /** The node's client, created and connected if it has none. */
  nodeClient?(node: NodeRedisNode): Promise<unknown>;
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
  readonly options?: {
    readonly redisOptions?: Record<string, unknown>;
    readonly keyPrefix?: string;
    readonly host?: string;
    readonly port?: number;
  };
  duplicate(...args: unknown[]): IoRedisClient;
  connect(): Promise<unknown>;
  call(command: string, args: string[]): Promise<unknown>;
  subscribe(...channels: string[]): Promise<unknown>;
  disconnect(): void;
}

interface IoRedisCluster extends IoRedisClient {
  /** Slot → node keys (`host:port`), the master first. */
  readonly slots?: readonly (readonly string[] | undefined)[];
  /** The node connections of the cluster's pool. */
  nodes?(role?: "all" | "master" | "slave"): IoRedisClient[];
  /** Ask the cluster for its slots again (and open connections to new nodes, lazily). */
  refreshSlotsCache?(): void;
}

function has(value: unknown, name: string): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Record<string, unknown>)[name] === "function"
  );
}

function noop(): void {}

/** Error of a command that could not be sent or answered in time. */
function timeoutError(ms: number, sent: boolean, refusal?: unknown): Error {
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

function closedError(): Error {
  return new Error("The Redis store is closed");
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : "";
}

/** Remove a listener, with whichever method the emitter has. */
function off(emitter: Emitter, event: string, listener: (...args: never[]) => void): void {
  if (typeof emitter.off === "function") emitter.off(event, listener);
  else emitter.removeListener?.(event, listener);
}

// --- Redis Cluster's key slot (CRC16/XMODEM of the hash tag, modulo 16384)

const CRC16 = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let crc = i << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
  CRC16[i] = crc & 0xffff;
}

/** Slots by hash tag: the store's keys use a few dozen tags. */
const slotsByTag = new Map<string, number>();

/** The Cluster slot of `key`, as `CLUSTER KEYSLOT` answers it. */
export function slotOf(key: string): number {
  let tag = key;
  const open = key.indexOf("{");
  if (open !== -1) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) tag = key.slice(open + 1, close);
  }
  let slot = slotsByTag.get(tag);
  if (slot === undefined) {
    let crc = 0;
    for (const byte of Buffer.from(tag)) {
      crc = ((crc << 8) & 0xffff) ^ (CRC16[((crc >> 8) ^ byte) & 0xff] as number);
    }
    slot = crc & 16383;
    if (slotsByTag.size >= 4096) slotsByTag.clear();
    slotsByTag.set(tag, slot);
  }
  return slot;
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
abstract class BasePort implements RedisPort {
  readonly #waiters = new Set<Waiter>();
  #poll: ReturnType<typeof setInterval> | undefined;
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

/** Wait before connecting a node-redis cluster again after its first connect failed. */
const RECONNECT_CLUSTER = 1_000;

/**
 * node-redis `createCluster`. Each node client of the duplicate has no offline queue and
 * reconnects on its own; a command is handed to the cluster only when its slot's master client is
 * ready, and waits for that client otherwise. "The client is offline" / "The client is closed"
 * (refused before anything was queued), CLUSTERDOWN and TRYAGAIN (refused by Redis before running
 * it) are sent again within the deadline.
 */
class NodeRedisClusterPort extends BasePort {
  readonly #cluster: NodeRedisCluster;
  readonly #commands: NodeRedisCluster;
  /** Node clients whose `ready` wakes the waiting calls. */
  readonly #hooked = new WeakSet<object>();
  #connected = false;
  #retry: ReturnType<typeof setTimeout> | undefined;

  constructor(cluster: NodeRedisCluster, events: PortEvents) {
    super(events);
    this.#cluster = cluster;
    // Every node client of the duplicate refuses commands while offline.
    const defaults = { ...(cluster._options?.defaults ?? {}), disableOfflineQueue: true };
    this.#commands = cluster.duplicate({ defaults });
    this.#commands.on("error", this.onError);
    // A node client's first connection (its reconnections are hooked in `nudge`).
    this.#commands.on("node-ready", this.wake);
    this.#connect();
  }

  /** Connect the cluster; node-redis does not retry a first discovery that failed, so retry it. */
  #connect(): void {
    this.#retry = undefined;
    if (this.closed) return;
    this.#commands.connect().then(
      () => {
        this.#connected = true;
        this.onReady();
      },
      (error: unknown) => {
        this.onError(error);
        if (this.closed || this.#commands.isOpen) return;
        this.#retry = setTimeout(() => this.#connect(), RECONNECT_CLUSTER);
        this.#retry.unref?.();
      },
    );
  }

  protected get ready(): boolean {
    return this.#connected;
  }

  #master(firstKey: string): NodeRedisNode | undefined {
    return this.#commands.slots?.[slotOf(firstKey)]?.master;
  }

  protected override readyFor(firstKey: string): boolean {
    // Not `#connected`: connect() resolves only once every master is connected, and the masters
    // that are up serve their slots before that.
    if (this.#commands.slots === undefined) return this.#connected;
    const node = this.#master(firstKey);
    return node?.client?.isReady === true && node.connectPromise === undefined;
  }

  protected override nudge(firstKey: string): void {
    const node = this.#master(firstKey);
    if (node === undefined) return;
    const client = node.client;
    if (client === undefined) {
      // A node without a client yet (`minimizeConnections`): create and connect it.
      this.#commands.nodeClient?.(node).catch(noop);
    } else if (!this.#hooked.has(client)) {
      this.#hooked.add(client);
      client.on("ready", this.wake);
    }
  }

  protected override unsent(error: unknown): boolean {
    const message = messageOf(error);
    return (
      message === "The client is offline" ||
      message === "The client is closed" ||
      message.startsWith("CLUSTERDOWN") ||
      message.startsWith("TRYAGAIN")
    );
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
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    off(this.#commands, "node-ready", this.wake);
    this.#commands.destroy();
  }
}

/** A connection of ioredis for hints, beside the commands' own. */
async function ioSubscribe(
  subscriber: IoRedisClient,
  port: { onError: (error: unknown) => void; closed: () => boolean },
  keep: (subscriber: { close(): void }) => void,
  channels: string[],
  listener: (message: string) => void,
): Promise<void> {
  subscriber.on("error", port.onError);
  subscriber.on("message", (_channel: never, message: never) => listener(String(message)));
  const handle = { close: () => subscriber.disconnect() };
  keep(handle);
  if (port.closed()) return handle.close();
  await subscriber.subscribe(...channels);
}

const SUBSCRIBER = { lazyConnect: false, enableOfflineQueue: true, autoResubscribe: true };

class IoRedisPort extends BasePort {
  readonly #client: IoRedisClient;
  readonly #commands: IoRedisClient;

  constructor(client: IoRedisClient, events: PortEvents) {
    super(events);
    this.#client = client;
    // Neither queued while offline nor sent again after a reconnect: ioredis re-sends the commands
    // a dropped connection left unanswered (autoResendUnfulfilledCommands), which would run a
    // command whose caller was already told it failed.
    this.#commands = client.duplicate({
      enableOfflineQueue: false,
      lazyConnect: false,
      autoResendUnfulfilledCommands: false,
    });
    this.#commands.on("error", this.onError);
    this.#commands.on("ready", this.onReady);
    if (this.#commands.status === "wait") this.#commands.connect().catch(this.onError);
  }

  protected get ready(): boolean {
    return this.#commands.status === "ready";
  }

  protected send(_firstKey: string, args: string[]): Promise<unknown> {
    return this.#commands.call(args[0] as string, args.slice(1));
  }

  subscribe(channels: string[], listener: (message: string) => void): Promise<void> {
    const subscriber = this.#client.duplicate(SUBSCRIBER);
    return ioSubscribe(
      subscriber,
      { onError: this.onError, closed: () => this.closed },
      (handle) => (this.subscriber = handle),
      channels,
      listener,
    );
  }

  protected closeCommands(): void {
    off(this.#commands, "ready", this.onReady);
    this.#commands.disconnect();
  }
}

/** Least time between two slot refreshes asked for by waiting calls. */
const REFRESH = 100;

/**
 * ioredis `Cluster`. Its `enableOfflineQueue: false` covers only the Cluster's own queue: the
 * Cluster retries a command itself after a dropped connection (`retryDelayOnFailover`, even one it
 * had written), on CLUSTERDOWN (`retryDelayOnClusterDown`) and on redirections, and each node
 * connection queues commands while it connects (ioredis forces `enableOfflineQueue` on them) —
 * each of which runs a command after its caller was told it failed. So the duplicate turns those
 * retries off, and a command is handed to the Cluster only when the connection to its slot's
 * master is ready (then the Cluster writes it at once); otherwise it waits here, and the port
 * opens that connection (a node that dropped its connection is removed from the pool until the
 * slots are refreshed). Since "Connection is closed." is the same error whether or not the
 * command had been written, only CLUSTERDOWN and "Cluster isn't ready" are sent again. Left to
 * ioredis: TRYAGAIN (during resharding) is always retried by it, and a command redirected (MOVED,
 * ASK) to a node whose connection is still opening waits in that connection's queue.
 */
class IoRedisClusterPort extends BasePort {
  readonly #cluster: IoRedisCluster;
  readonly #commands: IoRedisCluster;
  /** ioredis prefixes keys with it, so the slot is the prefixed key's. */
  readonly #keyPrefix: string;
  /** The pool's node connections by `host:port`, rebuilt when a lookup misses. */
  #nodes = new Map<string, IoRedisClient>();
  /** Node connections whose `ready` wakes the waiting calls. */
  readonly #hooked = new WeakSet<object>();
  #refreshed = 0;

  constructor(cluster: IoRedisCluster, events: PortEvents) {
    super(events);
    this.#cluster = cluster;
    this.#commands = cluster.duplicate([], {
      enableOfflineQueue: false,
      lazyConnect: false,
      // No retries of its own (see above); MOVED is followed at once.
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      retryDelayOnMoved: 0,
      // The pre-check must see the connection the command goes to.
      scaleReads: "master",
      enableAutoPipelining: false,
      redisOptions: {
        ...cluster.options?.redisOptions,
        // Not sent again after a reconnect (with `clusterNodeRetryStrategy`), and a node's queue
        // is emptied (its commands refused) as soon as a connection attempt fails.
        autoResendUnfulfilledCommands: false,
        maxRetriesPerRequest: 0,
      },
    }) as IoRedisCluster;
    this.#keyPrefix = this.#commands.options?.keyPrefix ?? "";
    this.#commands.on("error", this.onError);
    this.#commands.on("ready", this.onReady);
    this.#commands.on("refresh", this.wake);
    if (this.#commands.status === "wait") this.#commands.connect().catch(this.onError);
  }

  protected get ready(): boolean {
    return this.#commands.status === "ready";
  }

  /** The pool's connection to the master of `firstKey`'s slot, if the pool has one. */
  #node(firstKey: string): IoRedisClient | undefined {
    const key = this.#keyPrefix === "" ? firstKey : this.#keyPrefix + firstKey;
    const owner = this.#commands.slots?.[slotOf(key)]?.[0];
    if (owner === undefined) return undefined;
    let node = this.#nodes.get(owner);
    if (node === undefined || node.status === "end") {
      this.#nodes = new Map();
      for (const each of this.#commands.nodes?.("all") ?? []) {
        this.#nodes.set(`${each.options?.host}:${each.options?.port}`, each);
      }
      node = this.#nodes.get(owner);
    }
    return node;
  }

  protected override readyFor(firstKey: string): boolean {
    return this.#commands.status === "ready" && this.#node(firstKey)?.status === "ready";
  }

  protected override nudge(firstKey: string): void {
    // While the Cluster itself reconnects, it rebuilds its pool.
    if (this.#commands.status !== "ready") return;
    const node = this.#node(firstKey);
    if (node === undefined || node.status === "end" || node.status === "close") {
      // Gone from the pool: a refresh of the slots adds a new connection for the slot's master.
      const now = Date.now();
      if (now - this.#refreshed < REFRESH) return;
      this.#refreshed = now;
      this.#commands.refreshSlotsCache?.();
      return;
    }
    if (!this.#hooked.has(node)) {
      this.#hooked.add(node);
      node.on("ready", this.wake);
    }
    // A new pool connection connects on its first command; this one goes only once it is ready.
    if (node.status === "wait") node.connect().catch(noop);
  }

  protected override unsent(error: unknown): boolean {
    const message = messageOf(error);
    return (
      message.startsWith("CLUSTERDOWN") ||
      message === "Cluster isn't ready and enableOfflineQueue options is false"
    );
  }

  protected send(_firstKey: string, args: string[]): Promise<unknown> {
    // The Cluster routes by the keys of the command itself.
    return this.#commands.call(args[0] as string, args.slice(1));
  }

  subscribe(channels: string[], listener: (message: string) => void): Promise<void> {
    const subscriber = this.#cluster.duplicate([], {
      ...SUBSCRIBER,
      redisOptions: { ...this.#cluster.options?.redisOptions },
    });
    return ioSubscribe(
      subscriber,
      { onError: this.onError, closed: () => this.closed },
      (handle) => (this.subscriber = handle),
      channels,
      listener,
    );
  }

  protected closeCommands(): void {
    off(this.#commands, "ready", this.onReady);
    off(this.#commands, "refresh", this.wake);
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
    if ((client as IoRedisClient).isCluster === true) {
      return new IoRedisClusterPort(client as IoRedisCluster, events);
    }
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
