// === STOP: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/**
 * Stop the key: de-duplicate the stop's id in the inputs' id space (a retried stop delivered to
 * another replica is a duplicate), remove the pending entries, and mark the lease that holds the
 * key as stopped (`+s`, which the holder's next renewal reports, whatever happens to the hint),
 * telling a holder on another replica at once with a hint. Without a holder, the entries of a dead
 * holder's turn are removed too (they must not run again).
 *
 * KEYS: lease, queue, run, index [, id]. ARGV: dedupe window ms ("0" = forever), hint channel,
 * replica. Answers {"dup"} | {"stopped", held 0|1, entries}.
 */
export const STOP = `
if KEYS[5] then
  local fresh
  if ARGV[1] == "0" then
    fresh = redis.call("SET", KEYS[5], "1", "NX")
  else
    fresh = redis.call("SET", KEYS[5], "1", "NX", "PX", ARGV[1])
  end
  if not fresh then return {"dup"} end
end
${LIB}
local key = key_of(KEYS[1])
local items = redis.call("LRANGE", KEYS[2], 0, -1)
redis.call("DEL", KEYS[2])
local holder = redis.call("GET", KEYS[1])
if holder then
  flag(KEYS[1], with_expiry(holder, nil), "+s", redis.call("PTTL", KEYS[1]))
  hint_stop(ARGV[2], holder, ARGV[3], key)
  return {"stopped", 1, items}
end
return {"stopped", 0, stop_unheld(KEYS[3], KEYS[4], key, items)}
`;
