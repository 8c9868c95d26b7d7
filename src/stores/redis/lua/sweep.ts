// === SWEEP: one script, one round trip (see ./index.ts)

/** KEYS: index. ARGV: limit. Keys of the bucket whose lease deadline passed (Redis' clock). */
export const SWEEP = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, tonumber(ARGV[1]))
`;
