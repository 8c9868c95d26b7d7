// === TAKE: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/** KEYS: lease, queue, run. ARGV: token. Moves pending entries into the running turn. */
export const TAKE = `${LIB}
if not holds(redis.call("GET", KEYS[1]), ARGV[1]) then return {"lost"} end
local drops = {}
local batch = take_batch(KEYS[2], "a", drops, false)
push(KEYS[3], batch, 1, #batch)
return {"taken", batch, drops, redis.call("LLEN", KEYS[2])}
`;
