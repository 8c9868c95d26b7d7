// === KEYS: one script per bucket (see ./index.ts)

/**
 * The keys of one bucket's index that start with a prefix: keys held (every claim is indexed) or
 * with pending input, in any replica. A rare operation (a channel-wide stop): it reads the whole
 * index of the bucket. KEYS: index. ARGV: prefix.
 */
export const KEYS = `
local prefix = ARGV[1]
local out = {}
for _, key in ipairs(redis.call("ZRANGE", KEYS[1], 0, -1)) do
  if string.sub(key, 1, #prefix) == prefix then out[#out + 1] = key end
end
return out
`;
