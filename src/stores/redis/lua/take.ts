// === TAKE: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/**
 * Move pending entries into the running turn (steer, a settle window): the leading entries up to
 * the next alone one, with every pending entry of their groups; with a group, that group's pending
 * entries alone. KEYS: lease, queue, run. ARGV: token [, group].
 * Answers {"taken", batch, drops, pending} | {"lost"}.
 */
export const TAKE = `${LIB}
if not holds(redis.call("GET", KEYS[1]), ARGV[1]) then return {"lost"} end
local drops = {}
local batch = take_batch(KEYS[2], "a", drops, false, ARGV[2])
push(KEYS[3], batch, 1, #batch)
return {"taken", batch, drops, redis.call("LLEN", KEYS[2])}
`;
