// === RECORD: one script, one round trip per slot (see ./index.ts and ../outcomes.ts)

/**
 * Write several outcome records of one bucket at once (one record goes as a plain SET).
 * KEYS: the records' keys. ARGV: per key, its PX (ms) and its value.
 */
export const RECORD = `
for i = 1, #KEYS do
  redis.call("SET", KEYS[i], ARGV[2 * i], "PX", ARGV[2 * i - 1])
end
return #KEYS
`;
