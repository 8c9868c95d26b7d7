// === ABANDON: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/**
 * Release the key for another replica (shutdown), announcing it when input waits.
 * KEYS: lease, queue, run, index. ARGV: token, hint channel, replica, requeue ("1").
 */
export const ABANDON = `${LIB}
local value = redis.call("GET", KEYS[1])
if not holds(value, ARGV[1]) then return 0 end
local key = key_of(KEYS[1])
redis.call("DEL", KEYS[1])
local run = redis.call("LRANGE", KEYS[3], 0, -1)
redis.call("DEL", KEYS[3])
if ARGV[4] == "1" then
  for i = #run, 1, -1 do
    if not lane(run[i]) then redis.call("LPUSH", KEYS[2], run[i]) end
  end
end
if redis.call("LLEN", KEYS[2]) > 0 then
  redis.call("ZADD", KEYS[4], clock(), key)
  redis.call("PUBLISH", ARGV[2], "h|" .. ARGV[3] .. "|" .. key)
else
  redis.call("ZREM", KEYS[4], key)
end
if flagged(value, "+w") then redis.call("PUBLISH", ARGV[2], "f|" .. key) end
return 1
`;
