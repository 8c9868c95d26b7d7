// === The Redis store's Lua scripts: one file per script, the shared Lua in lib.ts
//
// Every operation on a session is one script, so it is atomic and one round trip. All keys a script
// declares share the session's hash tag (`{<prefix><bucket>}`), so each script is single-slot in
// Redis Cluster; every key a script touches is declared in KEYS. Entries are stored as text whose
// header Lua reads without decoding JSON (see ../format.ts):
//
//   <alone: "a" | "-"><kind: "m" message | "l" local-only lane>|<expiresAt ms or "">|<uid>|<id>|<json>
//   <alone>g|<expiresAt>|<uid>|<id>|<group>|<settle ms or "">|<json>     (a message of a group)
//
// The rules are the memory store's (`takeBatch`, `takeGroup`, `supersedes`, the admission policy)
// written once more in Lua; the store contract (test/support/store-contract.ts) holds both to them.
//
// The lease holds the holder's token, `<fence>:<replica>:<n>`, followed by flags: "+p" once input
// was queued during the claim (so a release must look at the queue), "+w" once a lane on some
// replica waits for the key's release (a `notifyFree` admission: whoever releases the key then
// publishes "f|<key>"), "+s" once the key was stopped (the holder's renewals report it), "+i"
// once input admitted in interrupt mode was queued (the next renewal reports it once, issue 15), and
// "+e<ms>" the earliest expiry among the pending entries (renewals report it; it may be earlier
// than the truth once entries left the queue, never later). Flags live and die with the lease:
// renewals keep them, a hand-on to the next batch keeps "+w" and sets "+p" and "+e" again if input
// remains. A lease that is the bare token thus proves that nothing is pending, no one waits and no
// one stopped the key, and the release is a compare-and-delete.
//
// Fences are `max(last + 1, Redis' clock in µs)` per bucket (lib.ts, FENCE): they never go
// backwards for a key, even when Redis lost its data (one GETSET, as a rule, where INCR was).
//
// Every claim is in its bucket's index with its lease deadline, so the sweep finds a claim whose
// holder died even before its first renewal; a release removes it.
//
// Cost: the scripts run on every turn, so the uncontended path of `ACQUIRE` and `FINISH` comes
// first, inline, before the helpers are even defined (defining them is work Redis repeats on every
// call), with as few calls, keys and arguments as the protocol allows: a free key is claimed with
// EXISTS, TIME, GETSET of the fence, SET, RPUSH, ZADD and answered with the bare fence; a
// lease without flags is released with GET, DEL, ZREM and answered with 0, the finish declaring
// only the lease, run and index keys (and, on a standalone server, the outcome records that ride
// with it: ../outcomes.ts). Everything else (a held key, input left behind, waiters)
// takes the general path. The policy travels packed in one "|"-separated string (the same for
// every call of a guard), parsed only by the general path. The key of the session (index member,
// hints) is read back from the lease key's name, `<tag>l:<key>`, the tag ending at the first "}"
// (a prefix has no braces); the hint channel from the prefix's length.
//
// Every key a script touches is declared in KEYS, none derived, although all share the session's
// tag and so its slot: Redis Cluster checks declared keys before it runs a script, and only that
// check makes a script wait (ASK, TRYAGAIN) while its slot is being migrated. A derived key could
// be read on the source node after it moved (a queue that looks empty, a fence counter that
// starts again at 1), which would break exclusion and fencing during a resharding.

import { createHash } from "node:crypto";
import { ABANDON } from "./abandon.js";
import { ACQUIRE } from "./acquire.js";
import { CARRY } from "./carry.js";
import { CLEAR } from "./clear.js";
import { EXPIRE } from "./expire.js";
import { FINISH } from "./finish.js";
import { KEYS } from "./keys.js";
import { RECORD } from "./record.js";
import { RENEW } from "./renew.js";
import { REPLACE } from "./replace.js";
import { REVISE } from "./revise.js";
import { STOP } from "./stop.js";
import { SWEEP } from "./sweep.js";
import { TAKE } from "./take.js";
import { WITHDRAW } from "./withdraw.js";

/** A script's source and its SHA-1, for EVALSHA (EVAL once when the server does not know it). */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

export const SCRIPTS = {
  acquire: script(ACQUIRE),
  renew: script(RENEW),
  take: script(TAKE),
  finish: script(FINISH),
  abandon: script(ABANDON),
  clear: script(CLEAR),
  withdraw: script(WITHDRAW),
  expire: script(EXPIRE),
  sweep: script(SWEEP),
  stop: script(STOP),
  keys: script(KEYS),
  carry: script(CARRY),
  replace: script(REPLACE),
  revise: script(REVISE),
  record: script(RECORD),
};
