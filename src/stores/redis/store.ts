// === The Redis store: the `Store` operations, each one script and one round trip
//
// The names of keys and the text of entries are in format.ts (frozen), the scripts in lua/, taking
// keys over (probes, the sweep, hints) in takeover.ts, and the connection in port/.

import { randomBytes } from "node:crypto";
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
import { LocalEntries, list, text } from "./entries.js";
import {
  type Bucket,
  bucketOf,
  bucketsOf,
  encodeEntry,
  hintChannel,
  idField,
  idKeyOf,
  type Names,
  namesOf,
  replicaOf,
} from "./format.js";
import { SCRIPTS, type Script } from "./lua/index.js";
import type { RedisStoreOptions } from "./options.js";
import { portFor, type RedisPort } from "./port/index.js";
import { Takeover, type TakeoverStore } from "./takeover.js";

/** Most entries kept pending per key (`unpack` and memory limits), whatever `maxPending` says. */
export const MAX_QUEUE = 10_000;

function isNoScript(error: unknown): boolean {
  return error instanceof Error && /NOSCRIPT/.test(error.message);
}

/** The policy characters of ACQUIRE (see lua/acquire.ts). */
const WHEN_HELD = { enqueue: "e", latest: "l", reject: "r" } as const;

const DUPLICATE = Object.freeze({ status: "duplicate" as const });
const BUSY = Object.freeze({ status: "rejected" as const, reason: "busy" as const });
const OVERFLOW = Object.freeze({ status: "rejected" as const, reason: "overflow" as const });
const LOST = Object.freeze({ status: "lost" as const });
const NONE: readonly never[] = Object.freeze([]);
const RELEASED = Object.freeze({ status: "released" as const, dropped: NONE });

export class RedisStoreImpl<E extends StoreEntry> implements Store<E>, TakeoverStore<E> {
  readonly shared = true as const;
  readonly lease: number;
  readonly prefix: string;
  readonly replicaId: string;
  readonly sweepInterval: number;
  readonly port: RedisPort;
  /** Per bucket: the hash tag, the fence counter's and the index's names (see format.ts). */
  readonly buckets: readonly Bucket[];
  /** `String(lease)`, and the prefix's length in bytes, from which scripts find the hint channel. */
  readonly leaseText: string;
  readonly prefixLength: string;
  readonly entries = new LocalEntries<E>();
  /** Pending counts last learned, for keys held or watched here. */
  readonly pending = new Map<string, number>();
  readonly #timeout: number;
  readonly #hints: string;
  /** FINISH's options argument, by batch policy (see lua/finish.ts). */
  readonly #finishAll: string;
  readonly #finishOne: string;
  /** ACQUIRE's policy argument, by the policy object the guard passes. */
  readonly #policies = new WeakMap<AdmitPolicy, string>();
  readonly #takeover: Takeover<E>;
  #host: StoreHost<E> | undefined;
  #seq = 0;
  /**
   * Keys held here that may be in their bucket's index (the claim renewed its lease, or input was
   * pending during it): their finish declares the bucket's fence and index, to hand the key on or
   * take it out of the index. Input this process did not hear of flags the lease, and the finish
   * then asks for them (one more round trip).
   */
  readonly #indexed = new Set<string>();
  #closed = false;
  /** An outage was reported; the next is reported once the connection came back. */
  #failing = false;

  constructor(options: Required<Omit<RedisStoreOptions, "client">> & { client: unknown }) {
    this.lease = options.lease;
    this.prefix = options.prefix;
    this.#timeout = options.commandTimeout;
    this.sweepInterval = options.sweepInterval;
    // Letters, digits, "-" and "_": never a separator of tokens, entries or hints.
    this.replicaId = randomBytes(6).toString("base64url");
    this.#hints = hintChannel(options.prefix);
    this.buckets = bucketsOf(options.prefix);
    this.leaseText = String(options.lease);
    this.prefixLength = String(Buffer.byteLength(options.prefix));
    this.#finishAll = `a|${this.leaseText}|${this.prefixLength}`;
    this.#finishOne = `o|${this.leaseText}|${this.prefixLength}`;
    this.port = portFor(options.client, {
      error: (error) => this.background(error, undefined),
      ready: () => {
        this.#failing = false;
      },
    });
    this.#takeover = new Takeover(this);
  }

  // --- what the takeover uses too

  names(key: string): Names {
    return namesOf(this.buckets[bucketOf(key)] as Bucket, key);
  }

  suffix(): string {
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
    return this.port.call(first, args, deadline).then(parse, (error: unknown) => {
      if (!isNoScript(error)) {
        if (fail !== undefined) fail(error);
        throw error;
      }
      args[0] = "EVAL";
      args[1] = script.source;
      return this.port.call(first, args, deadline).then(parse, fail);
    });
  }

  /** `#eval` with the keys and arguments given apart (the operations off the hot path). */
  call<T>(
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

  /**
   * An `acquired` reply ({"acquired", token, fence, batch, drops, pending}), from an admission or a
   * takeover: the claim, its batch and drops; this replica now holds the key.
   */
  acquired(
    key: string,
    answer: readonly unknown[],
  ): { claim: Claim; batch: E[]; dropped: StoreDrop<E>[] } {
    const claim: Claim = { token: text(answer[1]), fence: Number(answer[2]) };
    const batch = this.entries.entries(answer[3], key);
    const dropped = this.entries.drops(answer[4], key);
    this.pending.set(key, Number(answer[5] ?? 0));
    // Input was left behind there, so the key may be in the index.
    this.#indexed.add(key);
    this.#takeover.holding(key);
    return { claim, batch, dropped };
  }

  /** Report a failure of background work once per outage (probes, sweeps, the connections). */
  background(error: unknown, key: string | undefined): void {
    if (this.#failing || this.#closed) return;
    this.#failing = true;
    const host = this.#host;
    if (host !== undefined) host.error(error, key);
    else console.error("session-guard/redis: Redis failed:", error);
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
    const bucket = this.buckets[bucketOf(key)] as Bucket;
    const tag = bucket.tag;
    const text = encodeEntry(entry, uid);
    const lease = `${tag}l:${key}`;
    const queue = `${tag}q:${key}`;
    const run = `${tag}r:${key}`;
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
            bucket.fence,
            bucket.index,
            idKeyOf(tag, key, entry.id),
            text,
            this.leaseText,
            this.#policy(policy),
          ]
        : [
            "EVALSHA",
            sha,
            "5",
            lease,
            queue,
            run,
            bucket.fence,
            bucket.index,
            text,
            this.leaseText,
            this.#policy(policy),
          ];
    this.entries.add(uid, entry, key);
    return this.#eval(
      SCRIPTS.acquire,
      args,
      (reply) => this.#admission(key, uid, entry, reply),
      (error) => {
        // It may still run (a command written before its deadline): then it is in Redis and runs
        // on whichever replica takes it, rebuilt from its data.
        this.entries.delete(uid);
        throw error;
      },
    );
  }

  /**
   * ACQUIRE's policy argument, `<dedupe ms, 0 = forever>|<maxPending>|<policy>|<prefix length>`
   * (see lua/acquire.ts). A guard admits with a few policy objects, so each is encoded once.
   */
  #policy(policy: AdmitPolicy): string {
    let encoded = this.#policies.get(policy);
    if (encoded === undefined) {
      const window =
        policy.dedupe === Number.POSITIVE_INFINITY
          ? "0"
          : String(Math.max(1, Math.ceil(policy.dedupe)));
      const flags = `${WHEN_HELD[policy.whenHeld]}${policy.overflow === "drop-newest" ? "n" : "o"}${policy.batch === "one" ? "o" : "a"}${policy.notifyFree === true ? "1" : "0"}`;
      encoded = `${window}|${Math.min(policy.maxPending, MAX_QUEUE)}|${flags}|${this.prefixLength}`;
      this.#policies.set(policy, encoded);
    }
    return encoded;
  }

  #admission(key: string, uid: string, entry: E, reply: unknown): Admission<E> {
    this.#answered();
    if (!Array.isArray(reply)) {
      // The fence alone: the key was free, and the entry is the first turn's batch.
      this.entries.delete(uid);
      this.pending.delete(key);
      this.#takeover.holding(key);
      const fence = Number(reply);
      const claim: Claim = { token: `${fence}:${uid}`, fence };
      return { status: "acquired", claim, batch: [entry], dropped: NONE as never };
    }
    const answer = reply;
    const status = text(answer[0]);
    switch (status) {
      case "dup":
        this.entries.delete(uid);
        return DUPLICATE;
      case "busy":
        this.entries.delete(uid);
        return BUSY;
      case "overflow":
        this.entries.delete(uid);
        return OVERFLOW;
      case "queued": {
        const holder = text(answer[1]);
        const pttl = Number(answer[2]);
        const pending = Number(answer[3]);
        const dropped = this.entries.drops(answer[4], key);
        this.pending.set(key, pending);
        if (this.entries.has(uid)) this.#takeover.queued(key, uid, holder, pttl);
        // Held here: this process's release takes the key out of the index.
        if (replicaOf(holder) === this.replicaId) this.#indexed.add(key);
        return { status: "queued", pending, dropped };
      }
      case "acquired":
        return { status: "acquired", ...this.acquired(key, answer) };
      default: {
        // "free": the entry itself had expired on arrival; it is among the drops.
        this.entries.delete(uid);
        return { status: "queued", pending: 0, dropped: this.entries.drops(answer[1], key) };
      }
    }
  }

  renew(key: string, claim: Claim): Promise<Renewal> {
    const names = this.names(key);
    return this.call(
      SCRIPTS.renew,
      [names.lease, names.queue, names.index],
      [claim.token, this.leaseText],
      (reply) => {
        const pending = Number(reply);
        if (!(pending >= 0)) {
          this.pending.delete(key);
          this.#indexed.delete(key);
          return LOST;
        }
        this.pending.set(key, pending);
        this.#indexed.add(key);
        return { status: "held", pending };
      },
    );
  }

  take(key: string, claim: Claim, _batch: BatchPolicy): Promise<Take<E>> {
    const names = this.names(key);
    return this.call(
      SCRIPTS.take,
      [names.lease, names.queue, names.run],
      [claim.token],
      (reply) => {
        const answer = list(reply);
        if (text(answer[0]) !== "taken") return LOST;
        const entries = this.entries.entries(answer[1], key);
        const dropped = this.entries.drops(answer[2], key);
        this.pending.set(key, Number(answer[3]));
        // Whatever it took was pending, so indexed.
        this.#indexed.add(key);
        return { status: "taken", entries, dropped };
      },
    );
  }

  finish(key: string, claim: Claim, batch: BatchPolicy): Promise<Finish<E>> {
    // The bucket's fence and index only when input may be pending or the key indexed: the script
    // asks for them (answers {"keys"}) if it finds that it needs them.
    const full = this.#indexed.has(key) || (this.pending.get(key) ?? 0) > 0;
    return this.#finish(key, claim.token, batch, full);
  }

  #finish(key: string, token: string, batch: BatchPolicy, full: boolean): Promise<Finish<E>> {
    const bucket = this.buckets[bucketOf(key)] as Bucket;
    const tag = bucket.tag;
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
          bucket.fence,
          bucket.index,
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
      this.pending.delete(key);
      this.#indexed.delete(key);
      this.#takeover.released(key);
      return RELEASED;
    }
    const answer = reply;
    const status = text(answer[0]);
    if (status === "lost") {
      this.pending.delete(key);
      this.#indexed.delete(key);
      // Input waits behind the claim this turn lost: make sure someone runs it.
      if (Number(answer[1]) > 0) this.#takeover.lost(key, Number(answer[2]));
      return LOST;
    }
    if (status === "released") {
      this.pending.delete(key);
      this.#indexed.delete(key);
      this.#takeover.released(key);
      return { status: "released", dropped: this.entries.drops(answer[1], key) };
    }
    const next: Claim = { token: text(answer[1]), fence: Number(answer[2]) };
    const entries = this.entries.entries(answer[3], key);
    const dropped = this.entries.drops(answer[4], key);
    this.pending.set(key, Number(answer[5]));
    // The next batch was pending, so the key is indexed.
    this.#indexed.add(key);
    return { status: "next", claim: next, batch: entries, dropped };
  }

  abandon(key: string, claim: Claim, requeue = false): Promise<readonly E[]> {
    const names = this.names(key);
    this.pending.delete(key);
    this.#indexed.delete(key);
    return this.call(
      SCRIPTS.abandon,
      [names.lease, names.queue, names.run, names.index],
      [claim.token, this.#hints, this.replicaId, requeue ? "1" : "0"],
      () => NONE,
    );
  }

  clear(key: string): Promise<readonly E[]> {
    const names = this.names(key);
    return this.call(
      SCRIPTS.clear,
      [names.lease, names.queue, names.run, names.index],
      [this.#hints, this.replicaId],
      (reply) => {
        this.pending.set(key, 0);
        return this.entries.entries(reply, key);
      },
    );
  }

  withdraw(key: string, id: string): Promise<E | undefined> {
    const names = this.names(key);
    return this.call(
      SCRIPTS.withdraw,
      [names.lease, names.queue, names.run, names.index],
      [idField(id)],
      (reply) => {
        if (typeof reply !== "string" && !(reply instanceof Uint8Array)) return undefined;
        const pending = this.pending.get(key);
        if (pending !== undefined && pending > 0) this.pending.set(key, pending - 1);
        return this.entries.entry(text(reply), key);
      },
    );
  }

  expire(key: string): Promise<Expiry<E>> {
    const names = this.names(key);
    return this.call(
      SCRIPTS.expire,
      [names.lease, names.queue, names.run, names.index],
      [],
      (reply) => {
        const answer = list(reply);
        const dropped = this.entries.drops(answer[0], key);
        this.pending.set(key, Number(answer[1]));
        const next = text(answer[2]);
        // Redis' clock: the guard's timer, on this host's clock, errs by their skew.
        return { dropped, next: next === "" ? Number.POSITIVE_INFINITY : Number(next) };
      },
    );
  }

  forget(key: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    const tag = (this.buckets[bucketOf(key)] as Bucket).tag;
    const keys = ids.map((id) => idKeyOf(tag, key, id));
    return this.port
      .call(keys[0] as string, ["DEL", ...keys], Date.now() + this.#timeout)
      .then(() => undefined);
  }

  pendingCount(key: string): number {
    return this.pending.get(key) ?? 0;
  }

  attach(host: StoreHost<E>): () => void {
    if (this.#host !== undefined) {
      throw new Error(
        "redisStore: this store already serves a guard. Create one store per guard: replicas of one guard share a prefix, different guards need different prefixes.",
      );
    }
    if (this.#closed) throw new Error("redisStore: this store is closed.");
    this.#host = host;
    this.entries.host = host;
    this.#takeover.attach(host);
    return () => this.#detach();
  }

  #detach(): void {
    if (this.#takeover.detached) return;
    this.#takeover.detach();
    this.#indexed.clear();
    // Input admitted here that still waits runs on other replicas.
    this.entries.departAll();
    this.pending.clear();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#detach();
    this.#closed = true;
    await this.port.close();
  }
}
