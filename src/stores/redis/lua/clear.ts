// === CLEAR: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/**
 * Stop: remove the pending entries (and those of a dead holder's turn, which must not run again)
 * and tell a holder on another replica to abort. KEYS: lease, queue, run, index.
 * ARGV: hint channel, replica.
 */
export const CLEAR = `${LIB}
local key = key_of(KEYS[1])
local items = redis.call("LRANGE", KEYS[2], 0, -1)
redis.call("DEL", KEYS[2])
local holder = redis.call("GET", KEYS[1])
if holder then
  hint_stop(ARGV[1], holder, ARGV[2], key)
  return items
end
return stop_unheld(KEYS[3], KEYS[4], key, items)
`;
