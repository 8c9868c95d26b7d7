// === session-guard/redis: `redisStore({ client })`
//
// The store for several replicas of one bot. A claim is a lease (`SET PX` with a token) fenced by a
// per-bucket counter; every operation on a session is one Lua script (see redis-lua.ts), so a turn
// costs two round trips (claim, finish) plus a renewal every lease/3, and input that arrives during
// a turn one round trip.
//
// Layout (part of the stored format: never change it between versions, or replicas of two versions
// running side by side during a rolling deploy would not exclude each other):
//
//   bucket  = FNV-1a 32-bit of the key's UTF-8 bytes, mod 64
//   tag     = "{" + prefix + bucket + "}"       (one Cluster slot per bucket)
//   tag + "l:" + key    lease: the holder's token "<fence>:<replica>:<n>", with PX, followed by
//                       "+p" once input was queued during the claim and "+w" while a lane on
//                       some replica waits for the key's release (see redis-lua.ts)
//   tag + "q:" + key    pending entries (a list)
//   tag + "r:" + key    entries of the running turn, handed to the next holder if it dies
//   tag + "d:" + len + ":" + key + ":" + id     de-duplication id, with PX
//   tag + "fence"       the bucket's fence counter (INCR, no expiry)
//   tag + "index"       keys with pending input or a turn that renewed its lease, scored by lease
//                       deadline (ms, Redis' clock): the sweep finds those whose holder is gone
//
// Hints travel on `prefix + "hint"` (every replica) and `prefix + "hint:" + replica` (one
// replica). They only make things prompt: every decision is taken by a script.

import { createHash, randomBytes } from "node:crypto";
import type {
  Admission,
  AdmitPolicy,
  BatchPolicy,
  Claim,
  Expiry,
  Finish,
  Renewal,
  Store,
  StoreDrop,
  StoreEntry,
  StoreHost,
  Take,
} from "session-guard";
import { ABANDON, ACQUIRE, CLEAR, EXPIRE, FINISH, RENEW, SWEEP, TAKE, WITHDRAW } from "./lua.js";
import { portFor, type RedisPort } from "./port.js";

// === Public API

/** Options of `redisStore()`. */
export interface RedisStoreOptions {
  /**
   * A node-redis client or cluster (`createClient()` / `createCluster()` from `redis`, v5 or later,
   * connected or not) or an ioredis client (`new Redis()` / `new Cluster()`). The store opens its
   * own connections from it (one for commands, without an offline queue, and one for hints) and
   * leaves the client itself to you.
   */
  client: unknown;
  /**
   * Prefix of every key and channel. Replicas of one guard share it; different guards (another
   * bot, another platform) on one Redis need different prefixes. No `{` or `}`. Default `"sg:"`.
   */
  prefix?: string;
  /**
   * Ms a claim lives without renewal. The guard renews it every lease/3; a replica that dies is
   * taken over at most this long after its last renewal. Default 30,000.
   */
  lease?: number;
  /**
   * Ms a command may take, waiting for a connection included; past it the operation fails with a
   * `StoreError` (admission rejects, so the platform redelivers). Default 2,000.
   */
  commandTimeout?: number;
  /**
   * Ms between sweeps of the keys whose holder is gone, which runs input no live replica knows of.
   * Default: the lease.
   */
  sweepInterval?: number;
}

/** The Redis store: a `Store` shared by replicas. */
export interface RedisStore extends Store {
  readonly shared: true;
  readonly lease: number;
  readonly prefix: string;
  /** This process's id in tokens and hint channels (random per store). */
  readonly replicaId: string;
  /**
   * Stop the store's background work and close its own connections (not the client you gave).
   * Call it after `guard.close()`, which hands this replica's keys to the others first.
   */
  close(): Promise<void>;
}

// === Layout

/** Buckets of the layout. Part of the stored format: never change it. */
export const BUCKETS = 64;
/** Most entries kept pending per key (`unpack` and memory limits), whatever `maxPending` says. */
export const MAX_QUEUE = 10_000;
/** Ms after a lease's expiry at which a waiting replica probes it. */
const PROBE_MARGIN = 15;
/** Due keys a sweep takes per bucket. */
const SWEEP_LIMIT = 100;

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

interface Names {
  readonly lease: string;
  readonly queue: string;
  readonly run: string;
  readonly fence: string;
  readonly index: string;
  readonly tag: string;
}

interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

const SCRIPTS = {
  acquire: script(ACQUIRE),
  renew: script(RENEW),
  take: script(TAKE),
  finish: script(FINISH),
  abandon: script(ABANDON),
  clear: script(CLEAR),
  withdraw: script(WITHDRAW),
  expire: script(EXPIRE),
  sweep: script(SWEEP),
};

// === Entries as text

interface Stored {
  readonly alone: boolean;
  readonly lane: boolean;
  readonly expiresAt: number;
  readonly uid: string;
  readonly id: string | undefined;
  readonly data: string;
}

function idField(id: string | undefined): string {
  return id === undefined ? "-" : `=${encodeURIComponent(id)}`;
}

function encodeEntry(entry: StoreEntry, uid: string): string {
  const expires = Number.isFinite(entry.expiresAt) ? String(entry.expiresAt) : "";
  const kind = entry.data === undefined ? "l" : "m";
  return `${entry.alone ? "a" : "-"}${kind}|${expires}|${uid}|${idField(entry.id)}|${entry.data ?? ""}`;
}

function parseEntry(text: string): Stored {
  const p2 = text.indexOf("|", 3);
  const p3 = text.indexOf("|", p2 + 1);
  const p4 = text.indexOf("|", p3 + 1);
  const expires = text.slice(3, p2);
  const id = text.slice(p3 + 1, p4);
  return {
    alone: text.charCodeAt(0) === 97,
    lane: text.charCodeAt(1) === 108,
    expiresAt: expires === "" ? Number.POSITIVE_INFINITY : Number(expires),
    uid: text.slice(p2 + 1, p3),
    id: id === "-" ? undefined : decodeURIComponent(id.slice(1)),
    data: text.slice(p4 + 1),
  };
}

function text(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString("utf8");
  return String(value);
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** The replica part of a token `<fence>:<replica>:<n>`. */
function replicaOf(token: string): string {
  const start = token.indexOf(":") + 1;
  return token.slice(start, token.indexOf(":", start));
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && /NOSCRIPT/.test(error.message);
}

/** The policy characters of ACQUIRE (see redis-lua.ts). */
const WHEN_HELD = { enqueue: "e", latest: "l", reject: "r" } as const;

const DUPLICATE = Object.freeze({ status: "duplicate" as const });
const BUSY = Object.freeze({ status: "rejected" as const, reason: "busy" as const });
const OVERFLOW = Object.freeze({ status: "rejected" as const, reason: "overflow" as const });
const LOST = Object.freeze({ status: "lost" as const });
const NONE: readonly never[] = Object.freeze([]);
const RELEASED = Object.freeze({ status: "released" as const, dropped: NONE });

/** A key this replica probes: it queued input there, or its own claim there was lost. */
interface Watch {
  /** Uids of entries admitted here and still pending there. */
  readonly uids: Set<string>;
  timer: ReturnType<typeof setTimeout> | undefined;
  probing: boolean;
}

// === The store

class RedisStoreImpl<E extends StoreEntry> implements Store<E> {
  readonly shared = true as const;
  readonly lease: number;
  readonly prefix: string;
  readonly replicaId: string;
  readonly #timeout: number;
  readonly #sweepInterval: number;
  readonly #port: RedisPort;
  readonly #hints: string;
  /** Per bucket: the hash tag, the fence counter's and the index's names (see Layout). */
  readonly #tags: readonly string[];
  readonly #fences: readonly string[];
  readonly #indexes: readonly string[];
  /** `String(lease)`, and the prefix's length in bytes, from which scripts find the hint channel. */
  readonly #leaseText: string;
  readonly #prefixLength: string;
  /** FINISH's options argument, by batch policy (see redis-lua.ts). */
  readonly #finishAll: string;
  readonly #finishOne: string;
  /** ACQUIRE's policy argument, by the policy object the guard passes. */
  readonly #policies = new WeakMap<AdmitPolicy, string>();
  #host: StoreHost<E> | undefined;
  #seq = 0;
  /** Entries admitted here, by uid, while they wait in Redis: they keep their closure and waiter. */
  readonly #local = new Map<string, { readonly entry: E; readonly key: string }>();
  readonly #watches = new Map<string, Watch>();
  /** Pending counts last learned, for keys held or watched here. */
  readonly #pending = new Map<string, number>();
  /**
   * Keys held here that may be in their bucket's index (the claim renewed its lease, or input was
   * pending during it): their finish declares the bucket's fence and index, to hand the key on or
   * take it out of the index. Input this process did not hear of flags the lease, and the finish
   * then asks for them (one more round trip).
   */
  readonly #indexed = new Set<string>();
  #sweepTimer: ReturnType<typeof setTimeout> | undefined;
  #detached = false;
  #closed = false;
  /** An outage was reported; the next is reported once the connection came back. */
  #failing = false;

  constructor(options: Required<Omit<RedisStoreOptions, "client">> & { client: unknown }) {
    this.lease = options.lease;
    this.prefix = options.prefix;
    this.#timeout = options.commandTimeout;
    this.#sweepInterval = options.sweepInterval;
    // Letters, digits, "-" and "_": never a separator of tokens, entries or hints.
    this.replicaId = randomBytes(6).toString("base64url");
    this.#hints = `${options.prefix}hint`;
    const tags: string[] = [];
    for (let bucket = 0; bucket < BUCKETS; bucket++) tags.push(`{${options.prefix}${bucket}}`);
    this.#tags = tags;
    this.#fences = tags.map((tag) => `${tag}fence`);
    this.#indexes = tags.map((tag) => `${tag}index`);
    this.#leaseText = String(options.lease);
    this.#prefixLength = String(Buffer.byteLength(options.prefix));
    this.#finishAll = `a|${this.#leaseText}|${this.#prefixLength}`;
    this.#finishOne = `o|${this.#leaseText}|${this.#prefixLength}`;
    this.#port = portFor(options.client, {
      error: (error) => this.#background(error, undefined),
      ready: () => {
        this.#failing = false;
      },
    });
  }

  // --- layout

  #names(key: string): Names {
    const bucket = bucketOf(key);
    const tag = this.#tags[bucket] as string;
    return {
      tag,
      lease: `${tag}l:${key}`,
      queue: `${tag}q:${key}`,
      run: `${tag}r:${key}`,
      fence: this.#fences[bucket] as string,
      index: this.#indexes[bucket] as string,
    };
  }

  #idKey(names: Names, key: string, id: string): string {
    return `${names.tag}d:${key.length}:${key}:${id}`;
  }

  #suffix(): string {
    return `${this.replicaId}:${(++this.#seq).toString(36)}`;
  }

  /**
   * Run a script, `args` being `EVALSHA <sha> <numkeys> <keys…> <argv…>`: EVALSHA, and EVAL once
   * if the server does not know the script yet. `parse` reads the answer; `fail`, if given, sees
   * the error first (and rethrows it).
   */
  #eval<T>(
    script: Script,
    args: string[],
    parse: (reply: unknown) => T | PromiseLike<T>,
    fail?: (error: unknown) => never,
  ): Promise<T> {
    const deadline = Date.now() + this.#timeout;
    const first = args[3] as string;
    return this.#port.call(first, args, deadline).then(parse, (error: unknown) => {
      if (!isNoScript(error)) {
        if (fail !== undefined) fail(error);
        throw error;
      }
      args[0] = "EVAL";
      args[1] = script.source;
      return this.#port.call(first, args, deadline).then(parse, fail);
    });
  }

  /** `#eval` with the keys and arguments given apart (the operations off the hot path). */
  #call<T>(
    script: Script,
    keys: readonly string[],
    argv: readonly string[],
    parse: (reply: unknown) => T,
  ): Promise<T> {
    const args = ["EVALSHA", script.sha, String(keys.length), ...keys, ...argv];
    return this.#eval(script, args, (reply) => {
      this.#answered();
      return parse(reply);
    });
  }

  /** A script answered: Redis is reachable again, so the next outage is reported again. */
  #answered(): void {
    this.#failing = false;
  }

  // --- entries between text and objects

  /** The entry a stored text stands for: the object admitted here, or one rebuilt by the guard. */
  #entry(stored: string, key: string): E | undefined {
    const parsed = parseEntry(stored);
    const local = this.#local.get(parsed.uid);
    if (local !== undefined) {
      this.#local.delete(parsed.uid);
      this.#watches.get(local.key)?.uids.delete(parsed.uid);
      return local.entry;
    }
    // A lane of another process cannot run here (scripts drop them before they travel).
    if (parsed.lane || this.#host === undefined) return undefined;
    try {
      return this.#host.revive(parsed as StoreEntry & { data: string });
    } catch (error) {
      this.#host.error(
        new Error(`session-guard/redis: an input could not be decoded and was skipped`, {
          cause: error,
        }),
        key,
      );
      return undefined;
    }
  }

  #entries(stored: unknown, key: string): E[] {
    const out: E[] = [];
    for (const item of list(stored)) {
      const entry = this.#entry(text(item), key);
      if (entry !== undefined) out.push(entry);
    }
    return out;
  }

  /**
   * An `acquired` reply ({"acquired", token, fence, batch, drops, pending}), from an admission or a
   * takeover: the claim, its batch and drops; this replica now holds the key.
   */
  #acquired(
    key: string,
    answer: readonly unknown[],
  ): { claim: Claim; batch: E[]; dropped: StoreDrop<E>[] } {
    const claim: Claim = { token: text(answer[1]), fence: Number(answer[2]) };
    const batch = this.#entries(answer[3], key);
    const dropped = this.#drops(answer[4], key);
    this.#pending.set(key, Number(answer[5] ?? 0));
    // Input was left behind there, so the key may be in the index.
    this.#indexed.add(key);
    this.#holding(key);
    return { claim, batch, dropped };
  }

  #drops(stored: unknown, key: string): StoreDrop<E>[] {
    const pairs = list(stored);
    if (pairs.length === 0) return NONE as never;
    const out: StoreDrop<E>[] = [];
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const entry = this.#entry(text(pairs[i + 1]), key);
      if (entry !== undefined) {
        out.push({ entry, reason: text(pairs[i]) as StoreDrop<E>["reason"] });
      }
    }
    return out;
  }

  // --- Store

  acquireOrEnqueue(key: string, entry: E, policy: AdmitPolicy): Promise<Admission<E>> {
    if (entry.data === undefined && policy.whenHeld !== "reject") {
      return Promise.reject(
        new TypeError(
          "redisStore: an entry without data (a lane) can only be admitted with whenHeld: reject.",
        ),
      );
    }
    // The uid doubles as the suffix of the token if this admission claims the key.
    const uid = `${this.replicaId}:${(++this.#seq).toString(36)}`;
    const bucket = bucketOf(key);
    const tag = this.#tags[bucket] as string;
    const text = encodeEntry(entry, uid);
    const lease = `${tag}l:${key}`;
    const queue = `${tag}q:${key}`;
    const run = `${tag}r:${key}`;
    const fence = this.#fences[bucket] as string;
    const index = this.#indexes[bucket] as string;
    const sha = SCRIPTS.acquire.sha;
    const args =
      entry.id !== undefined && policy.dedupe > 0
        ? [
            "EVALSHA",
            sha,
            "6",
            lease,
            queue,
            run,
            fence,
            index,
            `${tag}d:${key.length}:${key}:${entry.id}`,
            text,
            this.#leaseText,
            this.#policy(policy),
          ]
        : [
            "EVALSHA",
            sha,
            "5",
            lease,
            queue,
            run,
            fence,
            index,
            text,
            this.#leaseText,
            this.#policy(policy),
          ];
    this.#local.set(uid, { entry, key });
    return this.#eval(
      SCRIPTS.acquire,
      args,
      (reply) => this.#admission(key, uid, entry, reply),
      (error) => {
        // It may still run (a command written before its deadline): then it is in Redis and runs
        // on whichever replica takes it, rebuilt from its data.
        this.#local.delete(uid);
        throw error;
      },
    );
  }

  /**
   * ACQUIRE's policy argument, `<dedupe ms, 0 = forever>|<maxPending>|<policy>|<prefix length>`
   * (see redis-lua.ts). A guard admits with a few policy objects, so each is encoded once.
   */
  #policy(policy: AdmitPolicy): string {
    let encoded = this.#policies.get(policy);
    if (encoded === undefined) {
      const window =
        policy.dedupe === Number.POSITIVE_INFINITY
          ? "0"
          : String(Math.max(1, Math.ceil(policy.dedupe)));
      const flags = `${WHEN_HELD[policy.whenHeld]}${policy.overflow === "drop-newest" ? "n" : "o"}${policy.batch === "one" ? "o" : "a"}${policy.notifyFree === true ? "1" : "0"}`;
      encoded = `${window}|${Math.min(policy.maxPending, MAX_QUEUE)}|${flags}|${this.#prefixLength}`;
      this.#policies.set(policy, encoded);
    }
    return encoded;
  }

  #admission(key: string, uid: string, entry: E, reply: unknown): Admission<E> {
    this.#answered();
    if (!Array.isArray(reply)) {
      // The fence alone: the key was free, and the entry is the first turn's batch.
      this.#local.delete(uid);
      this.#pending.delete(key);
      this.#holding(key);
      const fence = Number(reply);
      const claim: Claim = { token: `${fence}:${uid}`, fence };
      return { status: "acquired", claim, batch: [entry], dropped: NONE as never };
    }
    const answer = reply;
    const status = text(answer[0]);
    switch (status) {
      case "dup":
        this.#local.delete(uid);
        return DUPLICATE;
      case "busy":
        this.#local.delete(uid);
        return BUSY;
      case "overflow":
        this.#local.delete(uid);
        return OVERFLOW;
      case "queued": {
        const holder = text(answer[1]);
        const pttl = Number(answer[2]);
        const pending = Number(answer[3]);
        const dropped = this.#drops(answer[4], key);
        this.#pending.set(key, pending);
        if (this.#local.has(uid)) {
          const watch = this.#watch(key);
          watch.uids.add(uid);
          // Held by another replica: probe when its lease runs out, in case it died.
          if (replicaOf(holder) !== this.replicaId) this.#arm(key, watch, pttl + PROBE_MARGIN);
        }
        // Held here: this process's release takes the key out of the index.
        if (replicaOf(holder) === this.replicaId) this.#indexed.add(key);
        return { status: "queued", pending, dropped };
      }
      case "acquired":
        return { status: "acquired", ...this.#acquired(key, answer) };
      default: {
        // "free": the entry itself had expired on arrival; it is among the drops.
        this.#local.delete(uid);
        return { status: "queued", pending: 0, dropped: this.#drops(answer[1], key) };
      }
    }
  }

  renew(key: string, claim: Claim): Promise<Renewal> {
    const names = this.#names(key);
    return this.#call(
      SCRIPTS.renew,
      [names.lease, names.queue, names.index],
      [claim.token, this.#leaseText],
      (reply) => {
        const pending = Number(reply);
        if (!(pending >= 0)) {
          this.#pending.delete(key);
          this.#indexed.delete(key);
          return LOST;
        }
        this.#pending.set(key, pending);
        this.#indexed.add(key);
        return { status: "held", pending };
      },
    );
  }

  take(key: string, claim: Claim, _batch: BatchPolicy): Promise<Take<E>> {
    const names = this.#names(key);
    return this.#call(
      SCRIPTS.take,
      [names.lease, names.queue, names.run],
      [claim.token],
      (reply) => {
        const answer = list(reply);
        if (text(answer[0]) !== "taken") return LOST;
        const entries = this.#entries(answer[1], key);
        const dropped = this.#drops(answer[2], key);
        this.#pending.set(key, Number(answer[3]));
        // Whatever it took was pending, so indexed.
        this.#indexed.add(key);
        return { status: "taken", entries, dropped };
      },
    );
  }

  finish(key: string, claim: Claim, batch: BatchPolicy): Promise<Finish<E>> {
    // The bucket's fence and index only when input may be pending or the key indexed: the script
    // asks for them (answers {"keys"}) if it finds that it needs them.
    const full = this.#indexed.has(key) || (this.#pending.get(key) ?? 0) > 0;
    return this.#finish(key, claim.token, batch, full);
  }

  #finish(key: string, token: string, batch: BatchPolicy, full: boolean): Promise<Finish<E>> {
    const bucket = bucketOf(key);
    const tag = this.#tags[bucket] as string;
    const sha = SCRIPTS.finish.sha;
    const lease = `${tag}l:${key}`;
    const run = `${tag}r:${key}`;
    const args = full
      ? [
          "EVALSHA",
          sha,
          "5",
          lease,
          run,
          `${tag}q:${key}`,
          this.#fences[bucket] as string,
          this.#indexes[bucket] as string,
          token,
          batch === "one" ? this.#finishOne : this.#finishAll,
        ]
      : ["EVALSHA", sha, "2", lease, run, token];
    return this.#eval(SCRIPTS.finish, args, (reply) =>
      full || reply === 0 || !Array.isArray(reply) || text(reply[0]) !== "keys"
        ? this.#finished(key, reply)
        : this.#finish(key, token, batch, true),
    );
  }

  #finished(key: string, reply: unknown): Finish<E> {
    this.#answered();
    if (!Array.isArray(reply)) {
      // 0: released, nothing pending, nothing dropped, no lane waiting.
      this.#pending.delete(key);
      this.#indexed.delete(key);
      this.#release(key);
      return RELEASED;
    }
    const answer = reply;
    const status = text(answer[0]);
    if (status === "lost") {
      this.#pending.delete(key);
      this.#indexed.delete(key);
      // Input waits behind the claim this turn lost: make sure someone runs it.
      if (Number(answer[1]) > 0) this.#arm(key, this.#watch(key), Number(answer[2]) + PROBE_MARGIN);
      return LOST;
    }
    if (status === "released") {
      this.#pending.delete(key);
      this.#indexed.delete(key);
      this.#release(key);
      return { status: "released", dropped: this.#drops(answer[1], key) };
    }
    const next: Claim = { token: text(answer[1]), fence: Number(answer[2]) };
    const entries = this.#entries(answer[3], key);
    const dropped = this.#drops(answer[4], key);
    this.#pending.set(key, Number(answer[5]));
    // The next batch was pending, so the key is indexed.
    this.#indexed.add(key);
    return { status: "next", claim: next, batch: entries, dropped };
  }

  abandon(key: string, claim: Claim, requeue = false): Promise<readonly E[]> {
    const names = this.#names(key);
    this.#pending.delete(key);
    this.#indexed.delete(key);
    return this.#call(
      SCRIPTS.abandon,
      [names.lease, names.queue, names.run, names.index],
      [claim.token, this.#hints, this.replicaId, requeue ? "1" : "0"],
      () => NONE,
    );
  }

  clear(key: string): Promise<readonly E[]> {
    const names = this.#names(key);
    return this.#call(
      SCRIPTS.clear,
      [names.lease, names.queue, names.run, names.index],
      [this.#hints, this.replicaId],
      (reply) => {
        this.#pending.set(key, 0);
        return this.#entries(reply, key);
      },
    );
  }

  withdraw(key: string, id: string): Promise<E | undefined> {
    const names = this.#names(key);
    return this.#call(
      SCRIPTS.withdraw,
      [names.lease, names.queue, names.run, names.index],
      [idField(id)],
      (reply) => {
        if (typeof reply !== "string" && !(reply instanceof Uint8Array)) return undefined;
        const pending = this.#pending.get(key);
        if (pending !== undefined && pending > 0) this.#pending.set(key, pending - 1);
        return this.#entry(text(reply), key);
      },
    );
  }

  expire(key: string): Promise<Expiry<E>> {
    const names = this.#names(key);
    return this.#call(
      SCRIPTS.expire,
      [names.lease, names.queue, names.run, names.index],
      [],
      (reply) => {
        const answer = list(reply);
        const dropped = this.#drops(answer[0], key);
        this.#pending.set(key, Number(answer[1]));
        const next = text(answer[2]);
        // Redis' clock: the guard's timer, on this host's clock, errs by their skew.
        return { dropped, next: next === "" ? Number.POSITIVE_INFINITY : Number(next) };
      },
    );
  }

  forget(key: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    const names = this.#names(key);
    const keys = ids.map((id) => this.#idKey(names, key, id));
    return this.#port
      .call(keys[0] as string, ["DEL", ...keys], Date.now() + this.#timeout)
      .then(() => undefined);
  }

  pendingCount(key: string): number {
    return this.#pending.get(key) ?? 0;
  }

  // --- taking keys over: probes at lease expiry, the sweep, hand-over hints

  attach(host: StoreHost<E>): () => void {
    if (this.#host !== undefined) {
      throw new Error(
        "redisStore: this store already serves a guard. Create one store per guard: replicas of one guard share a prefix, different guards need different prefixes.",
      );
    }
    if (this.#closed) throw new Error("redisStore: this store is closed.");
    this.#host = host;
    this.#port
      .subscribe([this.#hints, `${this.#hints}:${this.replicaId}`], (message) =>
        this.#hint(message),
      )
      .catch((error: unknown) => this.#background(error, undefined));
    // Replicas started together should not sweep in step.
    this.#scheduleSweep(Math.floor(this.#sweepInterval * (0.5 + Math.random())));
    return () => this.#detach();
  }

  #watch(key: string): Watch {
    let watch = this.#watches.get(key);
    if (watch === undefined) {
      watch = { uids: new Set(), timer: undefined, probing: false };
      this.#watches.set(key, watch);
    }
    return watch;
  }

  #arm(key: string, watch: Watch, delay: number): void {
    if (this.#detached) return;
    if (watch.timer !== undefined) clearTimeout(watch.timer);
    watch.timer = setTimeout(() => this.#probe(key), Math.max(0, delay));
    watch.timer.unref?.();
  }

  /** This replica holds the key: its own turns drain the queue, so no probe is needed. */
  #holding(key: string): void {
    const watch = this.#watches.get(key);
    if (watch === undefined) return;
    if (watch.timer !== undefined) clearTimeout(watch.timer);
    watch.timer = undefined;
    if (watch.uids.size === 0 && !watch.probing) this.#watches.delete(key);
  }

  /** The key was released here: nothing of this replica can wait there any more. */
  #release(key: string): void {
    const watch = this.#watches.get(key);
    if (watch === undefined || watch.probing) return;
    if (watch.timer !== undefined) clearTimeout(watch.timer);
    this.#watches.delete(key);
    this.#depart(watch.uids);
  }

  /** Entries admitted here left the queue for another replica's turn. */
  #depart(uids: Iterable<string>): void {
    const gone: E[] = [];
    for (const uid of uids) {
      const local = this.#local.get(uid);
      if (local === undefined) continue;
      this.#local.delete(uid);
      gone.push(local.entry);
    }
    if (gone.length > 0) this.#host?.departed(gone);
  }

  /**
   * Claim the key if its holder is gone and input waits (the holder died, its lease expired, or it
   * handed the key over); otherwise learn when to look again.
   */
  #probe(key: string): void {
    const host = this.#host;
    const watch = this.#watch(key);
    watch.timer = undefined;
    if (host === undefined || this.#detached || host.closed || watch.probing) return;
    watch.probing = true;
    const names = this.#names(key);
    // An empty entry: claim only if the holder is gone and input waits (whenHeld and maxPending
    // do not apply; the batch is "all").
    const argv = ["", this.#leaseText, `0|0|eoa0|${this.#prefixLength}`, this.#suffix()];
    this.#call(
      SCRIPTS.acquire,
      [names.lease, names.queue, names.run, names.fence, names.index],
      argv,
      (reply) => reply,
    ).then(
      (reply) => {
        watch.probing = false;
        const answer = list(reply);
        const status = text(answer[0]);
        if (status === "held") {
          const holder = text(answer[1]);
          const present = new Set(list(answer[3]).map(text));
          const gone = [...watch.uids].filter((uid) => !present.has(uid));
          for (const uid of gone) watch.uids.delete(uid);
          this.#depart(gone);
          this.#pending.set(key, present.size);
          if (replicaOf(holder) === this.replicaId) return this.#holding(key);
          if (watch.uids.size > 0) return this.#arm(key, watch, Number(answer[2]) + PROBE_MARGIN);
          this.#unwatch(key, watch);
          return;
        }
        if (status === "free") {
          const dropped = this.#drops(answer[1], key);
          if (dropped.length > 0) host.dropped(key, dropped);
          this.#unwatch(key, watch);
          this.#depart(watch.uids);
          watch.uids.clear();
          return;
        }
        // Acquired: this replica holds the key now.
        const { claim, batch, dropped } = this.#acquired(key, answer);
        if (this.#detached) {
          // Closed meanwhile: leave the batch to another replica.
          this.abandon(key, claim, true).catch((error: unknown) => this.#background(error, key));
          host.departed(batch);
          return;
        }
        host.acquired(key, claim, batch, dropped);
      },
      (error: unknown) => {
        watch.probing = false;
        this.#background(error, key);
        // Redis is unreachable: look again later (the sweep would find the key too).
        if (watch.uids.size > 0) this.#arm(key, watch, Math.floor(this.lease / 2));
        else this.#unwatch(key, watch);
      },
    );
  }

  #unwatch(key: string, watch: Watch): void {
    if (watch.timer !== undefined) clearTimeout(watch.timer);
    watch.timer = undefined;
    if (this.#watches.get(key) === watch && watch.uids.size === 0) {
      this.#watches.delete(key);
      this.#pending.delete(key);
    }
  }

  #scheduleSweep(delay: number): void {
    if (this.#detached) return;
    this.#sweepTimer = setTimeout(() => this.#sweep(), delay);
    this.#sweepTimer.unref?.();
  }

  /** Probe every key whose lease deadline passed with a turn or input left behind. */
  #sweep(): void {
    const host = this.#host;
    if (host === undefined || this.#detached || host.closed) return;
    const rounds: Promise<void>[] = [];
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      const index = this.#indexes[bucket] as string;
      rounds.push(
        this.#call(SCRIPTS.sweep, [index], [String(SWEEP_LIMIT)], (reply) => {
          for (const item of list(reply)) this.#probe(text(item));
        }),
      );
    }
    Promise.all(rounds).then(
      () => this.#scheduleSweep(this.#sweepInterval),
      (error: unknown) => {
        this.#background(error, undefined);
        this.#scheduleSweep(this.#sweepInterval);
      },
    );
  }

  /** A hint from another replica (or one this replica sent to everyone). */
  #hint(message: string): void {
    const host = this.#host;
    if (host === undefined || this.#detached) return;
    const type = message.charAt(0);
    const a = message.indexOf("|", 2);
    if (type === "p") {
      // p|token|pending|key
      const b = message.indexOf("|", a + 1);
      const token = message.slice(2, a);
      const pending = Number(message.slice(a + 1, b));
      const key = message.slice(b + 1);
      this.#pending.set(key, pending);
      host.pending(key, token, pending);
    } else if (type === "s") {
      // s|token|key
      host.stopped(message.slice(a + 1), message.slice(2, a));
    } else if (type === "h") {
      // h|replica|key: the key was handed over; the closing replica does not take it back.
      if (message.slice(2, a) !== this.replicaId && !host.closed) this.#probe(message.slice(a + 1));
    } else if (type === "f") {
      // f|key
      host.freed(message.slice(2));
    }
  }

  /** Report a failure of background work once per outage (probes, sweeps, the connections). */
  #background(error: unknown, key: string | undefined): void {
    if (this.#failing || this.#closed) return;
    this.#failing = true;
    const host = this.#host;
    if (host !== undefined) host.error(error, key);
    else console.error("session-guard/redis: Redis failed:", error);
  }

  #detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    if (this.#sweepTimer !== undefined) clearTimeout(this.#sweepTimer);
    for (const watch of this.#watches.values()) {
      if (watch.timer !== undefined) clearTimeout(watch.timer);
    }
    this.#watches.clear();
    this.#indexed.clear();
    // Input admitted here that still waits runs on other replicas.
    this.#depart([...this.#local.keys()]);
    this.#pending.clear();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#detach();
    this.#closed = true;
    await this.#port.close();
  }
}

/**
 * The store for several replicas of one bot, on Redis or Valkey (standalone or Cluster). Pass the
 * client as you created it: node-redis (`createClient()`, not connected) or ioredis (`new Redis()`).
 *
 * @example
 * ```ts
 * import { createClient } from "redis";
 * import { redisStore } from "session-guard/redis";
 *
 * const store = redisStore({ client: createClient({ url: process.env.REDIS_URL }), lease: 30_000 });
 * bot.use(sessionGuard({ store, bot }));
 * process.once("SIGTERM", async () => {
 *   await bot.stop();
 *   await guard.close(); // hands this replica's keys to the others
 *   await store.close();
 * });
 * ```
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  const where = "redisStore";
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${where}: options must be an object such as { client: createClient() }.`);
  }
  const {
    client,
    prefix = "sg:",
    lease = 30_000,
    commandTimeout = 2_000,
    sweepInterval = lease,
  } = options;
  if (client === undefined || client === null) {
    throw new TypeError(
      `${where}: "client" is required: a node-redis client (createClient() from "redis") or an ioredis client (new Redis()).`,
    );
  }
  if (typeof prefix !== "string" || /[{}]/.test(prefix)) {
    throw new TypeError(
      `${where}: "prefix" must be a string without "{" or "}" (the store adds its own hash tags), got ${JSON.stringify(prefix)}.`,
    );
  }
  for (const [name, value, min] of [
    ["lease", lease, 10],
    ["commandTimeout", commandTimeout, 1],
    ["sweepInterval", sweepInterval, 10],
  ] as const) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
      throw new TypeError(
        `${where}: "${name}" must be an integer number of ms of at least ${min}, got ${String(value)}.`,
      );
    }
  }
  return new RedisStoreImpl({
    client,
    prefix,
    lease,
    commandTimeout,
    sweepInterval,
  }) as unknown as RedisStore;
}
