// === The Redis store's Lua scripts
//
// Every operation on a session is one script, so it is atomic and one round trip. All keys a script
// declares share the session's hash tag (`{<prefix><bucket>}`), so each script is single-slot in
// Redis Cluster; every key a script touches is declared in KEYS. Entries are stored as text whose
// header Lua reads without decoding JSON:
//
//   <alone: "a" | "-"><kind: "m" message | "l" local-only lane>|<expiresAt ms or "">|<uid>|<id>|<json>
//
// `<id>` is "-" (none) or "=" + encodeURIComponent(id), so it never holds a "|". The rules are the
// memory store's (`takeBatch`, the admission policy) written once more in Lua; test/redis-store
// runs the same scenarios against both.
//
// The lease holds the holder's token, `<fence>:<replica>:<n>`, followed by flags: "+p" once input
// was queued during the claim (so a release must look at the queue), "+w" once a lane on some
// replica waits for the key's release (a `notifyFree` admission: whoever releases the key then
// publishes "f|<key>"). Flags live and die with the lease: renewals keep them, a hand-on to the
// next batch keeps "+w" and sets "+p" again if input remains. A lease that is the bare token thus
// proves that nothing is pending and no one waits, and the release is a compare-and-delete.
//
// Cost: the scripts run on every turn, so the uncontended path of `ACQUIRE` and `FINISH` comes
// first, inline, before the helpers are even defined (defining them is work Redis repeats on every
// call), with as few calls, keys and arguments as the protocol allows: a free key is claimed with
// EXISTS, INCR, SET, RPUSH and answered with the bare fence; a lease without flags is released
// with GET, DEL and answered with 0, the finish declaring only the lease and run keys. Everything
// else (a held key, input left behind, waiters) takes the general path. The policy travels packed
// in one "|"-separated string (the same for every call of a guard), parsed only by the general
// path. The key of the session (index member, hints) is read back from the lease key's name,
// `<tag>l:<key>`, the tag ending at the first "}" (a prefix has no braces); the hint channel from
// the prefix's length.
//
// Every key a script touches is declared in KEYS, none derived, although all share the session's
// tag and so its slot: Redis Cluster checks declared keys before it runs a script, and only that
// check makes a script wait (ASK, TRYAGAIN) while its slot is being migrated. A derived key could
// be read on the source node after it moved (a queue that looks empty, a fence counter that
// starts again at 1), which would break exclusion and fencing during a resharding.

// Helpers of the general paths. Scripts call TIME before writing, which needs effects
// replication: the default since Redis 5 (and in Valkey), the only mode since Redis 7.
const LIB = `
local function alone(e) return string.byte(e, 1) == 97 end
local function lane(e) return string.byte(e, 2) == 108 end
local function field(e, n)
  local start = 1
  for _ = 2, n do start = string.find(e, "|", start, true) + 1 end
  return string.sub(e, start, string.find(e, "|", start, true) - 1)
end
local function clock()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Entries expire on Redis' clock (one clock for every replica), read once per call and only when
-- an entry has an expiry at all.
local now_ms = nil
local function expired(e)
  -- An empty expiresAt ("|" right after the header's first field) never expires.
  if string.byte(e, 4) == 124 then return false end
  local at = tonumber(field(e, 2))
  if at == nil then return false end
  if now_ms == nil then now_ms = clock() end
  return at <= now_ms
end
local function push(list, items, from, to)
  local i = from
  while i <= to do
    local j = math.min(i + 999, to)
    redis.call("RPUSH", list, unpack(items, i, j))
    i = j + 1
  end
end
local function key_of(lease) return string.sub(lease, string.find(lease, "}", 1, true) + 3) end
-- The hint channel, prefix .. "hint", the prefix being the first \`length\` bytes after the "{".
local function channel_of(lease, length) return string.sub(lease, 2, 1 + tonumber(length)) .. "hint" end
local function replica_of(token) return string.match(token, "^[^:]*:([^:]*):") end
-- A lease value is the holder's token and its flags (see above).
local function token_of(value) return string.match(value, "^[^+]*") end
local function holds(value, token) return value and token_of(value) == token end
local function flagged(value, f) return string.find(value, f, 1, true) ~= nil end
-- Add a flag to the lease, keeping its expiry (a lease always has one; without, it keeps none).
local function flag(lease, value, f, pttl)
  if flagged(value, f) then return end
  if pttl > 0 then
    redis.call("SET", lease, value .. f, "PX", pttl)
  else
    redis.call("SET", lease, value .. f)
  end
end
-- The entries of \`items\` that have not expired; the expired ones go to \`drops\` ("expired", entry).
local function unexpired(items, drops)
  local kept = {}
  for i = 1, #items do
    local e = items[i]
    if expired(e) then
      drops[#drops + 1] = "expired"
      drops[#drops + 1] = e
    else
      kept[#kept + 1] = e
    end
  end
  return kept
end
local function take_batch(queue, mode, drops, allow_alone)
  if redis.call("LLEN", queue) == 0 then return {} end
  local items = redis.call("LRANGE", queue, 0, -1)
  local kept = unexpired(items, drops)
  local take = 0
  local head = kept[1]
  if head ~= nil then
    if alone(head) then
      if allow_alone then take = 1 end
    elseif mode == "o" then
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
local function claim(keys_lease, keys_queue, keys_run, keys_fence, keys_index, batch, lease_ms, suffix, key, flags)
  local fence = redis.call("INCR", keys_fence)
  local token = fence .. ":" .. suffix
  push(keys_run, batch, 1, #batch)
  if redis.call("LLEN", keys_queue) > 0 then
    flags = "+p" .. flags
    redis.call("ZADD", keys_index, clock() + lease_ms, key)
  end
  redis.call("SET", keys_lease, token .. flags, "PX", lease_ms)
  return token, fence
end
`;

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

/** KEYS: lease, queue, index. ARGV: token, lease ms. Answers the pending count, or -1 (lost). */
export const RENEW = `${LIB}
if not holds(redis.call("GET", KEYS[1]), ARGV[1]) then return -1 end
redis.call("PEXPIRE", KEYS[1], ARGV[2])
redis.call("ZADD", KEYS[3], clock() + tonumber(ARGV[2]), key_of(KEYS[1]))
return redis.call("LLEN", KEYS[2])
`;

/** KEYS: lease, queue, run. ARGV: token. Moves pending entries into the running turn. */
export const TAKE = `${LIB}
if not holds(redis.call("GET", KEYS[1]), ARGV[1]) then return {"lost"} end
local drops = {}
local batch = take_batch(KEYS[2], "a", drops, false)
push(KEYS[3], batch, 1, #batch)
return {"taken", batch, drops, redis.call("LLEN", KEYS[2])}
`;

/**
 * End the turn: hand back the next batch under a new claim, or release the key when nothing waits.
 * KEYS: lease, run [, queue, fence, index]. ARGV: token [, "<batch: a all, o one>|<lease ms>|
 * <prefix length>"].
 *
 * A lease that is the bare token (nothing was queued during the claim, no lane waits) is released
 * with the running turn's entries: all it needs are the lease and run keys and the token. The
 * caller adds the rest when it knows or suspects that input is pending or that the key is indexed
 * (a renewed turn; the index entry is then removed too); when the script needs them and they are
 * missing, it answers {"keys"} before changing anything, and the caller sends it again with them.
 * A next claim's token keeps the suffix of this one (`<replica>:<n>`): its fence alone makes it new.
 *
 * Answers 0 when it released the key with nothing pending and no waiter; otherwise
 * {"released", drops} | {"next", token, fence, batch, drops, pending} | {"lost", pending, pttl} |
 * {"keys"}.
 */
export const FINISH = `
local value = redis.call("GET", KEYS[1])
if value == ARGV[1] then
  redis.call("DEL", KEYS[1], KEYS[2])
  if KEYS[5] then
    local lease = KEYS[1]
    redis.call("ZREM", KEYS[5], string.sub(lease, string.find(lease, "}", 1, true) + 3))
  end
  return 0
end
if not KEYS[3] then return {"keys"} end
${LIB}
if not holds(value, ARGV[1]) then
  return {"lost", redis.call("LLEN", KEYS[3]), redis.call("PTTL", KEYS[1])}
end
local mode, lease_ms, prefix_length = string.match(ARGV[2], "^(.)|(%d+)|(%d+)$")
local suffix = string.match(ARGV[1], "^[^:]*:(.*)$")
local key = key_of(KEYS[1])
local waited = flagged(value, "+w")
redis.call("DEL", KEYS[2])
local drops = {}
local batch = take_batch(KEYS[3], mode, drops, true)
if #batch == 0 then
  redis.call("DEL", KEYS[1])
  redis.call("ZREM", KEYS[5], key)
  if waited then redis.call("PUBLISH", channel_of(KEYS[1], prefix_length), "f|" .. key) end
  return {"released", drops}
end
local flags = waited and "+w" or ""
local token, fence = claim(KEYS[1], KEYS[3], KEYS[2], KEYS[4], KEYS[5], batch, tonumber(lease_ms), suffix, key, flags)
return {"next", token, fence, batch, drops, redis.call("LLEN", KEYS[3])}
`;

/**
 * Release the key for another replica (shutdown), announcing it when input waits.
 * KEYS: lease, queue, run, index. ARGV: token, hint channel, replica, requeue ("1").
 */
export const ABANDON = `${LIB}
local value = redis.call("GET", KEYS[1])
if not holds(value, ARGV[1]) then return 0 end
local key = key_of(KEYS[1])
redis.call("DEL", KEYS[1])
local run = redis.call("LRANGE", KEYS[3], 0, -1)
redis.call("DEL", KEYS[3])
if ARGV[4] == "1" then
  for i = #run, 1, -1 do
    if not lane(run[i]) then redis.call("LPUSH", KEYS[2], run[i]) end
  end
end
if redis.call("LLEN", KEYS[2]) > 0 then
  redis.call("ZADD", KEYS[4], clock(), key)
  redis.call("PUBLISH", ARGV[2], "h|" .. ARGV[3] .. "|" .. key)
else
  redis.call("ZREM", KEYS[4], key)
end
if flagged(value, "+w") then redis.call("PUBLISH", ARGV[2], "f|" .. key) end
return 1
`;

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
  local replica = replica_of(holder)
  if replica ~= nil and replica ~= ARGV[2] then
    redis.call("PUBLISH", ARGV[1] .. ":" .. replica, "s|" .. token_of(holder) .. "|" .. key)
  end
  return items
end
local run = redis.call("LRANGE", KEYS[3], 0, -1)
redis.call("DEL", KEYS[3])
redis.call("ZREM", KEYS[4], key)
local out = {}
for i = 1, #run do
  if not lane(run[i]) then out[#out + 1] = run[i] end
end
for i = 1, #items do out[#out + 1] = items[i] end
return out
`;

/** KEYS: lease, queue, run, index. ARGV: id field. Removes one pending entry by id. */
export const WITHDRAW = `${LIB}
local items = redis.call("LRANGE", KEYS[2], 0, -1)
for i = 1, #items do
  if field(items[i], 4) == ARGV[1] then
    redis.call("LREM", KEYS[2], 1, items[i])
    if #items == 1 and redis.call("EXISTS", KEYS[1]) == 0 and redis.call("LLEN", KEYS[3]) == 0 then
      redis.call("ZREM", KEYS[4], key_of(KEYS[1]))
    end
    return items[i]
  end
end
return false
`;

/**
 * KEYS: lease, queue, run, index. Drops the expired pending entries (Redis' clock). Answers
 * {drops ("expired", entry, …), pending left, earliest expiresAt of those left or ""}.
 */
export const EXPIRE = `${LIB}
local drops = {}
local kept = unexpired(redis.call("LRANGE", KEYS[2], 0, -1), drops)
local earliest = nil
for i = 1, #kept do
  if string.byte(kept[i], 4) ~= 124 then
    local at = tonumber(field(kept[i], 2))
    if at ~= nil and (earliest == nil or at < earliest) then earliest = at end
  end
end
if #drops > 0 then
  redis.call("DEL", KEYS[2])
  push(KEYS[2], kept, 1, #kept)
  if #kept == 0 and redis.call("EXISTS", KEYS[1]) == 0 and redis.call("LLEN", KEYS[3]) == 0 then
    redis.call("ZREM", KEYS[4], key_of(KEYS[1]))
  end
end
return {drops, #kept, earliest and tostring(earliest) or ""}
`;

/** KEYS: index. ARGV: limit. Keys of the bucket whose lease deadline passed (Redis' clock). */
export const SWEEP = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, tonumber(ARGV[1]))
`;
