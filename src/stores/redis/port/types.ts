// === The port's contract, and the parts of the clients it uses
//
// Nothing is imported from either client: these interfaces name the few members the ports touch.

/** What the store needs from a Redis client. */
export interface RedisPort {
  /**
   * Redis Cluster: a script may declare keys of its session's slot only. (A standalone server runs
   * a script over keys of any slot, which lets outcome records ride with a finish.)
   */
  readonly cluster: boolean;
  /** Send one command, routed by `firstKey`; rejects without sending once `deadline` has passed. */
  call(firstKey: string, args: string[], deadline: number): Promise<unknown>;
  /** Subscribe to `channels` on a connection of their own; `listener` gets each message. */
  subscribe(channels: string[], listener: (message: string) => void): Promise<void>;
  /**
   * Whether the subscription still hears Redis: a PING on its own connection, answered within
   * `ms` (a half-open connection, or one Redis dropped, never answers). Rejects otherwise.
   */
  checkSubscription(ms: number): Promise<void>;
  /** Close the subscription's connection and subscribe again on a new one. */
  resubscribe(): Promise<void>;
  /** Close the connections this port opened (never the client it was given). */
  close(): Promise<void>;
}

/** Callbacks for connection trouble; an outage is reported, never thrown. */
export interface PortEvents {
  error(error: unknown): void;
  ready(): void;
}

/** The parts of an EventEmitter both clients have. */
export interface Emitter {
  on(event: string, listener: (...args: never[]) => void): unknown;
  off?(event: string, listener: (...args: never[]) => void): unknown;
  removeListener?(event: string, listener: (...args: never[]) => void): unknown;
  listenerCount?(event: string): number;
}

export interface NodeRedisClient extends Emitter {
  readonly isReady: boolean;
  readonly isOpen: boolean;
  duplicate(overrides?: Record<string, unknown>): NodeRedisClient;
  connect(): Promise<unknown>;
  sendCommand(args: string[]): Promise<unknown>;
  subscribe(
    channels: string[],
    listener: (message: string, channel: string) => void,
  ): Promise<void>;
  ping?(): Promise<unknown>;
  destroy(): void;
}

/** A node of a node-redis cluster's slot table (`cluster.slots[slot].master`). */
export interface NodeRedisNode {
  /** Its client, once created (with `minimizeConnections`, on first use). */
  readonly client?: NodeRedisClient;
  /** Set while its client makes its first connection. */
  readonly connectPromise?: Promise<unknown>;
}

export interface NodeRedisCluster extends Emitter {
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

export interface IoRedisClient extends Emitter {
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
  ping?(): Promise<unknown>;
  disconnect(): void;
}

export interface IoRedisCluster extends IoRedisClient {
  /** Slot → node keys (`host:port`), the master first. */
  readonly slots?: readonly (readonly string[] | undefined)[];
  /** The node connections of the cluster's pool. */
  nodes?(role?: "all" | "master" | "slave"): IoRedisClient[];
  /** Ask the cluster for its slots again (and open connections to new nodes, lazily). */
  refreshSlotsCache?(): void;
}

/** Whether `value` has a method `name`. */
export function has(value: unknown, name: string): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Record<string, unknown>)[name] === "function"
  );
}

export function noop(): void {}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : "";
}

/** Remove a listener, with whichever method the emitter has. */
export function off(emitter: Emitter, event: string, listener: (...args: never[]) => void): void {
  if (typeof emitter.off === "function") emitter.off(event, listener);
  else emitter.removeListener?.(event, listener);
}

/** A subscription's connection: closed on `close()`, checked with `ping()` where it can be. */
export interface Subscriber {
  close(): void;
  ping?(): Promise<unknown>;
}
