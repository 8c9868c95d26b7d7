// === WITHDRAW: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/** KEYS: lease, queue, run, index. ARGV: id field. Removes one pending entry by id. */
export const WITHDRAW = `${LIB}
local items = redis.call("LRANGE", KEYS[2], 0, -1)
for i = 1, #items do
  if field(items[i], 4) == ARGV[1] then
    redis.call("LREM", KEYS[2], 1, items[i])
    if #items == 1 and redis.call("EXISTS", KEYS[1]) == 0 and redis.call("LLEN", KEYS[3]) == 0 then
      redis.call("ZREM", KEYS[4], key_of(KEYS[1]))
    end
    return items[i]
  end
end
return false
`;
