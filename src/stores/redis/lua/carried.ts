// === Carried work in Lua: the helpers of the scripts that hand a key on (see ../carried.ts)
//
// The key's carried work is one list, `<tag>c:<key>` (format.ts): element 1 is the running
// claim's latest value, "" or "<fence>|<json>" (CARRY writes it, fenced by the lease); the others
// are the records handed on by turns cut short since the last turn that ended otherwise, oldest
// first, each "<reason>|<fence>|<json>". Every script that hands the key on empties the slot:
// FINISH and ABANDON append the ending turn's own value (the guard's, with its reason) when told to
// and delete the list otherwise; ACQUIRE, taking over a dead holder's turn, appends that holder's
// slot as "lease-lost". A released key deletes the list. Each adds at most one value, which the
// guard measured against `maxCarry` together with the records it was handed, so the list never
// outgrows what the guard allowed.

/** Lua helpers; need `LIB` before them. */
export const CARRIED_LIB = `
-- The record a claim (token) hands on for \`reason\` with \`data\` ("" = it carried nothing): nil when none.
local function carry_record(reason, token, data)
  if reason == "" or data == "" then return nil end
  return reason .. "|" .. string.match(token, "^%d+") .. "|" .. data
end
-- Hand on: the slot empties and \`record\` (or nil) joins the accumulated records.
local function carry_on(k, record)
  if redis.call("EXISTS", k) == 1 then
    redis.call("LSET", k, 0, "")
    if record then redis.call("RPUSH", k, record) end
  elseif record then
    redis.call("RPUSH", k, "", record)
  end
end
-- A dead holder's turn is taken over: its latest value joins the records as "lease-lost".
local function carry_lost(k)
  local slot = redis.call("LINDEX", k, 0)
  if slot and slot ~= "" then
    local bar = string.find(slot, "|", 1, true)
    redis.call("LSET", k, 0, "")
    redis.call("RPUSH", k, "lease-lost|" .. string.sub(slot, 1, bar - 1) .. string.sub(slot, bar))
  end
end
-- The records the new claim is handed (oldest first).
local function carried_of(k) return redis.call("LRANGE", k, 1, -1) end
`;
