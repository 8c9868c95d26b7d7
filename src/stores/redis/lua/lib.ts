// === Lua shared by the scripts of the general paths (the include)
//
// Helpers of the general paths. Scripts call TIME before writing, which needs effects
// replication: the default since Redis 5 (and in Valkey), the only mode since Redis 7.
export const LIB = `
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
