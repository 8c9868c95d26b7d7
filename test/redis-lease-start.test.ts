// A turn's first lease on Redis begins when the claim's script runs, not when its answer arrives.
// The guard gives a turn up once a lease has passed without a renewal; counting the first lease from
// the answer gave a turn up late by the answer's latency, while another replica could already
// claim the key and run a turn of its own (two turns of one key at once, G1). So every claim the
// store hands out carries `since`: when the store sent the command that set its lease. Checked
// here with redis-server held busy by a script for a while, so that answers come late.

import type { AdmitPolicy, Claim, StoreEntry } from "session-guard";
import { redisStore } from "session-guard/redis";
import { describe, expect, it } from "vitest";
import { sleep } from "./support/helpers.js";
import { CLIENTS, redisAvailable, testPrefix, useRedis } from "./support/redis-harness.js";

const db = useRedis();

/** Keeps redis-server busy for `ms` (a script that spins on TIME): every other command waits. */
const SPIN = `local t = redis.call("TIME")
local start = t[1] * 1000000 + t[2]
repeat
  local now = redis.call("TIME")
until now[1] * 1000000 + now[2] - start > tonumber(ARGV[1]) * 1000
return 1`;

const STALL = 300;

const POLICY: AdmitPolicy = {
  maxPending: 100,
  overflow: "drop-oldest",
  maxPendingTotal: Number.POSITIVE_INFINITY,
  whenHeld: "enqueue",
  dedupe: 0,
  batch: "one",
};

const entry = (n: number): StoreEntry => ({
  id: undefined,
  alone: false,
  expiresAt: Number.POSITIVE_INFINITY,
  data: JSON.stringify({ n }),
});

describe.skipIf(!redisAvailable).each(CLIENTS)("redisStore with $name", (kind) => {
  it("stamps each claim with when its command was sent (Claim.since), even when the answer is late", async () => {
    const client = kind.create(db.target);
    const store = redisStore({ client, prefix: testPrefix(), lease: 30_000 });
    /** The claim held on "k", let go in the end whatever happened (close waits for held keys). */
    let held: Claim | undefined;
    try {
      // Connection open and scripts loaded.
      const warm = await store.acquireOrEnqueue("warm", entry(0), POLICY);
      if (warm.status !== "acquired") throw new Error(`warm: ${warm.status}`);
      await store.finish("warm", warm.claim, "one");

      // A claim sent while the server is busy.
      const spin = db.admin.eval(SPIN, { arguments: [String(STALL)] });
      await sleep(STALL / 6); // the script runs now: what comes next waits for it
      const asked = Date.now();
      const admission = await store.acquireOrEnqueue("k", entry(1), POLICY);
      const answered = Date.now();
      await spin;
      if (admission.status !== "acquired") throw new Error(`k: ${admission.status}`);
      held = admission.claim;
      expect(answered - asked).toBeGreaterThanOrEqual(STALL / 2); // the answer came late
      expect(admission.claim.since).toBeGreaterThanOrEqual(asked);
      expect(admission.claim.since as number).toBeLessThan(asked + STALL / 2);

      // The next claim handed on by a finish, sent while the server is busy.
      expect((await store.acquireOrEnqueue("k", entry(2), POLICY)).status).toBe("queued");
      const spinAgain = db.admin.eval(SPIN, { arguments: [String(STALL)] });
      await sleep(STALL / 6);
      const finishing = Date.now();
      const finish = await store.finish("k", admission.claim, "one");
      await spinAgain;
      if (finish.status !== "next") throw new Error(`finish: ${finish.status}`);
      held = finish.claim;
      expect(finish.claim.since).toBeGreaterThanOrEqual(finishing);
      expect(finish.claim.since as number).toBeLessThan(finishing + STALL / 2);
    } finally {
      if (held !== undefined) await store.finish("k", held, "all");
      await store.close();
      await kind.dispose(client);
    }
  });
});
