// === The guard: the engine, its collaborators, and the public methods
//
// `SessionGuard` is what `createGuard()` returns. The hot path lives in `engine.ts`; each concern
// beside it is a collaborator built here once, owning its state and reaching the engine through
// the few members it needs: lanes, settle windows, the lease watchdog, the expiry timer, stuck
// turns, the other exits of a turn, replicas (a shared store), stop and close, reporting.

import pLimit from "p-limit";
import type { AdmitPolicy, Store } from "../stores/store.js";
import { Carrier } from "./carry.js";
import { Controls } from "./control.js";
import { Deadlines } from "./deadlines.js";
import { Endings } from "./endings.js";
import { Engine } from "./engine.js";
import type { GuardEntry } from "./entry.js";
import { newEntry } from "./entry.js";
import type { DropReason } from "./errors.js";
import type { GuardEvents, Listener } from "./events.js";
import { Emitter, EVENT_NAMES } from "./events.js";
import { Exits } from "./exits.js";
import { ExpiryTimer } from "./expiry.js";
import { ClaimHolders, type Holders, hasLocalClaims, MapHolders } from "./holders.js";
import { Lanes } from "./lanes.js";
import { LeaseWatchdog } from "./lease-watch.js";
import { FALLBACK_MODE, ModeChoice } from "./mode-choice.js";
import { MODES, type ModeBehaviour } from "./modes.js";
import { type GuardObserver, OBSERVE, observe } from "./observe.js";
import type { ResolvedOptions } from "./options.js";
import { LEDGER, Ledger, type Outcome, outcomeWindow } from "./outcomes.js";
import { Replicas } from "./replicas.js";
import { Reporter } from "./report.js";
import { Revisions } from "./revisions.js";
import { SettleWindows } from "./settle.js";
import { Stuck } from "./stuck.js";
import type { Turn, TurnHost, TurnState } from "./turn.js";
import type {
  CloseOptions,
  CloseReport,
  Guard,
  ReplaceOptions,
  RevisionResult,
  RunOptions,
  StopOptions,
} from "./types.js";

export class SessionGuard<I> extends Engine<I> implements Guard<I>, TurnHost<I> {
  readonly options: ResolvedOptions<I>;
  readonly store: Store<GuardEntry<I>>;
  readonly shared: boolean;
  readonly mode: ModeBehaviour;
  readonly admitPolicy: AdmitPolicy;
  readonly modes: ModeChoice<I> | undefined;
  readonly events: Emitter<GuardEvents<I>>;
  readonly report: Reporter<I>;
  readonly ends: Endings<I>;
  readonly keys: Holders<TurnState<I>>;
  readonly limit: ReturnType<typeof pLimit> | undefined;
  readonly deadlines: Deadlines<TurnState<I>> | undefined;
  readonly settle: SettleWindows<I>;
  readonly exits: Exits<I>;
  readonly stuck: Stuck<I>;
  readonly expiry: ExpiryTimer<I>;
  readonly leases: LeaseWatchdog<I> | undefined;
  readonly lanes: Lanes<I>;
  readonly controls: Controls<I>;
  readonly replicas: Replicas<I> | undefined;
  readonly revisions: Revisions<I>;
  readonly carrier: Carrier<I>;

  constructor(options: ResolvedOptions<I>) {
    super();
    this.options = options;
    this.store = options.store as Store<GuardEntry<I>>;
    this.shared = this.store.shared === true;
    const mode = options.mode;
    this.mode = typeof mode === "function" ? MODES[FALLBACK_MODE] : MODES[mode];
    const { maxPending, overflow, maxPendingTotal, dedupe } = options;
    const { whenHeld, batch } = this.mode;
    this.admitPolicy = { maxPending, overflow, maxPendingTotal, whenHeld, dedupe, batch };
    this.modes =
      typeof mode === "function" ? new ModeChoice(this, mode, this.admitPolicy) : undefined;
    const store = this.store as Store<never>;
    this.keys = hasLocalClaims(store)
      ? new ClaimHolders(store, (turn) => turn.host === this)
      : new MapHolders();
    this.events = new Emitter<GuardEvents<I>>(EVENT_NAMES, (error, payload) =>
      this.report.listenerFailed(error, (payload as { key?: string }).key),
    );
    this.report = new Reporter(options.onError, this.events);
    // The memory store keeps its de-duplication ids in a ledger: outcomes go into the same one.
    const ledger = (this.store as { [LEDGER]?: Ledger })[LEDGER] ?? new Ledger();
    const window = outcomeWindow(dedupe);
    const record = this.store.record?.bind(this.store);
    const share =
      record === undefined
        ? undefined
        : (key: string, records: Parameters<typeof record>[1]) => {
            try {
              record(key, records, window);
            } catch (error) {
              this.report.incident("record", error, key);
            }
          };
    this.ends = new Endings(options.onDrop, this.events, this.report, ledger, window, share);
    this.revisions = new Revisions(this, ledger);
    this.limit = Number.isFinite(options.concurrency) ? pLimit(options.concurrency) : undefined;
    this.exits = new Exits(this);
    this.stuck = new Stuck(this);
    this.deadlines = Number.isFinite(options.turnTimeout)
      ? new Deadlines((turn: TurnState<I>) => this.stuck.timedOut(turn))
      : undefined;
    this.settle = new SettleWindows(this, options.settle, this.mode.batch);
    this.expiry = new ExpiryTimer(this);
    const lease = this.store.lease;
    this.leases =
      typeof lease === "number" && lease > 0 ? new LeaseWatchdog(this, lease) : undefined;
    this.lanes = new Lanes(this, this.admitPolicy);
    this.carrier = new Carrier(this, options.maxCarry);
    this.controls = new Controls(this);
    // Last: attaching to a shared store may hand over a key at once, which needs everything above.
    this.replicas =
      this.shared || this.store.attach !== undefined
        ? new Replicas(this, options.codec)
        : undefined;
  }

  // --- observable state

  get activeCount(): number {
    return this.keys.size;
  }

  get closed(): boolean {
    return this.controls.closing !== undefined;
  }

  isBusy(key: string): boolean {
    return this.keys.get(key) !== undefined;
  }

  pendingCount(key: string): number {
    return this.store.pendingCount(key);
  }

  onIdle(): Promise<void> {
    return this.idle();
  }

  on<K extends keyof GuardEvents<I>>(event: K, listener: Listener<GuardEvents<I>[K]>): () => void {
    return this.events.on(event, listener);
  }

  /** The observer seam (`observe.ts`): for an instrumentation such as `session-guard/otel`. */
  [OBSERVE](observer: GuardObserver): () => void {
    return observe(this, observer);
  }

  // --- the methods of other concerns

  run<T>(key: string, fn: (turn: Turn<I>) => T | Promise<T>, options?: RunOptions): Promise<T> {
    return this.lanes.run(key, fn, options);
  }

  stop(key: string, options?: StopOptions): Promise<boolean> {
    return this.controls.stop(key, options);
  }

  stopWhere(prefix: string, options?: StopOptions): Promise<boolean> {
    return this.controls.stopWhere(prefix, options);
  }

  close(options?: CloseOptions): Promise<CloseReport<I>> {
    return this.controls.close(options);
  }

  replace(key: string, id: string, input: I, options?: ReplaceOptions<I>): Promise<RevisionResult> {
    return this.revisions.replace(key, id, input, options);
  }

  withdraw(key: string, id: string): Promise<RevisionResult> {
    return this.revisions.withdraw(key, id);
  }

  outcome(id: string): Promise<Outcome | undefined> {
    return this.revisions.outcome(id);
  }

  reportError(error: unknown, info: { key: string; inputs?: readonly I[] }): void {
    this.report.error(error, info.key, undefined, info.inputs);
  }

  reportDrop(drop: { key: string; input: I; id: string | undefined; reason: DropReason }): void {
    const entry: GuardEntry<I> = newEntry(drop.id, drop.input, undefined, false, false, 0);
    this.ends.dropped(drop.key, entry, drop.reason);
  }

  // --- steer (TurnHost)

  take(turn: TurnState<I>): Promise<I[]> {
    if (turn.phase !== "running" || turn.released) return Promise.resolve([]);
    // A turn that runs alone (an interaction, a lane) is never coalesced with other input.
    if ((turn.entries[0] as GuardEntry<I>).alone) return Promise.resolve([]);
    return new Promise((resolve) => {
      this.exits.storeCall(
        turn,
        "take",
        () => this.store.take(turn.key, turn.claim, "all"),
        (taken) => {
          if (taken.status === "lost") {
            this.lost(turn);
            resolve([]);
            return;
          }
          this.ends.droppedAll(turn.key, taken.dropped);
          if (turn.phase !== "running" || turn.released) {
            // The turn settled while the take was on its way: these inputs need another turn.
            this.exits.late(turn, taken.entries);
            resolve([]);
            return;
          }
          const inputs = turn.append(taken.entries);
          this.ends.running(turn.key, taken.entries, turn.fence);
          resolve(inputs);
        },
        () => resolve([]),
      );
    });
  }

  listenerFailed(turn: TurnState<I>, error: unknown): void {
    this.report.error(error, turn.key, turn.fence, turn.inputs);
  }
}
