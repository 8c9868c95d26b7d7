// === FINISH: one script, one round trip (see ./index.ts)

import { CARRIED_LIB } from "./carried.js";
import { LIB } from "./lib.js";

/**
 * End the turn: hand back the next batch under a new claim, or release the key when nothing waits.
 * KEYS: lease, run, index [, queue, fence [, carry]] [, outcome record…]. ARGV: token [, number of
 * outcome records, then (PX ms, value) per record] [, "<batch: a all, o one>|<lease ms>|<prefix
 * length>" [, carry reason or "" (discard), carried value or ""]]. The count is there only with
 * records (a finish without any sends no byte more); the options start with a letter, never a
 * digit, so the script tells the two apart.
 *
 * Outcome records (../outcomes.ts) ride along on a standalone server: the ending turn's "handled"
 * is noted just before its finish is sent, and writing it here saves a command of its own. They are
 * written first, whatever the answer (a record says what became of an input, not who holds the
 * key), and only on a standalone server: a record lives in its id's bucket, which in Redis Cluster
 * is another slot.
 *
 * A lease that is the bare token (nothing was queued during the claim, no lane waits, no stop) is
 * released with the running turn's entries and its index entry: all it needs are the lease, run and
 * index keys and the token. The caller adds the rest when it knows or suspects that input is
 * pending; when the script needs them and they are missing, it answers {"keys"} before changing
 * anything, and the caller sends it again with them. A next claim's token keeps the suffix of this
 * one (`<replica>:<n>`): its fence alone makes it new.
 *
 * A lease that is not the caller's any more (it ran out before this finish arrived, or another
 * replica took the key over) is never released or handed on: {"lost"}, and the caller reports it.
 *
 * Carried work (./carried.ts): the caller declares the carry list when its claim has carried work
 * or hands some on. A released key deletes it; a next claim is handed the records, after the
 * ending turn's own value is appended (a carry reason) or everything is deleted (no reason). A lost
 * claim leaves it for the replica that takes the key over.
 *
 * Answers 0 when it released the key with nothing pending and no waiter; otherwise
 * {"released", drops} | {"next", token, fence, batch, drops, pending, carried} |
 * {"lost", pending, pttl} | {"keys"}.
 */
export const FINISH = `
local records = tonumber(ARGV[2]) or 0
local declared = #KEYS - records
for i = 1, records do
  redis.call("SET", KEYS[declared + i], ARGV[2 + 2 * i], "PX", ARGV[1 + 2 * i])
end
local carry = declared >= 6 and KEYS[6] or nil
local value = redis.call("GET", KEYS[1])
if value == ARGV[1] then
  redis.call("DEL", KEYS[1], KEYS[2])
  if carry then redis.call("DEL", carry) end
  local lease = KEYS[1]
  redis.call("ZREM", KEYS[3], string.sub(lease, string.find(lease, "}", 1, true) + 3))
  return 0
end
if declared < 4 then return {"keys"} end
${LIB}
${CARRIED_LIB}
if not holds(value, ARGV[1]) then
  return {"lost", redis.call("LLEN", KEYS[4]), redis.call("PTTL", KEYS[1])}
end
local at = records > 0 and 2 + 2 * records or 1
local mode, lease_ms, prefix_length = string.match(ARGV[at + 1], "^(.)|(%d+)|(%d+)$")
local suffix = string.match(ARGV[1], "^[^:]*:(.*)$")
local key = key_of(KEYS[1])
local waited = flagged(value, "+w")
redis.call("DEL", KEYS[2])
local drops = {}
local batch, earliest = take_batch(KEYS[4], mode, drops, true)
if #batch == 0 then
  redis.call("DEL", KEYS[1])
  redis.call("ZREM", KEYS[3], key)
  if carry then redis.call("DEL", carry) end
  if waited then redis.call("PUBLISH", channel_of(KEYS[1], prefix_length), "f|" .. key) end
  return {"released", drops}
end
local carried = {}
if carry then
  if ARGV[at + 2] ~= "" then
    carry_on(carry, carry_record(ARGV[at + 2], ARGV[1], ARGV[at + 3]))
    carried = carried_of(carry)
  else
    redis.call("DEL", carry)
  end
end
local flags = waited and "+w" or ""
local token, fence = claim(KEYS[1], KEYS[4], KEYS[2], KEYS[5], KEYS[3], batch, tonumber(lease_ms), suffix, key, flags, earliest)
return {"next", token, fence, batch, drops, redis.call("LLEN", KEYS[4]), carried}
`;
