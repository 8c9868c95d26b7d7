// === CLEAR: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/**
 * Stop: remove the pending entries (and those of a dead holder's turn, which must not run again)
 * and tell a holder on another replica to abort. KEYS: lease, queue, run, index.
 * ARGV: hint channel, replica.
 */
export const CLEAR = `${LIB}
local key = key_of(KEYS[1])
local items = redis.call("LRANGE", KEYS[2], 0, -1)
redis.call("DEL", KEYS[2])
local holder = redis.call("GET", KEYS[1])
if holder then
  local replica = replica_of(holder)
  if replica ~= nil and replica ~= ARGV[2] then
    redis.call("PUBLISH", ARGV[1] .. ":" .. replica, "s|" .. token_of(holder) .. "|" .. key)
  end
  return items
end
local run = redis.call("LRANGE", KEYS[3], 0, -1)
redis.call("DEL", KEYS[3])
redis.call("ZREM", KEYS[4], key)
local out = {}
for i = 1, #run do
  if not lane(run[i]) then out[#out + 1] = run[i] end
end
for i = 1, #items do out[#out + 1] = items[i] end
return out
`;
