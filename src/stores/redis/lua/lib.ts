// === Lua shared by the scripts of the general paths (the include)
//
// Scripts call TIME before writing, which needs effects replication: the default since Redis 5
// (and in Valkey), the only mode since Redis 7. Redis' Lua is 5.1, whose `..` prints a number with
// 14 significant digits: fences (microseconds, 16 digits) are printed with string.format("%d").

/**
 * The fence of a new claim, inline (the claim's hot path runs before `LIB` is defined):
 * `fence = max(last fence + 1, Redis' clock in µs)`, written back. A fresh counter (Redis lost its
 * data, or a failover to a replica that had not seen the last writes) thus starts above every fence
 * handed out before, and fences never go backwards for a key. One command as a rule (GETSET, which
 * every Redis and Valkey has): the clock is written, and only a counter that ran ahead of the clock
 * (more than one claim per µs in the bucket) is written again. Needs `fence_key`; sets `now_us`,
 * `fence`, `fence_text`.
 */
export const FENCE = `
local t = redis.call("TIME")
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local fence = now_us
local fence_text = string.format("%d", fence)
local last = tonumber(redis.call("GETSET", fence_key, fence_text))
if last and last >= fence then
  fence = last + 1
  fence_text = string.format("%d", fence)
  redis.call("SET", fence_key, fence_text)
end
`;

export const LIB = `
local function alone(e) return string.byte(e, 1) == 97 end
local function lane(e) return string.byte(e, 2) == 108 end
local function field(e, n)
  local start = 1
  for _ = 2, n do start = string.find(e, "|", start, true) + 1 end
  return string.sub(e, start, string.find(e, "|", start, true) - 1)
end
-- The group of an entry (kind "g"), or nil.
local function group_of(e)
  if string.byte(e, 2) ~= 103 then return nil end
  return field(e, 5)
end
local function clock()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- The entry's expiresAt, or nil (an empty field, "|" right after the header, never expires).
local function expiry_of(e)
  if string.byte(e, 4) == 124 then return nil end
  return tonumber(field(e, 2))
end
-- Entries expire on Redis' clock (one clock for every replica), read once per call and only when
-- an entry has an expiry at all.
local now_ms = nil
local function expired(e)
  local at = expiry_of(e)
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
-- A lease value is the holder's token and its flags (see index.ts).
local function token_of(value) return string.match(value, "^[^+]*") end
local function holds(value, token) return value and token_of(value) == token end
local function flagged(value, f) return string.find(value, f, 1, true) ~= nil end
-- The earliest expiry of the pending input ("+e<ms>"), or nil.
local function expiry_flag(value)
  local at = string.match(value, "%+e(%d+)")
  return at and tonumber(at)
end
local function with_expiry(value, at)
  value = string.gsub(value, "%+e%d+", "")
  if at then value = value .. "+e" .. string.format("%d", at) end
  return value
end
-- Write the lease's value, keeping its expiry (a lease always has one; without, it keeps none).
local function set_lease(lease, value, pttl)
  if pttl > 0 then
    redis.call("SET", lease, value, "PX", pttl)
  else
    redis.call("SET", lease, value)
  end
end
local function flag(lease, value, f, pttl)
  if not flagged(value, f) then set_lease(lease, value .. f, pttl) end
end
-- The entries of \`items\` that \`test\` spares; the others go to \`drops\` (\`reason\`, entry).
local function drop_where(items, test, reason, drops)
  local kept = {}
  for i = 1, #items do
    local e = items[i]
    if test(e) then
      drops[#drops + 1] = reason
      drops[#drops + 1] = e
    else
      kept[#kept + 1] = e
    end
  end
  return kept
end
-- The entries of \`items\` that have not expired; the expired ones go to \`drops\` ("expired", entry).
local function unexpired(items, drops) return drop_where(items, expired, "expired", drops) end
-- A stop (CLEAR, STOP) tells the holder at once when it runs on another replica than \`me\`.
local function hint_stop(channel, holder, me, key)
  local replica = replica_of(holder)
  if replica ~= nil and replica ~= me then
    redis.call("PUBLISH", channel .. ":" .. replica, "s|" .. token_of(holder) .. "|" .. key)
  end
end
-- A stop (CLEAR, STOP) of a key no one holds: the entries of a dead holder's turn must not run
-- again either. Empties the run list and drops the index entry; answers that turn's entries (but
-- lanes, which never leave their process), then \`items\` (the pending ones, already removed).
local function stop_unheld(keys_run, keys_index, key, items)
  local run = redis.call("LRANGE", keys_run, 0, -1)
  redis.call("DEL", keys_run)
  redis.call("ZREM", keys_index, key)
  local out = {}
  for i = 1, #run do
    if not lane(run[i]) then out[#out + 1] = run[i] end
  end
  for i = 1, #items do out[#out + 1] = items[i] end
  return out
end
-- The next batch, as takeBatch (src/stores/batch.ts) forms it: an alone entry on its own, "o" one
-- entry, "a" the leading entries up to the next alone one; every pending entry of a group taken
-- joins the batch. Without \`allow_alone\` (steer), the leading entries that are neither alone nor
-- of a group. With \`only\`, the pending entries of that group alone (takeGroup). Answers the
-- batch and the earliest expiry of what stays pending (nil when nothing there expires).
local function take_batch(queue, mode, drops, allow_alone, only)
  if redis.call("LLEN", queue) == 0 then return {}, nil end
  local items = redis.call("LRANGE", queue, 0, -1)
  local kept = unexpired(items, drops)
  local batch, rest = {}, {}
  local joined = false
  if only then
    for i = 1, #kept do
      local e = kept[i]
      if group_of(e) == only then batch[#batch + 1] = e else rest[#rest + 1] = e end
    end
    joined = true
  elseif not allow_alone then
    -- Into a running turn (steer): neither an alone entry (its own turn) nor an entry of a group
    -- (its rest may still be arriving); either ends the run taken, so FIFO order is kept.
    local take = 0
    while take < #kept and not alone(kept[take + 1]) and not group_of(kept[take + 1]) do
      take = take + 1
      if mode == "o" then break end
    end
    for i = 1, #kept do
      if i <= take then batch[i] = kept[i] else rest[#rest + 1] = kept[i] end
    end
  else
    local take = 0
    local head = kept[1]
    if head ~= nil then
      if alone(head) then
        take = 1
      elseif mode == "o" then
        take = 1
      else
        take = 1
        while take < #kept and not alone(kept[take + 1]) do take = take + 1 end
      end
    end
    local groups = nil
    for i = 1, take do
      batch[i] = kept[i]
      local g = group_of(kept[i])
      if g then
        groups = groups or {}
        groups[g] = true
      end
    end
    for i = take + 1, #kept do
      local e = kept[i]
      local g = groups and group_of(e)
      if g and groups[g] then
        batch[#batch + 1] = e
        joined = true
      else
        rest[#rest + 1] = e
      end
    end
  end
  local earliest = nil
  for i = 1, #rest do
    local at = expiry_of(rest[i])
    if at and (earliest == nil or at < earliest) then earliest = at end
  end
  if #kept == #items and not joined then
    if #batch == #items then
      redis.call("DEL", queue)
    elseif #batch > 0 then
      redis.call("LTRIM", queue, #batch, -1)
    end
  elseif #batch > 0 or #kept < #items then
    redis.call("DEL", queue)
    push(queue, rest, 1, #rest)
  end
  return batch, earliest
end
-- Claim the key for \`batch\` under a new fence. Every claim enters the bucket's index with its
-- lease deadline (Redis' clock), so the sweep finds it once the lease ran out even if the holder
-- died before its first renewal; renewals move the score on, a release removes it.
local function claim(keys_lease, keys_queue, keys_run, fence_key, keys_index, batch, lease_ms, suffix, key, flags, earliest)
  ${FENCE}
  local token = fence_text .. ":" .. suffix
  push(keys_run, batch, 1, #batch)
  if redis.call("LLEN", keys_queue) > 0 then
    flags = "+p" .. flags
    if earliest then flags = flags .. "+e" .. string.format("%d", earliest) end
  end
  redis.call("ZADD", keys_index, math.floor(now_us / 1000) + lease_ms, key)
  redis.call("SET", keys_lease, token .. flags, "PX", lease_ms)
  return token, fence
end
`;
