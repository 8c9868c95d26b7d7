// === ACQUIRE: one script, one round trip (see ./index.ts)

import { LIB } from "./lib.js";

/**
 * Claim the key, or keep the entry as pending input of its holder, with de-duplication inside.
 * With an empty entry it is a probe: claim the key if its holder is gone and input waits.
 *
 * KEYS: lease, queue, run, fence, index [, id]
 * ARGV: entry | "", lease ms, "<dedupe ms, 0 = forever>|<maxPending>|<policy>|<prefix length>"
 *       [, token suffix "<replica>:<n>" (a probe; otherwise the entry's uid is the suffix)].
 *       The policy is four characters: whenHeld (e enqueue, l latest, r reject), overflow
 *       (o drop-oldest, n drop-newest), batch (a all, o one), notifyFree (1, 0); the prefix length
 *       locates the prefix in the lease key's name, for the hint channel.
 *
 * Answers the fence alone when it claimed a free key for the entry (the batch is the entry, the
 * token `<fence>:<uid>`); otherwise {"dup"} | {"busy", holder, pttl} | {"overflow", holder, pttl}
 * | {"queued", holder, pttl, pending, drops} | {"held", holder, pttl, uids} (probe) |
 * {"free", drops} | {"acquired", token, fence, batch, drops, pending}.
 */
export const ACQUIRE = `
local entry = ARGV[1]
if KEYS[6] then
  local window = string.match(ARGV[3], "^%d+")
  local fresh
  if window == "0" then
    fresh = redis.call("SET", KEYS[6], "1", "NX")
  else
    fresh = redis.call("SET", KEYS[6], "1", "NX", "PX", window)
  end
  if not fresh then return {"dup"} end
end
if entry ~= "" and redis.call("EXISTS", KEYS[1], KEYS[2], KEYS[3]) == 0 then
  local fence = redis.call("INCR", KEYS[4])
  redis.call("SET", KEYS[1], fence .. ":" .. string.match(entry, "^[^|]*|[^|]*|([^|]*)"), "PX", ARGV[2])
  redis.call("RPUSH", KEYS[3], entry)
  return fence
end
${LIB}
local max_pending, policy, prefix_length = string.match(ARGV[3], "^%d+|(%d+)|(....)|(%d+)$")
local lease_ms = tonumber(ARGV[2])
local suffix = ARGV[4] or field(entry, 3)
local key = key_of(KEYS[1])
local holder = redis.call("GET", KEYS[1])
if holder then
  local pttl = redis.call("PTTL", KEYS[1])
  if entry == "" then
    local items = redis.call("LRANGE", KEYS[2], 0, -1)
    local uids = {}
    for i = 1, #items do uids[i] = field(items[i], 3) end
    return {"held", holder, pttl, uids}
  end
  local when = string.sub(policy, 1, 1)
  if when == "r" then
    if string.sub(policy, 4, 4) == "1" then flag(KEYS[1], holder, "+w", pttl) end
    return {"busy", holder, pttl}
  end
  local items = nil
  local n
  local superseded = 0
  if when == "l" and not alone(entry) then
    items = redis.call("LRANGE", KEYS[2], 0, -1)
    n = #items
    for i = 1, n do
      if not alone(items[i]) then superseded = superseded + 1 end
    end
  else
    n = redis.call("LLEN", KEYS[2])
  end
  local evict = n - superseded >= tonumber(max_pending)
  if evict and (string.sub(policy, 2, 2) == "n" or n == superseded) then
    return {"overflow", holder, pttl}
  end
  local drops = {}
  if superseded > 0 then
    local kept = {}
    for i = 1, n do
      local e = items[i]
      if alone(e) then
        kept[#kept + 1] = e
      else
        drops[#drops + 1] = "superseded"
        drops[#drops + 1] = e
      end
    end
    redis.call("DEL", KEYS[2])
    push(KEYS[2], kept, 1, #kept)
    n = #kept
  end
  if evict then
    drops[#drops + 1] = "overflow"
    drops[#drops + 1] = redis.call("LPOP", KEYS[2])
    n = n - 1
  end
  redis.call("RPUSH", KEYS[2], entry)
  n = n + 1
  -- The first input queued during a claim flags the lease and indexes the key (until the lease's
  -- deadline, which renewals move on together with the index's score).
  if not flagged(holder, "+p") then
    flag(KEYS[1], holder, "+p", pttl)
    redis.call("ZADD", KEYS[5], clock() + math.max(pttl, 0), key)
  end
  local replica = replica_of(holder)
  if replica ~= nil and replica ~= string.match(suffix, "^[^:]*") then
    local channel = channel_of(KEYS[1], prefix_length) .. ":" .. replica
    redis.call("PUBLISH", channel, "p|" .. token_of(holder) .. "|" .. n .. "|" .. key)
  end
  return {"queued", holder, pttl, n, drops}
end
local drops = {}
-- The holder died: the entries of its turn come first (at-least-once). Lanes cannot run elsewhere.
local inherited = 0
if redis.call("LLEN", KEYS[3]) > 0 then
  local orphans = redis.call("LRANGE", KEYS[3], 0, -1)
  redis.call("DEL", KEYS[3])
  for i = #orphans, 1, -1 do
    if not lane(orphans[i]) then
      redis.call("LPUSH", KEYS[2], orphans[i])
      inherited = inherited + 1
    end
  end
end
local batch
local remaining = 0
if entry ~= "" and inherited == 0 and redis.call("LLEN", KEYS[2]) == 0 then
  batch = {entry}
else
  if entry ~= "" then redis.call("RPUSH", KEYS[2], entry) end
  batch = take_batch(KEYS[2], string.sub(policy, 3, 3), drops, true)
  remaining = redis.call("LLEN", KEYS[2])
end
if #batch == 0 then
  redis.call("ZREM", KEYS[5], key)
  return {"free", drops}
end
local token, fence = claim(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], batch, lease_ms, suffix, key, "")
return {"acquired", token, fence, batch, drops, remaining}
`;
