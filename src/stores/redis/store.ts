// === The Redis store: the `Store` operations, each one script and one round trip
//
// The names of keys and the text of entries are in format.ts (frozen), the scripts in lua/, taking
// keys over (probes, the sweep, hints) in takeover.ts, and the connection in port/.

import { randomBytes } from "node:crypto";
import type {
  Admission,
  AdmitPolicy,
  BatchPolicy,
  CarriedRecord,
  CarryOn,
  Claim,
  Expiry,
  Finish,
  Outcome,
  OutcomeRecord,
  Renewal,
  Stopped,
  Store,
  StoreDrop,
  StoreEntry,
  StoreHost,
  Take,
} from "session-guard";
import { Carrying, carry } from "./carried.js";
import { abandon, clear, expire, forget, illFormed, keys, stop, withdraw } from "./control.js";
import { LocalEntries, list, text } from "./entries.js";
import { finish } from "./finish.js";
import {
  type Bucket,
  bucketOf,
  bucketsOf,
  carryKeyOf,
  encodeEntry,
  hintChannel,
  idKeyOf,
  type Names,
  namesOf,
  wellFormed,
} from "./format.js";
import { Holdings } from "./holdings.js";
import { acquirePolicy } from "./lua/acquire.js";
import { SCRIPTS } from "./lua/index.js";
import type { RedisStoreOptions } from "./options.js";
import { OutcomeWriter, type Riding } from "./outcomes.js";
import { portFor, type RedisPort } from "./port/index.js";
import { readAcquired, readAdmission } from "./replies.js";
import { replace, reviseRunning } from "./revisions.js";
import { ScriptRunner } from "./runner.js";
import { Takeover, type TakeoverStore } from "./takeover.js";

const LOST = Object.freeze({ status: "lost" as const });

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
  readonly commandTimeout: number;
  /** The hint channel every replica hears. */
  readonly hints: string;
  /** Claims held here, which `close()` waits for (see holdings.ts). */
  readonly #holdings = new Holdings();
  /** FINISH's options argument, by batch policy (see lua/finish.ts). */
  /** FINISH's options argument, by batch policy (finish.ts). */
  readonly finishAll: string;
  readonly finishOne: string;
  /** ACQUIRE's policy argument, by the policy object the guard passes. */
  readonly #policies = new WeakMap<AdmitPolicy, string>();
  readonly takeover: Takeover<E>;
  /** Claims of this process with carried work (carried.ts). */
  readonly carrying = new Carrying();
  /** The outcome records this replica writes (outcomes.ts). */
  readonly #outcomes: OutcomeWriter<E>;
  #host: StoreHost<E> | undefined;
  #seq = 0;
  #closed = false;
  readonly scripts: ScriptRunner;

  constructor(options: Required<Omit<RedisStoreOptions, "client">> & { client: unknown }) {
    this.lease = options.lease;
    this.prefix = options.prefix;
    this.commandTimeout = options.commandTimeout;
    this.sweepInterval = options.sweepInterval;
    // Letters, digits, "-" and "_": never a separator of tokens, entries or hints.
    this.replicaId = randomBytes(6).toString("base64url");
    this.hints = hintChannel(options.prefix);
    this.buckets = bucketsOf(options.prefix);
    this.leaseText = String(options.lease);
    this.prefixLength = String(Buffer.byteLength(options.prefix));
    this.finishAll = `a|${this.leaseText}|${this.prefixLength}`;
    this.finishOne = `o|${this.leaseText}|${this.prefixLength}`;
    this.port = portFor(options.client, {
      error: (error) => this.scripts.background(error, undefined),
      ready: () => this.scripts.answered(),
    });
    this.scripts = new ScriptRunner(this.port, this.commandTimeout);
    this.takeover = new Takeover(this);
    this.#outcomes = new OutcomeWriter(this);
  }

  // --- what the takeover uses too

  names(key: string): Names {
    return namesOf(this.buckets[bucketOf(key)] as Bucket, key);
  }

  suffix(): string {
    return `${this.replicaId}:${(++this.#seq).toString(36)}`;
  }

  /** An `acquired` reply, from an admission or a takeover: this replica now holds the key. */
  acquired(
    key: string,
    answer: readonly unknown[],
    sent: number,
  ): { claim: Claim; batch: E[]; dropped: StoreDrop<E>[]; carried?: CarriedRecord[] } {
    return readAcquired(this, key, answer, sent);
  }

  hold(key: string, token: string): void {
    this.#holdings.hold(key, token);
  }

  unhold(key: string, token: string): void {
    this.#holdings.unhold(key, token);
  }

  ride(key: string): Riding | undefined {
    return this.#outcomes.ride(key, this.port.cluster);
  }

  rode(riding: Riding, error?: unknown): void {
    this.#outcomes.rode(riding, error);
  }

  // --- Store

  acquireOrEnqueue(key: string, entry: E, policy: AdmitPolicy): Promise<Admission<E>> {
    const bad =
      (!wellFormed(key) && illFormed("key", key)) ||
      (entry.id !== undefined && !wellFormed(entry.id) && illFormed("id", entry.id)) ||
      (entry.group !== undefined && !wellFormed(entry.group) && illFormed("group", entry.group));
    if (bad) return Promise.reject(bad);
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
    const carried = carryKeyOf(tag, key);
    const sha = SCRIPTS.acquire.sha;
    // An input admitted in interrupt mode (a mode function chose it) says so in its "p" hint.
    const encoded = entry.mode === "interrupt" ? `${this.#policy(policy)}|i` : this.#policy(policy);
    const args =
      entry.id !== undefined && policy.dedupe > 0
        ? [
            "EVALSHA",
            sha,
            "7",
            lease,
            queue,
            run,
            bucket.fence,
            bucket.index,
            carried,
            idKeyOf(tag, key, entry.id),
            text,
            this.leaseText,
            encoded,
          ]
        : [
            "EVALSHA",
            sha,
            "6",
            lease,
            queue,
            run,
            bucket.fence,
            bucket.index,
            carried,
            text,
            this.leaseText,
            encoded,
          ];
    this.entries.add(uid, entry, key);
    return this.scripts.eval(
      SCRIPTS.acquire,
      args,
      (reply, sent) => readAdmission(this, key, uid, entry, reply, sent),
      (error) => {
        // It may still run (a command written before its deadline): then it is in Redis and runs
        // on whichever replica takes it, rebuilt from its data.
        this.entries.delete(uid);
        throw error;
      },
    );
  }

  /** ACQUIRE's policy argument; a guard admits with a few policy objects, each encoded once. */
  #policy(policy: AdmitPolicy): string {
    let encoded = this.#policies.get(policy);
    if (encoded === undefined) {
      encoded = acquirePolicy(policy, this.prefixLength);
      this.#policies.set(policy, encoded);
    }
    return encoded;
  }

  renew(key: string, claim: Claim): Promise<Renewal> {
    const names = this.names(key);
    return this.scripts.call(
      SCRIPTS.renew,
      [names.lease, names.queue, names.index],
      [claim.token, this.leaseText],
      (reply): Renewal => {
        if (Array.isArray(reply)) {
          const pending = Number(reply[0]);
          const at = text(reply[2]);
          this.pending.set(key, pending);
          const renewal: { status: "held"; pending: number; stopped?: boolean; expires?: number } =
            { status: "held", pending };
          if (Number(reply[1]) === 1) renewal.stopped = true;
          if (at !== "") renewal.expires = Number(at);
          this.#holdings.renewed(key, claim.token);
          if (Number(reply[3]) === 1) this.takeover.interruptRenewed(key, claim.token, pending);
          return renewal;
        }
        const pending = Number(reply);
        if (!(pending >= 0)) {
          this.pending.delete(key);
          this.unhold(key, claim.token);
          return LOST;
        }
        this.#holdings.renewed(key, claim.token);
        this.pending.set(key, pending);
        return { status: "held", pending };
      },
    );
  }

  take(key: string, claim: Claim, batch: BatchPolicy, group?: string): Promise<Take<E>> {
    const names = this.names(key);
    const mode = batch === "one" ? "o" : "a";
    const argv =
      group === undefined ? [claim.token, mode] : [claim.token, mode, encodeURIComponent(group)];
    return this.scripts.call(SCRIPTS.take, [names.lease, names.queue, names.run], argv, (reply) => {
      const answer = list(reply);
      if (text(answer[0]) !== "taken") return LOST;
      const entries = this.entries.entries(answer[1], key);
      const dropped = this.entries.drops(answer[2], key);
      this.pending.set(key, Number(answer[3]));
      return { status: "taken", entries, dropped };
    });
  }

  finish(key: string, claim: Claim, batch: BatchPolicy, carry?: CarryOn): Promise<Finish<E>> {
    return finish(this, key, claim, batch, carry);
  }

  abandon(key: string, claim: Claim, requeue = false, carry?: CarryOn): Promise<readonly E[]> {
    return abandon(this, key, claim, requeue, carry);
  }

  carry(key: string, claim: Claim, data: string | undefined): Promise<boolean> {
    return carry(this, key, claim, data);
  }

  clear(key: string): Promise<readonly E[]> {
    return clear(this, key);
  }

  stop(key: string, id: string | undefined, dedupe: number): Promise<Stopped<E>> {
    return stop(this, key, id, dedupe);
  }

  keys(prefix: string): Promise<readonly string[]> {
    return keys(this, prefix);
  }

  withdraw(key: string, id: string): Promise<E | undefined> {
    return withdraw(this, key, id);
  }

  replace(
    key: string,
    id: string,
    data: string | undefined,
    apply: (entry: E) => void,
  ): Promise<E | undefined> {
    return replace(this, key, id, data, apply);
  }

  reviseRunning(key: string, id: string, data: string | undefined): Promise<boolean> {
    return reviseRunning(this, key, id, data);
  }

  record(key: string, records: readonly OutcomeRecord[], window: number): void {
    this.#outcomes.record(key, records, window);
  }

  outcome(id: string): Promise<Outcome | undefined> {
    return this.#outcomes.read(id);
  }

  expire(key: string): Promise<Expiry<E>> {
    return expire(this, key);
  }

  forget(key: string, ids: readonly string[]): Promise<void> {
    return forget(this, key, ids);
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
    this.#outcomes.host = host;
    this.scripts.report = (error, key) => host.error(error, key);
    // The guard names an outage of the store's own work "background" (its errors carry no
    // operation of their own): its end is reported under the same name.
    this.scripts.recovered = () => host.recovered?.("background");
    this.takeover.attach(host);
    return () => this.#detach();
  }

  #detach(): void {
    if (this.takeover.detached) return;
    this.takeover.detach();
    // Input admitted here that still waits runs on other replicas.
    this.entries.departAll();
    this.pending.clear();
  }

  /**
   * Stop taking keys over, then close this store's connections once no claim is held here: a turn
   * whose handler still runs (after `guard.close()` timed out, the guard keeps its lease until the
   * handler settles) keeps being renewed until it ends. A process that exits first leaves its
   * leases to lapse, as after a crash.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#detach();
    this.#closed = true;
    this.scripts.closed = true;
    await this.#holdings.idle(this.lease);
    // Records of turns that ended meanwhile are written before the connections close.
    await this.#outcomes.drained();
    this.#outcomes.closed = true;
    await this.port.close();
  }
}
