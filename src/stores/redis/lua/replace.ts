// === REPLACE: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/**
 * Swap the JSON of one pending entry (found by id) in place: the entry keeps its position, uid,
 * header and group fields, so it stays where it was in the queue (in `latest` it is still the
 * newest pending input, as it was). KEYS: queue. ARGV: id field, new JSON.
 * Answers the entry's new text, or false when no pending input of the key has that id.
 */
export const REPLACE = `${LIB}
local items = redis.call("LRANGE", KEYS[1], 0, -1)
for i = 1, #items do
  local e = items[i]
  if not lane(e) and field(e, 4) == ARGV[1] then
    -- The JSON follows the 4th "|" (the 6th for a message of a group).
    local start = 1
    for _ = 1, (string.byte(e, 2) == 103 and 6 or 4) do start = string.find(e, "|", start, true) + 1 end
    local revised = string.sub(e, 1, start - 1) .. ARGV[2]
    redis.call("LSET", KEYS[1], i - 1, revised)
    return revised
  end
end
return false
`;
