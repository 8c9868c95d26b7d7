// session-guard/redis: the guard's store on Redis or Valkey, for several replicas of one bot.
// It reaches the core only through the package's public entry, as an adapter does.

/**
 * The store on Redis or Valkey, for several replicas: `redisStore({ client })`.
 *
 * @module session-guard/redis
 */

export { BUCKETS, bucketOf } from "./format.js";
export { MAX_QUEUE } from "./lua/acquire.js";
export { type RedisStore, type RedisStoreOptions, redisStore } from "./options.js";
