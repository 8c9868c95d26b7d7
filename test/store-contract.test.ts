// The store contract (test/support/store-contract.ts) against every store: the memory store, and
// the Redis store with each client. (The cluster clients run it in redis-cluster.test.ts.)

import { memoryStore, type Store } from "session-guard";
import { redisStore } from "session-guard/redis";
import { CLIENTS, cleanUp, redisAvailable, testPrefix, useRedis } from "./support/redis-harness.js";
import { type ContractEntry, storeContract } from "./support/store-contract.js";

storeContract("memoryStore", async () => ({
  store: memoryStore() as unknown as Store<ContractEntry>,
  close: async () => {},
}));

const db = useRedis();

if (redisAvailable) {
  for (const kind of CLIENTS) {
    storeContract(`redisStore with ${kind.name}`, async () => {
      const prefix = testPrefix();
      const client = kind.create(db.target);
      const store = redisStore({ client, prefix, lease: 5_000 });
      return {
        store: store as unknown as Store<ContractEntry>,
        close: async () => {
          await store.close();
          await cleanUp(db.admin, prefix);
        },
      };
    });
  }
}
