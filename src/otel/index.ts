// session-guard/otel: OpenTelemetry metrics and spans for a guard. `@opentelemetry/api` is an
// optional peer dependency of the package; only this entry point imports it.

export { instrumentGuard } from "./instrument.js";
export { ATTRIBUTES, METRICS, TURN_SPAN } from "./names.js";
export { hashKey, type InstrumentOptions, type KeyAttribute } from "./options.js";
