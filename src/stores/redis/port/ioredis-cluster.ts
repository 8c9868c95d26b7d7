// === ioredis `Cluster`: its own retries off, readiness per slot's master

import { CLUSTER_SUBSCRIBER, IoPort, socketOf } from "./ioredis-base.js";
import { slotOf } from "./slot.js";
import {
  type IoRedisClient,
  type IoRedisCluster,
  messageOf,
  noop,
  off,
  type PortEvents,
} from "./types.js";

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
export class IoRedisClusterPort extends IoPort<IoRedisCluster> {
  override readonly cluster = true;
  readonly #cluster: IoRedisCluster;
  /** ioredis prefixes keys with it, so the slot is the prefixed key's. */
  readonly #keyPrefix: string;
  /** The pool's node connections by `host:port`, rebuilt when a lookup misses. */
  #nodes = new Map<string, IoRedisClient>();
  /** Node connections whose `ready` wakes the waiting calls. */
  readonly #hooked = new WeakSet<object>();
  #refreshed = 0;

  constructor(cluster: IoRedisCluster, events: PortEvents) {
    super(
      cluster.duplicate([], {
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
      }) as IoRedisCluster,
      events,
    );
    this.#cluster = cluster;
    this.#keyPrefix = this.commands.options?.keyPrefix ?? "";
    this.commands.on("refresh", this.wake);
  }

  /** The pool's connection to the master of `firstKey`'s slot, if the pool has one. */
  #node(firstKey: string): IoRedisClient | undefined {
    const key = this.#keyPrefix === "" ? firstKey : this.#keyPrefix + firstKey;
    const owner = this.commands.slots?.[slotOf(key)]?.[0];
    if (owner === undefined) return undefined;
    let node = this.#nodes.get(owner);
    if (node === undefined || node.status === "end") {
      this.#nodes = new Map();
      for (const each of this.commands.nodes?.("all") ?? []) {
        this.#nodes.set(`${each.options?.host}:${each.options?.port}`, each);
      }
      node = this.#nodes.get(owner);
    }
    return node;
  }

  protected override socketFor(firstKey: string): unknown {
    return socketOf(this.#node(firstKey));
  }

  protected override readyFor(firstKey: string): boolean {
    return this.commands.status === "ready" && this.#node(firstKey)?.status === "ready";
  }

  protected override nudge(firstKey: string): void {
    // While the Cluster itself reconnects, it rebuilds its pool.
    if (this.commands.status !== "ready") return;
    const node = this.#node(firstKey);
    if (node === undefined || node.status === "end" || node.status === "close") {
      // Gone from the pool: a refresh of the slots adds a new connection for the slot's master.
      const now = Date.now();
      if (now - this.#refreshed < REFRESH) return;
      this.#refreshed = now;
      this.commands.refreshSlotsCache?.();
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

  protected subscriberClient(): IoRedisClient {
    return this.#cluster.duplicate([], {
      ...CLUSTER_SUBSCRIBER,
      redisOptions: { ...this.#cluster.options?.redisOptions },
    });
  }

  protected override closeCommands(): void {
    off(this.commands, "refresh", this.wake);
    super.closeCommands();
  }
}
