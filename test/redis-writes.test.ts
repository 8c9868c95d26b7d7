// The Redis store writes the commands of one tick together, with both clients, standalone and in a
// Cluster: node-redis batches a tick's commands itself, and the ioredis ports cork each socket for
// the tick (ioredis alone writes every command as it is sent: one system call per command, which
// costs more CPU in this process and in redis-server than the rest of a turn's commands). Many keys
// claimed in one tick (a burst of updates for different chats) must leave in a few socket writes
// per server (the ioredis port flushes every 16 commands), and so must their turns' finishes. Counted where Node writes to a socket (`net.Socket`'s
// `_write` for one chunk, `_writev` for the chunks a cork held back), against real servers. And the
// batching never holds a command past its tick, even for a user's client that auto-pipelines.

import { Socket } from "node:net";
import { Redis } from "ioredis";
import { createGuard } from "session-guard";
import { redisStore } from "session-guard/redis";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { deferred } from "./support/helpers.js";
import {
  CLUSTER_CLIENTS,
  type ClusterTarget,
  clusterAvailable,
  clusterTarget,
} from "./support/redis-cluster-harness.js";
import { CLIENTS, redisAvailable, testPrefix, useRedis } from "./support/redis-harness.js";

const KEYS = 40;

/** This file's Redis and Cluster, each started once for all the suites below. */
const db = useRedis();
// One Cluster for both clients: a suite of its own would dispose of it after the first client.
let cluster: ClusterTarget | undefined;
beforeAll(async () => {
  if (clusterAvailable) cluster = await clusterTarget();
}, 30_000);
afterAll(async () => {
  await cluster?.dispose();
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** Count the socket writes Node makes from now on (every socket of this process). */
function countWrites(): () => number {
  const one = vi.spyOn(Socket.prototype as unknown as { _write: () => void }, "_write");
  const many = vi.spyOn(Socket.prototype as unknown as { _writev: () => void }, "_writev");
  return () => one.mock.calls.length + many.mock.calls.length;
}

/**
 * Claim `KEYS` keys in one tick, then end all their turns in one tick; `servers`: how many servers
 * the keys spread over (one write each).
 */
async function claimAndFinish(
  client: unknown,
  servers: number,
  dispose: (client: unknown) => Promise<void>,
): Promise<void> {
  // A fresh Cluster client first discovers the cluster and connects to its masters.
  const store = redisStore({ client, prefix: testPrefix(), lease: 30_000, commandTimeout: 10_000 });
  const gate = deferred();
  const errors: unknown[] = [];
  const guard = createGuard<string>({
    store,
    handler: () => gate.promise,
    onError: (error) => void errors.push(error),
  });
  try {
    // Connections open and scripts loaded on every server: what follows is the steady state.
    await Promise.all(
      Array.from({ length: KEYS }, (_, i) =>
        guard.submit(`warm:${i}`, "x", () => {}, { awaitTurn: true }),
      ),
    );
    await vi.waitFor(() => expect(guard.activeCount).toBe(0));
    let writes = countWrites();
    const admitted = [];
    for (let i = 0; i < KEYS; i++) admitted.push(guard.submit(`k${i}`, "x"));
    expect(new Set(await Promise.all(admitted))).toEqual(new Set(["started"]));
    // At most one write per server, one more per 16 commands (the ioredis port flushes every 16
    // commands, so that redis-server starts on them while the rest are made), and one in case a
    // client splits its batch: 6 standalone, 40 with a write per command.
    expect(writes()).toBeLessThanOrEqual(servers + 1 + Math.floor(KEYS / 16));
    vi.restoreAllMocks();

    writes = countWrites();
    gate.resolve();
    await vi.waitFor(() => expect(guard.activeCount).toBe(0));
    expect(writes()).toBeLessThanOrEqual(servers + 1 + Math.floor(KEYS / 16));
    expect(errors).toEqual([]);
  } finally {
    gate.resolve();
    await guard.close({ timeout: 1_000 });
    await store.close();
    await dispose(client);
  }
}

describe.skipIf(!redisAvailable).each(CLIENTS)("redisStore with $name", (kind) => {
  it(`writes the claims of ${KEYS} keys made in one tick together, and so their finishes`, async () => {
    await claimAndFinish(kind.create(db.target), 1, kind.dispose);
  });
});

describe.skipIf(!redisAvailable)("redisStore with an auto-pipelining ioredis client", () => {
  it("still writes a command within its tick (an auto-pipeline would hold it to a later one)", async () => {
    const options = { enableAutoPipelining: true };
    const user =
      db.target.url === undefined
        ? new Redis({ path: db.target.socket as string, ...options })
        : new Redis(db.target.url, options);
    const store = redisStore({ client: user, prefix: testPrefix(), lease: 30_000 });
    const guard = createGuard<string>({ store, handler: () => {} });
    try {
      await guard.submit("warm", "x", () => {}, { awaitTurn: true });
      await vi.waitFor(() => expect(guard.activeCount).toBe(0));
      const writes = countWrites();
      const admitted = guard.submit("k", "x");
      // Before the next macrotask (where an auto-pipeline would write it): the claim is written.
      await new Promise<void>((resolve) => process.nextTick(resolve));
      expect(writes()).toBe(1);
      expect(await admitted).toBe("started");
    } finally {
      await guard.close({ timeout: 1_000 });
      await store.close();
      user.disconnect();
    }
  });
});

describe.skipIf(!clusterAvailable).each(CLUSTER_CLIENTS)(
  "redisStore on Redis Cluster with $name",
  (kind) => {
    it(`writes the claims of ${KEYS} keys made in one tick together, one write per master`, async () => {
      const { seeds } = cluster as ClusterTarget;
      await claimAndFinish(kind.create(seeds), seeds.length, kind.dispose);
    });
  },
);
