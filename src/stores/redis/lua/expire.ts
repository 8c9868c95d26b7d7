// === EXPIRE: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/**
 * KEYS: lease, queue, run, index. Drops the expired pending entries (Redis' clock), and keeps the
 * lease's earliest expiry (`+e`, which the holder's renewals read) true to what is left. Answers
 * {drops ("expired", entry, …), pending left, earliest expiresAt of those left or ""}.
 */
export const EXPIRE = `${LIB}
local drops = {}
local kept = unexpired(redis.call("LRANGE", KEYS[2], 0, -1), drops)
local earliest = nil
for i = 1, #kept do
  local at = expiry_of(kept[i])
  if at ~= nil and (earliest == nil or at < earliest) then earliest = at end
end
local value = redis.call("GET", KEYS[1])
if value and expiry_flag(value) ~= earliest then
  set_lease(KEYS[1], with_expiry(value, earliest), redis.call("PTTL", KEYS[1]))
end
if #drops > 0 then
  redis.call("DEL", KEYS[2])
  push(KEYS[2], kept, 1, #kept)
  if #kept == 0 and redis.call("EXISTS", KEYS[1]) == 0 and redis.call("LLEN", KEYS[3]) == 0 then
    redis.call("ZREM", KEYS[4], key_of(KEYS[1]))
  end
end
return {drops, #kept, earliest and string.format("%d", earliest) or ""}
`;
