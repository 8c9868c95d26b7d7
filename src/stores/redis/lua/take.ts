// === TAKE: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/**
 * Move pending entries into the running turn (steer, a settle window): the leading entries that
 * are neither alone nor of a group ("o": one of them); with a group, that group's pending entries
 * alone. KEYS: lease, queue, run. ARGV: token, batch ("a" all, "o" one) [, group].
 * Answers {"taken", batch, drops, pending} | {"lost"}.
 */
export const TAKE = `${LIB}
if not holds(redis.call("GET", KEYS[1]), ARGV[1]) then return {"lost"} end
local drops = {}
local batch = take_batch(KEYS[2], ARGV[2], drops, false, ARGV[3])
push(KEYS[3], batch, 1, #batch)
return {"taken", batch, drops, redis.call("LLEN", KEYS[2])}
`;
