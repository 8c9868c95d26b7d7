// === SWEEP: one script per bucket (see ./index.ts)

/**
 * Keys of the bucket whose lease deadline passed (Redis' clock): a holder died, or input waits with
 * no holder. Only keys starting with the guard's namespace (another guard on the same prefix runs
 * its own keys). KEYS: index. ARGV: limit, namespace ("" = every key).
 */
export const SWEEP = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local namespace = ARGV[2] or ""
if namespace == "" then
  return redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, limit)
end
local out = {}
for _, key in ipairs(redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, limit * 10)) do
  if string.sub(key, 1, #namespace) == namespace then
    out[#out + 1] = key
    if #out == limit then break end
  end
end
return out
`;
