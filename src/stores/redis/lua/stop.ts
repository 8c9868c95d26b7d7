// === STOP: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/**
 * Stop the key: de-duplicate the stop's id in the inputs' id space (a retried stop delivered to
 * another replica is a duplicate), remove the pending entries, and mark the lease that holds the
 * key as stopped (`+s`, which the holder's next renewal reports, whatever happens to the hint),
 * telling a holder on another replica at once with a hint. Without a holder, the entries of a dead
 * holder's turn are removed too (they must not run again).
 *
 * KEYS: lease, queue, run, index [, id]. ARGV: dedupe window ms ("0" = forever), hint channel,
 * replica. Answers {"dup"} | {"stopped", held 0|1, entries}.
 */
export const STOP = `
if KEYS[5] then
  local fresh
  if ARGV[1] == "0" then
    fresh = redis.call("SET", KEYS[5], "1", "NX")
  else
    fresh = redis.call("SET", KEYS[5], "1", "NX", "PX", ARGV[1])
  end
  if not fresh then return {"dup"} end
end
${LIB}
local key = key_of(KEYS[1])
local items = redis.call("LRANGE", KEYS[2], 0, -1)
redis.call("DEL", KEYS[2])
local holder = redis.call("GET", KEYS[1])
if holder then
  flag(KEYS[1], with_expiry(holder, nil), "+s", redis.call("PTTL", KEYS[1]))
  local replica = replica_of(holder)
  if replica ~= nil and replica ~= ARGV[3] then
    redis.call("PUBLISH", ARGV[2] .. ":" .. replica, "s|" .. token_of(holder) .. "|" .. key)
  end
  return {"stopped", 1, items}
end
local run = redis.call("LRANGE", KEYS[3], 0, -1)
redis.call("DEL", KEYS[3])
redis.call("ZREM", KEYS[4], key)
local out = {}
for i = 1, #run do
  if not lane(run[i]) then out[#out + 1] = run[i] end
end
for i = 1, #items do out[#out + 1] = items[i] end
return {"stopped", 0, out}
`;
