// === RENEW: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/**
 * Keep the lease alive and move the key's index score on to the new deadline.
 * KEYS: lease, queue, index. ARGV: token, lease ms.
 *
 * Answers -1 when the lease is not the caller's (lost: expired, taken over, or wiped with the rest
 * of Redis' data; a lost lease is never recreated). Otherwise the pending count alone, or, when the
 * key was stopped (`+s`) or pending input expires (`+e`), {pending, stopped 0|1, earliest expiry
 * or "", interrupt 0|1}: a stop reaches the holder here even if its hint was lost. "+i" (input
 * admitted in interrupt mode was queued during the claim) is answered once and cleared: the holder
 * interrupts its turn then if the "p" hint that said so was lost.
 */
export const RENEW = `${LIB}
local value = redis.call("GET", KEYS[1])
if not holds(value, ARGV[1]) then return -1 end
local interrupt = flagged(value, "+i")
if interrupt then
  redis.call("SET", KEYS[1], (string.gsub(value, "%+i", "")), "PX", ARGV[2])
else
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
redis.call("ZADD", KEYS[3], clock() + tonumber(ARGV[2]), key_of(KEYS[1]))
local pending = redis.call("LLEN", KEYS[2])
local stopped = flagged(value, "+s")
local at = expiry_flag(value)
if not stopped and at == nil and not interrupt then return pending end
return {pending, stopped and 1 or 0, at and string.format("%d", at) or "", interrupt and 1 or 0}
`;
