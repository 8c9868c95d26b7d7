// === Taking keys over: probes at lease expiry, the sweep, hints from other replicas
//
// A replica that queued input behind another replica's turn probes the key when that turn's lease
// runs out (the holder may have died), and again at every later expiry while its input waits. Input
// only a dead holder knew of is found by a periodic sweep of each bucket's index. Hints (pub/sub)
// only make things prompt: every decision is taken by a script. This runs on timers beside the
// store's hot path and reaches the store through the narrow `TakeoverStore`.

import type {
  CarriedRecord,
  CarryOn,
  Claim,
  StoreDrop,
  StoreEntry,
  StoreHost,
} from "session-guard";
import { readDropHint, tellDropped } from "./dropped.js";
import { list, text } from "./entries.js";
import { BUCKETS, type Bucket, hintChannel, replicaOf } from "./format.js";
import { SCRIPTS } from "./lua/index.js";
import type { StoreParts } from "./parts.js";
import { readPendingHint } from "./pending-hint.js";
import { readRevisionHint } from "./revisions.js";

/** Ms after a lease's expiry at which a waiting replica probes it. */
export const PROBE_MARGIN = 15;
/** Due keys a sweep takes per bucket. */
const SWEEP_LIMIT = 100;
/** Most ms between two checks of the hint subscription (PING), whatever the lease. */
const MAX_LISTEN_CHECK = 10_000;

/** What the takeover needs from its store. */
export interface TakeoverStore<E extends StoreEntry> extends StoreParts<E> {
  readonly lease: number;
  readonly prefix: string;
  readonly sweepInterval: number;
  readonly leaseText: string;
  readonly prefixLength: string;
  suffix(): string;
  /** An `acquired` reply: this replica holds the key now (`sent`: the claim's `since`). */
  acquired(
    key: string,
    answer: readonly unknown[],
    sent: number,
  ): { claim: Claim; batch: E[]; dropped: StoreDrop<E>[]; carried?: CarriedRecord[] };
  abandon(key: string, claim: Claim, requeue: boolean, carry?: CarryOn): Promise<unknown>;
}

/** A key this replica probes: it queued input there, or its own claim there was lost. */
interface Watch {
  /** Uids of entries admitted here and still pending there. */
  readonly uids: Set<string>;
  timer: ReturnType<typeof setTimeout> | undefined;
  probing: boolean;
}

export class Takeover<E extends StoreEntry> {
  readonly #store: TakeoverStore<E>;
  readonly #watches = new Map<string, Watch>();
  #host: StoreHost<E> | undefined;
  #sweepTimer: ReturnType<typeof setTimeout> | undefined;
  #listenTimer: ReturnType<typeof setTimeout> | undefined;
  /** The subscription stopped answering and was reported; reported again once it answered. */
  #deaf = false;
  #detached = false;
  /** Per key, the token whose turn an interrupt hint reached (a renewal need not repeat it). */
  readonly #interrupted = new Map<string, string>();

  constructor(store: TakeoverStore<E>) {
    this.#store = store;
    store.entries.onBack = (key, uid) => this.#watches.get(key)?.uids.delete(uid);
    store.entries.onDroppedElsewhere = (key, drops) => tellDropped(store, key, drops);
  }

  get detached(): boolean {
    return this.#detached;
  }

  /** Start: hear hints and sweep. */
  attach(host: StoreHost<E>): void {
    const store = this.#store;
    this.#host = host;
    const channels = [hintChannel(store.prefix), hintChannel(store.prefix, store.replicaId)];
    store.port
      .subscribe(channels, (message) => this.#hint(message))
      .catch((error: unknown) => store.scripts.background(error, undefined));
    // Replicas started together should not sweep in step.
    this.#scheduleSweep(Math.floor(store.sweepInterval * (0.5 + Math.random())));
    this.#scheduleListenCheck();
  }

  /**
   * The key prefix of every key this guard admits (`StoreHost.namespace`, read at each use: a bot
   * may learn its own id after it started): keys outside it belong to another guard on the same
   * prefix, and are never taken over here. `""`: every key.
   */
  get #namespace(): string {
    return this.#host?.namespace ?? "";
  }

  /** Whether this guard could have admitted `key` (see `#namespace`). */
  #ours(key: string): boolean {
    return key.startsWith(this.#namespace);
  }

  #scheduleListenCheck(): void {
    if (this.#detached) return;
    const every = Math.min(Math.max(Math.floor(this.#store.lease / 3), 50), MAX_LISTEN_CHECK);
    this.#listenTimer = setTimeout(() => this.#checkListening(), every);
    this.#listenTimer.unref?.();
  }

  /**
   * Hints only make things prompt, but a subscription that stopped hearing (Redis killed it, a
   * half-open connection) would go unnoticed: PING it on its own connection, and when it does not
   * answer in time, report it once and subscribe again on a new connection.
   */
  #checkListening(): void {
    const store = this.#store;
    if (this.#detached) return;
    store.port.checkSubscription(store.commandTimeout).then(
      () => {
        this.#deaf = false;
        this.#scheduleListenCheck();
      },
      (error: unknown) => {
        if (this.#detached) return;
        if (!this.#deaf) {
          this.#deaf = true;
          this.#host?.error(
            new Error(
              "session-guard/redis: the hint subscription stopped answering; subscribing again on a new connection (stops and hand-overs still arrive through renewals and sweeps meanwhile)",
              { cause: error },
            ),
            undefined,
          );
        }
        store.port.resubscribe().then(
          () => this.#scheduleListenCheck(),
          (again: unknown) => {
            store.scripts.background(again, undefined);
            this.#scheduleListenCheck();
          },
        );
      },
    );
  }

  /** Input admitted here (`uid`) was queued behind a holder on another replica. */
  queued(key: string, uid: string, holder: string, pttl: number): void {
    const watch = this.#watch(key);
    watch.uids.add(uid);
    // Held by another replica: probe when its lease runs out, in case it died.
    if (replicaOf(holder) !== this.#store.replicaId) this.#arm(key, watch, pttl + PROBE_MARGIN);
  }

  /** This replica's claim was lost while input waits: make sure someone runs it. */
  lost(key: string, pttl: number): void {
    this.#arm(key, this.#watch(key), pttl + PROBE_MARGIN);
  }

  /** This replica holds the key: its own turns drain the queue, so no probe is needed. */
  holding(key: string): void {
    const watch = this.#watches.get(key);
    if (watch === undefined) return;
    if (watch.timer !== undefined) clearTimeout(watch.timer);
    watch.timer = undefined;
    if (watch.uids.size === 0 && !watch.probing) this.#watches.delete(key);
  }

  /**
   * A renewal of `token` says input admitted in interrupt mode was queued during the claim: tell
   * the guard unless the hint did (a lost hint must not leave the turn running).
   */
  interruptRenewed(key: string, token: string, pending: number): void {
    if (this.#interrupted.get(key) === token) this.#interrupted.delete(key);
    else if (!this.#detached) this.#host?.pending(key, token, pending, true);
  }

  /** The key was released here: nothing of this replica can wait there any more. */
  released(key: string): void {
    this.#interrupted.delete(key);
    const watch = this.#watches.get(key);
    if (watch === undefined || watch.probing) return;
    if (watch.timer !== undefined) clearTimeout(watch.timer);
    this.#watches.delete(key);
    this.#store.entries.depart(watch.uids);
  }

  /** Stop every timer; nothing more is taken over. */
  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    if (this.#sweepTimer !== undefined) clearTimeout(this.#sweepTimer);
    if (this.#listenTimer !== undefined) clearTimeout(this.#listenTimer);
    for (const watch of this.#watches.values()) {
      if (watch.timer !== undefined) clearTimeout(watch.timer);
    }
    this.#watches.clear();
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

  #unwatch(key: string, watch: Watch): void {
    if (watch.timer !== undefined) clearTimeout(watch.timer);
    watch.timer = undefined;
    if (this.#watches.get(key) === watch && watch.uids.size === 0) {
      this.#watches.delete(key);
      this.#store.pending.delete(key);
    }
  }

  /**
   * Claim the key if its holder is gone and input waits (the holder died, its lease expired, or it
   * handed the key over); otherwise learn when to look again.
   */
  #probe(key: string): void {
    const host = this.#host;
    const store = this.#store;
    const watch = this.#watch(key);
    watch.timer = undefined;
    if (host === undefined || this.#detached || host.closed || watch.probing) return;
    watch.probing = true;
    const names = store.names(key);
    // An empty entry: claim only if the holder is gone and input waits (whenHeld and maxPending
    // do not apply; the batch is "all").
    const argv = ["", store.leaseText, `0|0|eoa0|${store.prefixLength}`, store.suffix()];
    store.scripts
      .call(
        SCRIPTS.acquire,
        [names.lease, names.queue, names.run, names.fence, names.index, names.carry],
        argv,
        (reply, sent) => ({ reply, sent }),
      )
      .then(
        ({ reply, sent }) => {
          watch.probing = false;
          const answer = list(reply);
          const status = text(answer[0]);
          if (status === "held") {
            const holder = text(answer[1]);
            const present = new Set(list(answer[3]).map(text));
            const gone = [...watch.uids].filter((uid) => !present.has(uid));
            for (const uid of gone) watch.uids.delete(uid);
            store.entries.depart(gone);
            store.pending.set(key, present.size);
            if (replicaOf(holder) === store.replicaId) return this.holding(key);
            if (watch.uids.size > 0) return this.#arm(key, watch, Number(answer[2]) + PROBE_MARGIN);
            this.#unwatch(key, watch);
            return;
          }
          if (status === "free") {
            const dropped = store.entries.drops(answer[1], key);
            if (dropped.length > 0) host.dropped(key, dropped);
            // Nothing waits there: the entries admitted here left (ran, or were dropped without a
            // hint), and so does the count (cleared before the watch ends, which then forgets it).
            const gone = [...watch.uids];
            watch.uids.clear();
            this.#unwatch(key, watch);
            store.entries.depart(gone);
            return;
          }
          // Acquired: this replica holds the key now.
          const { claim, batch, dropped, carried } = store.acquired(key, answer, sent);
          if (this.#detached) {
            // Closed meanwhile: leave the batch (and its carried work) to another replica.
            store
              .abandon(key, claim, true)
              .catch((error: unknown) => store.scripts.background(error, key));
            host.departed(batch);
            return;
          }
          host.acquired(key, claim, batch, dropped, carried);
        },
        (error: unknown) => {
          watch.probing = false;
          store.scripts.background(error, key);
          // Redis is unreachable: look again later (the sweep would find the key too).
          if (watch.uids.size > 0) this.#arm(key, watch, Math.floor(store.lease / 2));
          else this.#unwatch(key, watch);
        },
      );
  }

  #scheduleSweep(delay: number): void {
    if (this.#detached) return;
    this.#sweepTimer = setTimeout(() => this.#sweep(), delay);
    this.#sweepTimer.unref?.();
  }

  /** Probe every key whose lease deadline passed with a turn or input left behind. */
  #sweep(): void {
    const host = this.#host;
    const store = this.#store;
    if (host === undefined || this.#detached || host.closed) return;
    const namespace = this.#namespace;
    if (!(namespace as unknown as { isWellFormed(): boolean }).isWellFormed()) {
      // The guard does not know its namespace yet (see StoreHost.namespace): nothing is its own.
      this.#scheduleSweep(store.sweepInterval);
      return;
    }
    const rounds: Promise<void>[] = [];
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      const index = (store.buckets[bucket] as Bucket).index;
      rounds.push(
        store.scripts.call(SCRIPTS.sweep, [index], [String(SWEEP_LIMIT), namespace], (reply) => {
          for (const item of list(reply)) {
            const key = text(item);
            if (this.#ours(key)) this.#probe(key);
          }
        }),
      );
    }
    Promise.all(rounds).then(
      () => this.#scheduleSweep(store.sweepInterval),
      (error: unknown) => {
        store.scripts.background(error, undefined);
        this.#scheduleSweep(store.sweepInterval);
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
      const { token, pending, interrupt, key } = readPendingHint(message);
      this.#store.pending.set(key, pending);
      if (interrupt) this.#interrupted.set(key, token);
      host.pending(key, token, pending, interrupt);
    } else if (type === "s") {
      // s|token|key
      host.stopped(message.slice(a + 1), message.slice(2, a));
    } else if (type === "h") {
      // h|replica|key: the key was handed over; the closing replica does not take it back.
      const key = message.slice(a + 1);
      if (message.slice(2, a) !== this.#store.replicaId && !host.closed && this.#ours(key)) {
        this.#probe(key);
      }
    } else if (type === "f") {
      // f|key
      host.freed(message.slice(2));
    } else if (type === "d") {
      // d|reason=uid,…|key (dropped.ts)
      this.#droppedElsewhere(host, message);
    } else if (type === "v") {
      // v|token|id field|length|json key (revisions.ts)
      const revision = readRevisionHint(message);
      if (revision !== undefined) {
        host.revised?.(revision.key, revision.token, revision.id, revision.data);
      }
    }
  }

  /**
   * Another replica dropped entries admitted here while they waited: they no longer wait (nor
   * count as pending here), and the guard ends them as dropped. A uid unknown here already ended
   * (it came back, or a probe found it gone).
   */
  #droppedElsewhere(host: StoreHost<E>, message: string): void {
    const store = this.#store;
    const { key, drops } = readDropHint(message);
    const watch = this.#watches.get(key);
    const ended: StoreDrop<E>[] = [];
    for (const { uid, reason } of drops) {
      const entry = store.entries.remove(uid);
      if (entry === undefined) continue;
      watch?.uids.delete(uid);
      ended.push({ entry, reason });
    }
    if (ended.length === 0) return;
    const known = store.pending.get(key);
    if (known !== undefined) store.pending.set(key, Math.max(0, known - ended.length));
    // Waiting behind another replica's turn for nothing of its own any more: stop probing (a probe
    // in flight ends the watch itself).
    if (watch !== undefined && watch.uids.size === 0 && watch.timer !== undefined) {
      this.#unwatch(key, watch);
    }
    if (host.droppedElsewhere !== undefined) host.droppedElsewhere(key, ended);
    else host.departed(ended.map((drop) => drop.entry));
  }
}
