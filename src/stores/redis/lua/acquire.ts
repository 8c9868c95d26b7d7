// === ACQUIRE: one script, one round trip (see ./index.ts)

import type { AdmitPolicy } from "session-guard";
import { CARRIED_LIB } from "./carried.js";
import { FENCE, LIB } from "./lib.js";

/** Most entries kept pending per key (`unpack` and memory limits), whatever `maxPending` says. */
export const MAX_QUEUE = 10_000;

/** The policy characters of ACQUIRE (see below). */
const WHEN_HELD = { enqueue: "e", latest: "l", reject: "r" } as const;

/** ACQUIRE's policy argument: `<dedupe ms, 0 = forever>|<maxPending>|<policy>|<prefix length>`. */
export function acquirePolicy(policy: AdmitPolicy, prefixLength: string): string {
  const window =
    policy.dedupe === Number.POSITIVE_INFINITY
      ? "0"
      : String(Math.max(1, Math.ceil(policy.dedupe)));
  const flags = `${WHEN_HELD[policy.whenHeld]}${policy.overflow === "drop-newest" ? "n" : "o"}${policy.batch === "one" ? "o" : "a"}${policy.notifyFree === true ? "1" : "0"}`;
  return `${window}|${Math.min(policy.maxPending, MAX_QUEUE)}|${flags}|${prefixLength}`;
}

/**
 * Claim the key, or keep the entry as pending input of its holder, with de-duplication inside.
 * With an empty entry it is a probe: claim the key if its holder is gone and input waits.
 *
 * KEYS: lease, queue, run, fence, index, carry [, id]
 * ARGV: entry | "", lease ms, "<dedupe ms, 0 = forever>|<maxPending>|<policy>|<prefix length>"
 *       [+ "|i"] [, token suffix "<replica>:<n>" (a probe; otherwise the entry's uid is the
 *       suffix)]. The policy is four characters: whenHeld (e enqueue, l latest, r reject), overflow
 *       (o drop-oldest, n drop-newest), batch (a all, o one), notifyFree (1, 0); the prefix length
 *       locates the prefix in the lease key's name, for the hint channel. "|i": the entry was
 *       admitted in `interrupt` mode (a mode function chose it): the holder's "p" hint says so, and
 *       the lease is flagged "+i" for the holder's next renewal, in case the hint is lost.
 *
 * Carried work (./carried.ts): a key whose carry list exists takes the general path, so that a
 * list no claim is handed (left by a replica of an earlier version) is deleted there; a dead
 * holder's value joins the records as "lease-lost", and a claim is answered the records.
 *
 * A free key is claimed inline (before the helpers are defined): the fence (see FENCE), the lease,
 * the running turn's entry and the index entry with the lease's deadline.
 *
 * Answers the fence alone when it claimed a free key for the entry (the batch is the entry, the
 * token `<fence>:<uid>`); otherwise {"dup"} | {"busy", holder, pttl} | {"overflow", holder, pttl}
 * | {"queued", holder, pttl, pending, drops} | {"held", holder, pttl, uids} (probe) |
 * {"free", drops} | {"acquired", token, fence, batch, drops, pending, carried}.
 */
export const ACQUIRE = `
local entry = ARGV[1]
if KEYS[7] then
  local window = string.match(ARGV[3], "^%d+")
  local fresh
  if window == "0" then
    fresh = redis.call("SET", KEYS[7], "1", "NX")
  else
    fresh = redis.call("SET", KEYS[7], "1", "NX", "PX", window)
  end
  if not fresh then return {"dup"} end
end
if entry ~= "" and redis.call("EXISTS", KEYS[1], KEYS[2], KEYS[3], KEYS[6]) == 0 then
  local fence_key = KEYS[4]
  ${FENCE}
  redis.call("SET", KEYS[1], fence_text .. ":" .. string.match(entry, "^[^|]*|[^|]*|([^|]*)"), "PX", ARGV[2])
  redis.call("RPUSH", KEYS[3], entry)
  local lease = KEYS[1]
  redis.call("ZADD", KEYS[5], math.floor(now_us / 1000) + tonumber(ARGV[2]), string.sub(lease, string.find(lease, "}", 1, true) + 3))
  return fence
end
${LIB}
${CARRIED_LIB}
local max_pending, policy, prefix_length, extra = string.match(ARGV[3], "^%d+|(%d+)|(....)|(%d+)(.*)$")
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
  -- latest: the newcomer supersedes every pending entry it could have joined, except those of its
  -- own group (the earlier photos of its album): supersedes() in src/stores/batch.ts.
  local own = group_of(entry)
  local function supersedes(e) return not alone(e) and (own == nil or group_of(e) ~= own) end
  if when == "l" and not alone(entry) then
    items = redis.call("LRANGE", KEYS[2], 0, -1)
    n = #items
    for i = 1, n do
      if supersedes(items[i]) then superseded = superseded + 1 end
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
    local kept = drop_where(items, supersedes, "superseded", drops)
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
  -- deadline, which renewals move on together with the index's score; a claim is indexed already,
  -- unless a replica of an earlier version made it). Input that expires keeps the earliest expiry
  -- of the queue on the lease, for the holder's renewals (Renewal.expires).
  local value = holder
  if not flagged(value, "+p") then
    value = value .. "+p"
    redis.call("ZADD", KEYS[5], clock() + math.max(pttl, 0), key)
  end
  -- An interrupt also flags the lease: the holder's next renewal interrupts if the hint was lost.
  if extra == "|i" and not flagged(value, "+i") then value = value .. "+i" end
  local at = expiry_of(entry)
  if at then
    local current = expiry_flag(value)
    if current == nil or at < current then value = with_expiry(value, at) end
  end
  if value ~= holder then set_lease(KEYS[1], value, pttl) end
  local replica = replica_of(holder)
  if replica ~= nil and replica ~= string.match(suffix, "^[^:]*") then
    local channel = channel_of(KEYS[1], prefix_length) .. ":" .. replica
    -- "+<n>": an interrupt (format.ts); older replicas read the count as before.
    local count = extra == "|i" and ("+" .. n) or n
    redis.call("PUBLISH", channel, "p|" .. token_of(holder) .. "|" .. count .. "|" .. key)
  end
  return {"queued", holder, pttl, n, drops}
end
local drops = {}
-- Carried work is handed on only with a turn or input left behind (a dead holder, a hand-over);
-- otherwise the list is left over from an earlier version's claim: it goes.
if redis.call("LLEN", KEYS[3]) == 0 and redis.call("LLEN", KEYS[2]) == 0 then
  redis.call("DEL", KEYS[6])
end
-- The holder died: the entries of its turn come first (at-least-once). Lanes cannot run elsewhere.
local inherited = 0
if redis.call("LLEN", KEYS[3]) > 0 then
  carry_lost(KEYS[6])
  local orphans = redis.call("LRANGE", KEYS[3], 0, -1)
  redis.call("DEL", KEYS[3])
  for i = #orphans, 1, -1 do
    if not lane(orphans[i]) then
      redis.call("LPUSH", KEYS[2], orphans[i])
      inherited = inherited + 1
    end
  end
end
local batch, earliest
local remaining = 0
if entry ~= "" and inherited == 0 and redis.call("LLEN", KEYS[2]) == 0 then
  batch = {entry}
else
  if entry ~= "" then redis.call("RPUSH", KEYS[2], entry) end
  batch, earliest = take_batch(KEYS[2], string.sub(policy, 3, 3), drops, true)
  remaining = redis.call("LLEN", KEYS[2])
end
if #batch == 0 then
  redis.call("ZREM", KEYS[5], key)
  redis.call("DEL", KEYS[6])
  return {"free", drops}
end
local token, fence = claim(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], batch, lease_ms, suffix, key, "", earliest)
return {"acquired", token, fence, batch, drops, remaining, carried_of(KEYS[6])}
`;
