// === REVISE: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/**
 * An input was edited or deleted: if it belongs to the batch of the turn holding the key (the
 * `r:` list, whichever replica holds it), tell that replica on its own channel with a "v" hint
 * (see ../revisions.ts) and answer 1; otherwise answer 0. KEYS: lease, run. ARGV: id field, the
 * hint's tail after the id field ("<length>|<json><key>" or "-|<key>"), prefix length.
 */
export const REVISE = `${LIB}
local value = redis.call("GET", KEYS[1])
if not value then return 0 end
local items = redis.call("LRANGE", KEYS[2], 0, -1)
for i = 1, #items do
  local e = items[i]
  if not lane(e) and field(e, 4) == ARGV[1] then
    local token = token_of(value)
    local channel = channel_of(KEYS[1], ARGV[3]) .. ":" .. replica_of(token)
    redis.call("PUBLISH", channel, "v|" .. token .. "|" .. ARGV[1] .. "|" .. ARGV[2])
    return 1
  end
end
return 0
`;
