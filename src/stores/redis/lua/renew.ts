// === RENEW: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/** KEYS: lease, queue, index. ARGV: token, lease ms. Answers the pending count, or -1 (lost). */
export const RENEW = `${LIB}
if not holds(redis.call("GET", KEYS[1]), ARGV[1]) then return -1 end
redis.call("PEXPIRE", KEYS[1], ARGV[2])
redis.call("ZADD", KEYS[3], clock() + tonumber(ARGV[2]), key_of(KEYS[1]))
return redis.call("LLEN", KEYS[2])
`;
