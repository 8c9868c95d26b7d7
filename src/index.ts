// session-guard: one agent turn per chat at a time, with pending input handled by a busy mode.
// This entry point re-exports the core only; it imports no chat framework.

/**
 * The core: `createGuard()`, the memory store, the store seam and typed errors; no framework.
 *
 * @module session-guard
 */

export type { Carried } from "./core/carry.js";
export {
  type AbortCode,
  CarryTooLargeError,
  ContendedError,
  CycleError,
  DroppedError,
  type DropReason,
  LeaseLostError,
  StoreError,
  StoreRecoveredError,
  TurnAbortedError,
  TurnTimeoutError,
} from "./core/errors.js";
export type { GuardEvents, Listener } from "./core/events.js";
export type { ModeFunction, ModeState } from "./core/mode-choice.js";
export { MODES, type Mode, type ModeBehaviour } from "./core/modes.js";
export type { Codec, Drop, ErrorInfo, GuardOptions, Handler } from "./core/options.js";
export type { Outcome, OutcomeState } from "./core/outcomes.js";
export type { Revision, Turn } from "./core/turn.js";
export type {
  CloseOptions,
  CloseReport,
  Guard,
  ReplaceOptions,
  RevisionResult,
  RunOptions,
  StopOptions,
  SubmitOptions,
  SubmitOutcome,
} from "./core/types.js";
export { createGuard } from "./create-guard.js";
export { type MemoryStore, type MemoryStoreOptions, memoryStore } from "./stores/memory/store.js";
export type {
  Admission,
  AdmitPolicy,
  BatchPolicy,
  CarriedRecord,
  CarryOn,
  CarryReason,
  Claim,
  Expiry,
  Finish,
  MaybePromise,
  OutcomeRecord,
  Renewal,
  Stopped,
  Store,
  StoreDrop,
  StoreEntry,
  StoreHost,
  Take,
  WithDrops,
} from "./stores/store.js";
