// session-guard/redis: the guard's store on Redis or Valkey, for several replicas of one bot.
// It reaches the core only through the package's public entry, as an adapter does.

export {
  BUCKETS,
  bucketOf,
  MAX_QUEUE,
  type RedisStore,
  type RedisStoreOptions,
  redisStore,
} from "./store.js";
