// === The stored layout of session-guard/redis: FROZEN
//
// Everything in this file is part of the format that replicas share through Redis. It must never
// change between versions without a migration: during a rolling deploy, replicas of two versions
// run side by side on one Redis, and if they disagree on a bucket, a key name or how an entry reads,
// they no longer exclude each other (two turns of one chat at once) or cannot read each other's
// input. Add to it only in ways an older replica reads as before; say so where you do.
//
//   bucket  = FNV-1a 32-bit of the key's UTF-8 bytes, mod 64
//   tag     = "{" + prefix + bucket + "}"       (one Cluster slot per bucket)
//   tag + "l:" + key    lease: the holder's token "<fence>:<replica>:<n>", with PX, followed by
//                       flags (see lua/index.ts): "+p" input was queued during the claim, "+w" a
//                       lane waits for the release, "+s" stopped, "+e<ms>" earliest expiry,
//                       "+i" input admitted in interrupt mode waits (added with issue 15: older
//                       replicas' scripts ignore a flag they do not know, and a next claim drops it)
//   tag + "q:" + key    pending entries (a list)
//   tag + "r:" + key    entries of the running turn, handed to the next holder if it dies
//   tag + "c:" + key    carried work (added with issue 15; lua/carried.ts), a list: first the
//                       running claim's latest value, "" or "<fence>|<json>", then the records
//                       handed on by turns cut short, oldest first, "<reason>|<fence>|<json>".
//                       It exists only while the key is held or handed on. An older replica never
//                       reads it (its turns carry nothing across replicas) and may leave it
//                       behind on release: a claim is handed the list only with a turn or input
//                       left behind, and the first admission of a free key deletes a stale one.
//   tag + "d:" + len + ":" + key + ":" + id     de-duplication id, with PX
//   tag + "fence"       the bucket's last fence, max(last + 1, Redis' clock in µs), no expiry
//   tag + "index"       keys held or with pending input, scored by lease deadline (ms, Redis'
//                       clock): the sweep finds those whose holder is gone
//   tag + "o:" + id     added with outcomes: the record of an input, in the bucket of its *id*
//                       (`guard.outcome(id)` has no key), "<state>|<reason>|<fence>|<at>|<key>",
//                       with PX (outcomes.ts); older replicas neither write nor read it
//
// An entry is text whose header Lua reads without decoding JSON:
//
//   <alone: "a" | "-"><kind: "m" message | "l" local-only lane>|<expiresAt ms or "">|<uid>|<id>|<json>
//   <alone>g|<expiresAt>|<uid>|<id>|<group>|<settle ms or "">|<json>     (a message of a group)
//
// `<id>` is "-" (none) or "=" + encodeURIComponent(id), so it never holds a "|"; `<group>` is
// encodeURIComponent(group). Kind "g" was added in 0.2 (albums across replicas); entries without a
// group are written exactly as before, so an older replica reads them. Ids, keys and groups must be
// well-formed UTF-16 (no lone surrogate): Redis sees their UTF-8 bytes, where every lone surrogate
// becomes the same U+FFFD, so two different keys would share one lease.
//
// Hints travel on `prefix + "hint"` (every replica) and `prefix + "hint:" + replica` (one
// replica): "p|<token>|<pending>|<key>", "s|<token>|<key>", "h|<replica>|<key>", "f|<key>", and
// since 0.2 "d|<reason>=<uid>,…|<key>" (entries of that replica dropped elsewhere: dropped.ts),
// which older replicas ignore, as every replica ignores a hint type it does not know.
//
// Added with revisions and outcomes (issue 14), all read by an older replica as before: a "d" hint
// may carry the reason "withdrawn" (a pending input deleted at another replica); the hint
// "v|<token>|<id field>|<length>|<json><key>" (an edit) or "v|<token>|<id field>|-|<key>" (a
// deletion) tells the holder's replica that an input of its turn changed (revisions.ts: `length`
// is the JSON's length in UTF-16 code units, as the JSON may hold "|"; the key is the rest); and a
// pending entry's JSON may change in place (REPLACE: same position, uid and header).
//
// Added with carried work and modes per input (issue 15): the count of a "p" hint may be written
// "+<pending>": the input that arrived was admitted in `interrupt` mode (chosen per input), and the
// holder aborts its turn whatever its own mode; an older replica reads Number("+3") as 3, as before.

import type { StoreEntry } from "session-guard";

/** Buckets of the layout. Part of the stored format: never change it. */
export const BUCKETS = 64;

/** FNV-1a 32-bit of the key's UTF-8 bytes, mod 64. Part of the stored format: never change it. */
export function bucketOf(key: string): number {
  let hash = 0x811c9dc5;
  const step = (byte: number) => {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  };
  for (let i = 0; i < key.length; i++) {
    let code = key.charCodeAt(i);
    if (code < 0x80) {
      step(code);
      continue;
    }
    if (code >= 0xd800 && code < 0xdc00 && i + 1 < key.length) {
      const low = key.charCodeAt(i + 1);
      if (low >= 0xdc00 && low < 0xe000) {
        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    if (code >= 0xd800 && code < 0xe000) code = 0xfffd; // a lone surrogate, as UTF-8 encodes it
    if (code < 0x800) {
      step(0xc0 | (code >> 6));
    } else if (code < 0x10000) {
      step(0xe0 | (code >> 12));
      step(0x80 | ((code >> 6) & 0x3f));
    } else {
      step(0xf0 | (code >> 18));
      step(0x80 | ((code >> 12) & 0x3f));
      step(0x80 | ((code >> 6) & 0x3f));
    }
    if (code >= 0x80) step(0x80 | (code & 0x3f));
  }
  return hash % BUCKETS;
}

/** The names of one bucket's shared keys, and its hash tag. */
export interface Bucket {
  readonly tag: string;
  readonly fence: string;
  readonly index: string;
}

/** Every bucket of a prefix, by bucket number. */
export function bucketsOf(prefix: string): readonly Bucket[] {
  const buckets: Bucket[] = [];
  for (let bucket = 0; bucket < BUCKETS; bucket++) {
    const tag = `{${prefix}${bucket}}`;
    buckets.push({ tag, fence: `${tag}fence`, index: `${tag}index` });
  }
  return buckets;
}

/** The names of a session's keys. */
export interface Names extends Bucket {
  readonly lease: string;
  readonly queue: string;
  readonly run: string;
  readonly carry: string;
}

export function namesOf(bucket: Bucket, key: string): Names {
  const tag = bucket.tag;
  return {
    tag,
    fence: bucket.fence,
    index: bucket.index,
    lease: `${tag}l:${key}`,
    queue: `${tag}q:${key}`,
    run: `${tag}r:${key}`,
    carry: carryKeyOf(tag, key),
  };
}

/** The name of a key's carried work, `<tag>c:<key>` (since 0.3). */
export function carryKeyOf(tag: string, key: string): string {
  return `${tag}c:${key}`;
}

/** The de-duplication key of `id` for `key`. */
export function idKeyOf(tag: string, key: string, id: string): string {
  return `${tag}d:${key.length}:${key}:${id}`;
}

/** The hint channel every replica hears, and the one of a single replica. */
export function hintChannel(prefix: string, replica?: string): string {
  return replica === undefined ? `${prefix}hint` : `${prefix}hint:${replica}`;
}

/** The replica part of a token `<fence>:<replica>:<n>`. */
export function replicaOf(token: string): string {
  const start = token.indexOf(":") + 1;
  return token.slice(start, token.indexOf(":", start));
}

// --- entries as text

/** An entry as read back from Redis. */
export interface Stored {
  readonly alone: boolean;
  readonly lane: boolean;
  readonly expiresAt: number;
  readonly uid: string;
  readonly id: string | undefined;
  readonly group: string | undefined;
  readonly settle: number | undefined;
  readonly data: string;
}

/** A string with a lone surrogate (ill-formed UTF-16), which Redis could not tell apart. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Whether `value` is well-formed UTF-16 (`String.prototype.isWellFormed`). */
export function wellFormed(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}

/** The `<id>` field of an entry: "-" or "=" + the id, URI-encoded. */
export function idField(id: string | undefined): string {
  return id === undefined ? "-" : `=${encodeURIComponent(id)}`;
}

export function encodeEntry(entry: StoreEntry, uid: string): string {
  const expires = Number.isFinite(entry.expiresAt) ? String(entry.expiresAt) : "";
  const head = `${entry.alone ? "a" : "-"}`;
  const group = entry.group;
  if (group !== undefined && entry.data !== undefined) {
    const settle = entry.settle === undefined ? "" : String(Math.max(0, Math.round(entry.settle)));
    return `${head}g|${expires}|${uid}|${idField(entry.id)}|${encodeURIComponent(group)}|${settle}|${entry.data}`;
  }
  const kind = entry.data === undefined ? "l" : "m";
  return `${head}${kind}|${expires}|${uid}|${idField(entry.id)}|${entry.data ?? ""}`;
}

export function parseEntry(text: string): Stored {
  const p2 = text.indexOf("|", 3);
  const p3 = text.indexOf("|", p2 + 1);
  const p4 = text.indexOf("|", p3 + 1);
  const expires = text.slice(3, p2);
  const id = text.slice(p3 + 1, p4);
  let group: string | undefined;
  let settle: number | undefined;
  let data = p4 + 1;
  if (text.charCodeAt(1) === 103) {
    const p5 = text.indexOf("|", p4 + 1);
    const p6 = text.indexOf("|", p5 + 1);
    group = decodeURIComponent(text.slice(p4 + 1, p5));
    const wait = text.slice(p5 + 1, p6);
    settle = wait === "" ? undefined : Number(wait);
    data = p6 + 1;
  }
  return {
    alone: text.charCodeAt(0) === 97,
    lane: text.charCodeAt(1) === 108,
    expiresAt: expires === "" ? Number.POSITIVE_INFINITY : Number(expires),
    uid: text.slice(p2 + 1, p3),
    id: id === "-" ? undefined : decodeURIComponent(id.slice(1)),
    group,
    settle,
    data: text.slice(data),
  };
}
