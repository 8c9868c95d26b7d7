// === Options of `instrumentGuard`, checked at once
//
// Providers default to OpenTelemetry's globals, read when the guard is instrumented (so an SDK set
// up before that is used). Keys are hashed by default: a key names a chat and often a user
// (`telegram:42:…`), which a trace backend should not store unless its owner opts in.

import { createHash } from "node:crypto";
import type { MeterProvider, TracerProvider } from "@opentelemetry/api";

/** How a turn's span names its key (`session_guard.key`). */
export type KeyAttribute = "hash" | "raw" | "none" | ((key: string) => string);

/** Options of `instrumentGuard`. */
export interface InstrumentOptions {
  /** Where metrics go. Default: the global provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /** Where turn spans go. Default: the global provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /**
   * The key on a turn's span: `"hash"` (default: the first 16 hex digits of its SHA-256, stable
   * across processes, so one chat's turns can be found together without naming it), `"raw"`,
   * `"none"`, or a function that answers the attribute's value.
   */
  keyAttribute?: KeyAttribute;
  /**
   * Tells guards apart in one process (a Telegram and a Slack bot): set as `session_guard.name` on
   * every measurement and span. Default: none.
   */
  name?: string;
}

/** The options, checked, with their defaults. */
export interface ResolvedInstrumentOptions {
  readonly meterProvider: MeterProvider | undefined;
  readonly tracerProvider: TracerProvider | undefined;
  /** The key's attribute value, or `undefined` for none. */
  readonly keyOf: (key: string) => string | undefined;
  readonly name: string | undefined;
}

const KNOWN = new Set(["meterProvider", "tracerProvider", "keyAttribute", "name"]);

/** A short, stable stand-in for a key: 64 bits of its SHA-256, as hex. */
export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 16);
}

/** Check `options`; a wrong value throws a `TypeError` that says what is expected. */
export function resolveInstrumentOptions(options: unknown): ResolvedInstrumentOptions {
  if (options === undefined) options = {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(
      `instrumentGuard(guard, options): options must be an object, not ${describe(options)}.`,
    );
  }
  const given = options as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (!KNOWN.has(name)) {
      throw new TypeError(
        `instrumentGuard: unknown option "${name}". Options: ${[...KNOWN].join(", ")}.`,
      );
    }
  }
  const { meterProvider, tracerProvider, keyAttribute = "hash", name } = given;
  if (
    meterProvider !== undefined &&
    typeof (meterProvider as MeterProvider).getMeter !== "function"
  ) {
    throw new TypeError(
      `instrumentGuard: "meterProvider" must be an OpenTelemetry MeterProvider (with getMeter), not ${describe(meterProvider)}. Omit it to use the global one.`,
    );
  }
  if (
    tracerProvider !== undefined &&
    typeof (tracerProvider as TracerProvider).getTracer !== "function"
  ) {
    throw new TypeError(
      `instrumentGuard: "tracerProvider" must be an OpenTelemetry TracerProvider (with getTracer), not ${describe(tracerProvider)}. Omit it to use the global one.`,
    );
  }
  if (name !== undefined && (typeof name !== "string" || name === "")) {
    throw new TypeError(
      `instrumentGuard: "name" must be a non-empty string, not ${describe(name)}.`,
    );
  }
  return {
    meterProvider: meterProvider as MeterProvider | undefined,
    tracerProvider: tracerProvider as TracerProvider | undefined,
    keyOf: keyFunction(keyAttribute),
    name: name as string | undefined,
  };
}

function keyFunction(keyAttribute: unknown): (key: string) => string | undefined {
  switch (keyAttribute) {
    case "hash":
      return hashKey;
    case "raw":
      return (key) => key;
    case "none":
      return () => undefined;
    default:
      if (typeof keyAttribute === "function") {
        const fn = keyAttribute as (key: string) => unknown;
        return (key) => {
          const value = fn(key);
          return typeof value === "string" ? value : undefined;
        };
      }
      throw new TypeError(
        `instrumentGuard: "keyAttribute" must be "hash", "raw", "none" or a function (key) => string, not ${describe(keyAttribute)}.`,
      );
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "function") return "a function";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}
