// === CARRY: one script, one round trip (see ./index.ts and ./carried.ts)

/**
 * Keep the running turn's latest carried value with the key, fenced: only the claim the lease
 * names writes it. The guard coalesces (one write in flight per turn), so each call is one value.
 * KEYS: lease, carry. ARGV: token, the value as JSON text ("" removes it).
 * Answers 1, or 0 when the lease is not the caller's (lost: the next holder reads what was kept).
 */
export const CARRY = `
local value = redis.call("GET", KEYS[1])
if not value or string.match(value, "^[^+]*") ~= ARGV[1] then return 0 end
local slot = ""
if ARGV[2] ~= "" then slot = string.match(ARGV[1], "^%d+") .. "|" .. ARGV[2] end
if redis.call("EXISTS", KEYS[2]) == 1 then
  redis.call("LSET", KEYS[2], 0, slot)
elseif slot ~= "" then
  redis.call("RPUSH", KEYS[2], slot)
end
return 1
`;
