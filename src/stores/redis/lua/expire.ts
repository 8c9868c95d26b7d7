// === EXPIRE: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/**
 * KEYS: lease, queue, run, index. Drops the expired pending entries (Redis' clock). Answers
 * {drops ("expired", entry, …), pending left, earliest expiresAt of those left or ""}.
 */
export const EXPIRE = `${LIB}
local drops = {}
local kept = unexpired(redis.call("LRANGE", KEYS[2], 0, -1), drops)
local earliest = nil
for i = 1, #kept do
  if string.byte(kept[i], 4) ~= 124 then
    local at = tonumber(field(kept[i], 2))
    if at ~= nil and (earliest == nil or at < earliest) then earliest = at end
  end
end
if #drops > 0 then
  redis.call("DEL", KEYS[2])
  push(KEYS[2], kept, 1, #kept)
  if #kept == 0 and redis.call("EXISTS", KEYS[1]) == 0 and redis.call("LLEN", KEYS[3]) == 0 then
    redis.call("ZREM", KEYS[4], key_of(KEYS[1]))
  end
end
return {drops, #kept, earliest and tostring(earliest) or ""}
`;
