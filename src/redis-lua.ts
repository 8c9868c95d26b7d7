// === The Redis store's Lua scripts
//
// Every operation on a session is one script, so it is atomic and one round trip. All keys a script
// declares share the session's hash tag (`{<prefix><bucket>}`), so each script is single-slot in
// Redis Cluster. Entries are stored as text whose header Lua reads without decoding JSON:
//
//   <alone: "a" | "-"><kind: "m" message | "l" local-only lane>|<expiresAt ms or "">|<uid>|<id>|<json>
//
// `<id>` is "-" (none) or "=" + encodeURIComponent(id), so it never holds a "|". The rules are the
// memory store's (`takeBatch`, the admission policy) written once more in Lua; test/redis-store
// runs the same scenarios against both.

// Scripts call TIME before writing, which needs effects replication: the default since Redis 5
// (and in Valkey), the only mode since Redis 7.
const LIB = `
local function alone(e) return string.byte(e, 1) == 97 end
local function lane(e) return string.byte(e, 2) == 108 end
local function field(e, n)
  local start = 1
  for _ = 2, n do start = string.find(e, "|", start, true) + 1 end
  return string.sub(e, start, string.find(e, "|", start, true) - 1)
end
local function expired(e, now)
  local at = tonumber(field(e, 2))
  return at ~= nil and at <= now
end
local function clock()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function push(list, items, from, to)
  local i = from
  while i <= to do
    local j = math.min(i + 999, to)
    redis.call("RPUSH", list, unpack(items, i, j))
    i = j + 1
  end
end
local function replica_of(token) return string.match(token, "^[^:]*:([^:]*):") end
local function take_batch(queue, mode, now, drops, allow_alone)
  if redis.call("LLEN", queue) == 0 then return {} end
  local items = redis.call("LRANGE", queue, 0, -1)
  local kept = {}
  for i = 1, #items do
    local e = items[i]
    if expired(e, now) then
      drops[#drops + 1] = "expired"
      drops[#drops + 1] = e
    else
      kept[#kept + 1] = e
    end
  end
  local take = 0
  local head = kept[1]
  if head ~= nil then
    if alone(head) then
      if allow_alone then take = 1 end
    elseif mode == "one" then
      take = 1
    else
      take = 1
      while take < #kept and not alone(kept[take + 1]) do take = take + 1 end
    end
  end
  local batch = {}
  for i = 1, take do batch[i] = kept[i] end
  if #kept == #items then
    if take == #items then
      redis.call("DEL", queue)
    elseif take > 0 then
      redis.call("LTRIM", queue, take, -1)
    end
  else
    redis.call("DEL", queue)
    push(queue, kept, take + 1, #kept)
  end
  return batch
end
-- The index holds keys whose input would be stranded if their holder died: pending input (from
-- the moment it is queued) and turns that renewed their lease (from their first renewal). A turn
-- shorter than a renewal period with nothing pending costs no index update.
local function claim(keys_lease, keys_queue, keys_run, keys_fence, keys_index, batch, lease_ms, suffix, key)
  local fence = redis.call("INCR", keys_fence)
  local token = fence .. ":" .. suffix
  redis.call("SET", keys_lease, token, "PX", lease_ms)
  push(keys_run, batch, 1, #batch)
  if redis.call("LLEN", keys_queue) > 0 then
    redis.call("ZADD", keys_index, clock() + lease_ms, key)
  end
  return token, fence
end
`;

/**
 * Claim the key, or keep the entry as pending input of its holder, with de-duplication inside.
 * With an empty entry it is a probe: claim the key if its holder is gone and input waits.
 *
 * KEYS: lease, queue, run, fence, index, wait [, id]
 * ARGV: key, entry|"", now, dedupe ms ("0" = forever), whenHeld, maxPending, overflow, lease ms,
 *       token suffix, batch, replica, hint channel, notifyFree
 */
export const ACQUIRE = `${LIB}
local key, entry, now, lease_ms = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[8])
if KEYS[7] then
  local fresh
  if ARGV[4] == "0" then
    fresh = redis.call("SET", KEYS[7], "1", "NX")
  else
    fresh = redis.call("SET", KEYS[7], "1", "NX", "PX", ARGV[4])
  end
  if not fresh then return {"dup"} end
end
local holder = redis.call("GET", KEYS[1])
if holder then
  local pttl = redis.call("PTTL", KEYS[1])
  if entry == "" then
    local items = redis.call("LRANGE", KEYS[2], 0, -1)
    local uids = {}
    for i = 1, #items do uids[i] = field(items[i], 3) end
    return {"held", holder, pttl, uids}
  end
  if ARGV[5] == "reject" then
    if ARGV[13] == "1" then redis.call("SET", KEYS[6], "1", "PX", lease_ms * 2) end
    return {"busy", holder, pttl}
  end
  local items = nil
  local n
  local superseded = 0
  if ARGV[5] == "latest" and not alone(entry) then
    items = redis.call("LRANGE", KEYS[2], 0, -1)
    n = #items
    for i = 1, n do
      if not alone(items[i]) then superseded = superseded + 1 end
    end
  else
    n = redis.call("LLEN", KEYS[2])
  end
  local evict = n - superseded >= tonumber(ARGV[6])
  if evict and (ARGV[7] == "drop-newest" or n == superseded) then
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
  redis.call("ZADD", KEYS[5], clock() + math.max(pttl, 0), key)
  local replica = replica_of(holder)
  if replica ~= nil and replica ~= ARGV[11] then
    redis.call("PUBLISH", ARGV[12] .. ":" .. replica, "p|" .. holder .. "|" .. n .. "|" .. key)
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
  batch = take_batch(KEYS[2], ARGV[10], now, drops, true)
  remaining = redis.call("LLEN", KEYS[2])
end
if #batch == 0 then
  redis.call("ZREM", KEYS[5], key)
  return {"free", drops}
end
local token, fence = claim(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], batch, lease_ms, ARGV[9], key)
return {"acquired", token, fence, batch, drops, remaining}
`;

/** KEYS: lease, queue, index. ARGV: token, lease ms, key. Answers the pending count, or -1 (lost). */
export const RENEW = `${LIB}
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return -1 end
redis.call("PEXPIRE", KEYS[1], ARGV[2])
redis.call("ZADD", KEYS[3], clock() + tonumber(ARGV[2]), ARGV[3])
return redis.call("LLEN", KEYS[2])
`;

/** KEYS: lease, queue, run. ARGV: token, now. Moves pending entries into the running turn. */
export const TAKE = `${LIB}
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return {"lost"} end
local drops = {}
local batch = take_batch(KEYS[2], "all", tonumber(ARGV[2]), drops, false)
push(KEYS[3], batch, 1, #batch)
return {"taken", batch, drops, redis.call("LLEN", KEYS[2])}
`;

/**
 * End the turn: hand back the next batch under a new claim, or release the key when nothing waits.
 * KEYS: lease, queue, run, fence, index, wait.
 * ARGV: token, now, batch, lease ms, token suffix, key, hint channel.
 */
export const FINISH = `${LIB}
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return {"lost", redis.call("LLEN", KEYS[2]), redis.call("PTTL", KEYS[1])}
end
redis.call("DEL", KEYS[3])
local drops = {}
local batch = take_batch(KEYS[2], ARGV[3], tonumber(ARGV[2]), drops, true)
if #batch == 0 then
  redis.call("DEL", KEYS[1])
  redis.call("ZREM", KEYS[5], ARGV[6])
  if redis.call("DEL", KEYS[6]) == 1 then redis.call("PUBLISH", ARGV[7], "f|" .. ARGV[6]) end
  return {"released", drops}
end
local token, fence = claim(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], batch, tonumber(ARGV[4]), ARGV[5], ARGV[6])
return {"next", token, fence, batch, drops, redis.call("LLEN", KEYS[2])}
`;

/**
 * Release the key for another replica (shutdown), announcing it when input waits.
 * KEYS: lease, queue, run, index, wait. ARGV: token, key, hint channel, replica, requeue ("1").
 */
export const ABANDON = `${LIB}
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("DEL", KEYS[1])
local run = redis.call("LRANGE", KEYS[3], 0, -1)
redis.call("DEL", KEYS[3])
if ARGV[5] == "1" then
  for i = #run, 1, -1 do
    if not lane(run[i]) then redis.call("LPUSH", KEYS[2], run[i]) end
  end
end
if redis.call("LLEN", KEYS[2]) > 0 then
  redis.call("ZADD", KEYS[4], clock(), ARGV[2])
  redis.call("PUBLISH", ARGV[3], "h|" .. ARGV[4] .. "|" .. ARGV[2])
else
  redis.call("ZREM", KEYS[4], ARGV[2])
end
if redis.call("DEL", KEYS[5]) == 1 then redis.call("PUBLISH", ARGV[3], "f|" .. ARGV[2]) end
return 1
`;

/**
 * Stop: remove the pending entries (and those of a dead holder's turn, which must not run again)
 * and tell a holder on another replica to abort. KEYS: lease, queue, run, index.
 * ARGV: key, hint channel, replica.
 */
export const CLEAR = `${LIB}
local items = redis.call("LRANGE", KEYS[2], 0, -1)
redis.call("DEL", KEYS[2])
local holder = redis.call("GET", KEYS[1])
if holder then
  local replica = replica_of(holder)
  if replica ~= nil and replica ~= ARGV[3] then
    redis.call("PUBLISH", ARGV[2] .. ":" .. replica, "s|" .. holder .. "|" .. ARGV[1])
  end
  return items
end
local run = redis.call("LRANGE", KEYS[3], 0, -1)
redis.call("DEL", KEYS[3])
redis.call("ZREM", KEYS[4], ARGV[1])
local out = {}
for i = 1, #run do
  if not lane(run[i]) then out[#out + 1] = run[i] end
end
for i = 1, #items do out[#out + 1] = items[i] end
return out
`;

/** KEYS: lease, queue, run, index. ARGV: key, id field. Removes one pending entry by id. */
export const WITHDRAW = `${LIB}
local items = redis.call("LRANGE", KEYS[2], 0, -1)
for i = 1, #items do
  if field(items[i], 4) == ARGV[2] then
    redis.call("LREM", KEYS[2], 1, items[i])
    if #items == 1 and redis.call("EXISTS", KEYS[1]) == 0 and redis.call("LLEN", KEYS[3]) == 0 then
      redis.call("ZREM", KEYS[4], ARGV[1])
    end
    return items[i]
  end
end
return false
`;

/** KEYS: index. ARGV: limit. Keys of the bucket whose lease deadline passed (Redis' clock). */
export const SWEEP = `${LIB}
return redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", clock(), "LIMIT", 0, tonumber(ARGV[1]))
`;
