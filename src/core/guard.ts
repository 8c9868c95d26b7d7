// === The guard: admission, modes, turns, lanes, stop, close
//
// One turn per key at a time. `submit` claims the key or queues the input in one synchronous store
// call (for the memory store), so nothing can slip between "is a turn running?" and "register the
// turn" — the await gap that makes other guards start duplicate runs. The turn then runs detached;
// when it settles, `finish` atomically hands back the next batch (keeping the claim) or releases
// the key, so input is never stranded between "queue empty" and "released".
//
// The guard keeps a record only for keys it holds (`#keys`): an idle key costs nothing. Stores may
// answer synchronously or with a promise; the guard handles both without awaiting on the
// synchronous path, which keeps the uncontended in-memory path free of promises and timers.

import pLimit from "p-limit";
import type {
  Admission,
  AdmitPolicy,
  Claim,
  Expiry,
  Finish,
  Renewal,
  Store,
  StoreDrop,
  StoreEntry,
  StoreHost,
  Take,
} from "../stores/store.js";
import { Deadlines } from "./deadlines.js";
import type { GuardEntry, Waiter } from "./entry.js";
import {
  ContendedError,
  DroppedError,
  type DropReason,
  LeaseLostError,
  StoreError,
  TurnAbortedError,
  TurnTimeoutError,
} from "./errors.js";
import { Emitter, type GuardEvents, type Listener } from "./events.js";
import { ClaimHolders, type Holders, hasLocalClaims, MapHolders } from "./holders.js";
import { MODES, type ModeBehaviour } from "./modes.js";
import { type Codec, type Drop, type Handler, invalid, type ResolvedOptions } from "./options.js";
import { type LeaseWatch, type Turn, type TurnHost, TurnState } from "./turn.js";

// === Public types

/** How `submit` admitted an input. */
export type SubmitOutcome = "started" | "queued" | "duplicate" | "dropped";

/** Per-input options of `submit`. */
export interface SubmitOptions {
  /** De-duplication id (platform message or update id). Without one the input is never a duplicate. */
  id?: string;
  /**
   * Never coalesce this input with others: it becomes a turn of its own, in FIFO order. For inputs
   * that carry their own reply channel (a slash command, an interaction).
   */
  alone?: boolean;
  /** Epoch ms after which this input, if still pending, is dropped as `expired` (e.g. a dying token). */
  expiresAt?: number;
  /** Overrides the guard's `awaitTurn` for this input. */
  awaitTurn?: boolean;
}

/** Options of a lane (`guard.run`). */
export interface RunOptions {
  /**
   * When the key is busy: `"wait"` for it (default), `"skip"` (resolve `undefined`) or `"throw"` a
   * `ContendedError`.
   */
  onBusy?: "wait" | "skip" | "throw";
  /** With `"wait"`: give up after this many ms with a `ContendedError`. Default `Infinity`. */
  waitTimeout?: number;
}

/** Options of `close`. */
export interface CloseOptions {
  /**
   * Ms to wait for running turns (and, with the memory store, their pending input) before their
   * signals are aborted and their keys released. Default 10,000.
   */
  timeout?: number;
}

/** What `close` had to cut short. */
export interface CloseReport<I> {
  /** Turns that were still running at the deadline: aborted (reason `shutdown`) and released. */
  readonly aborted: number;
  /** Inputs dropped because the guard shut down, oldest first. */
  readonly dropped: readonly Drop<I>[];
}

/**
 * A per-key serializer for agent turns. Create one with `createGuard()`.
 *
 * @typeParam I - the input type (a message, an update, a framework context).
 */
export interface Guard<I> {
  /**
   * Admit one input for `key`. The key is claimed, or the input queued, before this call returns
   * (nothing is awaited in between); the turn then runs detached and the promise resolves with how
   * the input was admitted. With `awaitTurn`, it resolves once the input's turn has settled and
   * rejects with that turn's error. Never throws synchronously; after `close()` it resolves
   * `"dropped"` (reason `shutdown`).
   *
   * In `collect` mode a turn runs the `run` of its latest input, with every coalesced input in
   * `turn.inputs`, oldest first.
   *
   * @example
   * ```ts
   * const outcome = await guard.submit(chatId, message, (turn) => agent(turn), { id: messageId });
   * if (outcome === "queued") await notify(chatId, "Got it, I'll read that next.");
   * ```
   */
  submit(key: string, input: I, run?: Handler<I>, options?: SubmitOptions): Promise<SubmitOutcome>;

  /**
   * Run `fn` as a turn of `key` that never overlaps a chat turn (a lane: cron, heartbeat,
   * recovery). Resolves with what `fn` returns. When the key is busy it waits (`onBusy: "wait"`,
   * bounded by `waitTimeout`), resolves `undefined` (`"skip"`) or rejects with `ContendedError`
   * (`"throw"`, or a wait that timed out). A lane always runs alone and is never coalesced.
   *
   * @example
   * ```ts
   * await guard.run(chatId, (turn) => summarize(chatId, turn.signal), { onBusy: "wait", waitTimeout: 30_000 });
   * ```
   */
  run<T>(
    key: string,
    fn: (turn: Turn<I>) => T | Promise<T>,
    options?: RunOptions & { onBusy?: "wait" | "throw" },
  ): Promise<T>;
  run<T>(
    key: string,
    fn: (turn: Turn<I>) => T | Promise<T>,
    options: RunOptions,
  ): Promise<T | undefined>;

  /**
   * Stop the key: abort its running turn (`signal.reason.code === "stopped"`) and drop its pending
   * input (reason `stopped`). The local effects happen before this returns; the promise resolves
   * `true` if there was anything to stop. Input admitted afterwards runs as usual, after the
   * stopped turn has settled.
   */
  stop(key: string): Promise<boolean>;

  /**
   * Report an input that an adapter dropped before admitting it (an album stopped while its
   * photos were still arriving), so that `onDrop` and the `dropped` event see every input.
   */
  reportDrop(drop: Drop<I>): void;

  /**
   * Report an error an adapter met outside a turn (a throwing `key` function, a failed stop) to
   * `onError` and the `error` event, with the key and the inputs involved.
   */
  reportError(error: unknown, info: { key: string; inputs?: readonly I[] }): void;

  /** True while this guard holds `key` (a turn is claimed or running). */
  isBusy(key: string): boolean;

  /** Inputs of `key` waiting behind its turn. */
  pendingCount(key: string): number;

  /** Keys this guard holds right now (turns claimed or running). */
  readonly activeCount: number;

  /** True once `close()` was called. */
  readonly closed: boolean;

  /** Resolves when this guard holds no key (no turn running, nothing pending). */
  onIdle(): Promise<void>;

  /**
   * Stop admitting (later `submit`s resolve `"dropped"`, reason `shutdown`), let running turns
   * finish — with the memory store their pending input still runs — and at `timeout` abort what
   * remains and release every key. Idempotent.
   *
   * From inside a handler: called before the handler's first `await`, it does not wait for that
   * handler's own turn. After an `await` the guard cannot tell who calls it, so there call it
   * without awaiting it (`void guard.close()`): awaited, it would wait for its own turn until
   * `timeout`.
   *
   * @example
   * ```ts
   * process.once("SIGTERM", async () => {
   *   const report = await guard.close({ timeout: 10_000 });
   *   console.log(`aborted ${report.aborted} turn(s), dropped ${report.dropped.length} input(s)`);
   * });
   * ```
   */
  close(options?: CloseOptions): Promise<CloseReport<I>>;

  /**
   * Listen to a lifecycle event: `admitted`, `queued`, `started`, `finished`, `dropped`, `error`,
   * `stuck`. Returns the function that unsubscribes.
   */
  on<K extends keyof GuardEvents<I>>(event: K, listener: Listener<GuardEvents<I>[K]>): () => void;
}

// === Internals

type Entry<I> = GuardEntry<I>;

const OUTCOMES: Readonly<Record<SubmitOutcome, Promise<SubmitOutcome>>> = {
  started: Promise.resolve("started"),
  queued: Promise.resolve("queued"),
  duplicate: Promise.resolve("duplicate"),
  dropped: Promise.resolve("dropped"),
};
const DONE: Promise<void> = Promise.resolve();

/**
 * The turn whose handler is executing synchronously right now. `close()` reads it to recognise a
 * call from inside a handler, which it must not wait for.
 */
let activeTurn: TurnState<unknown> | undefined;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as PromiseLike<unknown>).then === "function"
  );
}

/** The resolvers `captureWaiter` took from the promise being constructed. */
let captured: Waiter | undefined;

/**
 * A promise executor that keeps the resolvers as a `Waiter` in `captured`: one function for every
 * promise, where an executor closing over its entry would be allocated per awaited input.
 */
function captureWaiter(resolve: (value: SubmitOutcome) => void, reject: (error: unknown) => void) {
  captured = { resolve: resolve as Waiter["resolve"], reject };
}

/** Call `then` on a store answer, synchronously when it is not a promise. */
function settleWith<T>(
  value: T | Promise<T>,
  onValue: (value: T) => void,
  onError: (error: unknown) => void,
): void {
  if (value instanceof Promise) value.then(onValue, onError);
  else onValue(value);
}

/** True for data `JSON.stringify` keeps as it is: primitives, arrays and plain objects. */
function isPlainData(value: unknown): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value);
    case "object": {
      if (Array.isArray(value)) return true;
      const proto = Object.getPrototypeOf(value);
      return proto === Object.prototype || proto === null;
    }
    default:
      return false;
  }
}

/** The codec of a shared store when none is given: plain JSON data, anything else refused. */
const JSON_CODEC: Codec<unknown> = {
  encode(input) {
    if (!isPlainData(input)) {
      throw new TypeError(
        `the input is ${input === undefined ? "undefined" : typeof input === "object" ? `an instance of ${(input as object).constructor?.name ?? "a class"}` : `a ${typeof input}`}, not plain JSON data`,
      );
    }
    return input;
  },
  decode: (data) => data,
};

/** Abort reasons after which a turn's inputs count as handled, not failed. */
function isGracefulAbort(reason: unknown): boolean {
  return (
    reason instanceof TurnAbortedError &&
    (reason.code === "stopped" || reason.code === "superseded")
  );
}

export class SessionGuard<I> implements Guard<I>, TurnHost<I> {
  readonly #options: ResolvedOptions<I>;
  readonly #store: Store<Entry<I>>;
  /** Other processes share the store: inputs are serialized, keys handed over on close. */
  readonly #shared: boolean;
  readonly #codec: Codec<I>;
  /** The store's lease in ms (claims expire unless renewed), or undefined. */
  readonly #lease: number | undefined;
  /** Stops the store's background work once this guard has closed (`Store.attach`). */
  readonly #detach: (() => void) | undefined;
  /** Lanes waiting for a key held in a shared store, retried when the key may be free. */
  readonly #laneWaits = new Map<string, Set<() => void>>();
  /** Hand-overs (`abandon`) still in flight, which `close` waits for. */
  readonly #giveUps = new Set<Promise<unknown>>();
  readonly #mode: ModeBehaviour;
  readonly #admitPolicy: AdmitPolicy;
  readonly #waitLanePolicy: AdmitPolicy;
  readonly #tryLanePolicy: AdmitPolicy;
  readonly #events: Emitter<GuardEvents<I>>;
  readonly #deadlines: Deadlines<TurnState<I>> | undefined;
  readonly #limit: ReturnType<typeof pLimit> | undefined;
  /** The current turn of every key this guard holds. */
  readonly #keys: Holders<TurnState<I>>;
  /**
   * Keys with queued input that expires, and the earliest such `expiresAt` (stores with `expire`):
   * one timer for the earliest of all drops it when due.
   */
  readonly #expiring = new Map<string, number>();
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  #expiryAt = Number.POSITIVE_INFINITY;
  #idleWaiters: (() => void)[] = [];
  #closing: Promise<CloseReport<I>> | undefined;
  #closeDrops: Drop<I>[] | undefined;
  #laneSeq = 0;

  constructor(options: ResolvedOptions<I>) {
    this.#options = options;
    this.#store = options.store as Store<Entry<I>>;
    this.#mode = MODES[options.mode];
    const base = {
      maxPending: options.maxPending,
      overflow: options.overflow,
      maxPendingTotal: options.maxPendingTotal,
    };
    const batch = this.#mode.batch;
    this.#admitPolicy = { ...base, whenHeld: this.#mode.whenHeld, dedupe: options.dedupe, batch };
    this.#shared = this.#store.shared === true;
    const store = this.#store as Store<never>;
    this.#keys = hasLocalClaims(store)
      ? new ClaimHolders(store, (turn) => turn.host === this)
      : new MapHolders();
    this.#codec = (options.codec ?? JSON_CODEC) as Codec<I>;
    const lease = this.#store.lease;
    this.#lease = typeof lease === "number" && lease > 0 ? lease : undefined;
    // A lane never evicts chat input and is never de-duplicated. A lane cannot travel to another
    // process, so with a shared store a waiting lane is never queued there: it is refused while
    // the key is held and tries again once the key may be free.
    this.#waitLanePolicy = this.#shared
      ? { ...base, whenHeld: "reject", dedupe: 0, batch, notifyFree: true }
      : { ...base, overflow: "drop-newest", whenHeld: "enqueue", dedupe: 0, batch };
    this.#tryLanePolicy = { ...base, whenHeld: "reject", dedupe: 0, batch };
    this.#events = new Emitter((error) => this.#reportError(error, undefined, "", undefined));
    this.#deadlines = Number.isFinite(options.turnTimeout)
      ? new Deadlines((turn) => this.#timedOut(turn))
      : undefined;
    this.#limit = Number.isFinite(options.concurrency) ? pLimit(options.concurrency) : undefined;
    this.#detach = this.#store.attach?.(this.#host());
  }

  // --- observable state

  get activeCount(): number {
    return this.#keys.size;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  isBusy(key: string): boolean {
    return this.#keys.get(key) !== undefined;
  }

  pendingCount(key: string): number {
    return this.#store.pendingCount(key);
  }

  onIdle(): Promise<void> {
    if (this.#keys.size === 0) return DONE;
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  on<K extends keyof GuardEvents<I>>(event: K, listener: Listener<GuardEvents<I>[K]>): () => void {
    return this.#events.on(event, listener);
  }

  // --- admission

  submit(key: string, input: I, run?: Handler<I>, options?: SubmitOptions): Promise<SubmitOutcome> {
    if (typeof key !== "string" || key === "") {
      return Promise.reject(
        new TypeError(`submit: "key" must be a non-empty string, got ${String(key)}.`),
      );
    }
    const handler = run ?? this.#options.handler;
    if (typeof handler !== "function") {
      return Promise.reject(
        new TypeError(
          "submit: pass the turn handler as the third argument, or register one with createGuard({ handler }).",
        ),
      );
    }
    let id: string | undefined;
    let alone = false;
    let expiresAt = this.#options.pendingTtl;
    let awaitTurn = this.#options.awaitTurn;
    if (options !== undefined) {
      const problem = checkSubmitOptions(options);
      if (problem !== undefined) return Promise.reject(problem);
      id = options.id;
      alone = options.alone === true;
      awaitTurn = options.awaitTurn ?? awaitTurn;
      if (options.expiresAt !== undefined) {
        expiresAt = Math.min(options.expiresAt, Date.now() + expiresAt);
      } else if (expiresAt !== Number.POSITIVE_INFINITY) expiresAt += Date.now();
    } else if (expiresAt !== Number.POSITIVE_INFINITY) expiresAt += Date.now();

    let data: string | undefined;
    if (this.#shared) {
      try {
        data = this.#encode(input);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const entry: Entry<I> = {
      id,
      alone,
      expiresAt,
      data,
      input,
      run: handler,
      lane: false,
      outcome: "started",
      waiter: undefined,
    };
    if (this.#closing !== undefined) {
      this.#drop(key, entry, "shutdown");
      return OUTCOMES.dropped;
    }
    let settled: Promise<SubmitOutcome> | undefined;
    if (awaitTurn) {
      settled = new Promise<SubmitOutcome>(captureWaiter);
      entry.waiter = captured;
    }
    const outcome = this.#admit(key, entry, this.#admitPolicy);
    if (typeof outcome === "string") return settled ?? OUTCOMES[outcome];
    return settled === undefined ? outcome : outcome.then(() => settled);
  }

  run<T>(key: string, fn: (turn: Turn<I>) => T | Promise<T>, options?: RunOptions): Promise<T> {
    if (typeof key !== "string" || key === "") {
      return Promise.reject(
        new TypeError(`run: "key" must be a non-empty string, got ${String(key)}.`),
      );
    }
    if (typeof fn !== "function") {
      return Promise.reject(new TypeError("run: pass the lane's work as a function (turn) => …."));
    }
    const onBusy = options?.onBusy ?? "wait";
    const waitTimeout = options?.waitTimeout ?? Number.POSITIVE_INFINITY;
    try {
      if (!["wait", "skip", "throw"].includes(onBusy)) {
        invalid("run", "onBusy", '"wait", "skip" or "throw"', onBusy);
      }
      if (!(typeof waitTimeout === "number" && waitTimeout >= 0)) {
        invalid("run", "waitTimeout", "a number of ms (0 or more) or Infinity", waitTimeout);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#closing !== undefined) return Promise.reject(new DroppedError(key, "shutdown"));

    let timer: ReturnType<typeof setTimeout> | undefined;
    const entry: Entry<I> = {
      id: `\u0000lane:${++this.#laneSeq}`,
      alone: true,
      expiresAt: Number.POSITIVE_INFINITY,
      data: undefined,
      input: undefined as I,
      run: fn as Handler<I>,
      lane: true,
      outcome: "started",
      waiter: undefined,
    };
    const result = new Promise<T>((resolve, reject) => {
      entry.waiter = {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
    const wait = onBusy === "wait";
    if (wait && this.#shared) {
      this.#waitShared(key, entry, Date.now(), waitTimeout);
      return result;
    }
    const admitted = this.#admit(key, entry, wait ? this.#waitLanePolicy : this.#tryLanePolicy);
    if (wait && waitTimeout !== Number.POSITIVE_INFINITY) {
      const giveUp = (outcome: SubmitOutcome) => {
        if (outcome !== "queued") return;
        timer = setTimeout(() => this.#withdrawLane(key, entry, waitTimeout), waitTimeout);
      };
      if (typeof admitted === "string") giveUp(admitted);
      else admitted.then(giveUp, () => {});
    }
    if (typeof admitted !== "string") admitted.catch((error) => entry.waiter?.reject(error));
    if (wait) return result;
    return result.catch((error: unknown) => {
      if (!(error instanceof DroppedError && error.reason === "busy")) throw error;
      if (onBusy === "throw") throw new ContendedError(key, 0);
      return undefined as T;
    });
  }

  /**
   * A waiting lane on a shared store: try to claim the key; while it is held elsewhere, wait here
   * (not queued in the store, so not FIFO with chat input across replicas) and try again when the
   * key may be free — released here, a release hint, or at the latest every lease — until
   * `waitTimeout`.
   */
  #waitShared(key: string, entry: Entry<I>, since: number, waitTimeout: number): void {
    const fail = (error: unknown): void => {
      const waiter = entry.waiter;
      entry.waiter = undefined;
      waiter?.reject(error);
    };
    if (this.#closing !== undefined) {
      fail(new DroppedError(key, "shutdown"));
      return;
    }
    let answer: Admission<Entry<I>> | Promise<Admission<Entry<I>>>;
    try {
      answer = this.#store.acquireOrEnqueue(key, entry, this.#waitLanePolicy);
    } catch (error) {
      fail(new StoreError("acquireOrEnqueue", key, error));
      return;
    }
    settleWith(
      answer,
      (admission) => {
        if (admission.status !== "rejected" || admission.reason !== "busy") {
          this.#admitted(key, entry, admission);
          return;
        }
        const waited = Date.now() - since;
        if (waited >= waitTimeout) {
          fail(new ContendedError(key, waited));
          return;
        }
        if (this.#closing !== undefined) {
          fail(new DroppedError(key, "shutdown"));
          return;
        }
        let waits = this.#laneWaits.get(key);
        if (waits === undefined) this.#laneWaits.set(key, (waits = new Set()));
        const set = waits;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const retry = () => {
          if (!set.delete(retry)) return;
          if (set.size === 0 && this.#laneWaits.get(key) === set) this.#laneWaits.delete(key);
          clearTimeout(timer);
          this.#waitShared(key, entry, since, waitTimeout);
        };
        set.add(retry);
        const poll = this.#lease ?? 1_000;
        timer = setTimeout(retry, Math.min(poll, waitTimeout - waited));
      },
      (error: unknown) => fail(new StoreError("acquireOrEnqueue", key, error)),
    );
  }

  /** Let the lanes waiting for `key` try again (it was released, here or elsewhere). */
  #wakeLanes(key: string): void {
    const waits = this.#laneWaits.get(key);
    if (waits === undefined) return;
    for (const retry of [...waits]) retry();
  }

  /** A waiting lane's `waitTimeout` elapsed: withdraw it if it is still pending. */
  #withdrawLane(key: string, entry: Entry<I>, waited: number): void {
    const giveUp = (removed: Entry<I> | undefined) => {
      if (removed === undefined) return; // it started meanwhile: let it run
      const waiter = entry.waiter;
      entry.waiter = undefined;
      waiter?.reject(new ContendedError(key, waited));
    };
    const fail = (error: unknown) =>
      this.#reportError(new StoreError("withdraw", key, error), undefined, key, undefined);
    try {
      settleWith(this.#store.withdraw(key, entry.id as string), giveUp, fail);
    } catch (error) {
      fail(error);
    }
  }

  /** Admit an entry: claim or queue it in the store, then act on the answer. */
  #admit(
    key: string,
    entry: Entry<I>,
    policy: AdmitPolicy,
  ): SubmitOutcome | Promise<SubmitOutcome> {
    let admission: Admission<Entry<I>> | Promise<Admission<Entry<I>>>;
    try {
      admission = this.#store.acquireOrEnqueue(key, entry, policy);
    } catch (error) {
      return Promise.reject(new StoreError("acquireOrEnqueue", key, error));
    }
    if (admission instanceof Promise) {
      return admission.then(
        (answer) => this.#admitted(key, entry, answer),
        (error: unknown) => {
          throw new StoreError("acquireOrEnqueue", key, error);
        },
      );
    }
    return this.#admitted(key, entry, admission);
  }

  #admitted(key: string, entry: Entry<I>, admission: Admission<Entry<I>>): SubmitOutcome {
    switch (admission.status) {
      case "acquired": {
        const turn = new TurnState(this, key, admission.claim, admission.batch);
        this.#replace(key, turn);
        this.#reportDrops(key, admission.dropped);
        // A shared store may claim the key for input a dead holder left behind, older than this
        // entry: the entry then waits for the next batch of this guard's own turns.
        const outcome = this.#shared && !admission.batch.includes(entry) ? "queued" : "started";
        entry.outcome = outcome;
        if (!entry.lane && this.#events.has("admitted")) {
          this.#events.emit("admitted", { key, id: entry.id, input: entry.input, outcome });
        }
        this.#begin(turn, true);
        return outcome;
      }
      case "queued": {
        entry.outcome = "queued";
        this.#reportDrops(key, admission.dropped);
        if (!entry.lane && (this.#events.has("admitted") || this.#events.has("queued"))) {
          const { id, input } = entry;
          this.#events.emit("admitted", { key, id, input, outcome: "queued" });
          this.#events.emit("queued", { key, id, input, pending: admission.pending });
        }
        if (entry.expiresAt !== Number.POSITIVE_INFINITY) this.#watchExpiry(key, entry.expiresAt);
        const turn = this.#keys.get(key);
        if (turn !== undefined && !entry.lane && !turn.stale) {
          if (turn.watch !== undefined) turn.watch.knownPending = admission.pending;
          this.#pendingArrived(turn, admission.pending);
        }
        return "queued";
      }
      case "rejected":
        this.#drop(key, entry, admission.reason);
        return "dropped";
      default:
        this.#drop(key, entry, "duplicate");
        return "duplicate";
    }
  }

  // --- turns

  /** A turn holds its key: wait out the settle window (fresh admissions only), then launch it. */
  #begin(turn: TurnState<I>, admitted: boolean): void {
    if (this.#lease !== undefined) this.#watchLease(turn);
    const settle = this.#options.settle;
    if (admitted && settle > 0 && !(turn.entries[0] as Entry<I>).alone) {
      turn.timer = setTimeout(() => this.#settled(turn), settle);
      return;
    }
    this.#launch(turn);
  }

  /** The settle window is over: inputs that arrived during it join the turn (unless queue mode). */
  #settled(turn: TurnState<I>): void {
    turn.timer = undefined;
    if (turn.phase !== "claimed") return;
    if (this.#mode.batch !== "all" || turn.abortReason !== undefined) {
      this.#launch(turn);
      return;
    }
    this.#storeCall(
      turn,
      "take",
      () => this.#store.take(turn.key, turn.claim, "all"),
      (taken: Take<Entry<I>>) => {
        if (taken.status === "lost") return this.#lost(turn);
        this.#reportDrops(turn.key, taken.dropped);
        turn.append(taken.entries);
        this.#launch(turn);
      },
      // The window's late arrivals stay pending for the next turn; this one runs as it is.
      () => this.#launch(turn),
    );
  }

  #launch(turn: TurnState<I>): void {
    const limit = this.#limit;
    if (limit === undefined) {
      this.#invoke(turn);
      return;
    }
    limit(() => {
      if (turn.phase !== "claimed") return undefined;
      return new Promise<void>((resolve) => {
        turn.release = resolve;
        this.#invoke(turn);
      });
    });
  }

  /** Run the turn's handler. A turn aborted before it started drops its inputs instead. */
  #invoke(turn: TurnState<I>): void {
    if (turn.phase !== "claimed" || turn.released) return;
    if (turn.abortReason !== undefined) {
      this.#discard(turn);
      return;
    }
    if (turn.entries.length === 0) {
      // A shared store handed over a batch none of whose inputs could be rebuilt here (each was
      // reported to onError): nothing to run, the key moves on.
      turn.phase = "settled";
      this.#stopLease(turn);
      const release = turn.release;
      turn.release = undefined;
      release?.();
      this.#finish(turn);
      return;
    }
    turn.phase = "running";
    if (this.#deadlines !== undefined) {
      this.#deadlines.add(turn, this.#options.turnTimeout);
    }
    if (this.#events.has("started")) {
      this.#events.emit("started", { key: turn.key, fence: turn.fence, inputs: turn.inputs });
    }
    const entries = turn.entries;
    const last = entries[entries.length - 1] as Entry<I>;
    const run = last.run ?? this.#options.handler;
    const outer = activeTurn;
    activeTurn = turn as TurnState<unknown>;
    let result: unknown;
    try {
      if (run === undefined) {
        throw new TypeError(
          `No handler for key "${turn.key}": its inputs were admitted without a run function. Register one with createGuard({ handler }).`,
        );
      }
      result = run(turn, last.input);
    } catch (error) {
      activeTurn = outer;
      // Settle on a later tick, never inside `submit`: a queue of synchronous handlers must not
      // recurse through finish → next turn → handler.
      queueMicrotask(() => this.#settleTurn(turn, error, true));
      return;
    }
    activeTurn = outer;
    if (isThenable(result)) {
      result.then(
        (value) => this.#settleTurn(turn, value, false),
        (error) => this.#settleTurn(turn, error, true),
      );
    } else {
      queueMicrotask(() => this.#settleTurn(turn, result, false));
    }
  }

  /** The handler returned or threw. Report, settle the waiters, and finish the turn. */
  #settleTurn(turn: TurnState<I>, value: unknown, failed: boolean): void {
    if (turn.phase === "settled") return;
    turn.phase = "settled";
    this.#deadlines?.delete(turn);
    this.#stopLease(turn);
    const ownAbort = failed && value === turn.abortReason;
    // An error that is the turn's own abort reason was expected (stop, interrupt) or was already
    // reported when it happened (timeout, lease loss).
    if (failed && !ownAbort) this.#reportError(value, turn, turn.key, turn.fence);
    this.#settleWaiters(turn, value, failed);
    if (this.#events.has("finished")) {
      const { key, fence, inputs } = turn;
      this.#events.emit("finished", { key, fence, inputs, failed });
    }
    const release = turn.release;
    turn.release = undefined;
    release?.();
    if (!turn.released) this.#finish(turn);
  }

  /**
   * Resolve or reject the callers waiting on the turn's entries. Under `awaitTurn` a failed turn
   * forgets its inputs' ids so that the platform's redelivery runs instead of being a duplicate.
   */
  #settleWaiters(turn: TurnState<I>, value: unknown, failed: boolean): void {
    // A stopped or superseded turn handled its inputs: the platform must not redeliver them,
    // whatever the handler threw on abort (signal.reason, or an SDK's own abort error).
    const inputsFailed = failed && !isGracefulAbort(value) && !isGracefulAbort(turn.abortReason);
    // A turn that lost its lease on a shared store: the next holder runs its inputs again, so a
    // redelivery must stay a duplicate.
    const keepIds = this.#shared && turn.abortReason instanceof LeaseLostError;
    let forget: string[] | undefined;
    for (const entry of turn.entries) {
      const waiter = entry.waiter;
      if (waiter === undefined) continue;
      entry.waiter = undefined;
      if (entry.lane) {
        if (failed) waiter.reject(value);
        else waiter.resolve(value);
      } else if (inputsFailed) {
        waiter.reject(value);
        if (entry.id !== undefined && !keepIds) (forget ??= []).push(entry.id);
      } else waiter.resolve(entry.outcome);
    }
    if (forget !== undefined) {
      const ids = forget;
      this.#storeCall(
        turn,
        "forget",
        () => this.#store.forget(turn.key, ids),
        () => {},
      );
    }
  }

  /** A turn that was stopped or shut down before its handler ran: drop its inputs, free the key. */
  #discard(turn: TurnState<I>): void {
    turn.phase = "settled";
    if (turn.timer !== undefined) clearTimeout(turn.timer);
    turn.timer = undefined;
    this.#stopLease(turn);
    if (turn.abortReason instanceof LeaseLostError) {
      // The claim moved to another holder before the handler ran, with these inputs (a shared
      // store hands a lost claim's batch to the next holder): they are not dropped.
      for (const entry of turn.entries) {
        const waiter = entry.waiter;
        entry.waiter = undefined;
        if (entry.lane) waiter?.reject(turn.abortReason);
        else waiter?.resolve("queued");
      }
      const release = turn.release;
      turn.release = undefined;
      release?.();
      // Overdue but perhaps not lost: give the batch back, never finish a batch that did not run.
      if (!turn.released) this.#giveUp(turn, true);
      return;
    }
    const reason: DropReason =
      turn.abortReason instanceof TurnAbortedError && turn.abortReason.code === "shutdown"
        ? "shutdown"
        : "stopped";
    for (const entry of turn.entries) this.#drop(turn.key, entry, reason);
    const release = turn.release;
    turn.release = undefined;
    release?.();
    if (!turn.released) this.#finish(turn);
  }

  /** Hand the key to its next batch, or release it. */
  #finish(turn: TurnState<I>): void {
    if (this.#closing !== undefined && this.#shared) {
      // Across replicas a closing guard hands its keys over instead of draining them.
      this.#giveUp(turn);
      return;
    }
    // Every turn ends here, so no closure is made unless the store answers with a promise.
    let answer: Finish<Entry<I>> | Promise<Finish<Entry<I>>>;
    try {
      answer = this.#store.finish(turn.key, turn.claim, this.#mode.batch);
    } catch (error) {
      this.#storeFailed(turn, "finish", error);
      return;
    }
    if (answer instanceof Promise) {
      answer.then(
        (finish) => this.#finished(turn, finish),
        (error: unknown) => this.#storeFailed(turn, "finish", error),
      );
    } else this.#finished(turn, answer);
  }

  /** The store answered `finish`: release the key, or start its next batch. */
  #finished(turn: TurnState<I>, finish: Finish<Entry<I>>): void {
    if (finish.status === "lost") {
      this.#lost(turn);
      return;
    }
    this.#reportDrops(turn.key, finish.dropped);
    if (finish.status === "released") {
      this.#unhold(turn);
      return;
    }
    const next = new TurnState(this, turn.key, finish.claim, finish.batch);
    this.#replace(turn.key, next, turn);
    this.#begin(next, false);
  }

  /**
   * Release the key without running its pending input here; drop what no one else will run.
   * `requeue`: the turn never ran; a shared store leaves its batch for another replica.
   */
  #giveUp(turn: TurnState<I>, requeue = false): void {
    turn.released = true;
    this.#stopLease(turn);
    let done: () => void = () => {};
    if (this.#shared) {
      const settled = new Promise<void>((resolve) => {
        done = resolve;
      });
      this.#giveUps.add(settled);
      settled.then(() => this.#giveUps.delete(settled));
    }
    this.#unhold(turn);
    this.#storeCall(
      turn,
      "abandon",
      () => this.#store.abandon(turn.key, turn.claim, requeue),
      (orphans: readonly Entry<I>[]) => {
        for (const entry of orphans) this.#drop(turn.key, entry, "shutdown");
        done();
      },
      done,
    );
  }

  /** `turn` is now the key's holder here; a turn it replaces unexpectedly lost its claim. */
  #replace(key: string, turn: TurnState<I>, previous?: TurnState<I>): void {
    if (this.#shared) {
      const current = this.#keys.get(key);
      if (current !== undefined && current !== previous) this.#leaseLost(current, true);
    }
    this.#keys.set(turn, previous);
  }

  /** The store no longer knows this turn's claim. */
  #lost(turn: TurnState<I>): void {
    turn.released = true;
    this.#unhold(turn);
  }

  #unhold(turn: TurnState<I>): void {
    if (!this.#keys.delete(turn)) return;
    if (this.#expiring.size > 0 && this.#expiring.delete(turn.key) && this.#expiring.size === 0) {
      clearTimeout(this.#expiryTimer);
      this.#expiryTimer = undefined;
      this.#expiryAt = Number.POSITIVE_INFINITY;
    }
    if (this.#laneWaits.size > 0) this.#wakeLanes(turn.key);
    if (this.#keys.size === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  // --- expiry of pending input

  /** Input that expires at `at` waits for `key`: have it dropped when due (stores with `expire`). */
  #watchExpiry(key: string, at: number): void {
    if (this.#store.expire === undefined) return;
    const known = this.#expiring.get(key);
    if (known === undefined || at < known) this.#expiring.set(key, at);
    if (at < this.#expiryAt) this.#armExpiry(at);
  }

  #armExpiry(at: number): void {
    clearTimeout(this.#expiryTimer);
    this.#expiryAt = at;
    this.#expiryTimer = setTimeout(() => this.#expireDue(), Math.max(0, at - Date.now()));
    // Pending input always waits behind a turn, which keeps the process alive on its own.
    this.#expiryTimer.unref?.();
  }

  /** Drop the expired input of every key that has some due, and re-arm for the next. */
  #expireDue(): void {
    this.#expiryTimer = undefined;
    this.#expiryAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let earliest = Number.POSITIVE_INFINITY;
    for (const [key, at] of [...this.#expiring]) {
      if (at > now) {
        if (at < earliest) earliest = at;
        continue;
      }
      this.#expiring.delete(key);
      let answer: Expiry<Entry<I>> | Promise<Expiry<Entry<I>>>;
      try {
        answer = (this.#store.expire as NonNullable<Store<Entry<I>>["expire"]>)(key);
      } catch (error) {
        this.#reportError(new StoreError("expire", key, error), undefined, key, undefined);
        continue;
      }
      settleWith(
        answer,
        (expiry) => {
          this.#reportDrops(key, expiry.dropped);
          if (expiry.next !== Number.POSITIVE_INFINITY) this.#watchExpiry(key, expiry.next);
        },
        (error: unknown) =>
          this.#reportError(new StoreError("expire", key, error), undefined, key, undefined),
      );
    }
    if (earliest < this.#expiryAt) this.#armExpiry(earliest);
  }

  /** `turnTimeout` elapsed for a running turn. */
  #timedOut(turn: TurnState<I>): void {
    if (turn.phase !== "running" || turn.released) return;
    const abandon = this.#options.onStuck === "abandon";
    const error = new TurnTimeoutError(turn.key, turn.fence, this.#options.turnTimeout, abandon);
    turn.abort(error);
    this.#reportError(error, turn, turn.key, turn.fence);
    this.#events.emit("stuck", { key: turn.key, fence: turn.fence, error, abandoned: abandon });
    if (!abandon) return;
    // The handler ignores its signal: free the key for the next turn; this one's fence is stale.
    turn.released = true;
    this.#settleWaiters(turn, error, true);
    this.#finish(turn);
  }

  // --- leases (shared stores)

  /** Renew the turn's claim every lease/3; abort the turn once the claim is lost or overdue. */
  #watchLease(turn: TurnState<I>): void {
    const lease = this.#lease as number;
    // The claim was made at most a round trip ago: counting from now errs by that round trip,
    // which the renewal margin (two thirds of a lease) absorbs.
    turn.watch = {
      renewedAt: Date.now(),
      timer: undefined,
      renewing: false,
      // Input already pending when the turn began is not news (interrupt reacts to new input).
      knownPending: this.#store.pendingCount(turn.key),
    };
    this.#armLease(turn, Math.max(1, Math.floor(lease / 3)));
  }

  #armLease(turn: TurnState<I>, delay: number): void {
    const watch = turn.watch as LeaseWatch;
    if (watch.timer !== undefined) clearTimeout(watch.timer);
    watch.timer = setTimeout(() => this.#renew(turn), delay);
    // The turn's own work keeps the process alive, not its watchdog.
    watch.timer.unref?.();
  }

  #stopLease(turn: TurnState<I>): void {
    const watch = turn.watch;
    if (watch?.timer === undefined) return;
    clearTimeout(watch.timer);
    watch.timer = undefined;
  }

  #renew(turn: TurnState<I>): void {
    const watch = turn.watch as LeaseWatch;
    watch.timer = undefined;
    if (turn.released || turn.lost || turn.phase === "settled") return;
    const lease = this.#lease as number;
    const now = Date.now();
    const expires = watch.renewedAt + lease;
    if (now >= expires) {
      // No renewal succeeded for a whole lease: another replica may hold the key by now.
      this.#leaseLost(turn, false);
      return;
    }
    const interval = Math.max(1, Math.floor(lease / 3));
    // Next check: the next renewal, or the expiry if renewals keep failing.
    this.#armLease(turn, Math.max(1, Math.min(interval, expires - now)));
    if (watch.renewing) return;
    watch.renewing = true;
    const sentAt = now;
    const onAnswer = (renewal: Renewal) => {
      watch.renewing = false;
      if (turn.released || turn.lost || turn.phase === "settled") return;
      if (renewal.status === "lost") {
        this.#leaseLost(turn, true);
        return;
      }
      watch.renewedAt = sentAt;
      this.#armLease(turn, interval);
      // Hints may be lost: the renewal's pending count is the fallback for interrupt and onPending.
      const pending = renewal.pending;
      if (pending > watch.knownPending) this.#pendingArrived(turn, pending);
      watch.knownPending = pending;
    };
    const onError = (error: unknown) => {
      watch.renewing = false;
      if (turn.released || turn.lost || turn.phase === "settled") return;
      this.#reportError(new StoreError("renew", turn.key, error), turn, turn.key, turn.fence);
      // Try again soon; the expiry check above gives up once the lease is over.
      this.#armLease(turn, Math.max(1, Math.min(Math.floor(interval / 2), expires - Date.now())));
    };
    let answer: Renewal | Promise<Renewal>;
    try {
      answer = this.#store.renew(turn.key, turn.claim);
    } catch (error) {
      onError(error);
      return;
    }
    settleWith(answer, onAnswer, onError);
  }

  /**
   * The turn's claim is gone (`confirmed`: the store said so) or overdue: abort its signal with a
   * `LeaseLostError`, report it once, and treat the turn as stale. A confirmed loss frees the key
   * here at once; an overdue one still lets the turn's finish ask the store, which refuses it
   * unless the claim survived.
   */
  #leaseLost(turn: TurnState<I>, confirmed: boolean): void {
    this.#stopLease(turn);
    if (turn.released) return;
    const first = !turn.lost;
    turn.lost = true;
    const error = new LeaseLostError(turn.key, turn.fence);
    if (first && turn.phase !== "settled") {
      turn.abort(error);
      this.#reportError(error, turn, turn.key, turn.fence);
    }
    if (confirmed) {
      turn.released = true;
      this.#unhold(turn);
      if (turn.phase === "claimed") this.#discard(turn);
    }
  }

  /** Input is pending for a running turn: interrupt it (interrupt mode) and tell its listeners. */
  #pendingArrived(turn: TurnState<I>, pending: number): void {
    // A lane (cron, recovery) is not a conversation turn: chat input never supersedes it.
    if (this.#mode.interrupts && turn.phase === "running" && !(turn.entries[0] as Entry<I>).lane) {
      turn.abort(new TurnAbortedError("superseded", turn.key, turn.fence));
    }
    turn.notifyPending(pending);
  }

  // --- shared stores: serialization and the host the store calls

  /** The input as JSON text for a shared store; a TypeError that says how to fix it otherwise. */
  #encode(input: I): string {
    let text: string | undefined;
    let cause: unknown;
    try {
      text = JSON.stringify(this.#codec.encode(input));
    } catch (error) {
      cause = error;
    }
    if (typeof text !== "string") {
      const why = cause instanceof Error ? cause.message : "it encodes to nothing";
      throw new TypeError(
        `submit: the input cannot be serialized for a shared store (${why}). Inputs travel between replicas: pass a codec ({ encode, decode }) to createGuard, or use an adapter that serializes its inputs.`,
        { cause },
      );
    }
    return text;
  }

  #host(): StoreHost<Entry<I>> {
    const guard = this;
    return {
      get closed() {
        return guard.#closing !== undefined;
      },
      revive: (stored) => this.#revive(stored),
      acquired: (key, claim, batch, dropped) => this.#takenOver(key, claim, batch, dropped),
      dropped: (key, dropped) => this.#reportDrops(key, dropped),
      pending: (key, token, pending) => {
        const turn = this.#keys.get(key);
        if (turn === undefined || turn.claim.token !== token || turn.stale) return;
        if (turn.watch !== undefined) turn.watch.knownPending = pending;
        this.#pendingArrived(turn, pending);
      },
      stopped: (key, token) => {
        const turn = this.#keys.get(key);
        if (turn === undefined || turn.claim.token !== token) return;
        turn.abort(new TurnAbortedError("stopped", key, turn.fence));
        if (turn.phase === "claimed") this.#discard(turn);
      },
      freed: (key) => this.#wakeLanes(key),
      departed: (entries) => this.#departed(entries),
      error: (error, key) => this.#reportError(error, undefined, key ?? "", undefined),
    };
  }

  /** Entries that another replica runs: their awaiting callers learn they were queued. */
  #departed(entries: readonly Entry<I>[], key = ""): void {
    for (const entry of entries) {
      const waiter = entry.waiter;
      entry.waiter = undefined;
      if (entry.lane) waiter?.reject(new DroppedError(key, "shutdown"));
      else waiter?.resolve("queued");
    }
  }

  /** A claimed turn that never ran, on a closing guard: another replica runs its batch. */
  #handBack(turn: TurnState<I>): void {
    turn.phase = "settled";
    if (turn.timer !== undefined) clearTimeout(turn.timer);
    turn.timer = undefined;
    const release = turn.release;
    turn.release = undefined;
    release?.();
    this.#departed(turn.entries, turn.key);
    this.#giveUp(turn, true);
  }

  /** An entry admitted by another process, rebuilt here to run through the guard's handler. */
  #revive(stored: StoreEntry & { readonly data: string }): Entry<I> {
    return {
      id: stored.id,
      alone: stored.alone,
      expiresAt: stored.expiresAt,
      data: stored.data,
      input: this.#codec.decode(JSON.parse(stored.data)),
      run: undefined,
      lane: false,
      outcome: "queued",
      waiter: undefined,
    };
  }

  /** The shared store claimed a key on its own (takeover, hand-over): run its batch here. */
  #takenOver(
    key: string,
    claim: Claim,
    batch: Entry<I>[],
    dropped: readonly StoreDrop<Entry<I>>[],
  ): void {
    const turn = new TurnState(this, key, claim, batch);
    this.#reportDrops(key, dropped);
    if (this.#closing !== undefined) {
      this.#handBack(turn);
      return;
    }
    this.#replace(key, turn);
    this.#begin(turn, false);
  }

  // --- steer: TurnHost

  listenerFailed(turn: TurnState<I>, error: unknown): void {
    this.#reportError(error, turn, turn.key, turn.fence);
  }

  take(turn: TurnState<I>): Promise<I[]> {
    if (turn.phase !== "running" || turn.released) return Promise.resolve([]);
    // A turn that runs alone (an interaction, a lane) is never coalesced with other input.
    if ((turn.entries[0] as Entry<I>).alone) return Promise.resolve([]);
    return new Promise((resolve) => {
      this.#storeCall(
        turn,
        "take",
        () => this.#store.take(turn.key, turn.claim, "all"),
        (taken: Take<Entry<I>>) => {
          if (taken.status === "lost") {
            this.#lost(turn);
            resolve([]);
            return;
          }
          this.#reportDrops(turn.key, taken.dropped);
          resolve(turn.append(taken.entries));
        },
        () => resolve([]),
      );
    });
  }

  // --- control

  stop(key: string): Promise<boolean> {
    if (typeof key !== "string" || key === "") {
      return Promise.reject(
        new TypeError(`stop: "key" must be a non-empty string, got ${String(key)}.`),
      );
    }
    // Pending input first, so a handler reacting to the abort finds nothing left to take.
    let cleared: readonly Entry<I>[] | Promise<readonly Entry<I>[]>;
    try {
      cleared = this.#store.clear(key);
    } catch (error) {
      return Promise.reject(new StoreError("clear", key, error));
    }
    const turn = this.#keys.get(key);
    let stopped = false;
    if (turn !== undefined) {
      stopped = turn.abort(new TurnAbortedError("stopped", key, turn.fence));
      if (turn.phase === "claimed") this.#discard(turn);
    }
    const dropAll = (entries: readonly Entry<I>[]): boolean => {
      for (const entry of entries) this.#drop(key, entry, "stopped");
      return stopped || entries.length > 0;
    };
    if (cleared instanceof Promise) {
      return cleared.then(dropAll, (error: unknown) => {
        throw new StoreError("clear", key, error);
      });
    }
    return Promise.resolve(dropAll(cleared));
  }

  close(options?: CloseOptions): Promise<CloseReport<I>> {
    if (this.#closing !== undefined) return this.#closing;
    const timeout = options?.timeout ?? 10_000;
    if (!(typeof timeout === "number" && timeout >= 0)) {
      return Promise.reject(
        new TypeError(
          `close: "timeout" must be a number of ms (0 or more) or Infinity, got ${String(timeout)}.`,
        ),
      );
    }
    const dropped: Drop<I>[] = [];
    this.#closeDrops = dropped;
    let aborted = 0;
    this.#closing = new Promise<CloseReport<I>>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        if (!this.#shared) {
          resolve({ aborted, dropped });
          return;
        }
        // Lanes waiting for a key held elsewhere will not get it now.
        for (const retry of [...this.#laneWaits.values()].flatMap((set) => [...set])) retry();
        // Wait for the hand-overs to reach the store, then stop its background work.
        const handOvers = (): Promise<unknown> =>
          this.#giveUps.size === 0 ? DONE : Promise.all(this.#giveUps).then(handOvers);
        handOvers().then(() => {
          this.#detach?.();
          resolve({ aborted, dropped });
        });
      };
      // Called from inside a handler: that turn cannot finish while its handler awaits close().
      const caller = activeTurn as TurnState<I> | undefined;
      if (caller !== undefined && this.#keys.get(caller.key) === caller) this.#giveUp(caller);
      if (this.#keys.size === 0) return done();
      this.#idleWaiters.push(done);
      if (timeout === Number.POSITIVE_INFINITY) return;
      timer = setTimeout(() => {
        for (const turn of this.#keys.list()) {
          const reason = new TurnAbortedError("shutdown", turn.key, turn.fence);
          turn.abort(reason);
          if (turn.phase === "running") {
            aborted++;
            this.#settleWaiters(turn, reason, true);
          }
          if (turn.phase === "claimed") {
            if (this.#shared) {
              this.#handBack(turn);
              continue;
            }
            turn.released = true;
            this.#discard(turn);
          }
          this.#giveUp(turn);
        }
      }, timeout);
    });
    return this.#closing;
  }

  // --- reporting

  reportError(error: unknown, info: { key: string; inputs?: readonly I[] }): void {
    this.#reportError(error, undefined, info.key, undefined, info.inputs);
  }

  reportDrop(drop: Drop<I>): void {
    const { key, input, id, reason } = drop;
    this.#drop(
      key,
      {
        id,
        alone: false,
        expiresAt: 0,
        input,
        run: undefined,
        lane: false,
        outcome: "queued",
        waiter: undefined,
      },
      reason,
    );
  }

  /** An input ends without being handled: tell its waiter, `onDrop` and the `dropped` listeners. */
  #drop(key: string, entry: Entry<I>, reason: DropReason): void {
    const waiter = entry.waiter;
    entry.waiter = undefined;
    if (entry.lane) {
      waiter?.reject(new DroppedError(key, reason));
      return;
    }
    // An awaiting submit resolves as a detached one would: a redelivery is "duplicate".
    waiter?.resolve(reason === "duplicate" ? "duplicate" : "dropped");
    const onDrop = this.#options.onDrop;
    const closeDrops = reason === "shutdown" ? this.#closeDrops : undefined;
    if (onDrop === undefined && closeDrops === undefined && !this.#events.has("dropped")) return;
    const drop: Drop<I> = { key, input: entry.input, id: entry.id, reason };
    closeDrops?.push(drop);
    if (onDrop !== undefined) {
      try {
        onDrop(drop);
      } catch (error) {
        this.#reportError(error, undefined, key, undefined);
      }
    }
    this.#events.emit("dropped", drop);
  }

  #reportDrops(key: string, drops: readonly StoreDrop<Entry<I>>[]): void {
    for (let i = 0; i < drops.length; i++) {
      const { entry, reason } = drops[i] as StoreDrop<Entry<I>>;
      this.#drop(key, entry, reason);
    }
  }

  #reportError(
    error: unknown,
    turn: TurnState<I> | undefined,
    key: string,
    fence: number | undefined,
    given?: readonly I[],
  ): void {
    const inputs = turn?.inputs ?? given ?? [];
    try {
      this.#options.onError(error, { key, inputs, fence });
    } catch (thrown) {
      console.error("session-guard: onError threw while reporting an error:", thrown, error);
    }
    this.#events.emit("error", { error, key, fence, inputs });
  }

  /** Run a store operation for a turn; a failure is reported and the turn's claim let go. */
  /** A store operation for a turn failed: report it; without finish or abandon, let go. */
  #storeFailed(turn: TurnState<I>, operation: string, error: unknown): void {
    this.#reportError(new StoreError(operation, turn.key, error), turn, turn.key, turn.fence);
    // Without an answer to finish or abandon the claim is gone for this process; a shared
    // store's lease then expires and another replica takes the key over.
    if (operation === "finish" || operation === "abandon") this.#lost(turn);
  }

  #storeCall<T>(
    turn: TurnState<I>,
    operation: string,
    call: () => T | Promise<T>,
    onValue: (value: T) => void,
    onFailure?: () => void,
  ): void {
    const fail = (error: unknown) => {
      this.#storeFailed(turn, operation, error);
      onFailure?.();
    };
    let value: T | Promise<T>;
    try {
      value = call();
    } catch (error) {
      fail(error);
      return;
    }
    settleWith(value, onValue, fail);
  }
}

function checkSubmitOptions(options: SubmitOptions): TypeError | undefined {
  if (typeof options !== "object" || options === null) {
    return new TypeError("submit: options must be an object such as { id: update.update_id }.");
  }
  const { id, alone, expiresAt, awaitTurn } = options;
  if (id !== undefined && typeof id !== "string") {
    return new TypeError(
      `submit: "id" must be a string (convert numeric ids with String(id)), got ${typeof id}.`,
    );
  }
  if (alone !== undefined && typeof alone !== "boolean") {
    return new TypeError(`submit: "alone" must be true or false, got ${typeof alone}.`);
  }
  if (expiresAt !== undefined && (typeof expiresAt !== "number" || Number.isNaN(expiresAt))) {
    return new TypeError(
      `submit: "expiresAt" must be epoch milliseconds (a number such as Date.now() + 60_000), got ${String(expiresAt)}.`,
    );
  }
  if (awaitTurn !== undefined && typeof awaitTurn !== "boolean") {
    return new TypeError(`submit: "awaitTurn" must be true or false, got ${typeof awaitTurn}.`);
  }
  return undefined;
}
