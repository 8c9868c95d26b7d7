// session-guard: one agent turn per chat at a time, with pending input handled by a busy mode.
// This entry point re-exports the core only; it imports no chat framework.

export {
  type AdapterGuard,
  type AdapterOptions,
  adapterGuard,
  type GuardControls,
  withGuardControls,
} from "./controls.js";
export {
  type AbortCode,
  ContendedError,
  DroppedError,
  type DropReason,
  LeaseLostError,
  StoreError,
  TurnAbortedError,
  TurnTimeoutError,
} from "./errors.js";
export type { GuardEvents } from "./events.js";
export {
  type CloseOptions,
  type CloseReport,
  createGuard,
  type Guard,
  type RunOptions,
  type SubmitOptions,
  type SubmitOutcome,
} from "./guard.js";
export { type MemoryStore, type MemoryStoreOptions, memoryStore } from "./memory-store.js";
export { MODES, type Mode, type ModeBehaviour } from "./modes.js";
export type { Codec, Drop, ErrorInfo, GuardOptions, Handler } from "./options.js";
export type {
  Admission,
  AdmitPolicy,
  BatchPolicy,
  Claim,
  Expiry,
  Finish,
  MaybePromise,
  Renewal,
  Store,
  StoreDrop,
  StoreEntry,
  StoreHost,
  Take,
} from "./store.js";
export type { Turn } from "./turn.js";
