// === The names this instrumentation emits, in one place
//
// OpenTelemetry semantic-convention style: a `session_guard.` namespace, dots between components,
// snake_case inside one, durations in seconds (`s`), counts with a `{noun}` annotation unit.
// Failures carry the convention's own `error.type` (the error's class name). No metric carries the
// key: keys are unbounded (one per chat) and may hold user ids; only a turn's span does, hashed by
// default.

/** Metric names. */
export const METRICS = {
  /** Counter `{input}`: inputs admitted here, by `session_guard.admission` (started, queued). */
  inputsAdmitted: "session_guard.inputs.admitted",
  /** Counter `{input}`: inputs that ended without being handled, by `session_guard.drop.reason`. */
  inputsDropped: "session_guard.inputs.dropped",
  /** Observable up-down counter `{input}`: inputs waiting behind a turn, as this process knows. */
  inputsPending: "session_guard.inputs.pending",
  /** Histogram `s`: from an input's admission here to the start of the turn that handles it. */
  inputWaitTime: "session_guard.input.wait_time",
  /** Counter `{turn}`: turns whose handler started. */
  turnsStarted: "session_guard.turns.started",
  /**
   * Counter `{turn}`: turns whose handler settled, by `session_guard.outcome`: `handled`, `failed`
   * (it threw; with `error.type`), `aborted` (it threw its own abort reason: stopped, superseded).
   */
  turnsFinished: "session_guard.turns.finished",
  /** Observable up-down counter `{turn}`: keys this guard holds (turns claimed or running). */
  turnsActive: "session_guard.turns.active",
  /** Histogram `s`: a turn's handler, from its start until it settled. */
  turnDuration: "session_guard.turn.duration",
  /** Histogram `s`: one store call, by `session_guard.store.operation` (and `error.type`). */
  storeDuration: "session_guard.store.operation.duration",
  /** Counter `{error}`: store calls that failed, by operation and `error.type`. */
  storeErrors: "session_guard.store.errors",
  /** Counter `{lease}`: turns that lost their lease (a shared store). */
  leasesLost: "session_guard.leases.lost",
  /** Counter `{key}`: keys the store took over on its own: a holder died or handed over. */
  takeovers: "session_guard.takeovers",
} as const;

/** Attribute names. */
export const ATTRIBUTES = {
  /** The guard's `name` option, on every metric and span, when given. */
  name: "session_guard.name",
  /** `started` or `queued`. */
  admission: "session_guard.admission",
  /** A `DropReason`: overflow, stopped, duplicate, busy, superseded, shutdown, expired. */
  dropReason: "session_guard.drop.reason",
  /** `handled`, `failed`, `aborted`, or on a span also `abandoned` (timed out and let go). */
  outcome: "session_guard.outcome",
  /** The store operation: acquireOrEnqueue, finish, renew, take, abandon, … */
  storeOperation: "session_guard.store.operation",
  /** The conventional error attribute: the error's class name (`name` for a plain Error). */
  errorType: "error.type",
  /** Span: the turn's key, hashed by default (`keyAttribute`). */
  key: "session_guard.key",
  /** Span: the turn's fence. */
  fence: "session_guard.fence",
  /** Span: inputs of the turn, at its end (those `take()` moved in included). */
  inputCount: "session_guard.input.count",
} as const;

/** The span of a turn. */
export const TURN_SPAN = "session_guard.turn";

/** The instrumentation scope (meter and tracer name). */
export const SCOPE = "session-guard";
