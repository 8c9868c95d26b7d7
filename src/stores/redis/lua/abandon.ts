// === ABANDON: one script, one round trip (see ./index.ts)

import { CARRIED_LIB } from "./carried.js";
import { LIB } from "./lib.js";

/**
 * Release the key for another replica (shutdown), announcing it when input waits.
 * KEYS: lease, queue, run, index, carry. ARGV: token, hint channel, replica, requeue ("1"),
 * carry reason or "" [, carried value or ""].
 *
 * Carried work (./carried.ts) waits for the replica that takes the key on: the ending turn's own
 * value is appended with its reason; without a reason everything carried goes, unless the batch
 * is requeued (it never ran, so what was handed to it still waits for it). A key released with
 * nothing pending deletes it.
 */
export const ABANDON = `${LIB}
${CARRIED_LIB}
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
  if ARGV[5] ~= "" or ARGV[4] == "1" then
    carry_on(KEYS[5], carry_record(ARGV[5], ARGV[1], ARGV[6] or ""))
  else
    redis.call("DEL", KEYS[5])
  end
  redis.call("ZADD", KEYS[4], clock(), key)
  redis.call("PUBLISH", ARGV[2], "h|" .. ARGV[3] .. "|" .. key)
else
  redis.call("ZREM", KEYS[4], key)
  redis.call("DEL", KEYS[5])
end
if flagged(value, "+w") then redis.call("PUBLISH", ARGV[2], "f|" .. key) end
return 1
`;
