// === The Redis port: one small interface over node-redis and ioredis (see base.ts), and the
// choice of a port for the client the user gave. One file per client beside this one.

import { IoRedisPort } from "./ioredis.js";
import { IoRedisClusterPort } from "./ioredis-cluster.js";
import { NodeRedisPort } from "./node-redis.js";
import { NodeRedisClusterPort } from "./node-redis-cluster.js";
import {
  type Emitter,
  has,
  type IoRedisClient,
  type IoRedisCluster,
  type NodeRedisClient,
  type NodeRedisCluster,
  type PortEvents,
  type RedisPort,
} from "./types.js";

export { slotOf } from "./slot.js";
export type { PortEvents, RedisPort } from "./types.js";

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
