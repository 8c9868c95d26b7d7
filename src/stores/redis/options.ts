// === session-guard/redis: `redisStore({ client })`, its options and their checks
//
// The store for several replicas of one bot. A claim is a lease (`SET PX` with a token) fenced by a
// per-bucket counter; every operation on a session is one Lua script (lua/), so a turn costs two
// round trips (claim, finish) plus a renewal every lease/3, and input that arrives during a turn
// one round trip. The stored layout is in format.ts (frozen), the store in store.ts, taking keys
// over in takeover.ts, and one port per Redis client in port/.

import type { Store } from "session-guard";
import { RedisStoreImpl } from "./store.js";

/** The longest duration a timer can wait (2^31 − 1 ms, about 24.8 days). */
const MAX_MS = 2 ** 31 - 1;

/** Options of `redisStore()`. */
export interface RedisStoreOptions {
  /**
   * A node-redis client or cluster (`createClient()` / `createCluster()` from `redis`, v5 or later,
   * connected or not) or an ioredis client (`new Redis()` / `new Cluster()`). The store opens its
   * own connections from it (one for commands, without an offline queue, and one for hints) and
   * leaves the client itself to you.
   */
  client: unknown;
  /**
   * Prefix of every key and channel. Replicas of one guard share it; different guards (another
   * bot, another platform) on one Redis need different prefixes. No `{` or `}`. Default `"sg:"`.
   */
  prefix?: string;
  /**
   * Ms a claim lives without renewal. The guard renews it every lease/3; a replica that dies is
   * taken over at most this long after its last renewal. Default 30,000.
   */
  lease?: number;
  /**
   * Ms a command may take, waiting for a connection included; past it the operation fails with a
   * `StoreError` (admission rejects, so the platform redelivers). Default 2,000, or lease/3 when
   * that is less.
   *
   * The rule: `commandTimeout` + the one-way latency to Redis must stay below lease/3. The guard
   * renews every lease/3; a finish or a renewal that reaches Redis after the lease ran out is
   * refused (the turn is reported as a lease loss, and its inputs may run again on another
   * replica). A `commandTimeout` of more than 2/3 of the lease contradicts the lease itself (a
   * renewal sent at lease/3 could still be waiting when the lease ends) and is refused.
   */
  commandTimeout?: number;
  /**
   * Ms between sweeps of the keys whose holder is gone, which runs input no live replica knows of.
   * Default: the lease.
   */
  sweepInterval?: number;
}

/** The Redis store: a `Store` shared by replicas. */
export interface RedisStore extends Store {
  readonly shared: true;
  /** Ms a claim lives without renewal (the `lease` option). */
  readonly lease: number;
  /** The prefix of every key and channel (the `prefix` option). */
  readonly prefix: string;
  /** This process's id in tokens and hint channels (random per store). */
  readonly replicaId: string;
  /** Revisions from any replica (`guard.replace`, `guard.withdraw`): one script each. */
  replace: NonNullable<Store["replace"]>;
  reviseRunning: NonNullable<Store["reviseRunning"]>;
  /** Outcome records by id, so that `guard.outcome(id)` answers from any replica. */
  record: NonNullable<Store["record"]>;
  outcome: NonNullable<Store["outcome"]>;
  /**
   * Stop the store's background work and close its own connections (not the client you gave).
   * Call it after `guard.close()`, which hands this replica's keys to the others first.
   */
  close(): Promise<void>;
}

/**
 * The store for several replicas of one bot, on Redis or Valkey (standalone or Cluster). Pass the
 * client as you created it: node-redis (`createClient()`, not connected) or ioredis (`new Redis()`).
 *
 * @example
 * ```ts
 * import { createClient } from "redis";
 * import { redisStore } from "session-guard/redis";
 *
 * const store = redisStore({ client: createClient({ url: process.env.REDIS_URL }), lease: 30_000 });
 * bot.use(sessionGuard({ store, bot }));
 * process.once("SIGTERM", async () => {
 *   await bot.stop();
 *   await guard.close(); // hands this replica's keys to the others
 *   await store.close();
 * });
 * ```
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  const where = "redisStore";
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${where}: options must be an object such as { client: createClient() }.`);
  }
  const { client, prefix = "sg:", lease = 30_000, sweepInterval = lease } = options;
  const commandTimeout =
    options.commandTimeout ??
    (typeof lease === "number" ? Math.max(1, Math.min(2_000, Math.floor(lease / 3))) : 2_000);
  if (client === undefined || client === null) {
    throw new TypeError(
      `${where}: "client" is required: a node-redis client (createClient() from "redis") or an ioredis client (new Redis()).`,
    );
  }
  if (typeof prefix !== "string" || /[{}]/.test(prefix)) {
    throw new TypeError(
      `${where}: "prefix" must be a string without "{" or "}" (the store adds its own hash tags), got ${JSON.stringify(prefix)}.`,
    );
  }
  for (const [name, value, min] of [
    ["lease", lease, 10],
    ["commandTimeout", commandTimeout, 1],
    ["sweepInterval", sweepInterval, 10],
  ] as const) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > MAX_MS) {
      throw new TypeError(
        `${where}: "${name}" must be an integer number of ms from ${min} to ${MAX_MS} (timers cannot wait longer), got ${String(value)}.`,
      );
    }
  }
  if (commandTimeout * 3 > lease * 2) {
    throw new TypeError(
      `${where}: "commandTimeout" (${commandTimeout} ms) must be at most 2/3 of "lease" (${lease} ms): a renewal sent at lease/3 must be answered before the lease ends. Keep commandTimeout + network latency below lease/3 (e.g. lease: ${commandTimeout * 3 + 1_000}).`,
    );
  }
  return new RedisStoreImpl({
    client,
    prefix,
    lease,
    commandTimeout,
    sweepInterval,
  }) as unknown as RedisStore;
}
